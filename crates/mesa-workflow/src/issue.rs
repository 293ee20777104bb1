//! The issue lifecycle (SPEC §2) and the atomic checkout (§2.2).
//!
//! [`decide`] takes an [`IssueSnapshot`], an [`IssueCommand`] and an [`ActorContext`] and returns
//! an [`IssueTransition`] or a [`WorkflowError`](crate::WorkflowError).
//! Creation has no snapshot: see [`create`].
//! The checks run in a fixed order: the row of [`TABLE`] (else `IllegalTransition`), the row's
//! parties (else `Forbidden`), required comments (else `Missing`), then guards (`OpenChildren`,
//! `RequiresForce`).
//!
//! Who gets woken (§6.1) is part of the decision: the reviewer when an issue enters `in_review`;
//! the assignee on changes requested, unblock, requeue, reopen and when the board starts it;
//! never the acting agent itself.

mod decide;
mod table;

use mesa_domain::entity::Issue;
use mesa_domain::{
    Actor, AgentId, CommentKind, IssueKey, IssueStatus, ReviewDecision, RunTrigger, Timestamp,
};

pub use decide::{create, decide};
pub use table::{
    CommandKind, Party, Row, TABLE, allowed_commands, command_for_target, is_row, patch_command,
    rows,
};

use crate::Transition;
use crate::review_chain::Reviewer;

/// A decided issue transition.
pub type IssueTransition = Transition<IssueStatus, IssueEffect>;

/// The checkout's default expected statuses (§2.2).
pub const DEFAULT_EXPECTED_STATUSES: &[IssueStatus] = &[IssueStatus::Todo, IssueStatus::Blocked];

/// A sub-issue, as far as its parent's rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildIssue {
    /// Its key.
    pub key: IssueKey,
    /// Its status.
    pub status: IssueStatus,
}

/// What the issue machine needs to know about an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSnapshot {
    /// The key, for messages and the activity summary.
    pub key: IssueKey,
    /// Current status.
    pub status: IssueStatus,
    /// Current assignee.
    pub assignee: Option<AgentId>,
    /// The agent whose `submit` put the issue in review (the store keeps it or reads it from the
    /// latest `issue.submit` activity). `None` means the assignee. Never allowed to approve.
    pub submitted_by: Option<AgentId>,
    /// First checkout, if any (`started_at` is set only the first time).
    pub started_at: Option<Timestamp>,
    /// When the status last changed (the cancel guard compares evidence against it).
    pub status_changed_at: Timestamp,
    /// Runs started for the issue (the runaway guard, [`crate::guard::runaway_guard`]).
    pub run_count: i64,
    /// The sub-issues and their statuses.
    pub children: Vec<ChildIssue>,
    /// The assignee posted an evidence comment since its checkout (lets `submit` go without a
    /// comment, §9.3.1).
    pub evidence_since_checkout: bool,
    /// Time of the newest comment that reports finished work (an `evidence` comment, or one the
    /// caller counts as a done report); guards `cancel` (§2).
    pub latest_evidence_at: Option<Timestamp>,
    /// The `board_reviews_top_level` setting (default off).
    pub board_reviews_top_level: bool,
}

impl IssueSnapshot {
    /// A snapshot with no assignee, children or evidence.
    pub fn new(key: IssueKey, status: IssueStatus, status_changed_at: Timestamp) -> Self {
        IssueSnapshot {
            key,
            status,
            assignee: None,
            submitted_by: None,
            started_at: None,
            status_changed_at,
            run_count: 0,
            children: Vec::new(),
            evidence_since_checkout: false,
            latest_evidence_at: None,
            board_reviews_top_level: false,
        }
    }

    /// The fields an [`Issue`] row has; the caller adds children, evidence, the submitter and
    /// the setting.
    pub fn from_issue(issue: &Issue) -> Self {
        IssueSnapshot {
            assignee: issue.assignee_id,
            started_at: issue.started_at,
            run_count: issue.run_count,
            ..IssueSnapshot::new(issue.key.clone(), issue.status, issue.status_changed_at)
        }
    }

    /// The non-terminal sub-issues.
    pub fn open_children(&self) -> Vec<IssueKey> {
        self.children
            .iter()
            .filter(|c| !c.status.is_terminal())
            .map(|c| c.key.clone())
            .collect()
    }

