-- The app's own tables: the event log and the read model projected from it.
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT    NOT NULL,
    amount      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE TABLE IF NOT EXISTS balances (
    account TEXT    PRIMARY KEY,
    balance INTEGER NOT NULL
);
