// The admin page's HTML, rendered on the server: no framework, no script.
// Every value goes through `escapeHtml`; the page runs under a CSP that
// allows no script at all and only the stylesheet of its own origin.
import type { RecentRuns } from "../metrics/run-log.js";
import type { DaemonView } from "./daemons.js";
import type { PartitionView } from "./partitions.js";
import type { ParkedPage, ProjectionView } from "./views.js";

/**
 * The response headers of every admin HTML page: no caching, no script, no
 * framing, no referrer to other sites. Not `no-referrer`: with it, browsers
 * send `Origin: null` on the page's own form posts, which the same-origin
 * check refuses.
 */
export const HTML_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
});

/** The page's stylesheet, served at `<base>/style.css` (the CSP allows no inline style). */
export const STYLESHEET = `body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d1d1f; }
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
`;

const ENTITIES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** Where the page lives, and what it may offer per projection. */
export interface PageContext {
  readonly base: string;
  readonly title: string;
  /** Whether a projection has a Reset, a Replay, and versions (Rebuild, Switch, Abandon, Drop). */
  readonly actions: (name: string) => { readonly reset: boolean; readonly replay: boolean; readonly versions: boolean };
  /** Whether to show a Log out button (a login form opened the session). */
  readonly logout: boolean;
}

function layout(context: Pick<PageContext, "base">, title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${escapeHtml(context.base)}/style.css">
</head>
<body>
${body}
</body>
</html>
`;
}

/** A form with one button that POSTs to `action`; a disabled one says why in its title. */
function button(action: string, label: string, disabledBecause?: string): string {
  const disabled = disabledBecause === undefined ? "" : ` disabled title="${escapeHtml(disabledBecause)}"`;
  return `<form class="inline" method="post" action="${escapeHtml(action)}"><button type="submit"${disabled}>${escapeHtml(label)}</button></form>`;
}

/** A duration for people: seconds, minutes or hours. */
function duration(ms: number): string {
  if (ms < 60_000) return `${Math.ceil(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.ceil(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** What the overview knows of every listed projection's versions: the live positions, and why Rebuild cannot start (`undefined`: it can). */
interface VersionsSeen {
  readonly live: ReadonlyMap<string, number>;
  readonly rebuilds: ReadonlyMap<string, string | undefined>;
}

/** The live row's Rebuild, for a projection with `startRebuild`: disabled with the store's reason when it cannot start. */
function rebuildButton(context: PageContext, name: string, seen: VersionsSeen): string[] {
  return context.actions(name).versions ? [button(`${projectionPath(context, name)}/versions`, "Rebuild", seen.rebuilds.get(name))] : [];
}

/** A row's version cell and its version buttons. */
function versionCell(context: PageContext, row: Exclude<ProjectionView, { corrupt: string }>, seen: VersionsSeen): { cell: string; actions: string[] } {
  const { rebuild, version } = row;
  if (rebuild !== undefined) {
    const path = `${projectionPath(context, rebuild.of)}/versions/${rebuild.version}`;
    const live = seen.live.get(rebuild.of) ?? 0;
    const rate = rebuild.eventsPerSecond === undefined ? "" : ` · ${rebuild.eventsPerSecond.toFixed(1)} events/s`;
    const eta = rebuild.etaMs === undefined ? "" : rebuild.etaMs === 0 ? " · caught up" : ` · about ${duration(rebuild.etaMs)} to go`;
    const cell = `v${rebuild.version} building${rate}${eta}`;
    if (!context.actions(rebuild.of).versions) return { cell, actions: [] };
    const behind = row.position < live ? `the rebuild is at ${row.position}, behind the live version at ${live}` : undefined;
    return { cell, actions: [button(`${path}/switch`, "Switch", behind), button(`${path}/drop`, "Abandon")] };
  }
  if (version === undefined) {
    // Before a projection's first rebuild: version 1, live.
    return { cell: `<span class="muted">v1</span>`, actions: rebuildButton(context, row.name, seen) };
  }
  const retiredOf = row.name.endsWith(`@${version}`) ? row.name.slice(0, -`@${version}`.length) : undefined;
  if (retiredOf !== undefined) {
    const actions = context.actions(retiredOf).versions ? [button(`${projectionPath(context, retiredOf)}/versions/${version}/drop`, "Drop")] : [];
    return { cell: `v${version} retired`, actions };
  }
  return { cell: `v${version} live`, actions: rebuildButton(context, row.name, seen) };
}

/** A number from a partition's RPC answer, which nothing has checked: shown as a number or not at all. */
function number(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : "?";
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "—" : String(Math.floor(ms / 1000));
}

function projectionPath(context: PageContext, name: string): string {
  return `${context.base}/projections/${encodeURIComponent(name)}`;
}

function projectionRow(context: PageContext, row: ProjectionView, seen: VersionsSeen, costs: boolean): string {
  if ("corrupt" in row) {
    return `<tr><td>${escapeHtml(row.name)}</td><td colspan="${costs ? 7 : 6}" class="corrupt">corrupt: ${escapeHtml(row.corrupt)}</td><td></td></tr>`;
  }
  const { reset } = context.actions(row.name);
  const parked = row.parked === 0 ? "0" : `<a href="${escapeHtml(projectionPath(context, row.name))}/parked">${row.parked}</a>`;
  const version = versionCell(context, row, seen);
  const buttons = [...(reset ? [button(`${projectionPath(context, row.name)}/reset`, "Reset")] : []), ...version.actions];
  const actions = buttons.length === 0 ? `<span class="muted">—</span>` : buttons.join(" ");
  return `<tr><td>${escapeHtml(row.name)}</td><td>${version.cell}</td><td class="number">${row.position}</td><td class="number">${row.lag ?? "—"}</td><td class="number">${seconds(row.lagMs)}</td><td class="number">${seconds(row.sinceMovedMs)}</td><td class="number">${parked}</td>${costs ? `<td class="number">${costCell(row.recentRuns)}</td>` : ""}<td>${actions}</td></tr>`;
}

function partitionRows(view: PartitionView): string {
  if (view.error !== undefined) return `<tr><td>${escapeHtml(view.name)}</td><td colspan="4" class="error">${escapeHtml(view.error)}</td></tr>`;
  if (view.statuses.length === 0) return `<tr><td>${escapeHtml(view.name)}</td><td colspan="4" class="muted">no checkpoint</td></tr>`;
  return view.statuses
    .map(
      (status) =>
        `<tr><td>${escapeHtml(view.name)}</td><td>${escapeHtml(status.name)}</td><td class="number">${number(status.position)}</td><td class="number">${status.lag === undefined ? "—" : number(status.lag)}</td><td class="number">${number(status.parked)}</td></tr>`,
    )
    .join("\n");
}

/** How the page says a daemon's state. */
const STATE_LABELS: Readonly<Record<string, string>> = { idle: "idle", running: "running", backingOff: "backing off", paused: "paused" };

/** A daemon's next run: its time, and whether it is due. */
function nextRun(at: Date | undefined, now: number): string {
  if (at === undefined) return `<span class="muted">none scheduled</span>`;
  const ms = at.getTime() - now;
  return `${escapeHtml(at.toISOString())} (${ms <= 0 ? "due now" : `in ${duration(ms)}`})`;
}

/** A daemon's last run, as far as its unchecked RPC answer can be shown: how it ended, its queries, when. */
function lastRun(run: object | undefined): string {
  if (run === undefined) return `<span class="muted">none yet</span>`;
  const { ended, queries, at } = run as { readonly ended?: unknown; readonly queries?: unknown; readonly at?: unknown };
  const parts = [escapeHtml(String(ended)), ...(queries === undefined ? [] : [`${number(queries)} queries`]), ...(typeof at === "string" ? [escapeHtml(at)] : [])];
  return parts.join(" · ");
}

function daemonRow(context: PageContext, view: DaemonView, now: number): string {
  const { name, status } = view;
  if (status === undefined) return `<tr><td>${escapeHtml(name)}</td><td colspan="6" class="error">${escapeHtml(view.error ?? "no status")}</td><td></td></tr>`;
  const path = `${context.base}/daemons/${encodeURIComponent(name)}`;
  const paused = status.state === "paused";
  const buttons = [button(`${path}/wake`, "Wake", paused ? "paused: resume it first" : undefined), paused ? button(`${path}/resume`, "Resume") : button(`${path}/pause`, "Pause")];
  const error = status.lastError === undefined ? `<span class="muted">—</span>` : `<span class="corrupt">${escapeHtml(status.lastError)}</span>`;
  return `<tr><td>${escapeHtml(name)}</td><td>${STATE_LABELS[status.state] ?? "?"}</td><td>${status.pending ? "yes" : "no"}</td><td class="number">${number(status.attempts)}</td><td>${error}</td><td>${nextRun(status.nextRunAt, now)}</td><td>${lastRun(status.lastRun)}</td><td>${buttons.join(" ")}</td></tr>`;
}

/** The overview's Daemons section, when the daemons hook is given. */
function daemonsSection(context: PageContext, views: readonly DaemonView[] | undefined): string {
  if (views === undefined) return "";
  if (views.length === 0) return `<h2>Daemons</h2>\n<p class="muted">No daemons listed.</p>`;
  const now = Date.now();
  return `<h2>Daemons</h2>
<table id="daemons">
<thead><tr><th>daemon</th><th>state</th><th>pending</th><th class="number">attempts</th><th>last error</th><th>next run</th><th>last run</th><th></th></tr></thead>
<tbody>
${views.map((view) => daemonRow(context, view, now)).join("\n")}
</tbody>
</table>`;
}

function header(context: PageContext, title: string): string {
  return `<header><h1>${escapeHtml(title)}</h1>${context.logout ? button(`${context.base}/logout`, "Log out") : ""}</header>`;
}

function notice(text: string | undefined): string {
  return text === undefined ? "" : `<p class="notice" role="status">${escapeHtml(text)}</p>`;
}

function livePositions(rows: readonly ProjectionView[]): Map<string, number> {
  const live = new Map<string, number>();
  for (const row of rows) if (!("corrupt" in row) && row.rebuild === undefined) live.set(row.name, row.position);
  return live;
}

/** What the overview shows. */
export interface OverviewView {
  readonly projections: readonly ProjectionView[];
  /** Why lag as time is not shown (the `eventTimeAfter` hook or its queries failed). */
  readonly lagMsError: string | undefined;
  /** Why each projection with `startRebuild` cannot start its rebuild now (`undefined`: it can). */
  readonly rebuilds: ReadonlyMap<string, string | undefined>;
  readonly partitions: readonly PartitionView[] | undefined;
  /** The daemons' rows, when the daemons hook is given. */
  readonly daemons: readonly DaemonView[] | undefined;
  readonly notice: string | undefined;
  /** Whether the handler has a run log: then the cost column is shown. */
  readonly costs: boolean;
  /** Why the cost column is empty (the run log failed). */
  readonly runLogError: string | undefined;
}

/** The overview: every D1 projection, and the Durable Object partitions and the daemons when listed. */
export function renderOverview(context: PageContext, view: OverviewView): string {
  const seen: VersionsSeen = { live: livePositions(view.projections), rebuilds: view.rebuilds };
  const lagMsError =
    (view.lagMsError === undefined ? "" : `<p class="error" role="alert">Lag as time is not shown: ${escapeHtml(view.lagMsError)}</p>\n`) +
    (view.runLogError === undefined ? "" : `<p class="error" role="alert">Rows per 1,000 events are not shown: ${escapeHtml(view.runLogError)}</p>\n`);
  const costHead = view.costs ? `<th class="number" title="rows written per 1,000 events over the recent runs (the run log)">rows written / 1,000 events</th>` : "";
  const projections =
    view.projections.length === 0
      ? `<p class="muted">No checkpoints yet.</p>`
      : `<table id="projections">
<thead><tr><th>projection</th><th>version</th><th class="number">position</th><th class="number">lag (events)</th><th class="number">lag (s)</th><th class="number">since moved (s)</th><th class="number">parked</th>${costHead}<th></th></tr></thead>
<tbody>
${view.projections.map((row) => projectionRow(context, row, seen, view.costs)).join("\n")}
</tbody>
</table>`;
  const partitions =
    view.partitions === undefined
      ? ""
      : `<h2>Durable Object partitions</h2>
${
  view.partitions.length === 0
    ? `<p class="muted">No partitions listed.</p>`
    : `<table id="partitions">
<thead><tr><th>partition</th><th>projection</th><th class="number">position</th><th class="number">lag (events)</th><th class="number">parked</th></tr></thead>
<tbody>
${view.partitions.map(partitionRows).join("\n")}
</tbody>
</table>`
}`;
  return layout(context, context.title, `${header(context, context.title)}
${notice(view.notice)}
<h2>Projections</h2>
${lagMsError}${projections}
${partitions}
${daemonsSection(context, view.daemons)}`);
}

/** One page of a projection's parked events, with Replay buttons and a link to the next page. */
export function renderParked(context: PageContext, name: string, page: ParkedPage, notice_: string | undefined): string {
  const { replay } = context.actions(name);
  const path = projectionPath(context, name);
  const rows = [
    ...page.corrupt.map((row) => `<tr><td class="corrupt">corrupt: ${escapeHtml(row.corrupt)}</td><td>${escapeHtml(row.error)}</td><td></td><td></td></tr>`),
    ...page.events.map((event) => {
      const at = event.parkedAt === undefined ? `<span class="corrupt">corrupt time</span>` : escapeHtml(event.parkedAt.toISOString());
      const action = replay ? button(`${path}/parked/${event.position}/replay`, "Replay") : "";
      return `<tr><td class="number">${event.position}</td><td>${escapeHtml(event.error)}</td><td>${at}</td><td>${action}</td></tr>`;
    }),
  ];
  const table =
    rows.length === 0
      ? `<p class="muted">Nothing parked.</p>`
      : `<table id="parked">
<thead><tr><th class="number">position</th><th>error</th><th>parked at</th><th></th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`;
  const next = page.next === undefined ? "" : `<p><a href="${escapeHtml(path)}/parked?after=${page.next}">Next page</a></p>`;
  const title = `Parked events of ${name}`;
  return layout(context, title, `${header(context, title)}
${notice(notice_)}
<p><a href="${escapeHtml(context.base)}">All projections</a></p>
${table}
${next}`);
}

/** The login form; `error` is shown above it. */
export function renderLogin(context: Pick<PageContext, "base" | "title">, error?: string): string {
  const line = error === undefined ? "" : `<p class="error" role="alert">${escapeHtml(error)}</p>`;
  return layout(context, `${context.title}: log in`, `<h1>${escapeHtml(context.title)}</h1>
${line}
<form method="post" action="${escapeHtml(context.base)}/login">
<label>Admin token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>`);
}

/** A page with one message and a link back to the overview. */
export function renderMessage(context: Pick<PageContext, "base">, title: string, message: string): string {
  return layout(context, title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>\n<p><a href="${escapeHtml(context.base)}">Back to the admin page</a></p>`);
}

/** The cost cell: rows written per 1,000 events over the recent runs, with what it is made of as its title. */
function costCell(recent: RecentRuns | undefined): string {
  if (recent === undefined) return `<span class="muted">—</span>`;
  const per1000 = recent.rowsWrittenPer1000Events;
  const title = `${recent.runs} runs since ${recent.since.toISOString()}: ${recent.events} events, ${recent.rowsWritten} rows written (${recent.ownRowsWritten} of them the package's own), ${recent.rowsRead} rows read`;
  return `<span title="${escapeHtml(title)}">${per1000 === undefined ? "no events" : Math.round(per1000).toLocaleString("en-US")}</span>`;
}
