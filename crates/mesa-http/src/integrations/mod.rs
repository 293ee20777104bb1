//! Integrations with other services (SPEC §11): everything that speaks HTTP to another service.
//!
//! The **hub** ([`start`]) runs next to the scheduler:
//!
//! - the **enqueuer** ([`hub`]) listens to the core's event bus and turns events into outbox
//!   items: [`Notification`]s for `telegram` and `discord` (approvals for the board, blocks
//!   ready to ship, budget pauses, alerts; the daily summary from [`summary`]) and, for every
//!   outgoing webhook whose filter matches, the event in an envelope (`webhook:<uuid>`);
//! - one **delivery loop** per channel ([`delivery::run`]) over a [`Sink`]: it reads what is due
//!   from the durable outbox (so nothing is lost across a restart), asks the sink to deliver it,
//!   and records the attempt, backing off exponentially ([`delivery::retry_delay`]) and giving
//!   up after a number of attempts (a dead letter). Feature flags are read live on every turn:
//!   with a channel's flag off nothing new is queued for it and nothing is delivered; what was
//!   queued stays pending.
//!
//! A new channel plugs in with a [`Sink`] and one [`Hub::spawn`] call in [`start`]; it receives
//! the [`Notification`] JSON as the item's payload. Anything may queue deliveries through
//! [`Hub::enqueue`], which also wakes the loops at once.

pub mod delivery;
pub mod discord;
pub mod github;
pub mod hub;
pub mod incoming;
pub mod summary;
pub mod telegram;
pub mod webhooks;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesa_core::domain::entity::OutboxItem;
use mesa_core::domain::{ApprovalId, WorkBlockId};
use mesa_core::{Mesa, NewOutboxItem};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

/// The channel of Telegram notifications.
pub const TELEGRAM: &str = "telegram";
/// The channel of Discord notifications.
pub const DISCORD: &str = "discord";
/// The prefix of the channels of outgoing webhooks (`webhook:<uuid>`).
pub const WEBHOOK_PREFIX: &str = mesa_core::domain::entity::WEBHOOK_CHANNEL_PREFIX;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An approval awaits the board (`approval_id` is set: Telegram shows buttons).
    ApprovalRequested,
    /// A work block is ready to ship; carries its ship approval (`approval_id`, buttons) and
    /// `work_block_id`.
    WorkBlockReady,
    /// An agent hit its budget and was paused.
    BudgetPaused,
    /// Something needs attention: a runaway guard tripped, an issue blocked, an escalation.
    Alert,
    /// The daily summary.
    DailySummary,
}

impl NotificationKind {
    /// The wire name (also the outbox item's `event`).
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ApprovalRequested => "approval_requested",
            NotificationKind::WorkBlockReady => "work_block_ready",
            NotificationKind::BudgetPaused => "budget_paused",
            NotificationKind::Alert => "alert",
            NotificationKind::DailySummary => "daily_summary",
        }
    }
}

/// A notification for people (Telegram, Discord): the JSON payload of `telegram` and
/// `discord` outbox items. Plain text; each sink renders it in its own format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What it is about.
    pub kind: NotificationKind,
    /// One line.
    pub title: String,
    /// The details (may be several lines).
    pub text: String,
    /// The approval to decide, if it asks for a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<ApprovalId>,
    /// The issue it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_key: Option<String>,
    /// The work block it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_block_id: Option<WorkBlockId>,
    /// A link to the dashboard page, when the setting `public_url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Notification {
    /// A notification with no references.
    pub fn new(kind: NotificationKind, title: impl Into<String>, text: impl Into<String>) -> Self {
        Notification {
            kind,
            title: title.into(),
            text: text.into(),
            approval_id: None,
            issue_key: None,
            work_block_id: None,
            link: None,
        }
    }

    /// The JSON text stored as an outbox payload.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a payload made by [`Notification::to_payload`].
    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// What a sink made of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the receiver.
    Delivered,
    /// The receiver asked to wait this long (e.g. a 429 with `retry_after`): the next attempt
    /// is made exactly then.
    RetryAfter(Duration),
    /// Failed; try again after the exponential back-off.
    Retry(String),
    /// Failed for good (e.g. 410 Gone, or a payload that cannot be read): a dead letter.
    Dead(String),
}

/// One attempt's result: the receiver's HTTP status (for the delivery log) and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// The HTTP status, if the receiver answered.
    pub status_code: Option<u16>,
    /// The verdict.
    pub delivery: Delivery,
}

