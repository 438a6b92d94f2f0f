//! SQL types shared by both backends, so one `table!` describes both schemas.
//!
//! - [`UtcTimestamp`]: `TIMESTAMPTZ` on PostgreSQL; fixed-width UTC text
//!   (`YYYY-MM-DD HH:MM:SS.ffffffZ`) on SQLite, so text order is time order and range
//!   scans on `expires_at` work. Both keep microseconds (finer digits are truncated).
//! - [`JsonDocument`]: `JSONB` on PostgreSQL, JSON text on SQLite.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Jsonb, Text, Timestamptz};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A UTC point in time (`TIMESTAMPTZ` / UTC text).
#[derive(
    Debug, Clone, Copy, Default, diesel::query_builder::QueryId, diesel::sql_types::SqlType,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct UtcTimestamp;

/// A JSON document (`JSONB` / JSON text).
#[derive(
    Debug, Clone, Copy, Default, diesel::query_builder::QueryId, diesel::sql_types::SqlType,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct JsonDocument;

/// The SQLite text form of a [`UtcTimestamp`].
const SQLITE_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6fZ";

/// A timestamp as stored: UTC, microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = UtcTimestamp)]
pub(crate) struct Ts(pub(crate) DateTime<Utc>);

impl Ts {
    /// Truncates to the microsecond, the precision both backends keep.
    pub(crate) fn new(t: DateTime<Utc>) -> Self {
        Self(t.trunc_subsecs(6))
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(t: DateTime<Utc>) -> Self {
        Self::new(t)
    }
}

impl From<Ts> for DateTime<Utc> {
    fn from(t: Ts) -> Self {
        t.0
    }
}

impl ToSql<UtcTimestamp, Pg> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<UtcTimestamp, Pg> for Ts {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(bytes).map(Ts)
    }
}

impl ToSql<UtcTimestamp, Sqlite> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.format(SQLITE_FORMAT).to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTimestamp, Sqlite> for Ts {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        parse_sqlite_timestamp(&text).map(Ts).ok_or_else(|| {
            format!(
                "invalid timestamp {:?}",
                text.chars().take(40).collect::<String>()
            )
            .into()
        })
    }
}

/// Parses the stored form, and for rows written by hand also RFC 3339 and
/// `YYYY-MM-DD HH:MM:SS[.f]` (taken as UTC).
fn parse_sqlite_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.fZ") {
        return Some(t.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A JSON document as stored.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = JsonDocument)]
pub(crate) struct Doc(pub(crate) serde_json::Value);

impl ToSql<JsonDocument, Pg> for Doc {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<Jsonb, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<JsonDocument, Pg> for Doc {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<Jsonb, Pg>>::from_sql(bytes).map(Doc)
    }
}

impl ToSql<JsonDocument, Sqlite> for Doc {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<JsonDocument, Sqlite> for Doc {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        serde_json::from_str(&text)
            .map(Doc)
            .map_err(|e| format!("invalid JSON in metadata: {e}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_text_is_fixed_width_and_round_trips() {
        let a = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .map(Ts::new);
        let Some(a) = a else { panic!("valid date") };
        let text = a.0.format(SQLITE_FORMAT).to_string();
        assert_eq!(text, "2026-01-02 03:04:05.000000Z");
        assert_eq!(parse_sqlite_timestamp(&text), Some(a.0));
        let b = Ts::new(a.0 + chrono::Duration::nanoseconds(1_500));
        let tb = b.0.format(SQLITE_FORMAT).to_string();
        assert_eq!(tb, "2026-01-02 03:04:05.000001Z");
        assert!(text < tb);
        assert_eq!(
            parse_sqlite_timestamp("2026-01-02T03:04:05+01:00").map(|t| t.timestamp()),
            Some(a.0.timestamp() - 3600)
        );
    }
}
