-- Connected OAuth accounts. Token columns hold sealed ciphertext only (`v1.<key id>.<data>`).
-- Times are UTC text, `YYYY-MM-DD HH:MM:SS.ffffffZ` (fixed width, so text order is time order).
CREATE TABLE oauth_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    provider VARCHAR(50) NOT NULL,
    provider_account_id VARCHAR(255) NOT NULL,
    access_token TEXT,
    refresh_token TEXT,
    expires_at TEXT,
    refresh_expires_at TEXT,
    token_issued_at TEXT,
    token_type TEXT,
    scope TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    status VARCHAR(32) NOT NULL DEFAULT 'active',
    last_error TEXT,
    refresh_failures INTEGER NOT NULL DEFAULT 0,
    last_refresh_attempt_at TEXT,
    last_refresh_success_at TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    lease_owner TEXT,
    lease_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT oauth_accounts_provider_account_key UNIQUE (provider, provider_account_id)
);

CREATE INDEX oauth_accounts_user_provider_idx ON oauth_accounts (user_id, provider);

-- "Active accounts with expires_at <= T" is a range scan of this index.
CREATE INDEX oauth_accounts_status_expiry_idx ON oauth_accounts (status, expires_at);

-- Started connections waiting for their callback, keyed by the SHA-256 (hex) of the state.
CREATE TABLE oauth_pending_authorizations (
    state_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL,
    provider VARCHAR(50) NOT NULL,
    pkce_verifier TEXT,
    redirect_url TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX oauth_pending_authorizations_user_idx ON oauth_pending_authorizations (user_id);
CREATE INDEX oauth_pending_authorizations_expires_idx ON oauth_pending_authorizations (expires_at);

-- Who did what, when. Never holds a secret.
CREATE TABLE integration_audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    provider VARCHAR(50) NOT NULL,
    provider_account_id VARCHAR(255),
    action VARCHAR(50) NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE INDEX integration_audit_events_user_idx ON integration_audit_events (user_id, id);
