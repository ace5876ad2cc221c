// The example's /admin routes: the admin page (server-rendered HTML, a login
// form and a session cookie) and the JSON routes behind it.
//
// Two ways in, both needing ADMIN_TOKEN to be set (403 otherwise):
// - `Authorization: Bearer <ADMIN_TOKEN>`: scripts; answers are JSON;
// - the session cookie that POST /admin/login sets: browsers; its writes must
//   come from this origin, and form posts answer 303 back to /admin with a notice.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { CorruptCheckpointError, D1CheckpointStore, ProjectionError } from "../../src/index.js";
import { HISTORY } from "./account-history.js";
import { html, renderAdminPage, renderLoginPage, renderMessagePage, STYLESHEET, type AdminView, type ParkedRow, type ProjectionRow } from "./admin-page.js";
import { clearedSessionCookie, hasSession, requireSameOrigin, sessionCookie } from "./admin-session.js";
import type { Env } from "./env.js";
import { ACCOUNT, HttpError, isForm, json, parseAccount, pathSegment, readForm, readJson, requireAdmin, tokenMatches } from "./http.js";
import { BALANCES, catchUp, holdAccount, listHolds, newestPosition, releaseAccount, replayParked, resetBalances } from "./ledger.js";

/** Projections that POST /admin/projections/:name/reset can rebuild. */
const RESETTABLE: ReadonlySet<string> = new Set([BALANCES]);
/** Parked events listed on the page, at most. */
const PARKED_SHOWN = 100;
/** Longest notice shown on the page, in characters. */
const MAX_NOTICE = 200;

/** How a request proved it may use the admin routes. */
type Credentials = "bearer" | "cookie";

/** A checkpoint row another tool wrote with a position that is not one. */
interface CorruptRow {
  readonly name: string;
  readonly corrupt: true;
  readonly stored: string;
}

type CheckpointRow = { readonly name: string; readonly position: number; readonly lag: number } | CorruptRow;

/**
 * Collects a listing in which a row whose stored position is not a position
 * (written by another tool) raises `CorruptCheckpointError`: that row is listed
 * as corrupt and the listing resumes strictly after it, so this ends within
 * one pass over the table.
 */
async function listTolerating<Item, Row>(open: (after: string | undefined) => AsyncIterable<Item>, toRow: (item: Item) => Row): Promise<(Row | CorruptRow)[]> {
  const rows: (Row | CorruptRow)[] = [];
  for (let after: string | undefined, done = false; !done; ) {
    try {
      for await (const item of open(after)) rows.push(toRow(item));
      done = true;
    } catch (error) {
      if (!(error instanceof CorruptCheckpointError) || error.checkpoint === undefined) throw error;
      rows.push({ name: error.checkpoint, corrupt: true, stored: String(error.value) });
      after = error.checkpoint;
    }
  }
  return rows;
}

/** Every checkpoint with its lag (corrupt rows as such). */
function listCheckpoints(store: D1CheckpointStore, newest: number): Promise<CheckpointRow[]> {
  return listTolerating(
    (after) => store.entries({ after }),
    ({ name, position }) => ({ name, position, lag: Math.max(0, newest - position) }),
  );
}

/** The projections' statuses for the page (corrupt rows as such). */
function listStatuses(store: D1CheckpointStore, newest: number): Promise<ProjectionRow[]> {
  return listTolerating(
    (after) => store.statuses({ newest, after }),
    ({ name, position, lag, sinceMovedMs, parked }) => ({ name, position, lag, sinceMovedMs, parked, resettable: RESETTABLE.has(name) }),
  );
}

/** The first `limit` parked events of a projection. */
async function listParked(store: D1CheckpointStore, name: string, limit: number): Promise<ParkedRow[]> {
  const rows: ParkedRow[] = [];
  for await (const event of store.parked(name, { pageSize: limit })) {
    rows.push(event);
    if (rows.length >= limit) break;
  }
  return rows;
}

/** Everything the page shows. */
async function adminView(db: D1Database, notice: string | undefined): Promise<AdminView> {
  const store = new D1CheckpointStore(db);
  const newest = await newestPosition(db);
  const [projections, parked, holds] = await Promise.all([listStatuses(store, newest), listParked(store, BALANCES, PARKED_SHOWN), listHolds(db)]);
  const balances = projections.find((row) => row.name === BALANCES);
  const parkedTotal = balances !== undefined && "parked" in balances ? Math.max(balances.parked, parked.length) : parked.length;
  return { newest, projections, parkedOf: BALANCES, parked, parkedTotal, holds, notice };
}

