// One statement per batch, not per event: a batch's read-model rows travel as
// ONE bound JSON value that SQLite reads with `json_each(?1)`, split into as
// few values as D1's limits need. Pure: it builds statements and sends nothing.
import type { D1Client } from "./client.js";
import { D1_MAX_STATEMENT_BYTES, D1_MAX_VALUE_BYTES } from "../core/d1-limits.js";
import { CheckpointRangeError, CheckpointTypeError } from "../core/errors.js";
import { checkInteger, checkMethods, checkOptions, utf8Length } from "../core/validate.js";

/** How deep SQLite's JSON functions nest arrays and objects; the array of rows is the first level. */
const MAX_JSON_DEPTH = 1000;

const OPERATION = "jsonRows";

/**
 * A value that JSON carries unchanged from JavaScript to SQLite and back.
 *
 * @category Set-based writes
 */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * `T` where every value in it is a {@link JsonValue}, `never` where JSON would
 * drop or change one (`undefined`, `bigint`, functions, symbols, `Date`): a
 * row of such a type is a compile-time error. Interfaces pass without an index
 * signature. The run-time check is the authority: it also rejects what types
 * cannot show (`NaN`, integers beyond 2^53, class instances, cycles).
 *
 * @category Set-based writes
 */
export type JsonSafe<T> = T extends JsonValue
  ? T
  : T extends bigint | symbol | undefined | Date | ((...args: never[]) => unknown)
    ? never
    : T extends readonly unknown[]
      ? { readonly [I in keyof T]: JsonSafe<T[I]> }
      : T extends object
        ? { readonly [K in keyof T]: JsonSafe<T[K]> }
        : never;

/**
 * Options of {@link jsonRowChunks} and {@link jsonRowStatements}.
 *
 * @category Set-based writes
 */
export interface JsonRowOptions {
  /**
   * The most bytes of UTF-8 one JSON text may hold: an integer from 1 to
   * {@link D1_MAX_VALUE_BYTES}, which is the default. Lower it to split sooner.
   */
  readonly maxValueBytes?: number | undefined;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The path of a value inside a row, as a JavaScript expression: `rows[3].amount`, `rows[0].tags[1]`, `rows[2]["a b"]`. */
function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** What a value is, for an error message: `number`, `null`, `array`, or a class name such as `Date`. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Array.prototype) return "array";
  if (prototype === Object.prototype || prototype === null) return "object";
  const constructor: unknown = typeof prototype === "object" ? (prototype as { constructor?: unknown }).constructor : undefined;
  return typeof constructor === "function" && constructor.name !== "" ? constructor.name : "object";
}

function typeError(argument: string, message: string): CheckpointTypeError {
  return new CheckpointTypeError(OPERATION, undefined, argument, message);
}

function rangeError(argument: string, message: string): CheckpointRangeError {
  return new CheckpointRangeError(OPERATION, undefined, argument, message);
}

/** Checks a value inside a row; `inArray` says what JSON would do with a value it cannot carry. */
function checkValue(value: unknown, path: string, level: number, ancestors: Set<object>, inArray: boolean): void {
  const lost = inArray ? "JSON would write null instead" : "JSON would drop it";
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw rangeError(path, "contains a lone surrogate (not valid Unicode; SQLite's JSON would store invalid UTF-8)");
      }
      return;
    case "number":
      if (!Number.isFinite(value)) throw rangeError(path, `must be a finite number, got ${value} (JSON would write null instead)`);
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        throw rangeError(path, `is ${value}, an integer beyond 2^53 - 1 in magnitude: it would be read back rounded (send it as a string)`);
      }
      return;
    case "boolean":
      return;
    case "object":
      if (value !== null) checkContainer(value, path, level + 1, ancestors);
      return;
    case "bigint":
      throw typeError(path, "must be a JSON value, got bigint (JSON has no bigint: send a safe integer or a string)");
    default: // undefined, function, symbol
      throw typeError(path, `must be a JSON value, got ${typeof value} (${lost})`);
  }
}

