// The checkpoint table's SQL, shared by the D1 and the Durable Object store:
// the save statements (upsert, insert-new, compare-and-set, each with its
// optional version fence), load and reset, the keyset page queries and the
// mapping of their rows, and the conflict marker a failed condition raises.
import { CheckpointConflictError, type CheckpointOperation } from "../core/errors.js";
import type { LoadResult, VersionFence } from "../core/store.js";
import type { Page, PageRequest, RawName } from "../core/keyset.js";
import { toPosition } from "../core/validate.js";

/** The database's clock in milliseconds since the epoch, in any SQLite (`unixepoch('subsec')` needs 3.42). */
export const NOW_MS_SQL = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/** Unconditional upsert: ?1 name, ?2 position. */
export const UPSERT_SQL =
  "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET position = excluded.position";

/**
 * Save only if no checkpoint exists: the conflict branch writes NULL into the
 * NOT NULL column, so the statement fails and D1 rolls the batch back.
 */
export const INSERT_NEW_SQL =
  "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET position = NULL";

/**
 * Save only if the stored position equals ?3, where no checkpoint counts as
 * one at 0 (as `load` reports it; decision 0022). SQLite checks NOT NULL
 * before uniqueness, so the inserted value is `value` when ?3 is 0 or the row
 * exists (the subquery) and NULL otherwise, which fails; the update branch
 * writes NULL unless the position matches, which fails too.
 */
function compareAndSetSql(value: string): string {
  return (
    `INSERT INTO checkpoints (name, position) VALUES (?1, CASE WHEN ?3 = 0 THEN ${value} ELSE (SELECT ${value} FROM checkpoints WHERE name = ?1) END) ` +
    "ON CONFLICT (name) DO UPDATE SET position = CASE WHEN position = ?3 THEN excluded.position ELSE NULL END"
  );
}

/** {@link compareAndSetSql} of ?2: ?1 name, ?2 position, ?3 expected. */
export const COMPARE_AND_SET_SQL = compareAndSetSql("?2");

/** The state of version ?v of projection ?n: its record's, or `'live'` for version 1 of a projection without records; NULL otherwise. */
function stateExpression(n: number, v: number): string {
  return (
    `COALESCE((SELECT state FROM projection_versions WHERE name = ?${n} AND version = ?${v}), ` +
    `CASE WHEN ?${v} = 1 AND NOT EXISTS (SELECT 1 FROM projection_versions WHERE name = ?${n}) THEN 'live' END)`
  );
}

/** A version's state: ?1 name, ?2 version. */
export const VERSION_STATE_SQL = `SELECT ${stateExpression(1, 2)} AS state`;

/**
 * A fence as a statement of its own, for writes without a checkpoint save (a
 * replay): ?1 name, ?2 version, ?3 state. It inserts nothing while the version
 * is in that state, and otherwise fails (NOT NULL on projection_versions.state),
 * which rolls the batch back.
 */
export const FENCE_GUARD_SQL =
  "INSERT INTO projection_versions (name, version, state, tables, started_at) " +
  `SELECT ?1, ?2, NULL, '{}', 0 WHERE ${stateExpression(1, 2)} IS NOT ?3`;

/** A fence's condition on save bindings ?4 name, ?5 version, ?6 state. */
const FENCE_CONDITION = `${stateExpression(4, 5)} = ?6`;

/**
 * The save statement for a condition, with its bindings: an upsert without
 * one, an insert that fails when a row exists for `null`, a compare-and-set
 * for a position. With a fence, the saved value is NULL (so the statement
 * fails, and the batch with it) unless the version is still in the fence's state.
 */
export function saveSql(
  name: string,
  position: number,
  expected: number | null | undefined,
  fence?: VersionFence,
): { readonly sql: string; readonly bindings: readonly (string | number | null)[] } {
  if (fence === undefined) {
    if (expected === undefined) return { sql: UPSERT_SQL, bindings: [name, position] };
    if (expected === null) return { sql: INSERT_NEW_SQL, bindings: [name, position] };
    return { sql: COMPARE_AND_SET_SQL, bindings: [name, position, expected] };
  }
  const value = `CASE WHEN ${FENCE_CONDITION} THEN ?2 END`;
  const sql =
    expected === undefined
      ? UPSERT_SQL.replace("?2", value)
      : expected === null
        ? INSERT_NEW_SQL.replace("?2", value)
        : compareAndSetSql(value);
  return { sql, bindings: [name, position, expected ?? null, fence.name, fence.version, fence.state] };
}

/** A loaded row (or none) as a {@link LoadResult}; a stored value that is not a position is a `CorruptCheckpointError`. */
export function loadResult(operation: CheckpointOperation, name: string, row: { readonly position: unknown } | null | undefined): LoadResult {
  return row === null || row === undefined ? { position: 0, found: false } : { position: toPosition(operation, name, row.position), found: true };
}