/** Runs the balances projection after the response; a failure is logged, and the cron catches up. */
async function rebuildInBackground(db: D1Database): Promise<void> {
  try {
    await catchUp(db);
  } catch (error) {
    console.error("rebuild failed", error);
  }
}

function acceptsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").toLowerCase().includes("application/json");
}

/** A 303 back to the page, with a notice to show there. */
function backToPage(notice?: string, headers: Record<string, string> = {}): Response {
  const location = notice === undefined ? "/admin" : `/admin?notice=${encodeURIComponent(notice.slice(0, MAX_NOTICE))}`;
  return new Response(null, { status: 303, headers: { location, "cache-control": "no-store", ...headers } });
}

/**
 * Who is asking: a bearer token (checked, a 401 when wrong), a valid session
 * cookie (its writes must come from this origin: a 403 otherwise), or nobody.
 */
async function credentials(request: Request, url: URL, token: string): Promise<Credentials | undefined> {
  if (request.headers.has("authorization")) {
    await requireAdmin(request, token);
    return "bearer";
  }
  if (!(await hasSession(request, token))) return undefined;
  if (request.method !== "GET" && request.method !== "HEAD") requireSameOrigin(request, url);
  return "cookie";
}

/** A position from a path segment; a 400 unless it is a non-negative safe integer. */
function parsePosition(raw: string): number {
  const position = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(position)) throw new HttpError(400, "the position must be a non-negative integer");
  return position;
}

/** The account to put on hold: the form field `account`, or `{"account": ...}` as JSON. */
async function accountToHold(request: Request): Promise<string> {
  let account: unknown;
  if (isForm(request)) account = (await readForm(request)).get("account")?.trim();
  else {
    const body = await readJson(request);
    account = typeof body === "object" && body !== null ? (body as Record<string, unknown>).account : undefined;
  }
  if (typeof account !== "string" || !ACCOUNT.test(account)) throw new HttpError(400, "account must be 1 to 64 of A-Z a-z 0-9 . _ -");
  return account;
}

/** The routes that change something (POST), matched by {@link action}. */
const ACTIONS: readonly RegExp[] = [
  /^\/admin\/projections\/[^/]+\/reset$/,
  /^\/admin\/projections\/history\/[^/]+\/reset$/,
  /^\/admin\/projections\/[^/]+\/parked\/[^/]+\/replay$/,
  /^\/admin\/holds$/,
  /^\/admin\/holds\/[^/]+\/release$/,
];

/** The POST routes, once the request is known to be allowed in; `answer` picks JSON or a 303 back to the page. */
async function action(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  path: string,
  answer: (body: unknown, status: number, notice: string) => Response,
): Promise<Response> {
  const rebuildHistory = /^\/admin\/projections\/history\/([^/]+)\/reset$/.exec(path)?.[1];
  if (rebuildHistory !== undefined) {
    const account = parseAccount(rebuildHistory);
    await env.ACCOUNT_HISTORY.get(env.ACCOUNT_HISTORY.idFromName(account)).rebuild();
    return answer({ reset: HISTORY, account, rebuilding: true }, 202, `rebuilding the history of ${account}`);
  }
  const reset = /^\/admin\/projections\/([^/]+)\/reset$/.exec(path)?.[1];
  if (reset !== undefined) {
    if (pathSegment(reset) !== BALANCES) throw new HttpError(404, `no projection named ${reset}`);
    await resetBalances(env.DB);
    ctx.waitUntil(rebuildInBackground(env.DB));
    return answer({ reset: BALANCES, rebuilding: true }, 202, `reset ${BALANCES}: rebuilding`);
  }
  const replay = /^\/admin\/projections\/([^/]+)\/parked\/([^/]+)\/replay$/.exec(path);
  if (replay !== null) {
    const [, name = "", rawPosition = ""] = replay;
    if (pathSegment(name) !== BALANCES) throw new HttpError(404, `no projection named ${name}`);
    const position = parsePosition(pathSegment(rawPosition));
    try {
      if ((await replayParked(env.DB, position)) === "not parked") return answer({ error: "not parked" }, 404, "not parked");
      return answer({ replayed: position }, 200, `replayed ${position}`);
    } catch (error) {
      if (!(error instanceof ProjectionError)) throw error;
      return answer({ error: error.message }, 409, `replaying ${position} failed: ${error.message}`);
    }
  }
  if (path === "/admin/holds") {
    const account = await accountToHold(request);
    await holdAccount(env.DB, account);
    return answer({ held: account }, 201, `${account} is on hold`);
  }
  const release = /^\/admin\/holds\/([^/]+)\/release$/.exec(path)?.[1];
  if (release !== undefined) {
    const account = parseAccount(release);
    await releaseAccount(env.DB, account);
    return answer({ released: account }, 200, `released ${account}`);
  }
  throw new HttpError(404, "no such route: GET / lists them");
}

