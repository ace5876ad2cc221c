// Status and lag of projections: where each checkpoint is, how far behind the
// newest event it is, when it last moved, and how many events it parked.
// The SQL and the row mapping are shared by the D1 and the Durable Object store.
import type { ListOptions, OperationOptions } from "./checkpoint-store.js";
import type { CheckpointOperation } from "./errors.js";
import { NOW_MS_SQL } from "./checkpoint-sql.js";
import { checkPosition, isTime, toPosition } from "./validate.js";

/** One projection's status, as `status()` and `statuses()` report it. */
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
}

/** Options of `status()`. `Newest` is what may stand for the newest position: a number, or on D1 also a query. */
export interface StatusOptions<Newest = number> extends OperationOptions {
  /**
   * The newest position of the event log, for `lag`. On D1 it may also be a
   * prepared statement whose first row's first column is that position (for
   * example `SELECT MAX(position) FROM events`): it rides in the same round trip.
   */
  readonly newest?: Newest | undefined;
}

/** Options of `statuses()`: a listing's options with `newest`. */
export interface StatusListOptions<Newest = number> extends ListOptions, StatusOptions<Newest> {}

/** The status of one name, found or not: ?1 name. */
export const STATUS_SQL =
  "SELECT EXISTS (SELECT 1 FROM checkpoints WHERE name = ?1) AS found, " +
  "(SELECT position FROM checkpoints WHERE name = ?1) AS position, " +
  "(SELECT moved_at FROM checkpoint_moves WHERE name = ?1) AS moved_at, " +
  "(SELECT COUNT(*) FROM parked_events WHERE name = ?1) AS parked, " +
  `${NOW_MS_SQL} AS now`;

/** The columns of a status page, beside the name and the raw-name column of every page. */
export const STATUS_COLUMNS =
  "name, position, " +
  "(SELECT m.moved_at FROM checkpoint_moves AS m WHERE m.name = checkpoints.name) AS moved_at, " +
  "(SELECT COUNT(*) FROM parked_events AS p WHERE p.name = checkpoints.name) AS parked, " +
  `${NOW_MS_SQL} AS now`;

/** A status row: from {@link STATUS_SQL}, or a page row of {@link STATUS_COLUMNS} (found by being listed). */
export interface StatusRow {
  readonly found?: unknown;
  readonly position?: unknown;
  readonly moved_at?: unknown;
  readonly parked?: unknown;
  readonly now?: unknown;
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
  };
}

/** The newest position a query returned: its first row's first column, 0 for no row or NULL (an empty log). */
export function newestOf(operation: CheckpointOperation, name: string | undefined, row: Record<string, unknown> | undefined): number {
  const value = row === undefined ? null : Object.values(row)[0];
  return value === null || value === undefined ? 0 : checkPosition(operation, name, value, "options.newest (the query's result)");
}