    /// True when there are sub-issues, all terminal, at least one `done` (SPEC §2: the work was
    /// reviewed below).
    pub fn children_reviewed_below(&self) -> bool {
        !self.children.is_empty()
            && self.children.iter().all(|c| c.status.is_terminal())
            && self.children.iter().any(|c| c.status == IssueStatus::Done)
    }

    /// Agents who may never review the issue: its assignee and its submitter.
    fn is_author(&self, agent: AgentId) -> bool {
        self.assignee == Some(agent) || self.submitted_by == Some(agent)
    }
}

/// Who is acting, and how they relate to the issue. Filled in by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorContext {
    /// The actor.
    pub actor: Actor,
    /// The actor is the CEO agent.
    pub is_ceo: bool,
    /// The agent that created the issue, if an agent did.
    pub creator: Option<AgentId>,
    /// The assignee's reviewer, resolved with [`crate::review_chain::resolve_reviewer`]
    /// excluding the assignee and the submitter. If it is one of them anyway, the next agent of
    /// `reviewer_chain` (or the board) reviews instead.
    pub reviewer: Reviewer,
    /// The assignee's reviewer chain ([`crate::review_chain::reviewer_chain`]), nearest first.
    pub reviewer_chain: Vec<AgentId>,
}

impl ActorContext {
    /// A context with no relations: not the CEO, no creator, the board reviews.
    pub fn new(actor: Actor) -> Self {
        ActorContext {
            actor,
            is_ceo: false,
            creator: None,
            reviewer: Reviewer::Board,
            reviewer_chain: Vec::new(),
        }
    }

    /// The acting agent, if the actor is one.
    pub const fn agent(&self) -> Option<AgentId> {
        self.actor.agent_id()
    }

    fn is(&self, party: Party, issue: &IssueSnapshot) -> bool {
        let agent = self.agent();
        match party {
            Party::Board => self.actor.is_board(),
            Party::Assignee => agent.is_some() && agent == issue.assignee,
            Party::Claimer => agent.is_some() && issue.assignee.is_none(),
            Party::Reviewer => agent.is_some() && agent == effective_reviewer(issue, self).agent(),
            Party::ReviewerChain => {
                agent.is_some_and(|a| self.reviewer_chain.contains(&a) && issue.assignee != Some(a))
            }
            Party::Ceo => agent.is_some() && self.is_ceo,
            Party::Creator => agent.is_some() && agent == self.creator,
            Party::AnyAgent => agent.is_some(),
            Party::Mesa => matches!(self.actor, Actor::System),
            Party::Webhook => matches!(self.actor, Actor::Webhook { .. }),
        }
    }
}

/// The reviewer of the issue, never its assignee or submitter: if the context's reviewer is one
/// of them, review goes one step further up the chain, ending at the board (SPEC §2).
pub fn effective_reviewer(issue: &IssueSnapshot, ctx: &ActorContext) -> Reviewer {
    let excluded = |a: AgentId| issue.is_author(a);
    match ctx.reviewer {
        Reviewer::Board => Reviewer::Board,
        Reviewer::Agent(a) if !excluded(a) => Reviewer::Agent(a),
        Reviewer::Agent(a) => {
            let above = ctx
                .reviewer_chain
                .iter()
                .position(|c| *c == a)
                .map_or(0, |i| i + 1);
            ctx.reviewer_chain[above..]
                .iter()
                .copied()
                .find(|c| !excluded(*c))
                .map_or(Reviewer::Board, Reviewer::Agent)
        }
    }
}

/// A command on an existing issue. Comments are optional where the table does not require one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueCommand {
    /// The atomic claim (§2.2); `None` expects `todo` or `blocked`.
    Checkout {
        /// Statuses the caller expects the issue to be in.
        expected_statuses: Option<Vec<IssueStatus>>,
    },
    /// todo → in_progress.
    Start,
    /// → blocked; the comment is the required reason.
    Block {
        /// Why.
        comment: Option<String>,
    },
    /// blocked → in_progress.
    Unblock {
        /// Optional note.
        comment: Option<String>,
    },
    /// blocked → todo.
    Requeue {
        /// Optional note.
        comment: Option<String>,
    },
    /// in_progress → review; needs a comment or evidence since checkout.
    Submit {
        /// What was done.
        comment: Option<String>,
    },
    /// in_progress → todo, unassigned.
    Release {
        /// Optional note.
        comment: Option<String>,
    },
    /// A review decision (`POST /issues/{key}/review`), including the board's on `board_review`.
    Review {
        /// approve, request_changes, escalate or reject.
        decision: ReviewDecision,
        /// Required for request_changes and reject.
        comment: Option<String>,
    },
    /// → cancelled.
    Cancel {
        /// Required.
        reason: Option<String>,
        /// Cancel even though evidence of finished work is newer than the last status change.
        force: bool,
    },
    /// terminal → todo.
    Reopen {
        /// Optional note.
        comment: Option<String>,
    },
}

