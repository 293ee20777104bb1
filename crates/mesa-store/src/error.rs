//! [`StoreError`]: what can go wrong in storage, in the store's own words.

use mesa_domain::{AgentId, IssueKey, IssueStatus, ValidationError, Version, WorkBlockId};

/// Boxed backend error, kept as the `source` of [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which budget refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScopeKind {
    /// The agent's own daily limit.
    Agent,
    /// The org-wide daily limit.
    Org,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity name, e.g. `issue`.
        entity: &'static str,
        /// Its id or key.
        id: String,
    },
    /// A uniqueness or reference rule refused the write.
    #[error("conflict: {what}")]
    Conflict {
        /// What collided, for a human.
        what: String,
    },
    /// An open issue with the same normalized title exists (SPEC §2).
    #[error("an open issue with this title already exists: {existing_key}")]
    DuplicateTitle {
        /// The existing issue.
        existing_key: IssueKey,
    },
    /// The row changed since it was read (optimistic concurrency).
    #[error(
        "{entity} {id} was modified concurrently (expected version {expected}, found {actual})"
    )]
    StaleVersion {
        /// Entity name.
        entity: &'static str,
        /// Its id or key.
        id: String,
        /// The version the caller had.
        expected: Version,
        /// The version in storage.
        actual: Version,
    },
    /// Checkout refused: the issue is not in an expected status or belongs to someone else.
    #[error("issue {key} cannot be checked out: it is {status}")]
    CheckoutConflict {
        /// The issue.
        key: IssueKey,
        /// Its current status.
        status: IssueStatus,
        /// Its current assignee.
        assignee: Option<AgentId>,
    },
    /// Starting the run would exceed a daily budget.
    #[error("daily {} budget exceeded", match scope { BudgetScopeKind::Agent => "agent", BudgetScopeKind::Org => "org" })]
    BudgetExceeded {
        /// Which limit.
        scope: BudgetScopeKind,
    },
    /// Another work block is already active (enforced by a unique index).
    #[error("work block {active} is already active")]
    SecondActiveBlock {
        /// The active one.
        active: WorkBlockId,
    },
    /// A run is not in the state the operation needs (e.g. starting a run that is not queued).
    #[error("run is {status}, not {expected}")]
    RunState {
        /// Its status.
        status: String,
        /// The status needed.
        expected: &'static str,
    },
    /// The caller passed a value the store cannot use (e.g. a cursor it did not issue).
    #[error("{0}")]
    Invalid(#[source] ValidationError),
    /// A stored value failed to parse: the database holds something the domain rejects.
    #[error("stored {entity} is invalid")]
    Corrupt {
        /// Entity name.
        entity: &'static str,
        /// Why.
        #[source]
        source: ValidationError,
    },
    /// The database is unreachable, locked past its timeout, full, or otherwise failing.
    #[error("storage backend failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(err))
    }

    /// `NotFound` for `entity` with `id`.
    pub fn not_found(entity: &'static str, id: &dyn std::fmt::Display) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
