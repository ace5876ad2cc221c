-- The account-history projection (one Durable Object per account) reads each
-- account's events in position order.
CREATE INDEX IF NOT EXISTS events_by_account ON events (account, position);
