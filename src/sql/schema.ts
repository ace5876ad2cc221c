// The package's DDL as one string (`SCHEMA`), equal to the migrations in
// migrations/, and its split into statements: applied by the D1 store
// (d1/migrate.ts) and by the Durable Object store in its constructor.
/**
 * The DDL the store needs, byte for byte `migrations/0001_checkpoints.sql`
 * followed by `migrations/0002_projection_operations.sql` and
 * `migrations/0003_projection_versions.sql` and
 * `migrations/0004_fewer_rows_and_run_log.sql` (a test proves they agree).
 *
 * The `checkpoints` table is the schema of synapse's Go SQLite checkpoint
 * store, unchanged, so a D1 export stays readable by the Go store and the
 * other way round. Migration 0002 adds tables beside it (parked events, when
 * each checkpoint last moved, run leases) and triggers that keep them in step
 * whoever writes a checkpoint; the store's save, load, reset and listing work
 * without it. Migration 0003 records a projection's versions while one is
 * rebuilt beside the live one (`startRebuild`, `switchVersion`). Feed it
 * to your own migration tooling, or let `wrangler d1 migrations apply` apply
 * the file from this package's `migrations/` folder. Migration 0004 replaces
 * the triggers of 0002 with ones that write fewer rows per move (decision
 * 0026), and adds the optional run log's table (`D1RunLog`, decision 0027);
 * applying the whole of `SCHEMA` again is still harmless.
 *
 * @category Schema
 */
export const SCHEMA: string = `CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
-- Operating projections: parked events, when each checkpoint last moved, and
-- run leases. The checkpoints table of 0001 is unchanged, so synapse's Go
-- store still reads and writes it; the triggers keep checkpoint_moves current
-- whoever writes a checkpoint, and a reset (or a checkpoint moved back, to
-- rebuild) takes the parked events it will meet again with it.
CREATE TABLE IF NOT EXISTS parked_events (
    name      TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    parked_at INTEGER NOT NULL,
    PRIMARY KEY (name, position)
);
CREATE TABLE IF NOT EXISTS checkpoint_moves (
    name     TEXT    PRIMARY KEY,
    moved_at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS checkpoint_inserted AFTER INSERT ON checkpoints BEGIN DELETE FROM parked_events WHERE name = NEW.name AND position > NEW.position; DELETE FROM checkpoint_moves WHERE name = NEW.name; INSERT INTO checkpoint_moves (name, moved_at) VALUES (NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;
CREATE TRIGGER IF NOT EXISTS checkpoint_moved AFTER UPDATE OF position ON checkpoints WHEN NEW.position IS NOT OLD.position BEGIN DELETE FROM parked_events WHERE name = NEW.name AND position > NEW.position; DELETE FROM checkpoint_moves WHERE name = NEW.name; INSERT INTO checkpoint_moves (name, moved_at) VALUES (NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;
CREATE TRIGGER IF NOT EXISTS checkpoint_deleted AFTER DELETE ON checkpoints BEGIN DELETE FROM checkpoint_moves WHERE name = OLD.name; DELETE FROM parked_events WHERE name = OLD.name; END;
CREATE TABLE IF NOT EXISTS projection_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0
);
-- Versions of a projection, for rebuilding one beside the live one: one row
-- per (projection, version). 'live' is the version whose checkpoint is the
-- projection's own name and whose tables readers see; 'building' is a rebuild
-- whose checkpoint is "name@version"; 'retired' is an old version kept for a
-- rollback. A projection without rows has one version, 1, and it is live.
-- tables maps each read name (a view once a version has been switched to) to
-- the version's own table, as JSON.
CREATE TABLE IF NOT EXISTS projection_versions (
    name             TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    tables           TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    started_position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
-- Fewer rows written per checkpoint move (what D1 bills). The triggers of
-- 0002 kept checkpoint_moves current with a DELETE and an INSERT, which wrote
-- 3 rows per move (the row deleted, the row inserted and its primary-key
-- index entry) besides the checkpoint's own. An upsert of moved_at writes 1:
-- the same row, in place, and no index entry, because the name does not
-- change. Parked events after the new position are only deleted when the
-- checkpoint moves back (a rebuild), which a forward move never needs.
DROP TRIGGER IF EXISTS checkpoint_inserted;
DROP TRIGGER IF EXISTS checkpoint_moved;
CREATE TRIGGER checkpoint_inserted AFTER INSERT ON checkpoints BEGIN DELETE FROM parked_events WHERE name = NEW.name AND position > NEW.position; INSERT INTO checkpoint_moves (name, moved_at) VALUES (NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) ON CONFLICT (name) DO UPDATE SET moved_at = excluded.moved_at; END;
CREATE TRIGGER checkpoint_moved AFTER UPDATE OF position ON checkpoints WHEN NEW.position IS NOT OLD.position BEGIN INSERT INTO checkpoint_moves (name, moved_at) VALUES (NEW.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) ON CONFLICT (name) DO UPDATE SET moved_at = excluded.moved_at; END;
CREATE TRIGGER IF NOT EXISTS checkpoint_moved_back AFTER UPDATE OF position ON checkpoints WHEN NEW.position < OLD.position BEGIN DELETE FROM parked_events WHERE name = NEW.name AND position > NEW.position; END;
-- The run log (D1RunLog in ./metrics, optional): each projection's recent
-- runs, for the admin page's rows written per 1,000 events. One row per
-- projection with its recent runs as a JSON array, without a rowid, so that
-- recording a run writes 1 row.
CREATE TABLE IF NOT EXISTS projection_runs (
    name TEXT PRIMARY KEY,
    runs TEXT NOT NULL
) WITHOUT ROWID;
`;

/** The tables and triggers {@link SCHEMA} makes, by name. */
const SCHEMA_OBJECTS: readonly string[] = [...new Set([...SCHEMA.matchAll(/^CREATE (?:TABLE|TRIGGER) (?:IF NOT EXISTS )?(\w+)/gm)].map((match) => match[1] ?? ""))];

/**
 * How many of the tables and triggers of {@link SCHEMA} exist (`n`): all of
 * them ({@link SCHEMA_OBJECT_COUNT}) once the whole schema is applied, since
 * every migration adds one of its own (0004 `checkpoint_moved_back` beside the
 * triggers it replaces). Read before applying, so that an applied schema is
 * not applied again: 0004 drops and creates triggers, which is schema work
 * every time.
 */
export const SCHEMA_PRESENT_SQL = `SELECT COUNT(*) AS n FROM sqlite_master WHERE type IN ('table', 'trigger') AND name IN (${SCHEMA_OBJECTS.map((name) => `'${name}'`).join(", ")})`;

/** The number of tables and triggers {@link SCHEMA} makes. */
export const SCHEMA_OBJECT_COUNT: number = SCHEMA_OBJECTS.length;

/** The statements of {@link SCHEMA}, one per entry, without the separator. */
export function schemaStatements(schema: string = SCHEMA): string[] {
  return schema
    .split(/;\s*(?:\n|$)/)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}
