//! Settings, webhook deliveries, the audit log and maintenance: [`SystemStore`] for
//! [`SqliteStore`].

use std::path::Path;

use async_trait::async_trait;
use mesa_domain::entity::{ActivityEvent, ExternalLink, NewActivity, Setting, WebhookDelivery};
use mesa_domain::{ActivityId, IssueKey, ValidationError, WebhookDeliveryId, WebhookStatus};
use mesa_store::{
    ActivityFilter, ChainReport, Health, Page, PageRequest, Result, StoreError, SystemStore,
};
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::rows::page_of;
use crate::rows::{
    ACTIVITY_COLUMNS, ActivityRow, decode_activity, decode_cursor, encode_cursor, parse, ts,
};

/// A stored setting.
#[derive(Debug, sqlx::FromRow)]
struct SettingRow {
    key: String,
    value: String,
    secret: bool,
    updated_at: i64,
}

fn decode_setting(row: SettingRow) -> Setting {
    Setting {
        key: row.key,
        value: row.value,
        secret: row.secret,
        updated_at: ts(row.updated_at),
    }
}

/// A stored webhook delivery.
#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    source: String,
    event: String,
    delivery_id: String,
    status: String,
    note: Option<String>,
    payload: String,
    created_at: i64,
}

const DELIVERY: &str = "webhook delivery";

fn decode_delivery(row: DeliveryRow) -> Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: parse(DELIVERY, WebhookDeliveryId::parse(&row.id))?,
        source: row.source,
        event: row.event,
        delivery_id: row.delivery_id,
        status: parse(DELIVERY, WebhookStatus::parse(&row.status))?,
        note: row.note,
        payload: row.payload,
        created_at: ts(row.created_at),
    })
}

#[async_trait]
impl SystemStore for SqliteStore {
    async fn setting(&self, key: &str) -> Result<Option<Setting>> {
        let row: Option<SettingRow> =
            sqlx::query_as("SELECT key, value, secret, updated_at FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        Ok(row.map(decode_setting))
    }

    async fn settings(&self) -> Result<Vec<Setting>> {
        let rows: Vec<SettingRow> =
            sqlx::query_as("SELECT key, value, secret, updated_at FROM settings ORDER BY key")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(decode_setting).collect())
    }

