-- The outbox: every connection change records its event here in the same transaction.
-- Writers take a transaction-level advisory lock before inserting, so positions are
-- assigned in commit order and a reader after position P never misses a later commit
-- below P.
CREATE TABLE connection_events (
    position BIGSERIAL PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL UNIQUE,
    kind VARCHAR(64) NOT NULL,
    user_id BIGINT NOT NULL,
    provider VARCHAR(50) NOT NULL,
    provider_account_id VARCHAR(255) NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    payload JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX connection_events_at_idx ON connection_events (at);

-- Per webhook endpoint: the last event turned into a delivery.
CREATE TABLE webhook_cursors (
    endpoint VARCHAR(100) PRIMARY KEY NOT NULL,
    position BIGINT NOT NULL
);

-- One row per (endpoint, event): pending until delivered or given up.
CREATE TABLE webhook_deliveries (
    endpoint VARCHAR(100) NOT NULL,
    position BIGINT NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    account_key TEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    last_error TEXT,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (endpoint, position)
);

-- "The oldest pending delivery of each account" and "due pending deliveries".
CREATE INDEX webhook_deliveries_pending_idx
    ON webhook_deliveries (endpoint, account_key, position) WHERE status = 'pending';
