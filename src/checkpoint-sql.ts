import { CheckpointConflictError } from "./errors.js";
import type { PageRequest } from "./keyset.js";

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
 * Save only if the stored position equals ?3. SQLite checks NOT NULL before
 * uniqueness, so the inserted value is ?2 only when the row exists (the
 * subquery) and NULL otherwise, which fails; the update branch writes NULL
 * unless the position matches, which fails too.
 */
export const COMPARE_AND_SET_SQL =
  "INSERT INTO checkpoints (name, position) VALUES (?1, (SELECT ?2 FROM checkpoints WHERE name = ?1)) " +
  "ON CONFLICT (name) DO UPDATE SET position = CASE WHEN position = ?3 THEN excluded.position ELSE NULL END";

/** Point read: ?1 name. */
export const LOAD_SQL = "SELECT position FROM checkpoints WHERE name = ?1";

/** Delete: ?1 name. */
export const RESET_SQL = "DELETE FROM checkpoints WHERE name = ?1";

/** Rows returned by a page query. */
export type PageColumns = "name" | "name, position";

/**
 * A keyset page query: ?1 lower bound, ?2 limit, ?3 upper bound when present.
 * The bounds are an index range on the primary key, so D1 reads only the rows
 * it returns (plus one), never an OFFSET's skipped rows.
 */
export function pageSql(columns: PageColumns, request: PageRequest): string {
  const lower = request.inclusive ? "name >= ?1" : "name > ?1";
  const upper = request.upper === undefined ? "" : " AND name < ?3";
  return `SELECT ${columns} FROM checkpoints WHERE ${lower}${upper} ORDER BY name LIMIT ?2`;
}

/** The bindings of {@link pageSql} for `request`. */
export function pageBindings(request: PageRequest): (string | number)[] {
  return request.upper === undefined
    ? [request.lower, request.limit]
    : [request.lower, request.limit, request.upper];
}

const CONFLICT_MARKER = "NOT NULL constraint failed: checkpoints.position";

/**
 * Whether `error` says a conditional checkpoint statement found its condition
 * false. Use it on errors from your own `db.batch()` that includes a
 * statement from `saveStatement(..., { expected })`; D1 has rolled the whole
 * batch back. A {@link CheckpointConflictError} from the store counts too.
 */
export function isCheckpointConflict(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof CheckpointConflictError || current.message.includes(CONFLICT_MARKER)) return true;
    current = current.cause;
  }
  return false;
}
