DROP TABLE integration_audit_events;
DROP TABLE oauth_pending_authorizations;
DROP TABLE oauth_accounts;
