// Status and lag of projections: where each checkpoint is, how far behind the
// newest event it is, when it last moved, and how many events it parked.
// The SQL and the row mapping are shared by the D1 and the Durable Object store.
import type { ListOptions, OperationOptions } from "../core/store.js";
import type { CheckpointOperation } from "../core/errors.js";
import { NOW_MS_SQL } from "./checkpoints.js";
import { keysOf, checkIdentifier, checkOptions, checkPosition, isTime, toPosition } from "../core/validate.js";

/**
 * One projection's status, as `status()` and `statuses()` report it.
 *
 * @category Operations
 */
export interface ProjectionStatus {
  /** The projection (checkpoint) name. */
  readonly name: string;
  /** Whether a checkpoint exists. */
  readonly found: boolean;
  /** The last applied event's position (0 without a checkpoint). */
  readonly position: number;
  /**
   * Positions behind `newest` (`newest - position`, at least 0): the number
   * of events still to apply when positions have no gaps. `undefined` when
   * no `newest` was given.
   */
  readonly lag: number | undefined;
  /**
   * When the checkpoint last moved to another position, by the database's
   * clock; `undefined` when unknown (no checkpoint, or it was written before
   * migration 0002 and has not moved since).
   */
  readonly movedAt: Date | undefined;
  /** Milliseconds from `movedAt` to the database's clock now; `undefined` with `movedAt`. */
  readonly sinceMovedMs: number | undefined;
  /** How many of its events are parked. */
  readonly parked: number;
  /**
   * The projection version whose checkpoint this is: the live version's for
   * a projection's own name, a rebuild's or a retired version's for
   * `name@version`. `undefined` while the projection has no version records
   * (before its first rebuild). (Optional for statuses built by hand, such
   * as an admin partition hook's; the stores always set it.)
   */
  readonly version?: number | undefined;
  /** For a rebuild's checkpoint (`name@version`, building): its progress. */
  readonly rebuild?: RebuildProgress | undefined;
  /**
   * With `eventTimes`: milliseconds from the time of the oldest event this
   * checkpoint has not applied (the first after its position) to the
   * database's clock now; `0` when none is left; `undefined` without
   * `eventTimes` or when that event's time is not one.
   */
  readonly oldestUnappliedAgeMs?: number | undefined;
}

/**
 * How far a rebuild has come, on a `ProjectionStatus` of its checkpoint.
 *
 * @category Operations
 */
export interface RebuildProgress {
  /** The projection it rebuilds. */
  readonly of: string;
  /** The version being built. */
  readonly version: number;
  /** When the rebuild started (`startRebuild`), by the database's clock. */
  readonly startedAt: Date;
  /** Positions per second since it started; `undefined` before it moved. */
  readonly eventsPerSecond: number | undefined;
  /**
   * The estimated milliseconds until it catches up with `newest`, at that
   * rate: `lag / eventsPerSecond`; `0` when caught up; `undefined` without
   * `newest` or a rate. Events appended meanwhile make it longer.
   */
  readonly etaMs: number | undefined;
}

/**
 * Where the event log's times are, for `oldestUnappliedAgeMs`: a table (or
 * view) with a position column and a time column (milliseconds since the
 * epoch, or a date text such as `strftime('%Y-%m-%dT%H:%M:%fZ')` writes).
 * Each status reads one row of it by the position's index.
 *
 * @category Operations
 */
export interface EventTimes {
  /** The event table, for example `events`. */
  readonly table: string;
  /** Its time column, for example `recorded_at`. */
  readonly time: string;
  /** Its position column; default `position`. */
  readonly position?: string | undefined;
}

/**
 * Options of `status()`. `Newest` is what may stand for the newest position: a number, or on D1 also a query.
 *
 * @category Operations
 */
