//! The issue lifecycle (SPEC §2) and the atomic checkout (§2.2).
//!
//! [`decide`] takes an [`IssueSnapshot`], an [`IssueCommand`] and an [`ActorContext`] and returns
//! an [`IssueTransition`] or a [`WorkflowError`]. Creation has no snapshot: see [`create`].
//! The checks run in a fixed order: the row of [`TABLE`] (else `IllegalTransition`), the row's
//! parties (else `Forbidden`), required comments (else `Missing`), then guards (`OpenChildren`,
//! `RequiresForce`).
//!
//! Who gets woken (§6.1) is part of the decision: the reviewer when an issue enters `in_review`;
//! the assignee on changes requested, unblock, requeue, reopen and when the board starts it;
//! never the acting agent itself.

mod table;

use mesa_domain::entity::Issue;
use mesa_domain::{
    Actor, AgentId, CommentKind, IssueKey, IssueStatus, ReviewDecision, RunTrigger, Timestamp,
};

pub use table::{
    CommandKind, Party, Row, TABLE, allowed_commands, command_for_target, is_row, patch_command,
    rows,
};

use crate::review_chain::Reviewer;
use crate::{Result, Transition, WorkflowError, has_text, text_of};

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
            Party::Mesa => matches!(self.actor, Actor::System | Actor::Webhook { .. }),
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

/// Collects the effects of one decision.
struct Plan<'a> {
    issue: &'a IssueSnapshot,
    ctx: &'a ActorContext,
    command: CommandKind,
    effects: Vec<IssueEffect>,
}

impl Plan<'_> {
    fn push(&mut self, effect: IssueEffect) {
        self.effects.push(effect);
    }

    /// Wakes `agent` unless it is the acting agent (§6.1).
    fn wake(&mut self, agent: Option<AgentId>, trigger: RunTrigger) {
        if let Some(agent) = agent.filter(|a| Some(*a) != self.ctx.agent()) {
            self.push(IssueEffect::Wake { agent, trigger });
        }
    }

    fn comment(&mut self, kind: CommentKind, body: Option<String>) {
        if let Some(body) = text_of(body) {
            let kind = if matches!(self.ctx.actor, Actor::System) {
                CommentKind::System
            } else {
                kind
            };
            self.push(IssueEffect::AddComment { kind, body });
        }
    }

    fn finish(self, to: IssueStatus) -> IssueTransition {
        let from = self.issue.status;
        let summary = summary(&self.issue.key, from, to, self.command, &self.ctx.actor);
        let mut t = Transition::new(Some(from), to, action(self.command), summary);
        t.effects = self.effects;
        t
    }
}

fn summary(
    key: &IssueKey,
    from: IssueStatus,
    to: IssueStatus,
    command: CommandKind,
    actor: &Actor,
) -> String {
    format!("{key}: {from} → {to} ({command} by {actor})")
}

fn action(command: CommandKind) -> &'static str {
    match command {
        CommandKind::Create => "issue.create",
        CommandKind::Checkout => "issue.checkout",
        CommandKind::Start => "issue.start",
        CommandKind::Block => "issue.block",
        CommandKind::Unblock => "issue.unblock",
        CommandKind::Requeue => "issue.requeue",
        CommandKind::Submit => "issue.submit",
        CommandKind::Release => "issue.release",
        CommandKind::Approve => "issue.approve",
        CommandKind::RequestChanges => "issue.request_changes",
        CommandKind::Escalate => "issue.escalate",
        CommandKind::Reject => "issue.reject",
        CommandKind::Cancel => "issue.cancel",
        CommandKind::Reopen => "issue.reopen",
    }
}

/// Decides the creation of an issue: `(new) → todo` (SPEC §2). With no `assignee`, the issue is
/// assigned to the CEO when there is one. The assignee is woken unless it is the creator.
pub fn create(
    key: &IssueKey,
    assignee: Option<AgentId>,
    ceo: Option<AgentId>,
    actor: &Actor,
) -> IssueTransition {
    let summary = format!("{key}: created ({} by {actor})", CommandKind::Create);
    let mut t = Transition::new(
        None,
        IssueStatus::Todo,
        action(CommandKind::Create),
        summary,
    );
    let (holder, trigger) = match (assignee, ceo) {
        (Some(a), _) => (Some(a), RunTrigger::Assigned),
        (None, ceo) => (ceo, RunTrigger::IssueCreated),
    };
    if let Some(agent) = holder {
        t.push(IssueEffect::SetAssignee(agent));
        if actor.agent_id() != Some(agent) {
            t.push(IssueEffect::Wake { agent, trigger });
        }
    }
    t
}

