//! The embeddable Mesa: one [`Mesa`] handle that every front end (the HTTP API, the dashboard,
//! the CLI, tests, other programs) uses to run an AI-agent company.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mesa_core::CoreError> {
//! use mesa_core::{Mesa, CoreConfig};
//! use mesa_domain::{Actor, WorkingDir};
//!
//! let config = CoreConfig::new("/var/lib/mesa", WorkingDir::parse("/srv/project")?);
//! let mesa = Mesa::builder().sqlite("/var/lib/mesa/mesa.db").config(config).build().await?;
//! mesa.bootstrap_if_empty().await?;
//! let board = Actor::board("me");
//! let issue = mesa.create_issue(&board, mesa_core::NewIssue::titled("Fix login")?).await?;
//! println!("created {}", issue.issue.key);
//! # Ok(()) }
//! ```
//!
//! Architecture invariants:
//! - The core is a library citizen: it never exits the process, installs no global subscriber
//!   or signal handler, reads no environment variable, and spawns no background task until a
//!   `start_*` method is called.
//! - Every state change goes: parse input → ask `mesa-workflow` → one atomic store call (row,
//!   version check, audit rows) → publish [`mesa_domain::DomainEvent`]s on the [`EventBus`]
//!   only after the commit.
//! - The core knows no transport: errors carry an [`ErrorKind`], never an HTTP status.
//!
//! Start reading at [`Mesa`] and [`MesaBuilder`]; commands are grouped by aggregate in the
//! modules below.

#![warn(missing_docs)]

mod activity_log;
mod agents;
mod archetypes;
mod audit;
mod auth;
mod blocks;
mod bootstrap;
mod budget;
mod clock;
mod config;
mod engine;
mod error;
mod evaluation;
mod events;
mod governance;
mod hints;
mod incoming;
mod issues;
mod journal;
mod knowledge;
mod learning;
mod mesa;
mod outbox;
mod read_cache;
mod run_stats;
mod runs;
mod sessions;
mod settings;
mod similar;
mod views;
mod wakes;

pub mod catalog;

pub use agents::{AgentView, NewAgent};
pub use audit::{DEFAULT_AUDIT_WINDOW_DAYS, MAX_AUDIT_WINDOW_DAYS, parse_window_days};
pub use auth::{AuthFailure, MintedKey, Principal, hash_key};
pub use blocks::{BlockOutcome, NewApproval, NewWorkBlock};
pub use bootstrap::BootstrapReport;
pub use budget::{AgentBudget, BudgetLimits, ReportedUsage, UsageSummary, UsageTotals};
pub use clock::{Clock, FakeClock, SystemClock};
pub use config::CoreConfig;
pub use engine::{Engine, EngineConfig, RunningScheduler};
pub use error::{CoreError, ErrorKind, Result};
pub use evaluation::MAX_OBSERVABILITY_DAYS;
pub use events::EventBus;
pub use governance::{ProposedPatch, Strategy, WorkBlockDetail, WorkBlockFields, WorkBlockStats};
pub use incoming::{DELIVERY_PAYLOAD_CAP, DeliveryClaim};
pub use issues::{IssueDetail, IssueList, IssuePatch, IssueView, NewIssue};
pub use journal::{
    EventJournal, JOURNAL_CAPACITY, JournalEntry, JournalSubscription, Replay, SUBSCRIBER_BUFFER,
};
pub use learning::{
    CronPatch, NewCron, NewSkill, SCHEDULER_PAUSED, SkillPromotion, parse_reflection_block,
    parse_schedule, parse_tags,
};
pub use mesa::{Mesa, MesaBuilder};
pub use outbox::{
    AttemptOutcome, NewOutboxItem, NewWebhook, OutboxEntry, OutboxFilter, WEBHOOK_EVENTS,
    WebhookPatch,
};
pub use runs::{RUN_LOG_CAP, RunCancel, RunLogFollow};
pub use sessions::{LINK_TTL_MS, OpenedSession, SESSION_IDLE_MS, SessionUser};
pub use settings::{FEATURE_FLAGS, Settings, WEBHOOK_SECRET_PREFIX, is_webhook_source};
pub use similar::{DELETED_REASON, MAX_SIMILAR, SIMILARITY_THRESHOLD, SimilarIssue};
pub use views::CostDays;
pub use views::StatusCounts;
pub use views::{BlockProgress, BlockSpend};
pub use wakes::COMMENT_DEBOUNCE;

/// Re-exports of the layers below, so embedders need only this crate.
pub use mesa_domain as domain;
pub use mesa_scheduler as scheduler;
pub use mesa_store as store;
pub use mesa_workflow as workflow;

/// Options of the SQLite backend (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub mod store_sqlite {
    pub use mesa_store_sqlite::{SqliteOptions, Synchronous};
}