impl Attempted {
    /// A verdict without an HTTP status (network errors, nothing configured, bad payload).
    pub fn without_status(delivery: Delivery) -> Self {
        Attempted {
            status_code: None,
            delivery,
        }
    }
}

/// Delivers the items of one channel (or family of channels). The delivery loop does
/// everything else: what is due, back-off, persistence, the feature flag, shutdown.
pub trait Sink: Send + Sync + 'static {
    /// The channel, or the prefix of the channels, it delivers (`telegram`, `discord`,
    /// `webhook:`); items whose channel starts with it are handed to it.
    fn channel(&self) -> &str;
    /// The feature flag that switches it (`telegram` for `feature_telegram`).
    fn feature(&self) -> &'static str;
    /// Makes one attempt at delivering `item`.
    fn deliver(&self, item: &OutboxItem) -> impl Future<Output = Attempted> + Send;
}

/// The running integrations: queue deliveries through it; every channel's loop is woken when
/// something is queued. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    mesa: Mesa,
    wakers: Arc<Mutex<Vec<Arc<Notify>>>>,
}

impl Hub {
    /// A hub over `mesa` with no loops yet.
    pub fn new(mesa: Mesa) -> Self {
        Hub {
            mesa,
            wakers: Arc::default(),
        }
    }

    /// The core.
    pub fn mesa(&self) -> &Mesa {
        &self.mesa
    }

    /// Queues deliveries durably, then wakes the delivery loops.
    pub async fn enqueue(&self, items: Vec<NewOutboxItem>) -> mesa_core::Result<Vec<OutboxItem>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let queued = self.mesa.enqueue_outbox(items).await?;
        self.wake();
        Ok(queued)
    }

    /// Queues a notification on `telegram` and `discord`, each only while its flag is on.
    pub async fn notify(&self, notification: &Notification) -> mesa_core::Result<()> {
        let settings = self.mesa.settings().await;
        let payload = notification.to_payload();
        let items = [(TELEGRAM, "telegram"), (DISCORD, "discord")]
            .into_iter()
            .filter(|(_, flag)| settings.feature(flag))
            .map(|(channel, _)| NewOutboxItem {
                channel: channel.to_owned(),
                event: notification.kind.as_str().to_owned(),
                payload: payload.clone(),
            })
            .collect();
        self.enqueue(items).await.map(|_| ())
    }

    /// Wakes every delivery loop (they look for due items at once).
    pub fn wake(&self) {
        let wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        for w in wakers.iter() {
            w.notify_one();
        }
    }

    /// Starts the delivery loop of `sink` until `cancel` fires.
    pub fn spawn<S: Sink>(&self, sink: S, cancel: CancellationToken) -> JoinHandle<()> {
        let waker = Arc::new(Notify::new());
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(waker.clone());
        tokio::spawn(delivery::run(self.mesa.clone(), sink, waker, cancel))
    }
}

/// The running integrations, for shutdown.
pub struct Integrations {
    /// The hub (queue deliveries through it).
    pub hub: Hub,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Integrations {
    /// Stops every loop and waits for them (an attempt in flight is abandoned; its item stays
    /// pending and is retried at the next start).
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the integrations: the enqueuer, the daily summary, the delivery loops (Telegram,
/// Discord, outgoing webhooks) and the Telegram poller. They stop when `cancel` fires or at
/// [`Integrations::shutdown`]. Needs a rustls crypto provider installed by the program.
pub fn start(mesa: Mesa, cancel: CancellationToken) -> Integrations {
    let hub = Hub::new(mesa);
    let mesa = hub.mesa().clone();
    let mut tasks = vec![
        hub.spawn(webhooks::WebhookSink::new(mesa.clone()), cancel.clone()),
        hub.spawn(discord::DiscordSink::new(mesa.clone()), cancel.clone()),
        hub.spawn(telegram::TelegramSink::new(mesa.clone()), cancel.clone()),
        tokio::spawn(telegram::run_poller(mesa.clone(), cancel.clone())),
    ];
    // Subscribed before returning, so no event published after `start` is missed.
    tasks.push(hub::spawn(hub.clone(), cancel.clone()));
    tasks.push(tokio::spawn(summary::run(hub.clone(), cancel.clone())));
    Integrations { hub, cancel, tasks }
}