/** Checks a plain object or array at nesting `level` (the array of rows is level 1, a row level 2). */
function checkContainer(value: object, path: string, level: number, ancestors: Set<object>): void {
  const prototype: unknown = Object.getPrototypeOf(value);
  const isArray = Array.isArray(value);
  if (isArray ? prototype !== Array.prototype : prototype !== Object.prototype && prototype !== null) {
    throw typeError(path, `must be a plain object or an array, got ${kindOf(value)} (turn class instances into plain data first)`);
  }
  if (level > MAX_JSON_DEPTH) {
    throw rangeError(path, `nests too deep: SQLite's JSON reads at most ${MAX_JSON_DEPTH} levels, and the array of rows is one of them`);
  }
  if (ancestors.has(value)) throw typeError(path, "contains itself (a cycle: JSON cannot carry it)");
  ancestors.add(value);
  if (isArray) {
    const items = value as readonly unknown[];
    for (let index = 0; index < items.length; index++) {
      const at = childPath(path, index);
      if (!(index in items)) throw typeError(at, "is a hole (sparse array: JSON would write null)");
      checkValue(items[index], at, level, ancestors, true);
    }
  } else {
    if (Object.getOwnPropertySymbols(value).some((key) => Object.prototype.propertyIsEnumerable.call(value, key))) {
      throw typeError(path, "has a symbol key (JSON would drop it)");
    }
    const record = value as Readonly<Record<string, unknown>>;
    for (const key of Object.keys(record)) {
      const at = childPath(path, key);
      if (!key.isWellFormed()) throw rangeError(at, "is a key with a lone surrogate (not valid Unicode; SQLite's JSON would store invalid UTF-8)");
      checkValue(record[key], at, level, ancestors, false);
    }
  }
  ancestors.delete(value);
}

/** Checks `rows`: a dense array of plain objects or arrays whose every value JSON carries unchanged. */
function checkRows(value: unknown): readonly object[] {
  if (!Array.isArray(value)) throw typeError("rows", `must be an array of rows, got ${kindOf(value)}`);
  const rows = value as readonly unknown[];
  const ancestors = new Set<object>();
  for (let index = 0; index < rows.length; index++) {
    const at = `rows[${index}]`;
    if (!(index in rows)) throw typeError(at, "is a hole (sparse array)");
    const row = rows[index];
    if (typeof row !== "object" || row === null) throw typeError(at, `must be a plain object or an array, got ${kindOf(row)}`);
    checkContainer(row, at, 2, ancestors);
  }
  return rows as readonly object[];
}

/** Checks the SQL: a non-empty string within {@link D1_MAX_STATEMENT_BYTES}. */
function checkSql(value: unknown): string {
  if (typeof value !== "string") throw typeError("sql", `must be a string, got ${kindOf(value)}`);
  if (value.trim() === "") throw rangeError("sql", "must not be empty");
  if (value.length > D1_MAX_STATEMENT_BYTES / 3) {
    const bytes = utf8Length(value);
    if (bytes > D1_MAX_STATEMENT_BYTES) {
      throw rangeError("sql", `is ${bytes} bytes of UTF-8; D1 accepts a statement of at most ${D1_MAX_STATEMENT_BYTES}`);
    }
  }
  return value;
}

/**
 * Serialises `rows` to JSON arrays of rows, as few as fit: each text holds
 * whole rows, in order, and at most `maxValueBytes` bytes of UTF-8 (D1's
 * 2,000,000-byte value limit by default). Greedy contiguous chunks, which is
 * the fewest any split that keeps the order can have. Empty `rows` gives `[]`.
 *
 * The lower level of {@link jsonRowStatements}, for code that binds the JSON
 * itself: a Durable Object's `sql.exec(sql, json)`, or a query builder.
 *
 * Everything is checked before any chunk is built, with a
 * {@link CheckpointTypeError} or {@link CheckpointRangeError} (operation
 * `"jsonRows"`) whose `argument` is the path of the value at fault, such as
 * `rows[3].amount`: `rows` must be a dense array of plain objects or arrays
 * holding only strings without lone surrogates, finite numbers (not integers
 * beyond 2^53, which would come back rounded), booleans, `null`, and nested
 * plain objects and arrays, at most 1,000 levels deep with the array of rows
 * (SQLite's JSON limit). `undefined`, `bigint`, functions, symbols, `Date`s and
 * other class instances, holes, cycles and `NaN`/`Infinity` (which JSON would
 * silently turn into `null`) are rejected. A row whose JSON alone does not fit
 * is a `CheckpointRangeError` naming it (`rows[7]`).
 *
 * @example
 * ```ts
 * const history: SqlWrites = (sql) => {
 *   for (const json of jsonRowChunks(events.map((e) => ({ position: e.position, amount: e.amount })))) {
 *     sql.exec("INSERT INTO history (position, amount) SELECT value ->> 'position', value ->> 'amount' FROM json_each(?1)", json);
 *   }
 * };
 * ```
 *
 * @category Set-based writes
 */
