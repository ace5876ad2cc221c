-- The example's event log: an append-only ledger of credits and debits.
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT    NOT NULL,
    amount      INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The read model the "balances" projection keeps, derived from events only.
CREATE TABLE IF NOT EXISTS balances (
    account       TEXT    PRIMARY KEY,
    balance       INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    last_position INTEGER NOT NULL
);
