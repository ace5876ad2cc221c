// The example's admin: the package's admin page, configured for the ledger.
// Everything under /admin is the package's handler (overview, parked events,
// Reset and Replay, login), except the ledger's own routes in holds.ts.
// In your project, import from "@synapse-es/checkpointstore-d1/admin".
import { adminHandler, bearerToken, type AdminAuth, type AdminHandler, type AdminPartition } from "../../src/admin.js";
import { CheckpointRangeError, CheckpointTypeError, D1CheckpointStore } from "../../src/index.js";
import { D1RunLog } from "../../src/metrics.js";
import type { Env } from "./env.js";
import { refusal, routeLedgerAdmin } from "./holds.js";
import { json } from "./http.js";
import { DAILY_TOTALS, resetDailyTotals } from "./daily-totals.js";
import { balancesRunner, BALANCES, catchUp, resetBalances } from "./ledger.js";
import { ledgerDaemon } from "./daemon.js";

/** Where the admin lives. */
export const ADMIN_BASE = "/admin";

/** How many accounts' history objects the overview lists: the most recently active. */
const PARTITIONS_LISTED = 20;

/**
 * ADMIN_TOKEN as the admin's credential, or why admin is disabled: unset or
 * empty, or a token `bearerToken` refuses (blank, padded, shorter than 32
 * characters). The message names the rule, never the token.
 */
export function adminAuth(env: Env): AdminAuth | string {
  const token = env.ADMIN_TOKEN;
  if (token === undefined || token === "") return "admin routes are disabled: set the ADMIN_TOKEN secret";
  try {
    return bearerToken(token);
  } catch (error) {
    if (!(error instanceof CheckpointRangeError || error instanceof CheckpointTypeError)) throw error;
    return "admin routes are disabled: ADMIN_TOKEN must be a generated secret of 32 to 1,024 characters, not a placeholder (openssl rand -hex 16)";
  }
}

/**
 * The account-history objects of the most recently active accounts, each with
 * its account's newest position for `lag`. One D1 query (a scan of the
 * events_by_account index: for a large log, keep a table of recent accounts).
 */
async function recentHistories(env: Env): Promise<AdminPartition[]> {
  const { results } = await env.DB.prepare("SELECT account, MAX(position) AS newest FROM events GROUP BY account ORDER BY MAX(position) DESC LIMIT ?1")
    .bind(PARTITIONS_LISTED)
    .all<{ account: string; newest: number }>();
  return results.map(({ account, newest }) => {
    const stub = env.ACCOUNT_HISTORY.get(env.ACCOUNT_HISTORY.idFromName(account));
    return { name: `history/${account}`, statuses: () => stub.statuses(newest) };
  });
}

/** The package's admin handler for the ledger. */
export function ledgerAdmin(env: Env, ctx: ExecutionContext, auth: AdminAuth): AdminHandler {
  return adminHandler({
    basePath: ADMIN_BASE,
    title: "Ledger admin",
    store: new D1CheckpointStore(env.DB),
    auth,
    newest: env.DB.prepare("SELECT MAX(position) FROM events"),
    eventTimeAfter: (after) => env.DB.prepare("SELECT recorded_at FROM events WHERE position > ?1 ORDER BY position LIMIT 1").bind(after),
    projections: {
      [BALANCES]: {
        replay: (position) => balancesRunner(env.DB).replay(position),
        reset: () => resetBalances(env.DB),
        rebuild: () => catchUp(env.DB),
      },
      [DAILY_TOTALS]: { reset: () => resetDailyTotals(env.DB), rebuild: () => catchUp(env.DB) },
    },
    partitions: () => recentHistories(env),
    // The ledger's daemon, with Wake, Pause and Resume (none where the binding is not configured).
    daemons: () => {
      const daemon = ledgerDaemon(env);
      return Promise.resolve(daemon === undefined ? [] : [daemon]);
    },
    waitUntil: ctx.waitUntil.bind(ctx),
    // What the group's runs recorded (ledger.ts): rows written per 1,000 events, per projection.
    runLog: new D1RunLog(env.DB),
  });
}

/** Serves `/admin` and everything under it: 403 while admin is disabled, the ledger's own routes, then the package's. */
export async function routeAdmin(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const auth = adminAuth(env);
  if (typeof auth === "string") return refusal(request, 403, auth);
  return (await routeLedgerAdmin(request, env, auth)) ?? (await ledgerAdmin(env, ctx, auth)(request)) ?? json({ error: "no such route" }, 404);
}
