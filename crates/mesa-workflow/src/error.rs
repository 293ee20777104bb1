//! The one error of the crate: why a command was refused.
//!
//! Errors are data: tests compare them, and front ends render them. [`WorkflowError::code`] gives
//! the SPEC §9.2 error code each variant maps to, and [`WorkflowError::field`] the offending field
//! of a 422, so the HTTP layer needs no knowledge of the rules behind them.

use std::fmt::Display;

use mesa_domain::{
    AgentId, ApprovalStatus, IssueKey, IssueStatus, RunStatus, ValidationError, WorkBlockId,
    WorkBlockStatus,
};

use crate::issue::CommandKind;
use crate::run::RunCommandKind;
use crate::work_block::BlockCommandKind;

/// Result of a workflow decision.
pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;

/// Why a command was refused. Nothing is to be written when a decision fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// No row of the issue table starts at `from` with `command` (409 `illegal_transition`).
    #[error(
        "cannot {command} an issue that is {from}; allowed: {}",
        names(allowed)
    )]
    IllegalTransition {
        /// The issue's current status.
        from: IssueStatus,
        /// What was asked.
        command: CommandKind,
        /// The commands the table allows from `from`.
        allowed: Vec<CommandKind>,
    },
    /// A PATCH asked for a status no command reaches from `from` (409 `illegal_transition`).
    #[error(
        "no command moves an issue from {from} to {to}; allowed: {}",
        names(allowed)
    )]
    IllegalTarget {
        /// The issue's current status.
        from: IssueStatus,
        /// The status asked for.
        to: IssueStatus,
        /// The commands the table allows from `from`.
        allowed: Vec<CommandKind>,
    },
    /// No row of the work-block table starts at `from` with `command` (409 `illegal_transition`).
    #[error(
        "cannot {command} a work block that is {from}; allowed: {}",
        names(allowed)
    )]
    IllegalBlockTransition {
        /// The block's current status.
        from: WorkBlockStatus,
        /// What was asked.
        command: BlockCommandKind,
        /// The commands the table allows from `from`.
        allowed: Vec<BlockCommandKind>,
    },
    /// No row of the run table starts at `from` with `command` (409 `illegal_transition`).
    #[error("cannot {command} a run that is {from}; allowed: {}", names(allowed))]
    IllegalRunTransition {
        /// The run's current status.
        from: RunStatus,
        /// What was asked.
        command: RunCommandKind,
        /// The commands the table allows from `from`.
        allowed: Vec<RunCommandKind>,
    },
    /// The transition exists but is not the actor's to make (403 `forbidden`).
    #[error("{reason}")]
    Forbidden {
        /// A lowercase sentence saying who may.
        reason: String,
    },
    /// A required comment or reason is missing or blank (422 `validation_failed` with `field`).
    #[error("{field} is required")]
    Missing {
        /// The request field: `comment`, `cancellation_reason`, `assignee_slug`.
        field: &'static str,
    },
    /// Sub-issues are still open, so the issue cannot be approved to `done` (409 `conflict` with
    /// `open_children`).
    #[error("the issue has open sub-issues: {}", names(keys))]
    OpenChildren {
        /// The non-terminal sub-issues.
        keys: Vec<IssueKey>,
    },
    /// Evidence of finished work is newer than the last status change; cancelling needs `force`
    /// (409 `conflict` with `requires_force: true`).
    #[error(
        "the issue has evidence of finished work newer than its last status change; cancelling \
         it needs force"
    )]
    RequiresForce,
    /// Another work block is already active (409 `conflict`).
    #[error("work block {active} is already active; at most one work block can be active")]
    SecondActiveBlock {
        /// The block that is active now.
        active: WorkBlockId,
    },
    /// The atomic checkout lost (409 `checkout_conflict` with the current status and assignee).
    #[error("the issue cannot be checked out: it is {status}{}", held_by(*assignee))]
    CheckoutConflict {
        /// The issue's current status.
        status: IssueStatus,
        /// Its current assignee.
        assignee: Option<AgentId>,
    },
    /// The approval was already decided, expired or cancelled (409 `conflict`).
    #[error("the approval is {status}, not pending")]
    NotPending {
        /// Its current status.
        status: ApprovalStatus,
    },
    /// The issue already belongs to another work block (409 `conflict`; remove it first).
    #[error("the issue already belongs to work block {block}; remove it from that block first")]
    InOtherBlock {
        /// The block it belongs to.
        block: WorkBlockId,
    },
    /// An argument is invalid (422 `validation_failed` with the error's field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl WorkflowError {
    /// The SPEC §9.2 error code this refusal is reported with.
    pub const fn code(&self) -> &'static str {
        match self {
            WorkflowError::IllegalTransition { .. }
            | WorkflowError::IllegalTarget { .. }
            | WorkflowError::IllegalBlockTransition { .. }
            | WorkflowError::IllegalRunTransition { .. } => "illegal_transition",
            WorkflowError::Forbidden { .. } => "forbidden",
            WorkflowError::Missing { .. } | WorkflowError::Invalid(_) => "validation_failed",
            WorkflowError::CheckoutConflict { .. } => "checkout_conflict",
            WorkflowError::OpenChildren { .. }
            | WorkflowError::RequiresForce
            | WorkflowError::SecondActiveBlock { .. }
            | WorkflowError::NotPending { .. }
            | WorkflowError::InOtherBlock { .. } => "conflict",
        }
    }

    /// The offending request field of a `validation_failed` refusal.
    pub fn field(&self) -> Option<&str> {
        match self {
            WorkflowError::Missing { field } => Some(field),
            WorkflowError::Invalid(e) => Some(&e.field),
            _ => None,
        }
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        WorkflowError::Forbidden {
            reason: reason.into(),
        }
    }
}

fn names<T: Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn held_by(assignee: Option<AgentId>) -> String {
    match assignee {
        Some(agent) => format!(" and assigned to agent {agent}"),
        None => " and unassigned".to_owned(),
    }
}
