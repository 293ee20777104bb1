//! The outbox, its attempts and the outgoing-webhook subscriptions: [`OutboxStore`] for
//! [`SqliteStore`].

use async_trait::async_trait;
use mesa_domain::entity::{
    ActivityEvent, DeliveryAttempt, NewActivity, OutboxItem, OutgoingWebhook,
};
use mesa_domain::{OutboxId, OutboxStatus, Timestamp, WebhookId};
use mesa_store::{
    AttemptOutcome, OutboxFilter, OutboxStore, Page, PageRequest, Result, StoreError,
};

use crate::error::{backend, map_err};
use crate::rows::{decode_cursor, encode_cursor, json, page_of, parse, to_json, ts, ts_opt};
use crate::{SqliteStore, activity};

/// A query made of constant parts only (the column lists below), never of input.
macro_rules! sql {
    ($($t:tt)*) => { sqlx::AssertSqlSafe(format!($($t)*)) };
}

const OUTBOX: &str = "outbox_item";
const WEBHOOK: &str = "webhook";
const OUTBOX_COLUMNS: &str = "id, channel, event, payload, status, attempts, next_attempt_at, \
                              last_error, created_at, delivered_at";
const WEBHOOK_COLUMNS: &str =
    "id, url, secret, events, active, description, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: String,
    channel: String,
    event: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

fn decode_item(row: OutboxRow) -> Result<OutboxItem> {
    Ok(OutboxItem {
        id: parse(OUTBOX, OutboxId::parse(&row.id))?,
        channel: row.channel,
        event: row.event,
        payload: row.payload,
        status: parse(OUTBOX, OutboxStatus::parse(&row.status))?,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: ts(row.next_attempt_at),
        last_error: row.last_error,
        created_at: ts(row.created_at),
        delivered_at: ts_opt(row.delivered_at),
    })
}

#[derive(Debug, sqlx::FromRow)]
struct AttemptRow {
    outbox_id: String,
    attempt: i64,
    at: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

fn decode_attempt(row: AttemptRow) -> Result<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        outbox_id: parse(OUTBOX, OutboxId::parse(&row.outbox_id))?,
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        at: ts(row.at),
        status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
        error: row.error,
        duration_ms: u32::try_from(row.duration_ms).unwrap_or(u32::MAX),
    })
}

#[derive(Debug, sqlx::FromRow)]
struct WebhookRow {
    id: String,
    url: String,
    secret: String,
    events: String,
    active: bool,
    description: String,
    created_at: i64,
    updated_at: i64,
}

fn decode_webhook(row: WebhookRow) -> Result<OutgoingWebhook> {
    Ok(OutgoingWebhook {
        id: parse(WEBHOOK, WebhookId::parse(&row.id))?,
        url: row.url,
        secret: row.secret,
        events: json(WEBHOOK, "events", &row.events)?,
        active: row.active,
        description: row.description,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
    })
}

