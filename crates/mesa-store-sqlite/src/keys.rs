//! API keys and board tokens: [`KeyStore`] for [`SqliteStore`]. Only the SHA-256 hash of a key
//! is stored; the raw key never reaches this module.

use async_trait::async_trait;
use mesa_domain::entity::{ApiKey, NewActivity};
use mesa_domain::{AgentId, ApiKeyId, ApiKeyKind, RunId, Timestamp};
use mesa_store::{Changes, KeyStore, NewApiKey, Result, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::rows::{json, ms_opt, parse, to_json, ts, ts_opt};

const KEY: &str = "api key";

/// `touch_key` records uses at this granularity: a key used again within a minute of its
/// recorded last use is not written again, so authenticating a busy agent costs no write.
const TOUCH_GRANULARITY_MS: i64 = 60_000;

macro_rules! key_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, kind, prefix, hash, agent_id, run_id, name, scopes, expires_at, \
             revoked_at, last_used_at, created_at FROM api_keys ",
            $rest
        )
    };
}

/// A stored key.
#[derive(Debug, sqlx::FromRow)]
struct KeyRow {
    id: String,
    kind: String,
    prefix: String,
    hash: String,
    agent_id: Option<String>,
    run_id: Option<String>,
    name: String,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    created_at: i64,
}

fn decode_key(row: KeyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: parse(KEY, ApiKeyId::parse(&row.id))?,
        kind: parse(KEY, ApiKeyKind::parse(&row.kind))?,
        prefix: row.prefix,
        hash: row.hash,
        agent_id: row
            .agent_id
            .map(|a| parse(KEY, AgentId::parse(&a)))
            .transpose()?,
        run_id: row
            .run_id
            .map(|r| parse(KEY, RunId::parse(&r)))
            .transpose()?,
        name: row.name,
        scopes: json(KEY, "scopes", &row.scopes)?,
        expires_at: ts_opt(row.expires_at),
        revoked_at: ts_opt(row.revoked_at),
        last_used_at: ts_opt(row.last_used_at),
        created_at: ts(row.created_at),
    })
}

async fn key_on(conn: &mut SqliteConnection, id: ApiKeyId) -> Result<ApiKey> {
    let row: KeyRow = sqlx::query_as(key_select!("WHERE id = ?"))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err(KEY, &id))?;
    decode_key(row)
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, new: NewApiKey) -> Result<ApiKey> {
        let NewApiKey { key, activity } = new;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, kind, prefix, hash, agent_id, run_id, name, scopes, \
             expires_at, revoked_at, last_used_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.id.to_string())
        .bind(key.kind.as_str())
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(key.agent_id.map(|a| a.to_string()))
        .bind(key.run_id.map(|r| r.to_string()))
        .bind(&key.name)
        .bind(to_json(&key.scopes))
        .bind(ms_opt(key.expires_at))
        .bind(ms_opt(key.revoked_at))
        .bind(ms_opt(key.last_used_at))
        .bind(key.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(KEY, &key.id))?;
        activity::append(&mut tx, activity).await?;
        let stored = key_on(&mut tx, key.id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn key(&self, id: ApiKeyId) -> Result<Option<ApiKey>> {
        let row: Option<KeyRow> = sqlx::query_as(key_select!("WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.map(decode_key).transpose()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row: Option<KeyRow> = sqlx::query_as(key_select!("WHERE hash = ?"))
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.map(decode_key).transpose()
    }

    async fn touch_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
        let mut tracked = self.tracked_write_tx().await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 \
             AND (last_used_at IS NULL OR last_used_at <= ?1 - ?3)",
        )
        .bind(at.as_millis())
        .bind(id.to_string())
        .bind(TOUCH_GRANULARITY_MS)
        .execute(&mut *tracked.tx)
        .await
        .map_err(map_err(KEY, &id))?;
        // Only this key's row changed.
        let mut changes = Changes::default();
        changes.keys.add(id);
        self.commit_tracked(tracked, changes).await
    }

    async fn revoke_key(
        &self,
        id: ApiKeyId,
        at: Timestamp,
        activity: Vec<NewActivity>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Revoking twice keeps the first revocation time.
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(at.as_millis())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err(KEY, &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(KEY, &id));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_keys(&self, agent: Option<AgentId>) -> Result<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(key_select!(
            "WHERE kind <> 'run' AND (?1 IS NULL OR agent_id = ?1) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(agent.map(|a| a.to_string()))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_key).collect()
    }
}
