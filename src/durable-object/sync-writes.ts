// The synchronous side of the Durable Object store: the read-model writes
// callback (`SqlWrites`), its checks (a function, never an async one, whose
// writes after an await would escape the transaction), running it inside a
// transaction, and synchronous work handed out as a promise.
import { CheckpointTypeError, type CheckpointOperation } from "../core/errors.js";
import { checkFunction } from "../core/validate.js";

/**
 * A projection's read-model writes for the Durable Object store: a synchronous
 * function that runs `sql.exec(...)` inside the commit's transaction.
 *
 * @category Stores
 */
export type SqlWrites = (sql: SqlStorage) => void;

/** Runs synchronous work as a promise: its result, or a rejection with what it threw. */
export function settle<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(work()); // a throw in the executor rejects with the thrown value, as it is
  });
}

/**
 * Runs the caller's writes inside the transaction. They must be synchronous:
 * an async function's writes after its first `await` would escape the
 * transaction, so a returned promise throws (and rolls everything back).
 */
export function runWrites(sql: SqlStorage, write: SqlWrites): void {
  // (An async function is refused before the transaction by checkSyncWrites.)
  const run: (sql: SqlStorage) => unknown = write;
  const result = run(sql);
  if (typeof (result as { then?: unknown } | null | undefined)?.then === "function") {
    throw new TypeError("the write function returned a promise: read-model writes must be synchronous sql.exec calls (nothing was applied)");
  }
}

/** Checks the writes callback: a function, and not an `async` one, whose writes after an `await` would escape the transaction. */
export function checkSyncWrites(operation: CheckpointOperation, name: string, write: SqlWrites, argument = "write"): SqlWrites {
  const checked = checkFunction(operation, name, write, argument, true);
  if (Object.prototype.toString.call(checked) === "[object AsyncFunction]") {
    throw new CheckpointTypeError(operation, name, argument, "must be a synchronous function: the writes of an async one after its first await would escape the transaction");
  }
  return checked;
}

/** Whether `value` is a Durable Object's storage with SQLite (`sql.exec` and `transactionSync`). */
export function isSqlStorage(value: unknown): value is DurableObjectStorage {
  if (typeof value !== "object" || value === null) return false;
  const { sql, transactionSync } = value as { sql?: unknown; transactionSync?: unknown };
  return (
    typeof transactionSync === "function" &&
    typeof sql === "object" &&
    sql !== null &&
    typeof (sql as { exec?: unknown }).exec === "function"
  );
}
