// What the admin page and its JSON routes read, tolerating rows that other
// tools wrote badly: a corrupt checkpoint, parked event or move time is shown
// as corrupt, never a failed page.
import type { D1CheckpointStore } from "../d1/checkpoint-store.js";
import type { D1Client } from "../d1/client.js";
import { CorruptCheckpointError, messageOf } from "../core/errors.js";
import type { PageRequest } from "../core/keyset.js";
import { pageBindings, pageSql, storedName, type PageRow } from "../sql/checkpoints.js";
import { newestOf, projectionStatus, statusColumns, type ProjectionStatus, type StatusRow } from "../sql/status.js";
import { isTime } from "../core/validate.js";
import type { RecentRuns } from "../metrics/run-log.js";

/** A projection's row: its status, or a checkpoint another tool wrote badly (a position that is not one, a name that is not text). */
export type ProjectionView =
  | (ProjectionStatus & {
      /** Milliseconds since the oldest event it has not applied, when `eventTimeAfter` is given and it lags. */
      readonly lagMs: number | undefined;
      /** Its recent runs from the run log, when the handler has a `runLog` and the log has some. */
      readonly recentRuns?: RecentRuns | undefined;
    })
  | CorruptView;

/** A checkpoint another tool wrote badly: its name as far as it can be shown, and what is wrong. */
export interface CorruptView {
  readonly name: string;
  readonly corrupt: string;
}

/** A parked event's row; `parkedAt` is `undefined` when its stored time is corrupt. */
export interface ParkedView {
  readonly position: number;
  readonly error: string;
  readonly parkedAt: Date | undefined;
}

/** A parked event another tool wrote with a position that is not one: shown, but it cannot be replayed. */
export interface CorruptParkedView {
  readonly corrupt: string;
  readonly error: string;
}

/** One page of a projection's parked events, by position, and the position the next page starts after. */
export interface ParkedPage {
  readonly events: readonly ParkedView[];
  readonly corrupt: readonly CorruptParkedView[];
  readonly next: number | undefined;
}

/** The most lagging projections whose lag as time one page view looks up (one query each, in one batch). */
const MAX_TIME_LOOKUPS = 25;

/** What to read the oldest unapplied event's time with: its first row's first column, ms since the epoch or a date text. */
export type EventTimeAfter = (after: number) => D1PreparedStatement;

/** The longest stored name's bytes shown in hex in a corrupt row. */
const MAX_HEX_SHOWN = 64;

/** A page row of the status listing: the status columns, the name as D1 returned it and, unless it is ASCII text, its stored bytes in hex. */
type ListedRow = PageRow & StatusRow;

/** The overview's rows, and why lag as time is not shown when the `eventTimeAfter` hook or its queries failed. */
export interface ProjectionViews {
  readonly projections: ProjectionView[];
  readonly lagMsError: string | undefined;
}

/**
 * Every checkpoint's status in name order, at most `limit`, read as stored:
 * one page query (and the `newest` query beside it, at the same time), however
 * many rows are corrupt. A row whose stored position is not one, or whose
 * stored name is not valid text, is listed as corrupt in its place; nothing
 * is resumed, so a bad row costs no query and no name check. When the
 * `eventTimeAfter` hook throws or its queries fail, the rows are listed
 * without lag as time, and `lagMsError` names the hook and its error.
 */
export async function projectionViews(
  store: D1CheckpointStore,
  newest: number | D1PreparedStatement | undefined,
  eventTimeAfter: EventTimeAfter | undefined,
  limit: number,
): Promise<ProjectionViews> {
  const request: PageRequest = { lower: "", inclusive: true, upper: undefined, limit };
  const page = store.db.prepare(pageSql(statusColumns(), request)).bind(...pageBindings(request));
  const [listed, newestRows] = await Promise.all([page.all<ListedRow>(), typeof newest === "object" ? newest.all() : undefined]);
  const newestPosition = typeof newest === "object" ? newestOf("status", undefined, newestRows?.results[0]) : newest;
  const rows = listed.results.map((row) => listedView(row, newestPosition));
  // At most MAX_TIME_LOOKUPS lagging projections get lag as time, so that a page view stays well within D1's queries per invocation.
  const lagging = rows.filter((row): row is ProjectionStatus => !("corrupt" in row) && (row.lag ?? 1) > 0).slice(0, MAX_TIME_LOOKUPS);
  const { times, lagMsError } = eventTimeAfter === undefined || lagging.length === 0 ? { times: [], lagMsError: undefined } : await timesAfter(store.db, eventTimeAfter, lagging);
  const now = Date.now();
  const lagMs = new Map<string, number>();
  lagging.forEach((row, index) => {
    const value: unknown = Object.values(times[index]?.results[0] ?? {})[0];
    const at = typeof value === "string" ? Date.parse(value) : value;
    if (isTime(at)) lagMs.set(row.name, Math.max(0, now - at));
  });
  return { projections: rows.map((row) => ("corrupt" in row ? row : { ...row, lagMs: lagMs.get(row.name) })), lagMsError };
}

