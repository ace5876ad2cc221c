// The ledger's projections run themselves (docs/guides/daemon.md): one daemon
// object runs the group whenever an append notifies it, one run at a time,
// chained across invocations within the query budget, retried with backoff.
// The cron only pokes it, as a safety net for a notify that was lost.
import { ProjectionDaemonObject } from "../../src/daemon.js";
import type { Env } from "./env.js";
import { LEDGER_PROJECTIONS, ledgerProjections, QUERY_BUDGET } from "./ledger.js";

/** The daemon of the ledger's projection group (`balances`, `daily-totals`). */
export class LedgerDaemon extends ProjectionDaemonObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { name: LEDGER_PROJECTIONS, projection: ledgerProjections(env.DB, env.PROJECTION_METRICS), budget: QUERY_BUDGET });
  }
}

/** The one daemon object of the ledger, or `undefined` where the binding is not configured. */
export function ledgerDaemon(env: Env): DurableObjectStub<LedgerDaemon> | undefined {
  const namespace = env.LEDGER_DAEMON;
  return namespace?.get(namespace.idFromName(LEDGER_PROJECTIONS));
}