export interface StatusOptions<Newest = number> extends OperationOptions {
  /**
   * The newest position of the event log, for `lag`. On D1 it may also be a
   * prepared statement whose first row's first column is that position (for
   * example `SELECT MAX(position) FROM events`): it rides in the same round trip.
   */
  readonly newest?: Newest | undefined;
  /** Where the events' times are, to report `oldestUnappliedAgeMs` (in the same query). */
  readonly eventTimes?: EventTimes | undefined;
}

/**
 * Options of `statuses()`: a listing's options with `newest`.
 *
 * @category Operations
 */
export interface StatusListOptions<Newest = number> extends ListOptions, StatusOptions<Newest> {}

/** The keys of {@link StatusOptions}. */
export const STATUS_KEYS = keysOf<StatusOptions>()(["signal", "budget", "newest", "eventTimes"]);
/** The keys of {@link StatusListOptions}. */
export const STATUS_LIST_KEYS = keysOf<StatusListOptions>()(["signal", "budget", "pageSize", "after", "prefix", "newest", "eventTimes"]);

/**
 * The version record a checkpoint belongs to, as JSON [version, state,
 * started_at, started_position, projection]: the live version for a
 * projection's own name, another version for `name@version`. The table is
 * a handful of rows, so the scan is cheap.
 */
function versionColumn(name: string): string {
  return (
    "(SELECT json_array(v.version, v.state, v.started_at, v.started_position, v.name) FROM projection_versions AS v " +
    `WHERE (v.name = ${name} AND v.state = 'live') OR (v.state <> 'live' AND v.name || '@' || v.version = ${name})) AS version_info`
  );
}

function quoted(identifier: string): string {
  return `"${identifier}"`;
}

/** The time of the first event after `position`, from `times`. */
function oldestColumn(times: EventTimes | undefined, position: string): string {
  if (times === undefined) return "";
  const column = quoted(times.position ?? "position");
  // As a JSON array, so that "no event left" (NULL) differs from an event whose time is NULL ([null]).
  return `, (SELECT json_array(CASE WHEN typeof(e.${quoted(times.time)}) = 'blob' THEN NULL ELSE e.${quoted(times.time)} END) FROM ${quoted(times.table)} AS e WHERE e.${column} > ${position} ORDER BY e.${column} LIMIT 1) AS oldest_at`;
}

/** The status of one name, found or not: ?1 name. */
export function statusSql(times?: EventTimes): string {
  return (
    "SELECT EXISTS (SELECT 1 FROM checkpoints WHERE name = ?1) AS found, " +
    "(SELECT position FROM checkpoints WHERE name = ?1) AS position, " +
    "(SELECT moved_at FROM checkpoint_moves WHERE name = ?1) AS moved_at, " +
    "(SELECT COUNT(*) FROM parked_events WHERE name = ?1) AS parked, " +
    `${versionColumn("?1")}, ${NOW_MS_SQL} AS now` +
    oldestColumn(times, "COALESCE((SELECT position FROM checkpoints WHERE name = ?1), 0)")
  );
}

/** The columns of a status page, beside the name and the raw-name column of every page. */
export function statusColumns(times?: EventTimes): string {
  return (
    "name, position, " +
    "(SELECT m.moved_at FROM checkpoint_moves AS m WHERE m.name = checkpoints.name) AS moved_at, " +
    "(SELECT COUNT(*) FROM parked_events AS p WHERE p.name = checkpoints.name) AS parked, " +
    `${versionColumn("checkpoints.name")}, ${NOW_MS_SQL} AS now` +
    oldestColumn(times, "checkpoints.position")
  );
}

/** Checks `options.eventTimes` (or, for a runner's metrics, `argument`). */
export function parseEventTimes(name: string | undefined, value: unknown, operation: CheckpointOperation = "status", argument = "options.eventTimes"): EventTimes | undefined {
  if (value === undefined) return undefined;
  const times = checkOptions<Record<string, unknown>>(operation, name, value as Record<string, unknown>, argument, ["table", "time", "position"]);
  return {
    table: checkIdentifier(operation, name, times.table, `${argument}.table`),
    time: checkIdentifier(operation, name, times.time, `${argument}.time`),
    position: times.position === undefined ? undefined : checkIdentifier(operation, name, times.position, `${argument}.position`),
  };
}