export function jsonRowChunks<Row extends object>(rows: readonly (Row & JsonSafe<Row>)[], options?: JsonRowOptions): string[] {
  const { maxValueBytes } = checkOptions(OPERATION, undefined, options, "options", ["maxValueBytes"]);
  const limit = checkInteger(OPERATION, undefined, maxValueBytes, "options.maxValueBytes", {
    min: 1,
    max: D1_MAX_VALUE_BYTES,
    fallback: D1_MAX_VALUE_BYTES,
  });
  const checked = checkRows(rows);
  const texts = checked.map((row, index) => {
    const text = JSON.stringify(row);
    const bytes = utf8Length(text);
    if (bytes + 2 > limit) {
      const which = maxValueBytes === undefined ? "D1's value limit" : "options.maxValueBytes";
      throw rangeError(
        `rows[${index}]`,
        `is ${bytes} bytes of JSON, ${bytes + 2} in an array of its own: over ${which} of ${limit} bytes (split the row, or keep large values out of it)`,
      );
    }
    return { text, bytes };
  });
  const chunks: string[] = [];
  let chunk: string[] = [];
  let size = 2; // "[" and "]"
  for (const { text, bytes } of texts) {
    if (chunk.length > 0 && size + 1 + bytes > limit) {
      chunks.push(`[${chunk.join(",")}]`);
      chunk = [];
      size = 2;
    }
    size += (chunk.length > 0 ? 1 : 0) + bytes;
    chunk.push(text);
  }
  if (chunk.length > 0) chunks.push(`[${chunk.join(",")}]`);
  return chunks;
}

/**
 * Statements that apply `rows` with one SQL statement per chunk instead of one
 * per row: `sql`, prepared on `db`, bound to each JSON text of
 * {@link jsonRowChunks} as `?1`, which `sql` reads with `json_each(?1)`. One
 * statement for a batch's rows up to 2,000,000 bytes of JSON, a second beyond;
 * none for empty `rows`. Pass them to `commit`, or return them from a
 * `ProjectionRunner`'s `project`, and they commit with the checkpoint. Pure:
 * it prepares statements and sends nothing.
 *
 * On D1 every statement in a `batch()` counts toward the queries an invocation
 * may make (1,000; 50 on the free plan): a batch of 1,000 events costs 3
 * (checkpoint, this statement, the next read) instead of 1,002.
 *
 * In `sql`, `json_each(?1)` yields one row per element in order (`key` is its
 * index within the chunk) and `value ->> 'field'` reads a field (a JSON integer
 * as INTEGER, a fraction as REAL, `true`/`false` as 1/0). Rows of one key may
 * land in different chunks, which are different statements: aggregate with
 * `GROUP BY` into an upsert that adds to what is stored
 * (`balance = balance + excluded.balance`), never one that overwrites it with
 * a chunk's total.
 *
 * Upsert after a SELECT: SQLite reads an `ON` right after a `FROM` clause as a
 * join's `ON`, so `INSERT … SELECT … FROM json_each(?1) ON CONFLICT …` is a
 * syntax error (near "DO"). Anything between them ends the ambiguity; SQLite's
 * documentation advises `WHERE true`, and a `GROUP BY` does as well. Write
 * `WHERE true` always.
 *
 * Checks, before anything is prepared: `db` has `prepare` (a
 * {@link CheckpointTypeError} otherwise), `sql` is a non-empty string of at
 * most {@link D1_MAX_STATEMENT_BYTES} bytes of UTF-8, and `rows` and `options`
 * as {@link jsonRowChunks} checks them; every error has operation `"jsonRows"`.
 *
 * @example
 * ```ts
 * project: (events) =>
 *   jsonRowStatements(
 *     env.DB,
 *     "INSERT INTO balances (account, balance, events) " +
 *       "SELECT value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 " +
 *       "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, events = events + excluded.events",
 *     events.map((e) => ({ account: e.account, amount: e.amount })),
 *   ),
 * ```
 *
 * @category Set-based writes
 */
export function jsonRowStatements<Row extends object>(
  db: D1Client,
  sql: string,
  rows: readonly (Row & JsonSafe<Row>)[],
  options?: JsonRowOptions,
): D1PreparedStatement[] {
  const client = checkMethods<D1Client>(OPERATION, undefined, db, "db", ["prepare"], "a D1Database or D1DatabaseSession");
  const text = checkSql(sql);
  const chunks = jsonRowChunks<Row>(rows, options);
  if (chunks.length === 0) return [];
  const statement = client.prepare(text);
  return chunks.map((json) => statement.bind(json));
}
