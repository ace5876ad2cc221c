-- Accounts on hold: the balances projection parks their events (onError
-- "park") until an admin releases the hold and replays them.
CREATE TABLE IF NOT EXISTS holds (
    account TEXT PRIMARY KEY,
    held_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
