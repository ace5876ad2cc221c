// The rows a Durable Object store call costs, from its SQLite cursors
// (`rowsRead` / `rowsWritten`, what Durable Object SQLite bills): the
// store's own statements, and the caller's writes through a `sql` that
// remembers each cursor it opens. Counted onto the call's query budget once
// the work is done, so that a run's summary has the same rows as on D1.
import type { QueryBudget } from "../core/query-budget.js";

interface Counted {
  readonly cursor: SqlStorageCursor<Record<string, SqlStorageValue>>;
  readonly checkpoint: string | undefined;
  readonly own: boolean;
}

/** The cursors of one store call, to count onto its budget; without a budget, nothing is remembered. */
export class CursorRows {
  readonly #sql: SqlStorage;
  readonly #budget: QueryBudget | undefined;
  readonly #counted: Counted[] = [];

  constructor(sql: SqlStorage, budget: QueryBudget | undefined) {
    this.#sql = sql;
    this.#budget = budget;
  }

  /** `sql.exec` of one of the store's own statements, for `checkpoint`. */
  exec<Row extends Record<string, SqlStorageValue>>(checkpoint: string | undefined, query: string, ...bindings: unknown[]): SqlStorageCursor<Row> {
    const cursor = this.#sql.exec<Row>(query, ...bindings);
    if (this.#budget !== undefined) this.#counted.push({ cursor, checkpoint, own: true });
    return cursor;
  }

  /** The `sql` to hand the caller's writes for `checkpoint`: the real one, remembering each cursor it opens (the real one as it is, without a budget). */
  writes(checkpoint: string): SqlStorage {
    const sql = this.#sql;
    if (this.#budget === undefined) return sql;
    const counted = this.#counted;
    return new Proxy(sql, {
      get(target, property) {
        if (property === "exec") {
          return (query: string, ...bindings: unknown[]) => {
            const cursor = target.exec(query, ...bindings);
            counted.push({ cursor, checkpoint, own: false });
            return cursor;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Counts every remembered cursor's rows onto the budget, once. */
  count(): void {
    for (const { cursor, checkpoint, own } of this.#counted.splice(0)) {
      this.#budget?.countRows({ read: cursor.rowsRead, written: cursor.rowsWritten, checkpoint, own });
    }
  }
}
