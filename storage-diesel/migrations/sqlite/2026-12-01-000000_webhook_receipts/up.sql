-- Platform webhooks: one receipt per event applied, so that a replay is recognised and
-- a data-deletion request's status page is found by its confirmation code.
CREATE TABLE platform_webhook_receipts (
    provider VARCHAR(50) NOT NULL,
    receipt_key VARCHAR(255) NOT NULL,
    event VARCHAR(64) NOT NULL,
    provider_account_id VARCHAR(255),
    outcome VARCHAR(64) NOT NULL,
    confirmation_code VARCHAR(64) UNIQUE,
    received_at TEXT NOT NULL,
    PRIMARY KEY (provider, receipt_key)
);

CREATE INDEX platform_webhook_receipts_received_idx ON platform_webhook_receipts (received_at);
