-- The "daily-totals" read model (example/src/daily-totals.ts, a Drizzle
-- table): per account and UTC day of events.recorded_at, the sum of the
-- amounts and the number of events. Written by hand to match the Drizzle
-- table (example/test/daily-totals.test.ts compares them). Its checkpoint
-- starts absent: the projection group catches it up from the first event.
CREATE TABLE IF NOT EXISTS daily_totals (
    account       TEXT    NOT NULL,
    day           TEXT    NOT NULL,
    total         INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    PRIMARY KEY (account, day)
);
