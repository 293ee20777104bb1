//! The durable outbox of outgoing deliveries and the outgoing-webhook subscriptions
//! (SPEC §11.2). The integrations in `mesa-http` queue what they will deliver here first
//! ([`Mesa::enqueue_outbox`]), then deliver what is due ([`Mesa::due_outbox`]) and record each
//! attempt ([`Mesa::record_outbox_attempt`]), so a restart loses nothing. Subscriptions are
//! configuration: board only, with audit rows, published as `activity` events (entity type
//! `webhook`) so the delivery side knows to reload them.

use mesa_domain::entity::{DeliveryAttempt, OutboxItem, OutgoingWebhook};
use mesa_domain::{Actor, OutboxId, OutboxStatus, Timestamp, ValidationError, WebhookId};
use mesa_store::{Page, PageRequest};

pub use mesa_store::{AttemptOutcome, OutboxFilter};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// The event names an outgoing webhook may subscribe to: every domain event but `run_output`
/// (too chatty, and live output is for followers of the run), plus `daily_summary`.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "issue_created",
    "issue_updated",
    "issue_deleted",
    "comment_created",
    "run_queued",
    "run_started",
    "run_finished",
    "agent_updated",
    "approval_created",
    "approval_resolved",
    "work_block_updated",
    "budget_exceeded",
    "scheduler_paused",
    "scheduler_resumed",
    "activity",
    "board_notification",
    "run_cancel_requested",
];

/// The longest URL, description and secret accepted.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;
const MAX_SECRET: usize = 1024;

/// Something to deliver on a channel (`telegram`, `discord`, `webhook:<uuid>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    /// The channel.
    pub channel: String,
    /// The event name.
    pub event: String,
    /// The JSON payload, as text.
    pub payload: String,
}

/// A new outgoing-webhook subscription, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where to POST (http or https).
    pub url: String,
    /// The signing secret (non-empty).
    pub secret: String,
    /// Event names; empty means all.
    pub events: Vec<String>,
    /// Whether deliveries are made (default true at the edges).
    pub active: bool,
    /// A note.
    pub description: String,
}

/// A change to a subscription; `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New secret (write-only).
    pub secret: Option<String>,
    /// New event filter.
    pub events: Option<Vec<String>>,
    /// Switch deliveries on or off.
    pub active: Option<bool>,
    /// New note.
    pub description: Option<String>,
}

/// One outbox item with its attempts (the delivery log's detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The item.
    pub item: OutboxItem,
    /// Its attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

fn check_url(url: &str) -> Result<String, ValidationError> {
    let url = url.trim();
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
    if !scheme_ok || url.len() > MAX_URL || url.chars().any(char::is_whitespace) {
        return Err(ValidationError::new(
            "url",
            format!("url must be an http:// or https:// URL of at most {MAX_URL} characters"),
        ));
    }
    Ok(url.to_owned())
}

fn check_secret(secret: &str) -> Result<String, ValidationError> {
    if secret.trim().is_empty() || secret.len() > MAX_SECRET {
        return Err(ValidationError::new(
            "secret",
            format!("secret must be non-empty and at most {MAX_SECRET} bytes"),
        ));
    }
    Ok(secret.to_owned())
}

