//! The hash-chained audit log: append inside a write transaction, read, and verify.

use mesa_domain::ActivityId;
use mesa_domain::entity::{ActivityEvent, GENESIS_HASH, NewActivity};
use mesa_store::{ChainReport, Result};
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::error::backend;
use crate::rows::{ActivityRow, decode_activity};

/// SHA-256 hex of a row's chain input.
pub(crate) fn row_hash(row: &NewActivity, id: ActivityId, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(row.chain_input(id, prev_hash)))
}

/// Appends `rows` in order inside the caller's write transaction and returns them as stored.
/// The caller holds the write lock (`BEGIN IMMEDIATE`), so the chain cannot fork.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    rows: Vec<NewActivity>,
) -> Result<Vec<ActivityEvent>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT id, hash FROM activity ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let (mut last_id, mut prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = ActivityId(last_id + 1);
        let hash = row_hash(&row, id, &prev_hash);
        out.push(ActivityEvent {
            id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            summary: row.summary,
            data: row.data,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
        last_id = id.0;
    }
    // One statement for all rows (at most 10 parameters a row, far below SQLite's limit for the
    // batches Mesa writes).
    for chunk in out.chunks(1000) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO activity (id, at, actor, action, entity_type, entity_id, summary, data, \
             prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.id.0)
                .push_bind(e.at.as_millis())
                .push_bind(e.actor.clone())
                .push_bind(e.action.clone())
                .push_bind(e.entity_type.clone())
                .push_bind(e.entity_id.clone())
                .push_bind(e.summary.clone())
                .push_bind(e.data.to_string())
                .push_bind(e.prev_hash.clone())
                .push_bind(e.hash.clone());
        });
        qb.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(out)
}

/// Walks the whole log in id order, in batches, checking each row's link and hash.
pub(crate) async fn verify(pool: &SqlitePool) -> Result<ChainReport> {
    const BATCH: i64 = 5_000;
    let mut after = 0_i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut checked = 0_u64;
    loop {
        let rows: Vec<ActivityRow> = sqlx::query_as(
            "SELECT id, at, actor, action, entity_type, entity_id, summary, data, prev_hash, hash \
             FROM activity WHERE id > $1 ORDER BY id LIMIT (SELECT $2)",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(pool)
        .await
        .map_err(backend)?;
        if rows.is_empty() {
            return Ok(ChainReport {
                checked,
                first_bad: None,
            });
        }
        for row in rows {
            let id = ActivityId(row.id);
            let stored_hash = row.hash.clone();
            let stored_prev = row.prev_hash.clone();
            let ok = match decode_activity(row) {
                Ok(event) => {
                    stored_prev == prev_hash
                        && row_hash(&event.content(), id, &prev_hash) == stored_hash
                }
                Err(_) => false,
            };
            if !ok {
                return Ok(ChainReport {
                    checked,
                    first_bad: Some(id),
                });
            }
            checked += 1;
            prev_hash = stored_hash;
            after = id.0;
        }
    }
}
