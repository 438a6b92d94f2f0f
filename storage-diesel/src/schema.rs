// The schema of both backends (see `diesel.toml`). Column types use the crate's own SQL
// types from `crate::types`, which map to TIMESTAMPTZ/JSONB on PostgreSQL and TEXT on SQLite.

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    oauth_accounts (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        provider_account_id -> Text,
        access_token -> Nullable<Text>,
        refresh_token -> Nullable<Text>,
        expires_at -> Nullable<UtcTimestamp>,
        refresh_expires_at -> Nullable<UtcTimestamp>,
        token_issued_at -> Nullable<UtcTimestamp>,
        token_type -> Nullable<Text>,
        scope -> Nullable<Text>,
        metadata -> JsonDocument,
        status -> Text,
        last_error -> Nullable<Text>,
        refresh_failures -> Integer,
        last_refresh_attempt_at -> Nullable<UtcTimestamp>,
        last_refresh_success_at -> Nullable<UtcTimestamp>,
        version -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<UtcTimestamp>,
        created_at -> UtcTimestamp,
        updated_at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    oauth_pending_authorizations (state_hash) {
        state_hash -> Text,
        user_id -> BigInt,
        provider -> Text,
        pkce_verifier -> Nullable<Text>,
        redirect_url -> Nullable<Text>,
        created_at -> UtcTimestamp,
        expires_at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    integration_audit_events (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        provider_account_id -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    connection_events (position) {
        position -> BigInt,
        event_id -> Text,
        kind -> Text,
        user_id -> BigInt,
        provider -> Text,
        provider_account_id -> Text,
        at -> UtcTimestamp,
        payload -> JsonDocument,
    }
}

diesel::table! {
    webhook_cursors (endpoint) {
        endpoint -> Text,
        position -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    webhook_deliveries (endpoint, position) {
        endpoint -> Text,
        position -> BigInt,
        event_id -> Text,
        account_key -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> UtcTimestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<UtcTimestamp>,
        last_error -> Nullable<Text>,
        finished_at -> Nullable<UtcTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    platform_webhook_receipts (provider, receipt_key) {
        provider -> Text,
        receipt_key -> Text,
        event -> Text,
        provider_account_id -> Nullable<Text>,
        outcome -> Text,
        confirmation_code -> Nullable<Text>,
        received_at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::*;

    platform_health_minutes (provider, minute, instance) {
        provider -> Text,
        minute -> UtcTimestamp,
        instance -> Text,
        stats -> JsonDocument,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    oauth_accounts,
    oauth_pending_authorizations,
    integration_audit_events,
    connection_events,
    webhook_cursors,
    webhook_deliveries,
    platform_webhook_receipts,
    platform_health_minutes,
);