impl IssueCommand {
    /// The command's name.
    pub const fn kind(&self) -> CommandKind {
        match self {
            IssueCommand::Checkout { .. } => CommandKind::Checkout,
            IssueCommand::Start => CommandKind::Start,
            IssueCommand::Block { .. } => CommandKind::Block,
            IssueCommand::Unblock { .. } => CommandKind::Unblock,
            IssueCommand::Requeue { .. } => CommandKind::Requeue,
            IssueCommand::Submit { .. } => CommandKind::Submit,
            IssueCommand::Release { .. } => CommandKind::Release,
            IssueCommand::Review { decision, .. } => match decision {
                ReviewDecision::Approve => CommandKind::Approve,
                ReviewDecision::RequestChanges => CommandKind::RequestChanges,
                ReviewDecision::Escalate => CommandKind::Escalate,
                ReviewDecision::Reject => CommandKind::Reject,
            },
            IssueCommand::Cancel { .. } => CommandKind::Cancel,
            IssueCommand::Reopen { .. } => CommandKind::Reopen,
        }
    }

    /// Builds the command a PATCH means (see [`patch_command`]): `text` is the request's comment,
    /// or for `cancel` its `cancellation_reason`. `None` for `create`, which has no issue yet.
    pub fn from_kind(kind: CommandKind, text: Option<String>, force: bool) -> Option<Self> {
        let comment = text;
        let review = |decision, comment| IssueCommand::Review { decision, comment };
        Some(match kind {
            CommandKind::Create => return None,
            CommandKind::Checkout => IssueCommand::Checkout {
                expected_statuses: None,
            },
            CommandKind::Start => IssueCommand::Start,
            CommandKind::Block => IssueCommand::Block { comment },
            CommandKind::Unblock => IssueCommand::Unblock { comment },
            CommandKind::Requeue => IssueCommand::Requeue { comment },
            CommandKind::Submit => IssueCommand::Submit { comment },
            CommandKind::Release => IssueCommand::Release { comment },
            CommandKind::Approve => review(ReviewDecision::Approve, comment),
            CommandKind::RequestChanges => review(ReviewDecision::RequestChanges, comment),
            CommandKind::Escalate => review(ReviewDecision::Escalate, comment),
            CommandKind::Reject => review(ReviewDecision::Reject, comment),
            CommandKind::Cancel => IssueCommand::Cancel {
                reason: comment,
                force,
            },
            CommandKind::Reopen => IssueCommand::Reopen { comment },
        })
    }
}

/// What the caller does to carry out an issue transition, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueEffect {
    /// Set `assignee_id`.
    SetAssignee(AgentId),
    /// Clear `assignee_id`.
    ClearAssignee,
    /// Set `started_at` (only ever emitted when it was unset).
    SetStartedAt(Timestamp),
    /// Set `completed_at` (entering a terminal status).
    SetCompletedAt(Timestamp),
    /// Clear `completed_at` (reopen).
    ClearCompletedAt,
    /// Set `cancellation_reason`.
    SetCancellationReason(String),
    /// Clear `cancellation_reason` (reopen of a cancelled issue).
    ClearCancellationReason,
    /// Bind the caller's current run to the issue, if the caller acts through a run key (§2.2).
    BindRun,
    /// Add a comment. `Comment` and `Review` are authored by the actor, `System` by Mesa.
    AddComment {
        /// The comment kind.
        kind: CommentKind,
        /// Markdown body.
        body: String,
    },
    /// Ask for a run of `agent` on this issue (§6.1). Never the acting agent.
    Wake {
        /// Who.
        agent: AgentId,
        /// Why.
        trigger: RunTrigger,
    },
    /// Tell the board (SSE, Telegram, Discord).
    NotifyBoard {
        /// One human line.
        message: String,
    },
    /// Cancel runs still queued for this issue: it became terminal, nobody needs them.
    DropQueuedRuns,
}

#[cfg(test)]
mod tests;
