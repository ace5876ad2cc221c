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
