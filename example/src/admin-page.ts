// The admin page's HTML, rendered on the server: no framework, no script.
// Every value goes through `escapeHtml`; the page runs under a CSP that
// allows no script at all and only the stylesheet of this origin.

/** A D1 projection's row on the page: its status, or a corrupt checkpoint row. */
export type ProjectionRow =
  | {
      readonly name: string;
      readonly position: number;
      /** Events behind the newest one. */
      readonly lag: number | undefined;
      /** Milliseconds since its checkpoint last moved, when known. */
      readonly sinceMovedMs: number | undefined;
      /** Events it parked. */
      readonly parked: number;
      /** Whether POST /admin/projections/:name/reset rebuilds it. */
      readonly resettable: boolean;
    }
  | { readonly name: string; readonly corrupt: true; readonly stored: string };

/** A parked event on the page. */
export interface ParkedRow {
  readonly name: string;
  readonly position: number;
  readonly error: string;
  readonly parkedAt: Date;
}

/** What the admin page shows. */
export interface AdminView {
  /** The newest event's position. */
  readonly newest: number;
  readonly projections: readonly ProjectionRow[];
  /** The projection whose parked events are listed. */
  readonly parkedOf: string;
  /** Its parked events, the first of them when there are many. */
  readonly parked: readonly ParkedRow[];
  /** How many it has parked in all (more than `parked.length` when the list is cut). */
  readonly parkedTotal: number;
  /** Accounts on hold. */
  readonly holds: readonly string[];
  /** A short message about the last action. */
  readonly notice?: string | undefined;
}

/**
 * The response headers of every admin HTML page: no caching, no script, no
 * framing, no referrer to other sites. Not `no-referrer`: with it, browsers
 * send `Origin: null` on the page's own form posts, which the same-origin
 * check refuses.
 */
export const HTML_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};

/** The page's stylesheet, served at /admin/style.css (the CSP allows no inline style). */
export const STYLESHEET = `body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
form.inline { display: inline; margin: 0; }
button { font: inherit; padding: .15rem .7rem; cursor: pointer; }
.notice { background: #eef6ff; border: 1px solid #9cc3f5; padding: .5rem .8rem; }
.error { background: #fff0f0; border: 1px solid #f0a0a0; padding: .5rem .8rem; }
.corrupt { color: #b00020; font-weight: 600; }
.muted { color: #777; }
header { display: flex; justify-content: space-between; align-items: baseline; }
#holds { width: auto; min-width: 20rem; }
form.hold { margin-top: .8rem; }
`;

const ENTITIES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A page: the layout around `body` (already HTML). */
function layout(title: string, body: string): string {
  return `<!doctype html>
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
}

/** A form with one button that POSTs to `action` (a path built with encodeURIComponent). */
function button(action: string, label: string, field?: { name: string; value: string }): string {
  const hidden = field === undefined ? "" : `<input type="hidden" name="${escapeHtml(field.name)}" value="${escapeHtml(field.value)}">`;
  return `<form class="inline" method="post" action="${escapeHtml(action)}">${hidden}<button type="submit">${escapeHtml(label)}</button></form>`;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "—" : String(Math.floor(ms / 1000));
}

function projectionRow(row: ProjectionRow): string {
  if ("corrupt" in row) {
    return `<tr><td>${escapeHtml(row.name)}</td><td colspan="4" class="corrupt">corrupt: stored position ${escapeHtml(JSON.stringify(row.stored))}</td><td></td></tr>`;
  }
  const reset = row.resettable ? button(`/admin/projections/${encodeURIComponent(row.name)}/reset`, "Reset") : `<span class="muted">—</span>`;
  return `<tr><td>${escapeHtml(row.name)}</td><td class="number">${row.position}</td><td class="number">${row.lag ?? "—"}</td><td class="number">${seconds(row.sinceMovedMs)}</td><td class="number">${row.parked}</td><td>${reset}</td></tr>`;
}

function parkedRow(row: ParkedRow): string {
  const replay = button(`/admin/projections/${encodeURIComponent(row.name)}/parked/${row.position}/replay`, "Replay");
  return `<tr><td>${escapeHtml(row.name)}</td><td class="number">${row.position}</td><td>${escapeHtml(row.error)}</td><td>${escapeHtml(row.parkedAt.toISOString())}</td><td>${replay}</td></tr>`;
}

function holdRow(account: string): string {
  return `<tr><td>${escapeHtml(account)}</td><td>${button(`/admin/holds/${encodeURIComponent(account)}/release`, "Release")}</td></tr>`;
}

/** The admin page of a logged-in user. */
export function renderAdminPage(view: AdminView): string {
  const notice = view.notice === undefined ? "" : `<p class="notice" role="status">${escapeHtml(view.notice)}</p>`;
  const projections =
    view.projections.length === 0
      ? `<p class="muted">No checkpoints yet.</p>`
      : `<table id="projections">
<thead><tr><th>projection</th><th class="number">position</th><th class="number">lag (events)</th><th class="number">since moved (s)</th><th class="number">parked</th><th></th></tr></thead>
<tbody>
${view.projections.map(projectionRow).join("\n")}
</tbody>
</table>`;
  const more = view.parkedTotal > view.parked.length ? `<p class="muted">The first ${view.parked.length} of ${view.parkedTotal}.</p>` : "";
  const parked =
    view.parked.length === 0
      ? `<p class="muted">Nothing parked.</p>`
      : `<table id="parked">
<thead><tr><th>projection</th><th class="number">position</th><th>error</th><th>parked at</th><th></th></tr></thead>
<tbody>
${view.parked.map(parkedRow).join("\n")}
</tbody>
</table>${more}`;
  const holds =
    view.holds.length === 0
      ? `<p class="muted">No account on hold.</p>`
      : `<table id="holds">
<thead><tr><th>account</th><th></th></tr></thead>
<tbody>
${view.holds.map(holdRow).join("\n")}
</tbody>
</table>`;
  return layout(
    "Ledger admin",
    `<header><h1>Ledger admin</h1>${button("/admin/logout", "Log out")}</header>
${notice}
<h2>Projections</h2>
<p class="muted">Newest event: ${view.newest}</p>
${projections}
<h2>Parked events of ${escapeHtml(view.parkedOf)}</h2>
${parked}
<h2>Accounts on hold</h2>
${holds}
<form class="hold" method="post" action="/admin/holds">
<label>Account <input name="account" required maxlength="64"></label>
<button type="submit">Put on hold</button>
</form>`,
  );
}

/** The login form; `error` is shown above it (a wrong token). */
export function renderLoginPage(error?: string): string {
  const line = error === undefined ? "" : `<p class="error" role="alert">${escapeHtml(error)}</p>`;
  return layout(
    "Ledger admin: log in",
    `<h1>Ledger admin</h1>
${line}
<form method="post" action="/admin/login">
<label>Admin token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>`,
  );
}

/** A page with one message and a link back to /admin (admin disabled, a cross-origin write refused). */
export function renderMessagePage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>\n<p><a href="/admin">Back to the admin page</a></p>`);
}

/** An HTML response with the admin headers. */
export function html(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...HTML_HEADERS, ...headers } });
}