fn check_events(events: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        let e = e.trim();
        if !WEBHOOK_EVENTS.contains(&e) {
            return Err(ValidationError::new(
                "events",
                format!(
                    "events: {:?} is not an event name; names are {}",
                    e.chars().take(64).collect::<String>(),
                    WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    Ok(out)
}

fn check_description(text: &str) -> Result<String, ValidationError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(ValidationError::new(
            "description",
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// What an audit row shows of a subscription (never its secret).
fn shown(hook: &OutgoingWebhook) -> serde_json::Value {
    serde_json::json!({
        "url": hook.url,
        "events": hook.events,
        "active": hook.active,
        "description": hook.description,
    })
}

impl Mesa {
    /// Queues deliveries (pending, due now) in one transaction and returns them.
    pub async fn enqueue_outbox(&self, items: Vec<NewOutboxItem>) -> Result<Vec<OutboxItem>> {
        let now = self.now();
        let items: Vec<OutboxItem> = items
            .into_iter()
            .map(|n| OutboxItem {
                id: Self::new_id(),
                channel: n.channel,
                event: n.event,
                payload: n.payload,
                status: OutboxStatus::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
                delivered_at: None,
            })
            .collect();
        self.inner.store.enqueue_outbox(items.clone()).await?;
        Ok(items)
    }

    /// Pending deliveries of the channels starting with `channel_prefix` that are due now,
    /// oldest first.
    pub async fn due_outbox(&self, channel_prefix: &str, limit: u32) -> Result<Vec<OutboxItem>> {
        Ok(self
            .inner
            .store
            .due_outbox(channel_prefix, self.now(), limit)
            .await?)
    }

    /// When the next pending delivery of the channels starting with `channel_prefix` is due.
    pub async fn next_outbox_due(&self, channel_prefix: &str) -> Result<Option<Timestamp>> {
        Ok(self.inner.store.next_outbox_due(channel_prefix).await?)
    }

    /// Records an attempt started at `at` that took `duration_ms`, and moves the item by its
    /// outcome, in one transaction; returns the item after.
    pub async fn record_outbox_attempt(
        &self,
        id: OutboxId,
        at: Timestamp,
        duration_ms: u32,
        outcome: AttemptOutcome,
    ) -> Result<OutboxItem> {
        let attempt = DeliveryAttempt {
            outbox_id: id,
            attempt: 0, // numbered by the store
            at,
            status_code: outcome.status_code(),
            error: outcome.error().map(str::to_owned),
            duration_ms,
        };
        Ok(self
            .inner
            .store
            .record_outbox_attempt(id, attempt, outcome)
            .await?)
    }

    /// The delivery log (board only): items matching the filter, newest first.
    pub async fn outbox_log(
        &self,
        actor: &Actor,
        filter: &OutboxFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboxItem>> {
        Self::require_board(actor, "read the delivery log")?;
        Ok(self.inner.store.list_outbox(filter, page).await?)
    }

    /// One delivery with its attempts (board only).
    pub async fn outbox_entry(&self, actor: &Actor, id: OutboxId) -> Result<OutboxEntry> {
        Self::require_board(actor, "read the delivery log")?;
        let item = self
            .inner
            .store
            .outbox_item(id)
            .await?
            .ok_or_else(|| mesa_store::StoreError::not_found("outbox_item", &id))?;
        let attempts = self.inner.store.outbox_attempts(id).await?;
        Ok(OutboxEntry { item, attempts })
    }

    /// Every outgoing-webhook subscription (board only), oldest first.
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<OutgoingWebhook>> {
        Self::require_board(actor, "read outgoing webhooks")?;
        self.webhooks_for_delivery().await
    }

    /// Every subscription, for the delivery side (no actor: the integrations run as the system).
    pub async fn webhooks_for_delivery(&self) -> Result<Vec<OutgoingWebhook>> {
        Ok(self.inner.store.webhooks().await?)
    }

    /// One subscription (board only).
    pub async fn webhook(&self, actor: &Actor, id: WebhookId) -> Result<OutgoingWebhook> {
        Self::require_board(actor, "read outgoing webhooks")?;
        self.webhook_for_delivery(id).await
    }

    /// One subscription, for the delivery side; `NotFound` if there is none.
    pub async fn webhook_for_delivery(&self, id: WebhookId) -> Result<OutgoingWebhook> {
        self.inner
            .store
            .webhook(id)
            .await?
            .ok_or_else(|| CoreError::from(mesa_store::StoreError::not_found("webhook", &id)))
    }

    /// Creates a subscription (board only), validated: `url` http(s), `secret` non-empty,
    /// `events` known names.
    pub async fn create_webhook(&self, actor: &Actor, new: NewWebhook) -> Result<OutgoingWebhook> {
        Self::require_board(actor, "configure outgoing webhooks")?;
        let now = self.now();
        let hook = OutgoingWebhook {
            id: Self::new_id(),
            url: check_url(&new.url)?,
            secret: check_secret(&new.secret)?,
            events: check_events(&new.events)?,
            active: new.active,
            description: check_description(&new.description)?,
            created_at: now,
            updated_at: now,
        };
        let row = self.activity(
            actor,
            "webhook.created",
            "webhook",
            hook.id.to_string(),
            format!("outgoing webhook to {} created", hook.url),
            shown(&hook),
        );
        let rows = self.inner.store.create_webhook(&hook, vec![row]).await?;
        self.publish_activity(rows);
        Ok(hook)
    }

    /// Changes a subscription (board only), validated like a new one.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<OutgoingWebhook> {
        Self::require_board(actor, "configure outgoing webhooks")?;
        let mut hook = self.webhook_for_delivery(id).await?;
        if let Some(url) = &patch.url {
            hook.url = check_url(url)?;
        }
        if let Some(secret) = &patch.secret {
            hook.secret = check_secret(secret)?;
        }
        if let Some(events) = &patch.events {
            hook.events = check_events(events)?;
        }
        if let Some(active) = patch.active {
            hook.active = active;
        }
        if let Some(text) = &patch.description {
            hook.description = check_description(text)?;
        }
        hook.updated_at = self.now();
        let mut data = shown(&hook);
        data["secret_changed"] = serde_json::Value::Bool(patch.secret.is_some());
        let row = self.activity(
            actor,
            "webhook.updated",
            "webhook",
            id.to_string(),
            format!("outgoing webhook to {} changed", hook.url),
            data,
        );
        let rows = self.inner.store.update_webhook(&hook, vec![row]).await?;
        self.publish_activity(rows);
        Ok(hook)
    }

    /// Deletes a subscription (board only). Its queued deliveries stay in the log, undelivered.
    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        Self::require_board(actor, "configure outgoing webhooks")?;
        let hook = self.webhook_for_delivery(id).await?;
        let row = self.activity(
            actor,
            "webhook.deleted",
            "webhook",
            id.to_string(),
            format!("outgoing webhook to {} deleted", hook.url),
            shown(&hook),
        );
        let rows = self.inner.store.delete_webhook(id, vec![row]).await?;
        self.publish_activity(rows);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https() {
        assert!(check_url("https://example.test/hook").is_ok());
        assert!(check_url("HTTP://example.test").is_ok());
        for bad in ["ftp://x", "example.test", "http://", "http://a b", ""] {
            assert_eq!(check_url(bad).unwrap_err().field, "url", "{bad}");
        }
    }

    #[test]
    fn events_must_be_known_and_are_deduplicated() {
        let ok = check_events(&["issue_created".into(), "issue_created".into()]).unwrap();
        assert_eq!(ok, vec!["issue_created".to_owned()]);
        assert_eq!(
            check_events(&["run_output".into()]).unwrap_err().field,
            "events"
        );
        assert!(check_events(&[]).unwrap().is_empty());
    }

    #[test]
    fn secrets_must_not_be_blank() {
        assert_eq!(check_secret("  ").unwrap_err().field, "secret");
        assert!(check_secret("k").is_ok());
    }
}
