//! Deciding issue commands: the checks in their fixed order, then the effects of each command.

use mesa_domain::{
    Actor, AgentId, CommentKind, IssueKey, IssueStatus, ReviewDecision, RunTrigger, Timestamp,
};

use super::table::{self, CommandKind, Row, allowed_commands, is_row, rows};
use super::{
    ActorContext, DEFAULT_EXPECTED_STATUSES, IssueCommand, IssueEffect, IssueSnapshot,
    IssueTransition, effective_reviewer,
};
use crate::review_chain::Reviewer;
use crate::{Result, Transition, WorkflowError, has_text, text_of};

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
