// What the Drizzle and Kysely adapters share: a query builder's SQL and
// parameters, checked, become D1PreparedStatements of the caller's binding.
// Neither library is imported here; each adapter turns its own queries into
// `{ sql, parameters }` first. Pure: it prepares statements and sends nothing.
import type { D1Client } from "../d1/client.js";
import { D1_MAX_BOUND_PARAMETERS, D1_MAX_STATEMENT_BYTES, D1_MAX_VALUE_BYTES } from "../core/d1-limits.js";
import { CheckpointRangeError, CheckpointTypeError, type CheckpointOperation } from "../core/errors.js";
import { checkMethods, utf8Length } from "../core/validate.js";

/**
 * The operation the adapters' input errors carry: their statements are built
 * for a commit (`commit`, `commitMany`, a runner's `project`).
 */
const OPERATION: CheckpointOperation = "commit";

/** A query as a library built it: SQL with placeholders and the values to bind, in order. */
export interface BuiltQuery {
  readonly sql: unknown;
  readonly parameters: unknown;
}

/** What a value is, for an error message: `number`, `null`, `array`, or a class name such as `Date`. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "array";
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) return "object";
  const constructor: unknown = typeof prototype === "object" ? (prototype as { constructor?: unknown }).constructor : undefined;
  return typeof constructor === "function" && constructor.name !== "" ? constructor.name : "object";
}

export function typeError(argument: string, message: string): CheckpointTypeError {
  return new CheckpointTypeError(OPERATION, undefined, argument, message);
}

function rangeError(argument: string, message: string): CheckpointRangeError {
  return new CheckpointRangeError(OPERATION, undefined, argument, message);
}

/** Checks `db`: a D1 binding or session (anything with `prepare`). */
export function checkClient(db: unknown): D1Client {
  return checkMethods<D1Client>(OPERATION, undefined, db, "db", ["prepare"], "a D1Database or D1DatabaseSession (env.DB)");
}

/**
 * `queries` as a list with the argument name of each: an array (dense, each
 * named `queries[i]`) or a single query (named `queries`).
 */
export function queryList(queries: unknown): { readonly query: unknown; readonly at: string }[] {
  if (!Array.isArray(queries)) return [{ query: queries, at: "queries" }];
  const items = queries as readonly unknown[];
  const list: { readonly query: unknown; readonly at: string }[] = [];
  for (let index = 0; index < items.length; index++) {
    const at = `queries[${index}]`;
    if (!(index in items)) throw typeError(at, "is a hole (sparse array)");
    list.push({ query: items[index], at });
  }
  return list;
}

const BINDABLE = "a value D1 binds unchanged: a string, a finite number, a boolean, null, an ArrayBuffer or a Uint8Array";

function checkBytes(byteLength: number, at: string): void {
  if (byteLength > D1_MAX_VALUE_BYTES) {
    throw rangeError(at, `is ${byteLength} bytes: D1 stores a BLOB of at most ${D1_MAX_VALUE_BYTES} bytes`);
  }
}

/** Why an object D1 cannot bind (or would bind changed) is refused, and what to bind instead. */
function objectHint(value: object, kind: string): string {
  if (value instanceof Date) {
    return "D1 cannot bind a Date: bind date.getTime() (milliseconds) or date.toISOString() (text), whichever your column stores";
  }
  if (Array.isArray(value)) {
    return "D1 would bind an array as a BLOB of its elements cut to bytes: JSON.stringify it for a JSON column, or pass a Uint8Array for bytes";
  }
  if (ArrayBuffer.isView(value)) {
    return `D1 would bind a ${kind} as a BLOB of its elements cut to bytes, not of its bytes: pass new Uint8Array(view.buffer, view.byteOffset, view.byteLength)`;
  }
  if (kind === "object") return "D1 cannot bind an object: JSON.stringify it for a JSON column";
  return `D1 cannot bind a ${kind}: turn it into ${BINDABLE}`;
}