    async fn put_settings(&self, settings: Vec<Setting>, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for s in &settings {
            sqlx::query(
                "INSERT INTO settings (key, value, secret, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 secret = excluded.secret, updated_at = excluded.updated_at",
            )
            .bind(&s.key)
            .bind(&s.value)
            .bind(s.secret)
            .bind(s.updated_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(map_err("setting", &s.key))?;
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_boot(&self, at: mesa_domain::Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar("INSERT INTO boots (started_at) VALUES (?) RETURNING id")
            .bind(at.as_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        u64::try_from(id)
            .map_err(|_| StoreError::backend(std::io::Error::other("negative boot id")))
    }

    async fn record_delivery(&self, d: WebhookDelivery) -> Result<WebhookDelivery> {
        let mut tx = self.write_tx().await?;
        let row: DeliveryRow = sqlx::query_as(
            "INSERT INTO webhook_deliveries (id, source, event, delivery_id, status, note, \
             payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id, source, event, delivery_id, status, note, payload, created_at",
        )
        .bind(d.id.to_string())
        .bind(&d.source)
        .bind(&d.event)
        .bind(&d.delivery_id)
        .bind(d.status.as_str())
        .bind(d.note.as_deref())
        .bind(&d.payload)
        .bind(d.created_at.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| {
            if crate::error::is_unique_violation(&err) {
                StoreError::Conflict {
                    what: format!(
                        "webhook delivery {} from {} was already received",
                        d.delivery_id, d.source
                    ),
                }
            } else {
                map_err(DELIVERY, &d.id)(err)
            }
        })?;
        tx.commit().await.map_err(backend)?;
        decode_delivery(row)
    }

    async fn settle_delivery(
        &self,
        id: WebhookDeliveryId,
        status: WebhookStatus,
        note: Option<String>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE webhook_deliveries SET status = ?, note = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(note.as_deref())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(DELIVERY, &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(DELIVERY, &id));
        }
        tx.commit().await.map_err(backend)
    }

    async fn forget_delivery(&self, id: WebhookDeliveryId) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE id = ? AND status = 'received'")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(DELIVERY, &id))?;
        tx.commit().await.map_err(backend)
    }

    async fn recent_deliveries(&self, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, source, event, delivery_id, status, note, payload, created_at \
             FROM webhook_deliveries ORDER BY created_at DESC, id DESC LIMIT (SELECT ?)",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_delivery).collect()
    }

    async fn link_external(&self, link: ExternalLink) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO external_links (source, url, issue_key, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&link.source)
        .bind(&link.url)
        .bind(link.issue_key.as_str())
        .bind(link.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::not_found("issue", &link.issue_key)
            }
            _ => map_err("external link", &link.url)(err),
        })?;
        tx.commit().await.map_err(backend)
    }

    async fn external_link(&self, source: &str, url: &str) -> Result<Option<IssueKey>> {
        let key: Option<String> =
            sqlx::query_scalar("SELECT issue_key FROM external_links WHERE source = ? AND url = ?")
                .bind(source)
                .bind(url)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        key.map(|k| parse("external link", IssueKey::parse(&k)))
            .transpose()
    }

    async fn append_activity(&self, rows: Vec<NewActivity>) -> Result<Vec<ActivityEvent>> {
        let mut tx = self.write_tx().await?;
        let stored = activity::append(&mut tx, rows).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn list_activity(
        &self,
        filter: &ActivityFilter,
        page: &PageRequest,
    ) -> Result<Page<ActivityEvent>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activity WHERE 1 = 1"
        ));
        if let Some((entity_type, entity_id)) = &filter.entity {
            qb.push(" AND entity_type = ")
                .push_bind(entity_type.clone())
                .push(" AND entity_id = ")
                .push_bind(entity_id.clone());
        }
        match filter.actor.as_deref() {
            None => {}
            // Every board token: `board:<name>`. A range rather than LIKE, so the actor index
            // serves it (';' is the character after ':').
            Some("board") => {
                qb.push(" AND actor >= 'board:' AND actor < 'board;'");
            }
            Some(actor) => {
                qb.push(" AND actor = ").push_bind(actor.to_owned());
            }
        }
        if let Some(cursor) = &page.cursor {
            let (before, _) = decode_cursor(cursor)?;
            qb.push(" AND id < ").push_bind(before);
        }
        qb.push(" ORDER BY id DESC LIMIT (SELECT ")
            .push_bind(i64::from(page.limit) + 1)
            .push(")");
        let rows: Vec<ActivityRow> = qb
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        page_of(rows, page, decode_activity, |e| encode_cursor(e.id.0, ""))
    }

    async fn activity_after(&self, after: ActivityId, limit: u32) -> Result<Vec<ActivityEvent>> {
        let rows: Vec<ActivityRow> = sqlx::query_as(
            "SELECT id, at, actor, action, entity_type, entity_id, summary, data, prev_hash, hash \
             FROM activity WHERE id > ? ORDER BY id LIMIT (SELECT ?)",
        )
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_activity).collect()
    }

    async fn verify_activity_chain(&self) -> Result<ChainReport> {
        activity::verify(&self.reader).await
    }

    async fn health(&self) -> Result<Health> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.reader)
                .await
                .map_err(backend)?;
        let known = crate::MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .count();
        Ok(Health {
            migrations_applied: u64::try_from(applied).unwrap_or(0),
            migrations_known: u64::try_from(known).unwrap_or(u64::MAX),
        })
    }

    async fn backup_to(&self, path: &Path) -> Result<()> {
        let invalid = |message: String| StoreError::Invalid(ValidationError::new("path", message));
        // An absolute path never starts with `file:`, so SQLite cannot read it as a URI.
        let target = std::path::absolute(path)
            .map_err(|e| invalid(format!("backup path {} is unusable: {e}", path.display())))?;
        let exists = tokio::fs::try_exists(&target)
            .await
            .map_err(|e| invalid(format!("backup path {} is unusable: {e}", target.display())))?;
        if exists {
            return Err(StoreError::Conflict {
                what: format!("backup target {} already exists", target.display()),
            });
        }
        let target = target
            .to_str()
            .ok_or_else(|| invalid(format!("backup path {} is not UTF-8", path.display())))?
            .to_owned();
        // VACUUM INTO writes a consistent, compacted copy of the live database as of one read
        // transaction; it runs on a reader, so writers carry on meanwhile.
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.reader)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn start_maintenance(&self) -> Result<()> {
        SqliteStore::start_checkpoints(self).await
    }

    fn data_version(&self) -> Option<Vec<u8>> {
        SqliteStore::data_version(self)
    }

    fn changes_between(&self, from: &[u8], to: &[u8]) -> Option<mesa_store::Changes> {
        SqliteStore::changes_between(self, from, to)
    }

    fn tracked_commit_pending(&self) -> bool {
        SqliteStore::tracked_commit_pending(self)
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}
