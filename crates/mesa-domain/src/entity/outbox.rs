//! The outbox of outgoing deliveries (notifications to Telegram and Discord, events to outgoing
//! webhooks) and the outgoing-webhook subscriptions (SPEC §11.2).

use crate::{OutboxId, OutboxStatus, Timestamp, WebhookId};

/// One queued outgoing delivery. It survives restarts: the delivery loops read what is due from
/// storage, not from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Identity (also the `X-Mesa-Delivery` header, stable across retries).
    pub id: OutboxId,
    /// `telegram`, `discord` or `webhook:<webhook uuid>`.
    pub channel: String,
    /// The event name (`approval_created`, `daily_summary`, ...).
    pub event: String,
    /// The JSON payload, as text.
    pub payload: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (meaningful while pending).
    pub next_attempt_at: Timestamp,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
}

/// One attempt at delivering an [`OutboxItem`] (the delivery log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The item.
    pub outbox_id: OutboxId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it was made.
    pub at: Timestamp,
    /// The HTTP status the receiver answered, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u32,
}

/// An outgoing-webhook subscription: every domain event its filter matches is POSTed to `url`,
/// signed with `secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingWebhook {
    /// Identity.
    pub id: WebhookId,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The HMAC-SHA256 key of the signature. Write-only: never shown or serialized.
    pub secret: String,
    /// Event names delivered; empty means all.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub active: bool,
    /// A note for people.
    pub description: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl OutgoingWebhook {
    /// The outbox channel of this subscription: `webhook:<id>`.
    pub fn channel(&self) -> String {
        format!("{WEBHOOK_CHANNEL_PREFIX}{}", self.id)
    }

    /// Whether this subscription wants events named `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.active && (self.events.is_empty() || self.events.iter().any(|e| e == event))
    }
}

impl std::fmt::Debug for OutgoingWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"[REDACTED]")
            .field("events", &self.events)
            .field("active", &self.active)
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The prefix of outgoing-webhook outbox channels (`webhook:<uuid>`).
pub const WEBHOOK_CHANNEL_PREFIX: &str = "webhook:";

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str], active: bool) -> OutgoingWebhook {
        OutgoingWebhook {
            id: WebhookId::from_uuid(uuid::Uuid::nil()),
            url: "http://x".into(),
            secret: "s3cret".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            active,
            description: String::new(),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn an_empty_filter_wants_everything_and_inactive_wants_nothing() {
        assert!(hook(&[], true).wants("issue_created"));
        assert!(hook(&["issue_created"], true).wants("issue_created"));
        assert!(!hook(&["issue_created"], true).wants("comment_created"));
        assert!(!hook(&[], false).wants("issue_created"));
    }

    #[test]
    fn debug_hides_the_secret_and_the_channel_names_the_id() {
        let h = hook(&[], true);
        assert!(!format!("{h:?}").contains("s3cret"));
        assert_eq!(h.channel(), format!("webhook:{}", uuid::Uuid::nil()));
    }
}
