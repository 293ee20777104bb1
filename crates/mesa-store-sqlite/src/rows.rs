//! Helpers to turn stored columns back into domain values, and row types shared by modules.
//!
//! Stored values were valid when written; if one no longer parses the database was edited by
//! hand or is corrupt, and the read fails with [`StoreError::Corrupt`] instead of panicking.

use mesa_domain::entity::ActivityEvent;
use mesa_domain::{ActivityId, Timestamp, ValidationError};
use mesa_store::{Result, StoreError};
use serde::de::DeserializeOwned;

/// Milliseconds to a timestamp.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Optional milliseconds to an optional timestamp.
pub(crate) fn ts_opt(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp::from_millis)
}

/// Optional timestamp to optional milliseconds.
pub(crate) fn ms_opt(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_millis)
}

/// Parses a stored value with a domain parser, mapping failure to `Corrupt`.
pub(crate) fn parse<T>(
    entity: &'static str,
    result: std::result::Result<T, ValidationError>,
) -> Result<T> {
    result.map_err(|source| StoreError::Corrupt { entity, source })
}

/// Decodes stored JSON, mapping failure to `Corrupt`.
pub(crate) fn json<T: DeserializeOwned>(
    entity: &'static str,
    field: &'static str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        entity,
        source: ValidationError::new(field, format!("{field} holds invalid JSON: {e}")),
    })
}

/// Encodes a value as JSON text for storage.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values serialize to JSON")
}

/// A stored activity row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ActivityRow {
    pub(crate) id: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) entity_type: String,
    pub(crate) entity_id: String,
    pub(crate) summary: String,
    pub(crate) data: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// The columns of [`ActivityRow`], for SELECTs.
pub(crate) const ACTIVITY_COLUMNS: &str =
    "id, at, actor, action, entity_type, entity_id, summary, data, prev_hash, hash";

/// A stored activity row to a domain event.
pub(crate) fn decode_activity(row: ActivityRow) -> Result<ActivityEvent> {
    Ok(ActivityEvent {
        id: ActivityId(row.id),
        at: ts(row.at),
        actor: row.actor,
        action: row.action,
        entity_type: row.entity_type,
        entity_id: row.entity_id,
        summary: row.summary,
        data: json("activity", "data", &row.data)?,
        prev_hash: row.prev_hash,
        hash: row.hash,
    })
}

/// Encodes a page cursor: an opaque `<sort key>|<id>` pair, base-16 so it is URL-safe.
pub(crate) fn encode_cursor(sort: i64, id: &str) -> String {
    hex::encode(format!("{sort}|{id}"))
}

/// Decodes a cursor made by [`encode_cursor`]; a malformed one is a validation error on `cursor`.
pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, String)> {
    let bad = || {
        StoreError::Invalid(ValidationError::new(
            "cursor",
            "cursor is not one this server issued",
        ))
    };
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (sort, id) = text.split_once('|').ok_or_else(bad)?;
    Ok((sort.parse().map_err(|_| bad())?, id.to_owned()))
}

/// Turns rows fetched with `LIMIT page.limit + 1` into a page: decodes them, keeps `limit`, and
/// makes the next cursor from the last kept item when there was one more.
pub(crate) fn page_of<R, T>(
    rows: Vec<R>,
    page: &mesa_store::PageRequest,
    decode: impl FnMut(R) -> Result<T>,
    cursor: impl Fn(&T) -> String,
) -> Result<mesa_store::Page<T>> {
    let limit = page.limit as usize;
    let mut items = rows.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Ok(mesa_store::Page { items, next_cursor })
}
