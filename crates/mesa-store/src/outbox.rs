//! The durable outbox of outgoing deliveries and the outgoing-webhook subscriptions
//! (SPEC §11.2): what the integrations deliver survives a restart because it is queued here,
//! in the same database, before anything is sent.

use async_trait::async_trait;
use mesa_domain::entity::{
    ActivityEvent, DeliveryAttempt, NewActivity, OutboxItem, OutgoingWebhook,
};
use mesa_domain::{OutboxId, OutboxStatus, Timestamp, WebhookId};

use crate::{Page, PageRequest, Result};

/// What became of one delivery attempt; the store writes the attempt row and moves the item
/// in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver accepted it: the item is `delivered`.
    Delivered {
        /// The receiver's HTTP status.
        status_code: Option<u16>,
    },
    /// Failed, try again at `next_attempt_at`: the item stays `pending`.
    Retry {
        /// The receiver's HTTP status, if it answered.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: Timestamp,
    },
    /// Failed for good (a dead letter): the item is `dead`.
    Dead {
        /// The receiver's HTTP status, if it answered.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

impl AttemptOutcome {
    /// The HTTP status of the attempt, if the receiver answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            AttemptOutcome::Delivered { status_code }
            | AttemptOutcome::Retry { status_code, .. }
            | AttemptOutcome::Dead { status_code, .. } => *status_code,
        }
    }

    /// The error of the attempt, if it failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            AttemptOutcome::Delivered { .. } => None,
            AttemptOutcome::Retry { error, .. } | AttemptOutcome::Dead { error, .. } => Some(error),
        }
    }
}

/// Which outbox items a delivery-log query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFilter {
    /// Only this channel (exact, e.g. `discord` or `webhook:<uuid>`).
    pub channel: Option<String>,
    /// Only items in this state.
    pub status: Option<OutboxStatus>,
}

/// Storage of the outbox and of outgoing-webhook subscriptions.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues items (status `pending`, made by the caller) in one transaction.
    async fn enqueue_outbox(&self, items: Vec<OutboxItem>) -> Result<()>;
    /// Pending items whose channel starts with `channel_prefix` and whose next attempt is due
    /// at `now`, oldest first.
    async fn due_outbox(
        &self,
        channel_prefix: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>>;
    /// The earliest `next_attempt_at` of the pending items of channels starting with
    /// `channel_prefix`, if there are any.
    async fn next_outbox_due(&self, channel_prefix: &str) -> Result<Option<Timestamp>>;
    /// Records an attempt on a pending item and moves the item by its outcome, in one
    /// transaction; returns the item after. `NotFound` if there is no such item, `Conflict`
    /// if it is no longer pending.
    async fn record_outbox_attempt(
        &self,
        id: OutboxId,
        attempt: DeliveryAttempt,
        outcome: AttemptOutcome,
    ) -> Result<OutboxItem>;
    /// One item.
    async fn outbox_item(&self, id: OutboxId) -> Result<Option<OutboxItem>>;
    /// Items matching the filter, newest first (the delivery log).
    async fn list_outbox(
        &self,
        filter: &OutboxFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboxItem>>;
    /// The attempts of an item, oldest first.
    async fn outbox_attempts(&self, id: OutboxId) -> Result<Vec<DeliveryAttempt>>;

    /// Stores a new subscription, with its audit rows; returns the rows as stored.
    async fn create_webhook(
        &self,
        hook: &OutgoingWebhook,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>>;
    /// Replaces a subscription, with its audit rows; `NotFound` if it does not exist.
    async fn update_webhook(
        &self,
        hook: &OutgoingWebhook,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>>;
    /// Deletes a subscription, with its audit rows; `NotFound` if it does not exist. Its
    /// queued items stay in the log (they are no longer delivered).
    async fn delete_webhook(
        &self,
        id: WebhookId,
        activity: Vec<NewActivity>,
    ) -> Result<Vec<ActivityEvent>>;
    /// One subscription.
    async fn webhook(&self, id: WebhookId) -> Result<Option<OutgoingWebhook>>;
    /// Every subscription, oldest first.
    async fn webhooks(&self) -> Result<Vec<OutgoingWebhook>>;
}
