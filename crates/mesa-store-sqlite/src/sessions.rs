//! Dashboard sessions and one-time login links: [`SessionStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mesa_domain::entity::Session;
use mesa_domain::{ApiKeyId, Timestamp};
use mesa_store::{Result, SessionStore};

use crate::SqliteStore;
use crate::error::{backend, map_err};
use crate::rows::{parse, ts};

const SESSION: &str = "session";

macro_rules! columns {
    () => {
        "hash, one_time, key_id, csrf, created_at, expires_at, last_seen_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    hash: String,
    one_time: bool,
    key_id: String,
    csrf: String,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
}

fn decode(row: SessionRow) -> Result<Session> {
    Ok(Session {
        key_id: parse(SESSION, ApiKeyId::parse(&row.key_id))?,
        hash: row.hash,
        one_time: row.one_time,
        csrf: row.csrf,
        created_at: ts(row.created_at),
        expires_at: ts(row.expires_at),
        last_seen_at: ts(row.last_seen_at),
    })
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: Session) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO sessions (hash, one_time, key_id, csrf, created_at, expires_at, \
             last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.hash)
        .bind(session.one_time)
        .bind(session.key_id.to_string())
        .bind(&session.csrf)
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .bind(session.last_seen_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(SESSION, &session.key_id))?;
        tx.commit().await.map_err(backend)
    }

    async fn session_by_hash(&self, hash: &str) -> Result<Option<Session>> {
        let row: Option<SessionRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE hash = ?"
        ))
        .bind(hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(decode).transpose()
    }

    async fn touch_session(&self, hash: &str, seen: Timestamp, expires: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE hash = ?")
            .bind(seen.as_millis())
            .bind(expires.as_millis())
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn take_session(&self, hash: &str) -> Result<Option<Session>> {
        let mut tx = self.write_tx().await?;
        let row: Option<SessionRow> = sqlx::query_as(concat!(
            "DELETE FROM sessions WHERE hash = ? RETURNING ",
            columns!()
        ))
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        row.map(decode).transpose()
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }
}
