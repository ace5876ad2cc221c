// The example Worker: an event log whose "balances" and "daily-totals" read
// models are projections kept exactly-once by @synapse-es/checkpointstore-d1.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { CheckpointTimeoutError, D1CheckpointStore } from "../../src/index.js";
import type { Env } from "./env.js";
import { AccountHistory } from "./account-history.js";
import { routeAdmin } from "./admin.js";
import { listDailyTotals } from "./daily-totals.js";
import { ACCOUNT, HttpError, json, parseAccount, pathSegment, readJson } from "./http.js";
import { appendEvents, BALANCES, catchUp, getBalance, listBalances, type NewEvent } from "./ledger.js";
import { consumeWakes, projectAppend } from "./queue.js";
import { LedgerDaemon, ledgerDaemon } from "./daemon.js";

const DESCRIPTION = `checkpointstore-d1 example: a ledger with projected balances and daily totals.

GET  /                                 this text
POST /events                           append {"account": "alice", "amount": 5} (or an array of up to 100)
GET  /balances?after=&limit=           the read model, in account order
GET  /balances/:account                one account
     ?min_position=N                   (on both) wait up to 2 s until the projection has applied position N:
                                       503 with Retry-After if it has not by then; 409 at once if N is beyond the newest event
GET  /daily-totals/:account?after=&limit=  its total and event count per UTC day, in day order (after: a YYYY-MM-DD);
                                       a projection written with Drizzle, run with balances as one group

GET  /accounts/:account/history?limit=  its history, newest first (a projection in a Durable Object per account);
                                       404 for an account with no events (no object is created for it)
GET  /admin                            the admin page: projections, lag, parked events, history objects (log in with ADMIN_TOKEN)
GET  /admin/projections/:name/parked   its parked events, with Replay  (?after= pages by position)
POST /admin/projections/:name/reset    clear a projection and rebuild it
POST /admin/projections/:name/parked/:position/replay   apply a parked event again
GET  /admin/holds                      accounts on hold (their events are parked), with Release
POST /admin/holds                      put {"account": "alice"} on hold
POST /admin/holds/:account/release     release it
POST /admin/projections/history/:account/reset   rebuild one account's history
GET  /admin/api/projections            the same as JSON (also /admin/api/partitions, /admin/api/projections/:name/parked)
     Scripts send Authorization: Bearer <ADMIN_TOKEN> (32+ characters, no whitespace) and get JSON.
`;

const MAX_AMOUNT = 1_000_000_000;

function parseEvents(body: unknown): NewEvent[] {
  const items: unknown[] = Array.isArray(body) ? body : [body];
  if (items.length === 0 || items.length > 100) throw new HttpError(400, "send 1 to 100 events");
  return items.map((item, index) => {
    const { account, amount } = (typeof item === "object" && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof account !== "string" || !ACCOUNT.test(account)) {
      throw new HttpError(400, `event ${index}: account must be 1 to 64 of A-Z a-z 0-9 . _ -`);
    }
    if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount === 0 || Math.abs(amount) > MAX_AMOUNT) {
      throw new HttpError(400, `event ${index}: amount must be a non-zero integer within ±${MAX_AMOUNT}`);
    }
    return { account, amount };
  });
}

function parseMinPosition(value: string | null): number | undefined {
  if (value === null) return undefined;
  const position = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(position)) throw new HttpError(400, "min_position must be a non-negative integer");
  return position;
}

/**
 * Read-your-writes: with `?min_position=N` (a position `POST /events` answered),
 * waits up to 2 s for the balances projection to reach N, kicking a run in case
 * the one started by the append is gone; a 503 if it does not get there.
 * The checkpoint and the newest event's position come in one round trip: an N
 * beyond the newest event is a 409 at once (no run, no wait, no Retry-After:
 * waiting cannot help, and a client retrying on Retry-After would retry forever).
 */
async function awaitProjection(url: URL, request: Request, env: Env, ctx: ExecutionContext): Promise<Record<string, string>> {
  const minimum = parseMinPosition(url.searchParams.get("min_position"));
  if (minimum === undefined) return {};
  const store = new D1CheckpointStore(env.DB);
  const checkpoint = await store.status(BALANCES, { newest: env.DB.prepare("SELECT MAX(position) FROM events"), signal: request.signal });
  const newest = checkpoint.position + (checkpoint.lag ?? 0); // lag = newest - position, at least 0
  if (minimum > newest) {
    throw new HttpError(409, `position ${minimum} does not exist yet: the newest event is at ${newest}`);
  }
  if (checkpoint.position >= minimum) return { "x-projection-position": String(checkpoint.position) };
  ctx.waitUntil(runInBackground(env.DB, "read-your-writes"));
  try {
    const { position } = await store.waitFor(BALANCES, minimum, { timeoutMs: 2000, signal: request.signal });
    return { "x-projection-position": String(position) };
  } catch (error) {
    if (!(error instanceof CheckpointTimeoutError)) throw error;
    throw new HttpError(503, `the balances projection has not reached position ${minimum} yet`, { "retry-after": "1" });
  }
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function parseDay(value: string | null): string {
  if (value === null || value === "") return "";
  if (!DAY.test(value)) throw new HttpError(400, "after must be a day, YYYY-MM-DD");
  return value;
}

function parseLimit(value: string | null): number {
  if (value === null) return 100;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, "limit must be an integer from 1 to 1000");
  return limit;
}