/** A status row: from {@link STATUS_SQL}, or a page row of {@link STATUS_COLUMNS} (found by being listed). */
export interface StatusRow {
  readonly found?: unknown;
  readonly position?: unknown;
  readonly moved_at?: unknown;
  readonly parked?: unknown;
  readonly now?: unknown;
  readonly version_info?: unknown;
  readonly oldest_at?: unknown;
}

/** A status row as a {@link ProjectionStatus}; a stored position that is not one is a `CorruptCheckpointError`. */
export function projectionStatus(operation: CheckpointOperation, name: string, row: StatusRow, newest: number | undefined): ProjectionStatus {
  const found = row.found === undefined || row.found === 1 || row.found === true;
  const position = found ? toPosition(operation, name, row.position) : 0;
  // A move time another tool wrote badly is unknown rather than an Invalid Date.
  const movedAt = isTime(row.moved_at) ? row.moved_at : undefined;
  const now = typeof row.now === "number" ? row.now : Date.now();
  return {
    name,
    found,
    position,
    lag: newest === undefined ? undefined : Math.max(0, newest - position),
    movedAt: movedAt === undefined ? undefined : new Date(movedAt),
    sinceMovedMs: movedAt === undefined ? undefined : Math.max(0, now - movedAt),
    parked: typeof row.parked === "number" ? row.parked : 0,
    ...versionOf(row.version_info, position, newest, now),
    oldestUnappliedAgeMs: oldestAge(row, now),
  };
}

/** A time column's value in milliseconds: a number, or a date text. */
function timeOf(value: unknown): number | undefined {
  const ms = typeof value === "string" ? Date.parse(value) : value;
  return isTime(ms) ? ms : undefined;
}

function oldestAge(row: StatusRow, now: number): number | undefined {
  if (!("oldest_at" in row)) return undefined;
  if (row.oldest_at === null) return 0; // nothing left to apply
  let value: unknown;
  try {
    value = typeof row.oldest_at === "string" ? (JSON.parse(row.oldest_at) as unknown[])[0] : undefined;
  } catch {
    value = undefined;
  }
  const at = timeOf(value);
  return at === undefined ? undefined : Math.max(0, now - at);
}

/** The version fields of a status, from its version column; a record another tool wrote badly reads as none. */
function versionOf(
  info: unknown,
  position: number,
  newest: number | undefined,
  now: number,
): { version: number | undefined; rebuild: RebuildProgress | undefined } {
  let parsed: unknown;
  try {
    parsed = typeof info === "string" ? JSON.parse(info) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) return { version: undefined, rebuild: undefined };
  const [version, state, startedAt, startedPosition, of] = parsed as unknown[];
  if (typeof version !== "number" || !Number.isSafeInteger(version)) return { version: undefined, rebuild: undefined };
  if (state !== "building" || !isTime(startedAt) || typeof startedPosition !== "number" || typeof of !== "string") return { version, rebuild: undefined };
  const elapsed = now - startedAt;
  const moved = position - startedPosition;
  const eventsPerSecond = elapsed > 0 && moved > 0 ? (moved * 1000) / elapsed : undefined;
  const lag = newest === undefined ? undefined : Math.max(0, newest - position);
  const etaMs = lag === undefined ? undefined : lag === 0 ? 0 : eventsPerSecond === undefined ? undefined : Math.ceil((lag * 1000) / eventsPerSecond);
  return { version, rebuild: { of, version, startedAt: new Date(startedAt), eventsPerSecond, etaMs } };
}

/** The newest position a query returned: its first row's first column, 0 for no row or NULL (an empty log). */
export function newestOf(operation: CheckpointOperation, name: string | undefined, row: Record<string, unknown> | undefined): number {
  const value = row === undefined ? null : Object.values(row)[0];
  return value === null || value === undefined ? 0 : checkPosition(operation, name, value, "options.newest (the query's result)");
}
