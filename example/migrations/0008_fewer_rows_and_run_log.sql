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