/// Decides a command on an existing issue.
pub fn decide(
    issue: &IssueSnapshot,
    command: IssueCommand,
    ctx: &ActorContext,
    now: Timestamp,
) -> Result<IssueTransition> {
    let kind = command.kind();
    if let IssueCommand::Checkout { expected_statuses } = command {
        return checkout(issue, expected_statuses.as_deref(), ctx, now);
    }
    let row = rows(issue.status, kind)
        .next()
        .ok_or_else(|| WorkflowError::IllegalTransition {
            from: issue.status,
            command: kind,
            allowed: allowed_commands(issue.status),
        })?;
    authorize(row, issue, ctx)?;

    let mut plan = Plan {
        issue,
        ctx,
        command: kind,
        effects: Vec::new(),
    };
    let to = match command {
        IssueCommand::Checkout { .. } => unreachable!("handled above"),
        IssueCommand::Start => {
            let assignee = claim_or_require_assignee(&mut plan)?;
            start_work(&mut plan, now);
            plan.wake(Some(assignee), RunTrigger::Manual);
            IssueStatus::InProgress
        }
        IssueCommand::Block { comment } => {
            require(comment.as_deref(), "comment")?;
            plan.comment(CommentKind::Comment, comment);
            IssueStatus::Blocked
        }
        IssueCommand::Unblock { comment } => {
            let assignee = issue.assignee.ok_or(WorkflowError::Missing {
                field: "assignee_slug",
            })?;
            start_work(&mut plan, now);
            plan.comment(CommentKind::Comment, comment);
            plan.wake(Some(assignee), RunTrigger::Unblocked);
            IssueStatus::InProgress
        }
        IssueCommand::Requeue { comment } => {
            plan.comment(CommentKind::Comment, comment);
            plan.wake(issue.assignee, RunTrigger::Unblocked);
            IssueStatus::Todo
        }
        IssueCommand::Submit { comment } => submit(&mut plan, comment, now)?,
        IssueCommand::Release { comment } => {
            plan.comment(CommentKind::Comment, comment);
            plan.push(IssueEffect::ClearAssignee);
            IssueStatus::Todo
        }
        IssueCommand::Review { decision, comment } => review(&mut plan, decision, comment, now)?,
        IssueCommand::Cancel { reason, force } => {
            let reason = text_of(reason).ok_or(WorkflowError::Missing {
                field: "cancellation_reason",
            })?;
            let guarded = issue
                .latest_evidence_at
                .is_some_and(|at| at > issue.status_changed_at);
            if guarded && !force {
                return Err(WorkflowError::RequiresForce);
            }
            plan.push(IssueEffect::SetCompletedAt(now));
            plan.push(IssueEffect::SetCancellationReason(reason.clone()));
            plan.push(IssueEffect::AddComment {
                kind: CommentKind::System,
                body: format!("Cancelled by {}: {reason}", ctx.actor),
            });
            plan.push(IssueEffect::DropQueuedRuns);
            IssueStatus::Cancelled
        }
        IssueCommand::Reopen { comment } => {
            plan.push(IssueEffect::ClearCompletedAt);
            if issue.status == IssueStatus::Cancelled {
                plan.push(IssueEffect::ClearCancellationReason);
            }
            plan.comment(CommentKind::Comment, comment);
            plan.wake(issue.assignee, RunTrigger::Reopened);
            IssueStatus::Todo
        }
    };
    debug_assert!(
        is_row(Some(issue.status), kind, to),
        "{kind} to {to} is not a row"
    );
    Ok(plan.finish(to))
}

fn require(text: Option<&str>, field: &'static str) -> Result<()> {
    if has_text(text) {
        Ok(())
    } else {
        Err(WorkflowError::Missing { field })
    }
}

fn authorize(row: &Row, issue: &IssueSnapshot, ctx: &ActorContext) -> Result<()> {
    if row.who.iter().any(|p| ctx.is(*p, issue)) {
        return Ok(());
    }
    let reviews = matches!(
        row.command,
        CommandKind::Approve
            | CommandKind::RequestChanges
            | CommandKind::Escalate
            | CommandKind::Reject
    );
    if reviews && ctx.agent().is_some_and(|a| issue.is_author(a)) {
        return Err(WorkflowError::forbidden(
            "no self-review: the assignee or submitter of an issue can never review it",
        ));
    }
    Err(WorkflowError::forbidden(format!(
        "only {} may {} an issue that is {}",
        table::describe_parties(row.who),
        row.command,
        issue.status
    )))
}

/// The start command's assignee: the claiming agent on an unassigned issue, else the current one.
fn claim_or_require_assignee(plan: &mut Plan<'_>) -> Result<AgentId> {
    match (plan.issue.assignee, plan.ctx.agent()) {
        (Some(assignee), _) => Ok(assignee),
        (None, Some(agent)) => {
            plan.push(IssueEffect::SetAssignee(agent));
            plan.push(IssueEffect::BindRun);
            Ok(agent)
        }
        (None, None) => Err(WorkflowError::Missing {
            field: "assignee_slug",
        }),
    }
}

fn start_work(plan: &mut Plan<'_>, now: Timestamp) {
    if plan.issue.started_at.is_none() {
        plan.push(IssueEffect::SetStartedAt(now));
    }
}

