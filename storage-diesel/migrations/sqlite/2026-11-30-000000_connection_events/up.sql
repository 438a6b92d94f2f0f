-- The outbox: every connection change records its event here in the same transaction
-- (SQLite has one writer at a time, so positions are assigned in commit order).
-- AUTOINCREMENT: a position is never reused after the newest events are pruned.
CREATE TABLE connection_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id VARCHAR(64) NOT NULL UNIQUE,
    kind VARCHAR(64) NOT NULL,
    user_id BIGINT NOT NULL,
    provider VARCHAR(50) NOT NULL,
    provider_account_id VARCHAR(255) NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}'
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
    next_attempt_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    last_error TEXT,
    finished_at TEXT,
    PRIMARY KEY (endpoint, position)
);

CREATE INDEX webhook_deliveries_pending_idx
    ON webhook_deliveries (endpoint, account_key, position) WHERE status = 'pending';
