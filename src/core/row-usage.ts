// Rows read and written, as D1 and Durable Object SQLite bill them: every
// statement's `meta.rows_read` / `meta.rows_written` (a cursor's `rowsRead` /
// `rowsWritten` on a Durable Object), split into the caller's statements (the
// read model's writes and the event queries) and the package's own (the
// checkpoint and its move time, leases, parked events, versions). A query
// budget keeps one tally per run (see query-budget.ts); the summaries report it.

/**
 * Rows read and written, as D1 bills them (`meta.rows_read`,
 * `meta.rows_written`; on a Durable Object, the cursors' `rowsRead` and
 * `rowsWritten`). `rowsRead` and `rowsWritten` are every row; `ownRowsRead`
 * and `ownRowsWritten` are the part of them spent on the package's own tables
 * (checkpoints with their move time, leases, parked events, versions). What is
 * left (`rowsWritten - ownRowsWritten`) is the read model's: the statements a
 * projection returned, and the event queries it gave the store.
 *
 * @category Limits
 */
export interface RowUsage {
  /** Rows read, every statement counted. */
  readonly rowsRead: number;
  /** Rows written, every statement counted (index entries and trigger writes included, as D1 bills them). */
  readonly rowsWritten: number;
  /** Of `rowsRead`, the rows the package's own statements read. */
  readonly ownRowsRead: number;
  /** Of `rowsWritten`, the rows the package's own statements wrote. */
  readonly ownRowsWritten: number;
}

/** No rows. */
export const NO_ROWS: RowUsage = Object.freeze({ rowsRead: 0, rowsWritten: 0, ownRowsRead: 0, ownRowsWritten: 0 });

/** `a + b`. */
export function addRows(a: RowUsage, b: RowUsage): RowUsage {
  return {
    rowsRead: a.rowsRead + b.rowsRead,
    rowsWritten: a.rowsWritten + b.rowsWritten,
    ownRowsRead: a.ownRowsRead + b.ownRowsRead,
    ownRowsWritten: a.ownRowsWritten + b.ownRowsWritten,
  };
}

/** `after - before`: what was counted between two readings of one tally. */
export function rowsSince(before: RowUsage, after: RowUsage): RowUsage {
  return {
    rowsRead: after.rowsRead - before.rowsRead,
    rowsWritten: after.rowsWritten - before.rowsWritten,
    ownRowsRead: after.ownRowsRead - before.ownRowsRead,
    ownRowsWritten: after.ownRowsWritten - before.ownRowsWritten,
  };
}

/**
 * The rows of statements, to count on a query budget
 * (`QueryBudget.countRows`): how many, for which checkpoint, and whether the
 * package's own statements spent them.
 *
 * @category Limits
 */
export interface CountedRows {
  /** Rows read (`meta.rows_read`). */
  readonly read: number;
  /** Rows written (`meta.rows_written`). */
  readonly written: number;
  /** The checkpoint they were spent for; leave it out for rows shared by several (a group's event query). */
  readonly checkpoint?: string | undefined;
  /** Whether the package's own statements spent them (default `false`: the caller's). */
  readonly own?: boolean | undefined;
}

/** A running tally of rows, in total and per checkpoint. */
export class RowTally {
  #total: RowUsage = NO_ROWS;
  readonly #byCheckpoint = new Map<string, RowUsage>();

  /** Every row counted. */
  get total(): RowUsage {
    return this.#total;
  }

  /** The rows of statements sent for `checkpoint`. */
  of(checkpoint: string): RowUsage {
    return this.#byCheckpoint.get(checkpoint) ?? NO_ROWS;
  }

  add({ checkpoint, own = false, read, written }: CountedRows): void {
    const rows: RowUsage = { rowsRead: read, rowsWritten: written, ownRowsRead: own ? read : 0, ownRowsWritten: own ? written : 0 };
    this.#total = addRows(this.#total, rows);
    if (checkpoint !== undefined) this.#byCheckpoint.set(checkpoint, addRows(this.of(checkpoint), rows));
  }
}

/** A count D1 or SQLite reported: a non-negative number, or 0 for anything else (a wrapper without `meta`). */
export function rowCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
