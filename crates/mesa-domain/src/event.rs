//! Domain events: what changed, published on the core's event bus only after the change has
//! been committed (SPEC §9.4 names them).

use crate::entity::{ActivityEvent, Agent, Approval, Comment, Issue, Run, WorkBlock};
use crate::{AgentId, IssueKey, IssueStatus, RunId, Timestamp};

/// Something that happened, with the state after it.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// An issue was created.
    IssueCreated(Box<Issue>),
    /// An issue changed (fields or status). `from` is the previous status when it changed.
    IssueUpdated {
        /// The issue after the change.
        issue: Box<Issue>,
        /// The status before, if the status changed.
        from: Option<IssueStatus>,
    },
    /// An issue was deleted (soft or purged).
    IssueDeleted {
        /// Its key.
        key: IssueKey,
    },
    /// A comment was posted.
    CommentCreated(Box<Comment>),
    /// A run was queued.
    RunQueued(Box<Run>),
    /// A run started.
    RunStarted(Box<Run>),
    /// A run finished (any final status).
    RunFinished(Box<Run>),
    /// A chunk of a run's output (only for live log followers).
    RunOutput {
        /// The run.
        run_id: RunId,
        /// The text, already scrubbed of secrets.
        text: String,
    },
    /// An agent's configuration or state changed.
    AgentUpdated(Box<Agent>),
    /// An approval was requested.
    ApprovalCreated(Box<Approval>),
    /// An approval was decided, expired or cancelled.
    ApprovalResolved(Box<Approval>),
    /// A work block changed.
    WorkBlockUpdated(Box<WorkBlock>),
    /// An agent hit its budget and was paused.
    BudgetExceeded {
        /// The agent.
        agent_id: AgentId,
        /// Paused until this time.
        until: Timestamp,
    },
    /// The scheduler was paused by the board.
    SchedulerPaused,
    /// The scheduler was resumed.
    SchedulerResumed,
    /// A row was appended to the audit log.
    Activity(Box<ActivityEvent>),
    /// Something needs the board's attention (SSE, Telegram, Discord): an issue awaits the
    /// board's review, an escalation, a guard that tripped.
    BoardNotification {
        /// One human line.
        message: String,
        /// The issue it is about, if any.
        issue_key: Option<IssueKey>,
    },
    /// The board asked to cancel a running run; the scheduler stops its process and finishes
    /// it as `cancelled`. (Queued runs are cancelled at once and publish `RunFinished`.)
    RunCancelRequested(Box<Run>),
}

impl DomainEvent {
    /// The SSE event name (SPEC §9.4).
    pub const fn name(&self) -> &'static str {
        match self {
            DomainEvent::IssueCreated(_) => "issue_created",
            DomainEvent::IssueUpdated { .. } => "issue_updated",
            DomainEvent::IssueDeleted { .. } => "issue_deleted",
            DomainEvent::CommentCreated(_) => "comment_created",
            DomainEvent::RunQueued(_) => "run_queued",
            DomainEvent::RunStarted(_) => "run_started",
            DomainEvent::RunFinished(_) => "run_finished",
            DomainEvent::RunOutput { .. } => "run_output",
            DomainEvent::AgentUpdated(_) => "agent_updated",
            DomainEvent::ApprovalCreated(_) => "approval_created",
            DomainEvent::ApprovalResolved(_) => "approval_resolved",
            DomainEvent::WorkBlockUpdated(_) => "work_block_updated",
            DomainEvent::BudgetExceeded { .. } => "budget_exceeded",
            DomainEvent::SchedulerPaused => "scheduler_paused",
            DomainEvent::SchedulerResumed => "scheduler_resumed",
            DomainEvent::Activity(_) => "activity",
            DomainEvent::BoardNotification { .. } => "board_notification",
            DomainEvent::RunCancelRequested(_) => "run_cancel_requested",
        }
    }
}
