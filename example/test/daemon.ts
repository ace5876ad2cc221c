// The example's appends notify the ledger's daemon: a test that expects the
// projections to have run settles the daemon (runs its alarms until nothing
// is due) after the request's background work.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { settleDaemon } from "../../src/testing.js";
import { ledgerDaemon } from "../src/daemon.js";

/** Runs the ledger daemon's due runs, when `bindings` has the daemon. */
export async function settleLedger(bindings: Cloudflare.Env = env): Promise<void> {
  const stub = ledgerDaemon(bindings);
  if (stub !== undefined) await settleDaemon(stub, runDurableObjectAlarm);
}
