//! Connection events: what changed about a connection, recorded by the store in the same
//! transaction as the change itself (the outbox), so that no event exists without its
//! change and no change without its event.
//!
//! Every process sharing a store reads the same events in the same order, by their
//! store-wide [`EventPosition`]: [`Integrations::events`](crate::Integrations::events)
//! pulls them, and the [`webhooks`](crate::webhooks) deliverer sends them to a host's
//! endpoints as signed webhooks. [`Integrations::subscribe`](crate::Integrations::subscribe)
//! remains the in-process fast path: it hears this process's events right after their
//! commit, without reading the store, and may lose some when it lags.
//!
//! An event carries ids, a kind, a time and a small payload; never a token.

use crate::provider::ProviderId;
use crate::store::{AccountRecord, UserId};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::fmt;

/// What happened to a connection.
///
/// The wire names ([`as_str`](Self::as_str)) follow the Standard Webhooks form
/// `group.event`; they are stable, and a receiver should ignore names it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionEventKind {
    /// A new account was connected (`connection.connected`).
    Connected,
    /// An existing account was authorized again (`connection.reauthorized`).
    Reauthorized,
    /// Tokens were refreshed (`connection.refreshed`).
    Refreshed,
    /// A refresh failed transiently; recorded on the first failure after a success
    /// (`connection.refresh_failed`).
    RefreshFailed,
    /// The grant is dead: the user must connect again; recorded when the account enters
    /// that state (`connection.needs_reconnect`).
    NeedsReconnect,
    /// The account was disconnected (`connection.disconnected`).
    Disconnected,
    /// The account was deleted with its data: all of its user's data, or this account's
    /// at the platform's request (`connection.data_deleted`).
    DataDeleted,
    /// A connection that needed reconnecting works again, as its platform reported
    /// (a gateway restored the session) (`connection.restored`).
    Restored,
}

impl ConnectionEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Connected,
        Self::Reauthorized,
        Self::Refreshed,
        Self::RefreshFailed,
        Self::NeedsReconnect,
        Self::Disconnected,
        Self::DataDeleted,
        Self::Restored,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connection.connected",
            Self::Reauthorized => "connection.reauthorized",
            Self::Refreshed => "connection.refreshed",
            Self::RefreshFailed => "connection.refresh_failed",
            Self::NeedsReconnect => "connection.needs_reconnect",
            Self::Disconnected => "connection.disconnected",
            Self::DataDeleted => "connection.data_deleted",
            Self::Restored => "connection.restored",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ConnectionEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's id: `evt_` and 32 lowercase hex digits, random. It is the `webhook-id` of
/// every delivery of the event, so a receiver deduplicates by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// A new random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes[..]);
        Self(format!("evt_{}", hex::encode(bytes)))
    }

    /// An id read back from a store (not checked: a store returns what it was given).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A change of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionEvent {
    /// The event's id (the same on every delivery).
    pub id: EventId,
    /// What happened.
    pub kind: ConnectionEventKind,
    /// The user.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// The platform account.
    pub provider_account_id: String,
    /// When, by the service's clock.
    pub at: DateTime<Utc>,
    /// Details of the kind (see `docs/events.md`): a JSON object, never a token.
    pub payload: Value,
}

impl ConnectionEvent {
    /// An event of `kind` about the account `record`, at `at`, with the payload the kind
    /// carries: the status, and for a connection the scope and token expiry, for a
    /// refresh the expiry, for a failure the error code and the failures counted.
    pub fn of_account(
        kind: ConnectionEventKind,
        record: &AccountRecord,
        at: DateTime<Utc>,
    ) -> Self {
        let mut payload = Map::new();
        payload.insert("status".into(), json!(record.status.as_str()));
        let expiry = |p: &mut Map<String, Value>| {
            p.insert("expires_at".into(), json!(record.expires_at.map(rfc3339)));
        };
        match kind {
            ConnectionEventKind::Connected | ConnectionEventKind::Reauthorized => {
                payload.insert("scope".into(), json!(record.scope));
                expiry(&mut payload);
            }
            ConnectionEventKind::Refreshed | ConnectionEventKind::Restored => expiry(&mut payload),
            ConnectionEventKind::RefreshFailed | ConnectionEventKind::NeedsReconnect => {
                payload.insert("failures".into(), json!(record.refresh_failures));
            }
            ConnectionEventKind::Disconnected | ConnectionEventKind::DataDeleted => {}
        }
        Self {
            id: EventId::random(),
            kind,
            user_id: record.user_id,
            provider: record.provider.clone(),
            provider_account_id: record.provider_account_id.clone(),
            at,
            payload: Value::Object(payload),
        }
    }

    /// The same event with the id `id`.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// Adds `key: value` to the payload (for example the error code of a failure).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.payload {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The account's ordering key: events of one key are delivered in order.
    pub fn account_key(&self) -> String {
        format!("{}:{}", self.provider, self.provider_account_id)
    }
}

/// An event's place in its store: increasing store-wide, in commit order (an event read
/// at position `p` is never followed by a later-committed event below `p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventPosition(pub i64);

impl EventPosition {
    /// Before every event: reading after it starts at the oldest event kept.
    pub const START: Self = Self(0);
}

impl fmt::Display for EventPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event as its store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its position (the cursor to read after it).
    pub position: EventPosition,
    /// The event.
    pub event: ConnectionEvent,
}

impl StoredEvent {
    /// The JSON body of the event's webhook, in the form the Standard Webhooks
    /// specification recommends: `{"type", "timestamp", "data"}`, with `data` holding the
    /// ids, the position and the payload (see `docs/events.md`).
    pub fn webhook_body(&self) -> Vec<u8> {
        let e = &self.event;
        let body = json!({
            "type": e.kind.as_str(),
            "timestamp": rfc3339(e.at),
            "data": {
                "id": e.id.as_str(),
                "position": self.position.0,
                "user_id": e.user_id.0,
                "provider": e.provider.as_str(),
                "provider_account_id": e.provider_account_id,
                "payload": e.payload,
            },
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_use_the_dotted_form() {
        for kind in ConnectionEventKind::ALL {
            assert_eq!(ConnectionEventKind::parse(kind.as_str()), Some(kind));
            let name = kind.as_str();
            assert!(name.split('.').count() == 2, "{name}");
            assert!(
                name.chars()
                    .all(|c| c == '.' || c == '_' || c.is_ascii_alphanumeric())
            );
        }
        assert_eq!(ConnectionEventKind::parse("connection.unknown"), None);
    }

    #[test]
    fn ids_are_random_and_carry_no_dot() {
        let a = EventId::random();
        let b = EventId::random();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("evt_") && a.as_str().len() == 36);
        assert!(!a.as_str().contains('.'));
    }
}