/** Point read: ?1 name. */
export const LOAD_SQL = "SELECT position FROM checkpoints WHERE name = ?1";

/** Delete: ?1 name. */
export const RESET_SQL = "DELETE FROM checkpoints WHERE name = ?1";

/** The columns a page query returns before the raw-name column: `"name"`, `"name, position"`, or a status page's. */
export type PageColumns = string;

/**
 * The page column that tells a valid name from one written by another tool:
 * NULL for ASCII text without NUL (most names, nothing to check); the name's
 * bytes in hex otherwise (a blob; a NUL, which makes `length()` stop short; a
 * byte from 0x80, which SQLite's GLOB decodes as a character from U+0080), which the store compares with the text D1 returned (D1 replaces
 * invalid UTF-8 with U+FFFD) and uses to start the next page after the exact
 * stored bytes.
 */
const RAW_COLUMN =
  "CASE WHEN typeof(name) <> 'text' OR length(CAST(name AS BLOB)) <> length(name) " +
  "OR name GLOB '*[^' || char(1) || '-' || char(127) || ']*' THEN hex(name) END AS raw";

/**
 * A keyset page query: ?1 lower bound, ?2 limit, ?3 upper bound when present.
 * The bounds are an index range on the primary key, so D1 reads only the rows
 * it returns (plus one), never an OFFSET's skipped rows. A lower bound that
 * is a stored name's raw bytes is bound as a blob: cast to TEXT for invalid
 * text (the same bytes, compared as text), or left a blob for blob rows,
 * which SQLite sorts after all text.
 */
export function pageSql(columns: PageColumns, request: PageRequest): string {
  const bound = typeof request.lower !== "string" && request.lower.type === "text" ? "CAST(?1 AS TEXT)" : "?1";
  const lower = request.inclusive ? `name >= ${bound}` : `name > ${bound}`;
  const upper = request.upper === undefined ? "" : " AND name < ?3";
  return `SELECT ${columns}, ${RAW_COLUMN} FROM checkpoints WHERE ${lower}${upper} ORDER BY name LIMIT ?2`;
}

/** The bindings of {@link pageSql} for `request`. */
export function pageBindings(request: PageRequest): (string | number | Uint8Array)[] {
  const lower = typeof request.lower === "string" ? request.lower : request.lower.bytes;
  return request.upper === undefined ? [lower, request.limit] : [lower, request.limit, request.upper];
}

/** A page row: the name as D1 returned it and, unless it is ASCII text, its stored bytes in hex. */
export interface RawRow {
  readonly name: unknown;
  readonly raw: string | null;
}

const encoder = new TextEncoder();

function hexOf(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex.toUpperCase();
}

function bytesOf(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** A page row; `position` only when the page query selected it. */
export interface PageRow extends RawRow {
  readonly position?: unknown;
}

/**
 * A page of rows as a keyset {@link Page}: rows whose name is not valid text
 * are skipped, and the items are mapped lazily, so that a corrupt position
 * raises when its row is reached.
 */
export function pageOf<Item>(rows: readonly PageRow[], toItem: (row: PageRow, name: string) => Item): Page<Item> {
  const last = rows.at(-1);
  return {
    items: (function* () {
      for (const row of rows) {
        const name = storedName(row);
        if (typeof name === "string") yield toItem(row, name);
      }
    })(),
    rows: rows.length,
    last: last === undefined ? undefined : storedName(last),
  };
}

/**
 * A page row's name: the string when the stored name is valid UTF-8 text,
 * otherwise its raw bytes (a name written by another tool, which no store
 * method could address).
 */
export function storedName(row: RawRow): string | RawName {
  if (typeof row.name === "string" && (row.raw === null || hexOf(encoder.encode(row.name)) === row.raw)) return row.name;
  return { bytes: bytesOf(row.raw ?? ""), type: typeof row.name === "string" ? "text" : "blob" };
}

const CONFLICT_MARKER = "NOT NULL constraint failed: checkpoints.position";

/** Whether a D1 error is a conditional checkpoint statement's failure (whose ever it was). */
export function isConflictMarker(error: unknown): boolean {
  return error instanceof Error && error.message.includes(CONFLICT_MARKER);
}

/**
 * Whether `error` says a conditional checkpoint statement found its condition
 * false. Use it on errors from your own `db.batch()` that includes a
 * statement from `saveStatement(..., { expected })`; D1 has rolled the whole
 * batch back. A {@link CheckpointConflictError} from the store counts too.
 *
 * @category Errors
 */
export function isCheckpointConflict(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof CheckpointConflictError || current.message.includes(CONFLICT_MARKER)) return true;
    current = current.cause;
  }
  return false;
}