/** The `eventTimeAfter` hook's statements for the lagging rows, in one batch; its failure, or theirs, named instead of failing the page. */
async function timesAfter(
  db: D1Client,
  eventTimeAfter: EventTimeAfter,
  lagging: readonly ProjectionStatus[],
): Promise<{ times: D1Result<Record<string, unknown>>[]; lagMsError: string | undefined }> {
  let statements: D1PreparedStatement[];
  try {
    statements = lagging.map((row) => eventTimeAfter(row.position));
  } catch (error) {
    return { times: [], lagMsError: `the eventTimeAfter hook failed: ${messageOf(error)}` };
  }
  try {
    return { times: await db.batch<Record<string, unknown>>(statements), lagMsError: undefined };
  } catch (error) {
    return { times: [], lagMsError: `the eventTimeAfter hook's queries failed: ${messageOf(error)}` };
  }
}

/** A listed row as a status, or as corrupt: a stored name that is not valid text, or a stored position that is not one. */
function listedView(row: ListedRow, newest: number | undefined): ProjectionStatus | CorruptView {
  const name = storedName(row);
  if (typeof name !== "string") {
    const hex = row.raw ?? "";
    const bytes = hex.length > MAX_HEX_SHOWN ? `${hex.slice(0, MAX_HEX_SHOWN)}…` : hex;
    return name.type === "blob"
      ? { name: `x'${bytes}'`, corrupt: `stored name is a blob, not text (bytes ${bytes})` }
      : { name: typeof row.name === "string" ? row.name : "", corrupt: `stored name is not valid UTF-8 text (bytes ${bytes})` };
  }
  try {
    return projectionStatus("status", name, row, newest);
  } catch (error) {
    if (!(error instanceof CorruptCheckpointError)) throw error;
    return { name, corrupt: `stored ${error.column} ${String(error.value)}` };
  }
}

/** Parked rows as stored: ?1 name, ?2 after, ?3 limit (the integer positions, keyset-paged). */
const PARKED_ROWS_SQL =
  "SELECT position, error, parked_at FROM parked_events WHERE name = ?1 AND typeof(position) = 'integer' AND position > ?2 ORDER BY position LIMIT ?3";
/** Parked rows whose position is not an integer (another tool's), at most 20: ?1 name. */
const CORRUPT_PARKED_SQL = "SELECT CAST(position AS TEXT) AS position, error FROM parked_events WHERE name = ?1 AND typeof(position) <> 'integer' LIMIT 20";

/** A page of a projection's parked events after `after`, read as stored (one round trip), corrupt rows shown as such. */
export async function parkedPage(store: D1CheckpointStore, name: string, after: number, limit: number): Promise<ParkedPage> {
  const [page, corrupt] = await store.db.batch<Record<string, unknown>>([
    store.db.prepare(PARKED_ROWS_SQL).bind(name, after, limit + 1),
    store.db.prepare(CORRUPT_PARKED_SQL).bind(name),
  ]);
  const rows: Record<string, unknown>[] = page?.results ?? [];
  const corruptRows: Record<string, unknown>[] = corrupt?.results ?? [];
  const events = rows.slice(0, limit).map((row) => ({
    position: Number(row.position),
    error: typeof row.error === "string" ? row.error : String(row.error),
    parkedAt: isTime(row.parked_at) ? new Date(row.parked_at) : undefined,
  }));
  return {
    events,
    corrupt: (after === 0 ? corruptRows : []).map((row) => ({ corrupt: `stored position ${String(row.position)}`, error: String(row.error) })),
    next: rows.length > limit ? events.at(-1)?.position : undefined,
  };
}