/** The routes under /admin, authentication included. */
async function admin(request: Request, env: Env, ctx: ExecutionContext, url: URL): Promise<Response> {
  const path = url.pathname;
  const method = request.method === "HEAD" ? "GET" : request.method; // HEAD is GET without the body (stripped in fetch)
  const allow = (expected: "GET" | "POST"): void => {
    const allowed = expected === "GET" ? "GET, HEAD" : "POST";
    if (method !== expected) throw new HttpError(405, `use ${allowed.replace(", ", " or ")}`, { allow: allowed });
  };
  if (path === "/admin/style.css") {
    allow("GET");
    return new Response(STYLESHEET, { headers: { "content-type": "text/css; charset=utf-8", "cache-control": "max-age=300", "x-content-type-options": "nosniff" } });
  }
  const token = env.ADMIN_TOKEN;
  if (token === undefined || token === "") throw new HttpError(403, "admin routes are disabled: set the ADMIN_TOKEN secret");
  if (path === "/admin/login") {
    allow("POST");
    requireSameOrigin(request, url);
    const given = (await readForm(request)).get("token") ?? "";
    if (!(await tokenMatches(given, token))) return html(renderLoginPage("Wrong token."), 401);
    return backToPage(undefined, { "set-cookie": await sessionCookie(token, url) });
  }
  if (path === "/admin/logout") {
    allow("POST");
    requireSameOrigin(request, url);
    return backToPage(undefined, { "set-cookie": clearedSessionCookie(url) });
  }
  const via = await credentials(request, url, token);
  if (path === "/admin") {
    allow("GET");
    if (via === undefined) return html(renderLoginPage());
    return html(renderAdminPage(await adminView(env.DB, url.searchParams.get("notice")?.slice(0, MAX_NOTICE))));
  }
  if (via === undefined) {
    if (isForm(request)) return html(renderLoginPage("Your session has ended: log in again."), 401);
    await requireAdmin(request, token); // no credentials: the bearer 401, as for any script
  }
  if (path === "/admin/checkpoints") {
    allow("GET");
    const newest = await newestPosition(env.DB);
    return json({ newest, checkpoints: await listCheckpoints(new D1CheckpointStore(env.DB), newest) });
  }
  if (ACTIONS.some((route) => route.test(path))) {
    allow("POST");
    const asJson = via === "bearer" || acceptsJson(request);
    return action(request, env, ctx, path, (body, status, notice) => (asJson ? json(body, status) : backToPage(notice)));
  }
  throw new HttpError(404, "no such route: GET / lists them");
}

/**
 * Serves `/admin` and everything under it. Errors are HttpErrors for the
 * Worker to answer as JSON, except on the page, the login and logout routes
 * and form posts, where they are HTML pages with the same status.
 */
export async function routeAdmin(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  try {
    return await admin(request, env, ctx, url);
  } catch (error) {
    const browser =
      !request.headers.has("authorization") &&
      !acceptsJson(request) &&
      (["/admin", "/admin/login", "/admin/logout"].includes(url.pathname) || (request.method === "POST" && isForm(request)));
    if (!browser || !(error instanceof HttpError)) throw error;
    const title = error.status === 403 ? "Forbidden" : error.status === 404 ? "Not found" : "Request refused";
    return html(renderMessagePage(title, error.message), error.status, error.headers);
  }
}