/** Tells each account's history object that it has new events (its alarm projects them). */
async function notifyHistories(env: Env, events: readonly NewEvent[]): Promise<void> {
  const accounts = [...new Set(events.map((event) => event.account))];
  const results = await Promise.allSettled(accounts.map((account) => historyOf(env, account).notify(account)));
  for (const result of results) if (result.status === "rejected") console.error("history notification failed", result.reason);
}

/** Whether the log has an event of `account`: one lookup in the events_by_account index. */
async function hasEvents(db: D1Database, account: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM events WHERE account = ?1 LIMIT 1").bind(account).first()) !== null;
}

function historyOf(env: Env, account: string): DurableObjectStub<AccountHistory> {
  return env.ACCOUNT_HISTORY.get(env.ACCOUNT_HISTORY.idFromName(account));
}

/** Runs the projection after the response; a failure is logged, and the cron catches up. */
async function runInBackground(db: D1Database, why: string): Promise<void> {
  try {
    await catchUp(db);
  } catch (error) {
    console.error(`${why} failed`, error);
  }
}

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  const method = request.method === "HEAD" ? "GET" : request.method; // HEAD is GET without the body (stripped in fetch)
  const allow = (...methods: string[]): void => {
    const allowed = methods.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
    if (!methods.includes(method)) throw new HttpError(405, `use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
  };

  if (path === "/") {
    allow("GET");
    return new Response(DESCRIPTION, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  if (path === "/events") {
    allow("POST");
    const events = parseEvents(await readJson(request));
    const positions = await appendEvents(env.DB, events);
    const daemon = ledgerDaemon(env);
    // The daemon runs the projections by itself; without one, a run here, and a wake-up on the queue if it does not get past them.
    ctx.waitUntil(daemon !== undefined ? daemon.notify(Math.max(...positions)).catch((error: unknown) => { console.error("notify failed", error); }) : projectAppend(env, positions));
    ctx.waitUntil(notifyHistories(env, events));
    return json({ appended: positions }, 201);
  }
  if (path === "/balances") {
    allow("GET");
    const after = url.searchParams.get("after") ?? "";
    const limit = parseLimit(url.searchParams.get("limit"));
    const headers = await awaitProjection(url, request, env, ctx);
    return json({ balances: await listBalances(env.DB, after, limit) }, 200, headers);
  }
  const account = /^\/balances\/([^/]+)$/.exec(path)?.[1];
  if (account !== undefined) {
    allow("GET");
    const name = pathSegment(account);
    const headers = await awaitProjection(url, request, env, ctx);
    const balance = await getBalance(env.DB, name);
    if (balance === null) throw new HttpError(404, "no such account");
    return json(balance, 200, headers);
  }
  const dailyOfAccount = /^\/daily-totals\/([^/]+)$/.exec(path)?.[1];
  if (dailyOfAccount !== undefined) {
    allow("GET");
    const name = parseAccount(dailyOfAccount);
    const after = parseDay(url.searchParams.get("after"));
    const days = await listDailyTotals(env.DB, name, after, parseLimit(url.searchParams.get("limit")));
    if (days.length === 0 && after === "") throw new HttpError(404, "no such account");
    return json({ account: name, days });
  }
  const historyOfAccount = /^\/accounts\/([^/]+)\/history$/.exec(path)?.[1];
  if (historyOfAccount !== undefined) {
    allow("GET");
    const account = parseAccount(historyOfAccount);
    const limit = parseLimit(url.searchParams.get("limit"));
    // Asked of D1 first (one indexed lookup, events_by_account): an account with no events gets
    // no object, so anonymous reads of made-up names cannot create objects and their storage.
    if (!(await hasEvents(env.DB, account))) throw new HttpError(404, "no such account");
    return json(await historyOf(env, account).view(account, limit));
  }
  if (path === "/admin" || path.startsWith("/admin/")) return routeAdmin(request, env, ctx);
  throw new HttpError(404, "no such route: GET / lists them");
}

export { AccountHistory, LedgerDaemon };

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const response = await route(request, env, ctx).catch((error: unknown) => {
      if (error instanceof HttpError) return json({ error: error.message }, error.status, error.headers);
      console.error("request failed", error);
      return json({ error: "internal error" }, 500);
    });
    return request.method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
  },

  /** The safety net: pokes the daemon (a lost notify is at most a minute stale); without one, catches up itself. */
  async scheduled(_controller, env): Promise<void> {
    const daemon = ledgerDaemon(env);
    if (daemon !== undefined) await daemon.poke();
    else await catchUp(env.DB);
  },

  /** Wake-ups (queue.ts): one run of the projections per batch; acked when they are past every message's position, else retried. */
  async queue(batch, env): Promise<void> {
    await consumeWakes(batch, env);
  },
} satisfies ExportedHandler<Env>;
