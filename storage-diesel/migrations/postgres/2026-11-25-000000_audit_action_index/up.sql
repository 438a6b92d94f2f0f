-- The connect rate limit counts a user's recent connect_started events.
CREATE INDEX integration_audit_events_user_action_idx
    ON integration_audit_events (user_id, action, at);