fn checkout(
    issue: &IssueSnapshot,
    expected: Option<&[IssueStatus]>,
    ctx: &ActorContext,
    now: Timestamp,
) -> Result<IssueTransition> {
    let Some(agent) = ctx.agent() else {
        return Err(WorkflowError::forbidden(
            "only an agent can check out an issue; the board assigns it or uses start",
        ));
    };
    let expected = expected.unwrap_or(DEFAULT_EXPECTED_STATUSES);
    if let Some(bad) = expected.iter().find(|s| {
        !matches!(
            s,
            IssueStatus::Todo | IssueStatus::Blocked | IssueStatus::InProgress
        )
    }) {
        return Err(WorkflowError::Invalid(mesa_domain::ValidationError::new(
            "expected_statuses",
            format!("expected_statuses may hold only todo, blocked and in_progress, got {bad}"),
        )));
    }
    let mut plan = Plan {
        issue,
        ctx,
        command: CommandKind::Checkout,
        effects: Vec::new(),
    };
    if issue.status == IssueStatus::InProgress && issue.assignee == Some(agent) {
        // The holder again (same run or a later run of the same agent): idempotent.
        plan.push(IssueEffect::BindRun);
        return Ok(plan.finish(IssueStatus::InProgress));
    }
    let claimable = matches!(issue.status, IssueStatus::Todo | IssueStatus::Blocked)
        && expected.contains(&issue.status)
        && issue.assignee.is_none_or(|a| a == agent);
    if !claimable {
        return Err(WorkflowError::CheckoutConflict {
            status: issue.status,
            assignee: issue.assignee,
        });
    }
    if issue.assignee.is_none() {
        plan.push(IssueEffect::SetAssignee(agent));
    }
    start_work(&mut plan, now);
    plan.push(IssueEffect::BindRun);
    Ok(plan.finish(IssueStatus::InProgress))
}

fn submit(plan: &mut Plan<'_>, comment: Option<String>, now: Timestamp) -> Result<IssueStatus> {
    let issue = plan.issue;
    if !has_text(comment.as_deref()) && !issue.evidence_since_checkout {
        return Err(WorkflowError::Missing { field: "comment" });
    }
    plan.comment(CommentKind::Comment, comment);
    // The actor is the assignee and becomes the submitter: it never reviews its own work.
    let submitter = IssueSnapshot {
        submitted_by: plan.ctx.agent(),
        ..issue.clone()
    };
    match effective_reviewer(&submitter, plan.ctx) {
        Reviewer::Agent(reviewer) => {
            plan.wake(Some(reviewer), RunTrigger::ReviewRequested);
            Ok(IssueStatus::InReview)
        }
        Reviewer::Board
            if plan.ctx.is_ceo
                && issue.children_reviewed_below()
                && !issue.board_reviews_top_level =>
        {
            let done = issue
                .children
                .iter()
                .filter(|c| c.status == IssueStatus::Done)
                .count();
            plan.push(IssueEffect::SetCompletedAt(now));
            plan.push(IssueEffect::AddComment {
                kind: CommentKind::System,
                body: format!(
                    "Closed by the CEO: all {} sub-issues are terminal and {done} of them were \
                     approved by their reviewers.",
                    issue.children.len()
                ),
            });
            plan.push(IssueEffect::DropQueuedRuns);
            Ok(IssueStatus::Done)
        }
        Reviewer::Board => {
            plan.push(IssueEffect::NotifyBoard {
                message: format!("{} awaits the board's review", issue.key),
            });
            Ok(IssueStatus::BoardReview)
        }
    }
}

fn review(
    plan: &mut Plan<'_>,
    decision: ReviewDecision,
    comment: Option<String>,
    now: Timestamp,
) -> Result<IssueStatus> {
    let issue = plan.issue;
    if matches!(
        decision,
        ReviewDecision::RequestChanges | ReviewDecision::Reject
    ) {
        require(comment.as_deref(), "comment")?;
    }
    if decision == ReviewDecision::Approve {
        let open = issue.open_children();
        if !open.is_empty() {
            return Err(WorkflowError::OpenChildren { keys: open });
        }
    }
    let verdict = match decision {
        ReviewDecision::Approve => "Approved",
        ReviewDecision::RequestChanges => "Changes requested",
        ReviewDecision::Escalate => "Escalated to the board",
        ReviewDecision::Reject => "Rejected",
    };
    let body = match text_of(comment) {
        Some(text) => format!("{verdict}: {text}"),
        None => format!("{verdict}."),
    };
    plan.push(IssueEffect::AddComment {
        kind: CommentKind::Review,
        body,
    });
    Ok(match decision {
        ReviewDecision::Approve | ReviewDecision::Reject => {
            plan.push(IssueEffect::SetCompletedAt(now));
            plan.push(IssueEffect::DropQueuedRuns);
            if decision == ReviewDecision::Approve {
                IssueStatus::Done
            } else {
                IssueStatus::WontDo
            }
        }
        ReviewDecision::RequestChanges => {
            plan.wake(issue.assignee, RunTrigger::ChangesRequested);
            IssueStatus::Todo
        }
        ReviewDecision::Escalate => {
            plan.push(IssueEffect::NotifyBoard {
                message: format!(
                    "{} was escalated to the board by {}",
                    issue.key, plan.ctx.actor
                ),
            });
            IssueStatus::BoardReview
        }
    })
}

#[cfg(test)]
mod tests;
