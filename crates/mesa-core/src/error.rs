//! [`CoreError`]: every way a core command can fail, and its transport-free [`ErrorKind`].

use mesa_domain::{IssueKey, ValidationError};
use mesa_store::StoreError;
use mesa_workflow::WorkflowError;

/// The category of a failure, for front ends to map (HTTP status, exit code) without knowing
/// the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input (422 `validation_failed`).
    Invalid,
    /// Not yours to do (403 `forbidden`).
    Forbidden,
    /// No such thing (404).
    NotFound,
    /// The state does not allow it, or a uniqueness rule (409).
    Conflict,
    /// The version you had is stale (412 `version_conflict`).
    StaleVersion,
    /// A budget would be exceeded.
    BudgetExceeded,
    /// The database is unavailable or failing (503/500).
    Unavailable,
    /// A bug or corrupt data (500).
    Internal,
}

/// A failed core command.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input failed to parse.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The workflow refused the command.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Storage failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A referenced thing does not exist (e.g. an unknown `assignee_slug`), reported as bad
    /// input on `field`.
    #[error("{message}")]
    UnknownReference {
        /// The request field.
        field: &'static str,
        /// What is missing.
        message: String,
    },
    /// A state conflict detected by the core itself.
    #[error("{0}")]
    Conflict(String),
    /// A state conflict with its own stable error code (`no_auditor`, `run_finished`,
    /// `agent_inactive`, ...), so clients can tell it from other conflicts.
    #[error("{message}")]
    Refused {
        /// The snake_case code.
        code: &'static str,
        /// A human sentence saying what to do instead.
        message: String,
    },
    /// The embedded data (archetypes, templates) is broken: a build defect.
    #[error("embedded data is invalid: {0}")]
    Embedded(String),
    /// A filesystem operation of the core failed (backup target, archetype directory).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Invalid(_) | CoreError::UnknownReference { .. } => ErrorKind::Invalid,
            CoreError::Forbidden(_) => ErrorKind::Forbidden,
            CoreError::Conflict(_) | CoreError::Refused { .. } => ErrorKind::Conflict,
            CoreError::Embedded(_) => ErrorKind::Internal,
            CoreError::Io { .. } => ErrorKind::Unavailable,
            CoreError::Workflow(e) => match e.code() {
                "forbidden" => ErrorKind::Forbidden,
                "validation_failed" => ErrorKind::Invalid,
                _ => ErrorKind::Conflict,
            },
            CoreError::Store(e) => match e {
                StoreError::NotFound { .. } => ErrorKind::NotFound,
                StoreError::Conflict { .. }
                | StoreError::DuplicateTitle { .. }
                | StoreError::CheckoutConflict { .. }
                | StoreError::SecondActiveBlock { .. }
                | StoreError::RunState { .. } => ErrorKind::Conflict,
                StoreError::StaleVersion { .. } => ErrorKind::StaleVersion,
                StoreError::BudgetExceeded { .. } => ErrorKind::BudgetExceeded,
                StoreError::Invalid(_) => ErrorKind::Invalid,
                StoreError::Corrupt { .. } => ErrorKind::Internal,
                StoreError::Backend(_) => ErrorKind::Unavailable,
            },
        }
    }

    /// The offending input field, for `validation_failed` errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            CoreError::Invalid(e) => Some(&e.field),
            CoreError::UnknownReference { field, .. } => Some(field),
            CoreError::Workflow(e) => e.field(),
            CoreError::Store(StoreError::Invalid(e)) => Some(&e.field),
            _ => None,
        }
    }

    /// The existing issue of a duplicate-title refusal.
    pub fn existing_key(&self) -> Option<&IssueKey> {
        match self {
            CoreError::Store(StoreError::DuplicateTitle { existing_key }) => Some(existing_key),
            _ => None,
        }
    }

    /// The stable code of a [`CoreError::Refused`] conflict.
    pub fn refusal_code(&self) -> Option<&'static str> {
        match self {
            CoreError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Refused {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unknown(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::UnknownReference {
            field,
            message: message.into(),
        }
    }
}

/// Result of a core command.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
