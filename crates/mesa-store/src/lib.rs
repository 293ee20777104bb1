//! Mesa's storage port: the traits every backend implements, their error type, the filter and
//! page types of list queries, and (feature `testing`) a backend-neutral conformance suite.
//!
//! Architecture invariants:
//! - This crate knows no SQL and no backend. `sqlx` types never cross these traits; backends map
//!   their errors into [`StoreError`].
//! - Every state change is one trait call and one backend transaction: the new row(s), the
//!   optimistic version check, and the audit-log rows ([`NewActivity`]) commit together or not
//!   at all. Transactions never leak to callers.
//! - Decisions are not made here. `mesa-core` asks `mesa-workflow` what a command does and hands
//!   the result to the store. The store only enforces what must hold under concurrency: unique
//!   keys, one winner per checkout, budgets, one active work block, version checks.
//!
//! Start with [`Store`], the union of the per-aggregate traits in `traits.rs`.

mod audit;
mod error;
mod evaluation;
mod outbox;
mod records;
mod traits;

#[cfg(feature = "testing")]
pub mod conformance;

pub use audit::*;
pub use error::{BoxError, BudgetScopeKind, Result, StoreError};
pub use evaluation::{ArchetypeEvaluation, EvaluationStore, RunEvaluation};
pub use mesa_domain::entity::NewActivity;
pub use outbox::{AttemptOutcome, OutboxFilter, OutboxStore};
pub use records::*;
pub use traits::*;
