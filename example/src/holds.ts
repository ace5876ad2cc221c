// The ledger's own admin routes, which the package's page cannot know:
//
// GET  /admin/holds                              the accounts on hold, with Release buttons and a form to hold one
// POST /admin/holds                              put an account on hold (form field or JSON `account`)
// POST /admin/holds/:account/release             release it (its parked events stay parked: replay them)
// POST /admin/projections/history/:account/reset rebuild one account's history object
//
// Authorized as the package's routes are (the same AdminAuth: a bearer token
// or the login's session cookie). Writes of the cookie must prove they come
// from this origin (`isSameOrigin`); scripts (a bearer token) and callers
// sending `accept: application/json` get JSON, forms a 303 back with a notice.
// The page is server-rendered, with no script, under the package's CSP and
// stylesheet.
// In your project, import from "@synapse-es/checkpointstore-d1/admin".
import { isSameOrigin, type AdminAuth } from "../../src/admin.js";
import { HISTORY } from "./account-history.js";
import type { Env } from "./env.js";
import { ACCOUNT, HttpError, isForm, json, parseAccount, readForm, readJson } from "./http.js";
import { holdAccount, listHolds, releaseAccount } from "./ledger.js";

/** The headers of the package's admin pages: no caching, no script, no framing. */
const HTML_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};

const ENTITIES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and quoted attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** An HTML page (the package's stylesheet, its CSP) with `body` (already HTML). */
function page(title: string, body: string, status = 200, headers: Record<string, string> = {}): Response {
  const text = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/admin/style.css">
</head>
<body>
${body}
</body>
</html>
`;
  return new Response(text, { status, headers: { ...HTML_HEADERS, ...headers } });
}

/** A form with one button that POSTs to `action` (a path built with encodeURIComponent). */
function button(action: string, label: string): string {
  return `<form class="inline" method="post" action="${escapeHtml(action)}"><button type="submit">${escapeHtml(label)}</button></form>`;
}

/** Whether the caller wants JSON: a script (a bearer token), `accept: application/json`, or a JSON route. */
function wantsJson(request: Request): boolean {
  return request.headers.has("authorization") || (request.headers.get("accept") ?? "").toLowerCase().includes("application/json") || new URL(request.url).pathname.startsWith("/admin/api/");
}

/** A refusal: JSON `{ error }` for scripts, an HTML page with the same status for browsers. */
export function refusal(request: Request, status: number, message: string, headers: Record<string, string> = {}): Response {
  if (wantsJson(request)) return json({ error: message }, status, headers);
  const title = status === 401 ? "Not signed in" : status === 403 ? "Forbidden" : status === 404 ? "Not found" : "Request refused";
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>\n<p><a href="/admin">Back to the admin page</a></p>`, status, headers);
}

/** The holds page. */
function holdsPage(holds: readonly string[], notice: string | undefined, logout: boolean): Response {
  const rows = holds.map((account) => `<tr><td>${escapeHtml(account)}</td><td>${button(`/admin/holds/${encodeURIComponent(account)}/release`, "Release")}</td></tr>`);
  const table = rows.length === 0 ? `<p class="muted">No account on hold.</p>` : `<table id="holds">\n<thead><tr><th>account</th><th></th></tr></thead>\n<tbody>\n${rows.join("\n")}\n</tbody>\n</table>`;
  return page(
    "Accounts on hold",
    `<header><h1>Accounts on hold</h1>${logout ? button("/admin/logout", "Log out") : ""}</header>
${notice === undefined ? "" : `<p class="notice" role="status">${escapeHtml(notice)}</p>`}
<p><a href="/admin">All projections</a> · <a href="/admin/projections/balances/parked">Parked events of balances</a></p>
<p class="muted">The balances projection parks the events of an account on hold. Releasing it leaves them parked: replay them.</p>
${table}
<form method="post" action="/admin/holds">
<label>Account <input name="account" required maxlength="64"></label>
<button type="submit">Put on hold</button>
</form>`,
  );
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

/** Checks the method: GET (and HEAD) or POST. */
function allow(request: Request, ...methods: ("GET" | "POST")[]): "GET" | "POST" {
  const method = request.method === "HEAD" ? "GET" : request.method;
  const found = methods.find((m) => m === method);
  if (found !== undefined) return found;
  const allowed = methods.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
  throw new HttpError(405, `use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
}

/** The routes of this file, or `undefined` for any other path (the package's handler serves it). */
export async function routeLedgerAdmin(request: Request, env: Env, auth: AdminAuth): Promise<Response | undefined> {
  const url = new URL(request.url);
  const path = url.pathname;
  const release = /^\/admin\/holds\/([^/]+)\/release$/.exec(path)?.[1];
  const history = /^\/admin\/projections\/history\/([^/]+)\/reset$/.exec(path)?.[1];
  if (path !== "/admin/holds" && release === undefined && history === undefined) return undefined;
  try {
    const identity = await auth.authorize(request);
    if (identity === undefined) {
      const message = wantsJson(request) ? "authorization required" : "log in on the admin page first";
      return refusal(request, 401, message, { "www-authenticate": 'Bearer realm="admin"' });
    }
    const method = path === "/admin/holds" ? allow(request, "GET", "POST") : allow(request, "POST");
    if (method === "POST" && identity.ambient && !isSameOrigin(request, url)) throw new HttpError(403, "cross-origin request refused");
    const asJson = wantsJson(request) || !identity.ambient;
    /** JSON for scripts; for forms, a 303 back to `to` with `notice`. */
    const answer = (body: unknown, status: number, notice: string, to = "/admin/holds"): Response =>
      asJson ? json(body, status) : new Response(null, { status: 303, headers: { location: `${to}?notice=${encodeURIComponent(notice)}`, "cache-control": "no-store" } });

    if (history !== undefined) {
      const account = parseAccount(history);
      // Only accounts with events: a made-up name must not create an object.
      if ((await env.DB.prepare("SELECT 1 FROM events WHERE account = ?1 LIMIT 1").bind(account).first()) === null) throw new HttpError(404, "no such account");
      await env.ACCOUNT_HISTORY.get(env.ACCOUNT_HISTORY.idFromName(account)).rebuild();
      return answer({ reset: HISTORY, account, rebuilding: true }, 202, `rebuilding the history of ${account}`, "/admin");
    }
    if (release !== undefined) {
      const account = parseAccount(release);
      await releaseAccount(env.DB, account);
      return answer({ released: account }, 200, `released ${account}`);
    }
    if (method === "POST") {
      const account = await accountToHold(request);
      await holdAccount(env.DB, account);
      return answer({ held: account }, 201, `${account} is on hold`);
    }
    const holds = await listHolds(env.DB);
    return asJson ? json({ holds }) : holdsPage(holds, url.searchParams.get("notice")?.slice(0, 200), auth.logout !== undefined);
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return refusal(request, error.status, error.message, error.headers);
  }
}