/// `prefix` as a LIKE pattern that matches it literally at the start.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The item's columns after an outcome: status, next attempt, last error, delivered at.
fn moved(
    outcome: &AttemptOutcome,
    at: Timestamp,
    current_next: Timestamp,
) -> (OutboxStatus, Timestamp, Option<String>, Option<i64>) {
    match outcome {
        AttemptOutcome::Delivered { .. } => (
            OutboxStatus::Delivered,
            current_next,
            None,
            Some(at.as_millis()),
        ),
        AttemptOutcome::Retry {
            error,
            next_attempt_at,
            ..
        } => (
            OutboxStatus::Pending,
            *next_attempt_at,
            Some(error.clone()),
            None,
        ),
        AttemptOutcome::Dead { error, .. } => {
            (OutboxStatus::Dead, current_next, Some(error.clone()), None)
        }
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_outbox(&self, items: Vec<OutboxItem>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for item in &items {
            sqlx::query(
                "INSERT INTO outbox (id, channel, event, payload, status, attempts, \
                 next_attempt_at, last_error, created_at, delivered_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(item.id.to_string())
            .bind(&item.channel)
            .bind(&item.event)
            .bind(&item.payload)
            .bind(item.status.as_str())
            .bind(i64::from(item.attempts))
            .bind(item.next_attempt_at.as_millis())
            .bind(&item.last_error)
            .bind(item.created_at.as_millis())
            .bind(item.delivered_at.map(Timestamp::as_millis))
            .execute(&mut *tx)
            .await
            .map_err(map_err(OUTBOX, &item.id))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn due_outbox(
        &self,
        channel_prefix: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>> {
        let rows: Vec<OutboxRow> = sqlx::query_as(sql!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' \
             AND channel LIKE ? ESCAPE '\\' AND next_attempt_at <= ? \
             ORDER BY next_attempt_at, id LIMIT (SELECT ?)"
        ))
        .bind(like_prefix(channel_prefix))
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_item).collect()
    }

    async fn next_outbox_due(&self, channel_prefix: &str) -> Result<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending' \
             AND channel LIKE ? ESCAPE '\\'",
        )
        .bind(like_prefix(channel_prefix))
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(ts_opt(next))
    }

    async fn record_outbox_attempt(
        &self,
        id: OutboxId,
        attempt: DeliveryAttempt,
        outcome: AttemptOutcome,
    ) -> Result<OutboxItem> {
        let mut tx = self.write_tx().await?;
        let row: OutboxRow =
            sqlx::query_as(sql!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?"))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .ok_or_else(|| StoreError::not_found(OUTBOX, &id))?;
        let current = decode_item(row)?;
        if current.status != OutboxStatus::Pending {
            return Err(StoreError::Conflict {
                what: format!("outbox item {id} is {}, not pending", current.status),
            });
        }
        let number = current.attempts + 1;
        sqlx::query(
            "INSERT INTO outbox_attempts (outbox_id, attempt, at, status_code, error, \
             duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(i64::from(number))
        .bind(attempt.at.as_millis())
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.error)
        .bind(i64::from(attempt.duration_ms))
        .execute(&mut *tx)
        .await
        .map_err(map_err(OUTBOX, &id))?;
        let (status, next, error, delivered) = moved(&outcome, attempt.at, current.next_attempt_at);
        let row: OutboxRow = sqlx::query_as(sql!(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, \
             delivered_at = ? WHERE id = ? RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(status.as_str())
        .bind(i64::from(number))
        .bind(next.as_millis())
        .bind(error)
        .bind(delivered)
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err(OUTBOX, &id))?;
        tx.commit().await.map_err(backend)?;
        decode_item(row)
    }

    async fn outbox_item(&self, id: OutboxId) -> Result<Option<OutboxItem>> {
        let row: Option<OutboxRow> =
            sqlx::query_as(sql!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?"))
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(decode_item).transpose()
    }

    async fn list_outbox(
        &self,
        filter: &OutboxFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboxItem>> {
        let after = page
            .cursor
            .as_deref()
            .map(decode_cursor)
            .transpose()?
            .map(|(_, id)| id);
        let rows: Vec<OutboxRow> = sqlx::query_as(sql!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox \
             WHERE (?1 IS NULL OR channel = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT (SELECT ?4)"
        ))
        .bind(filter.channel.as_deref())
        .bind(filter.status.map(OutboxStatus::as_str))
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        page_of(rows, page, decode_item, |item| {
            encode_cursor(0, &item.id.to_string())
        })
    }

    async fn outbox_attempts(&self, id: OutboxId) -> Result<Vec<DeliveryAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT outbox_id, attempt, at, status_code, error, duration_ms \
             FROM outbox_attempts WHERE outbox_id = ? ORDER BY attempt",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_attempt).collect()
    }

    async fn create_webhook(
        &self,
        hook: &OutgoingWebhook,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, url, secret, events, active, description, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hook.id.to_string())
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(to_json(&hook.events))
        .bind(hook.active)
        .bind(&hook.description)
        .bind(hook.created_at.as_millis())
        .bind(hook.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(WEBHOOK, &hook.id))?;
        let rows = activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(rows)
    }

    async fn update_webhook(
        &self,
        hook: &OutgoingWebhook,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET url = ?, secret = ?, events = ?, active = ?, description = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(to_json(&hook.events))
        .bind(hook.active)
        .bind(&hook.description)
        .bind(hook.updated_at.as_millis())
        .bind(hook.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err(WEBHOOK, &hook.id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(WEBHOOK, &hook.id));
        }
        let rows = activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(rows)
    }

    async fn delete_webhook(
        &self,
        id: WebhookId,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(WEBHOOK, &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(WEBHOOK, &id));
        }
        let rows = activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(rows)
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<OutgoingWebhook>> {
        let row: Option<WebhookRow> =
            sqlx::query_as(sql!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?"))
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(decode_webhook).transpose()
    }

    async fn webhooks(&self) -> Result<Vec<OutgoingWebhook>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(sql!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_webhook).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("webhook:"), "webhook:%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
