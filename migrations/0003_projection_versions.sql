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