/**
 * Checks one parameter: what D1's `bind` stores as given. D1 throws on
 * `undefined`, `bigint`, symbols, functions, `Date`s and other objects; it
 * stores `NaN` and `±Infinity` as NULL without a word, and binds arrays and
 * typed arrays other than `Uint8Array` as a BLOB of their elements cut to
 * bytes. Booleans bind as the numbers 1 and 0 do.
 */
function checkParameter(value: unknown, at: string): void {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) throw rangeError(at, "contains a lone surrogate (not valid Unicode: D1 would store invalid UTF-8)");
      if (value.length > D1_MAX_VALUE_BYTES / 3) {
        const bytes = utf8Length(value);
        if (bytes > D1_MAX_VALUE_BYTES) throw rangeError(at, `is ${bytes} bytes of UTF-8: D1 stores a string of at most ${D1_MAX_VALUE_BYTES}`);
      }
      return;
    case "number":
      if (!Number.isFinite(value)) throw rangeError(at, `must be a finite number, got ${value} (D1 would store NULL instead)`);
      return;
    case "boolean":
      return;
    case "undefined":
      throw typeError(at, "must be a value, got undefined (D1 cannot bind it: use null for SQL NULL)");
    case "bigint":
      throw typeError(at, "must be a number, got bigint (D1 cannot bind it: bind Number(value) for a safe integer, or a string)");
    case "object": {
      if (value === null) return;
      if (value instanceof ArrayBuffer || value instanceof Uint8Array) {
        checkBytes(value.byteLength, at);
        return;
      }
      const kind = kindOf(value);
      throw typeError(at, `must be ${BINDABLE}, got ${kind} (${objectHint(value, kind)})`);
    }
    default: // symbol, function
      throw typeError(at, `must be ${BINDABLE}, got ${typeof value}`);
  }
}

/** Checks a built query's SQL and parameters; returns them ready to prepare. */
function checkBuilt(built: BuiltQuery, at: string): { readonly sql: string; readonly parameters: readonly unknown[] } {
  const { sql, parameters } = built;
  if (typeof sql !== "string") throw typeError(`${at}.sql`, `must be a string, got ${kindOf(sql)}`);
  if (sql.trim() === "") throw rangeError(`${at}.sql`, "must not be empty");
  if (sql.length > D1_MAX_STATEMENT_BYTES / 3) {
    const bytes = utf8Length(sql);
    if (bytes > D1_MAX_STATEMENT_BYTES) throw rangeError(`${at}.sql`, `is ${bytes} bytes of UTF-8; D1 accepts a statement of at most ${D1_MAX_STATEMENT_BYTES}`);
  }
  if (!Array.isArray(parameters)) throw typeError(`${at}.parameters`, `must be an array, got ${kindOf(parameters)}`);
  const values = parameters as readonly unknown[];
  if (values.length > D1_MAX_BOUND_PARAMETERS) {
    throw rangeError(
      `${at}.parameters`,
      `holds ${values.length} values; D1 binds at most ${D1_MAX_BOUND_PARAMETERS} per query ` +
        "(write fewer rows per query, or every row as one JSON value: jsonRowChunks)",
    );
  }
  for (let index = 0; index < values.length; index++) {
    const where = `${at}.parameters[${index}]`;
    if (!(index in values)) throw typeError(where, "is a hole (sparse array)");
    checkParameter(values[index], where);
  }
  return { sql, parameters: [...values] };
}

/**
 * Statements of `client` for built queries: every query checked first, then
 * each prepared (once per distinct SQL) and bound to its parameters.
 */
export function preparedStatements(client: D1Client, built: readonly { readonly query: BuiltQuery; readonly at: string }[]): D1PreparedStatement[] {
  const checked = built.map(({ query, at }) => checkBuilt(query, at));
  const prepared = new Map<string, D1PreparedStatement>();
  return checked.map(({ sql, parameters }) => {
    let statement = prepared.get(sql);
    if (statement === undefined) prepared.set(sql, (statement = client.prepare(sql)));
    return statement.bind(...parameters);
  });
}
