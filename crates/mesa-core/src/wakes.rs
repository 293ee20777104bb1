//! Wake-ups (SPEC §6.1): carrying out the workflow's `Wake`, `NotifyBoard` and `DropQueuedRuns`
//! effects after an issue write has committed, and the wake-ups the workflow does not decide
//! (a new assignee set by `PATCH`, a comment by someone else).
//!
//! A wake-up becomes a queued run through [`mesa_store::RunStore::enqueue_run`], which merges it
//! into the queued run of the same (agent, issue, mode) if there is one: that is the
//! deduplication of §6.1, and, for comments, the 30-second debounce (a comment's run may not
//! start before 30 s have passed, and the comments of those 30 s merge into it). The scheduler
//! consumes the queue; nothing here starts a process.
//!
//! Rules (written down in `docs/api.md`):
//! - an agent's own actions never wake it;
//! - inactive (deactivated) agents are never woken: their runs would wait forever;
//! - paused agents (`paused_until`, a budget or quota pause) are woken: the run waits in the
//!   queue until the pause ends, as §6.2 says queued runs do;
//! - a wake-up that cannot be enqueued never fails the request that caused it: the issue change
//!   has committed, so the failure is logged and the request succeeds.

use std::time::Duration;

use mesa_domain::entity::{Agent, Issue, Run};
use mesa_domain::{
    Actor, AgentId, CommentKind, DomainEvent, IssueKey, IssueStatus, RunMode, RunStatus,
    RunTrigger, Timestamp,
};
use mesa_store::{
    CancelQueuedRuns, EnqueueOutcome, NewComment, NewRunRecord, PageRequest, QueuedRuns, RunFilter,
};
use mesa_workflow::approval::ApprovalEffect;
use mesa_workflow::guard::{WakeGuard, runaway_guard};
use mesa_workflow::issue::{IssueEffect, IssueSnapshot};

use crate::error::Result;
use crate::mesa::Mesa;

/// How long a comment's wake-up waits for further comments (SPEC §6.1).
pub const COMMENT_DEBOUNCE: Duration = Duration::from_secs(30);

/// A wake-up about to be enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wake {
    /// Who.
    pub(crate) agent: AgentId,
    /// For which issue, if any.
    pub(crate) issue_key: Option<IssueKey>,
    /// Why.
    pub(crate) trigger: RunTrigger,
    /// The run's mode ([`mode_for`] the trigger unless the caller knows better).
    pub(crate) mode: RunMode,
    /// Queue order: the issue's priority (0 without an issue).
    pub(crate) priority: i64,
    /// Earliest start (the comment debounce).
    pub(crate) not_before: Option<Timestamp>,
}

impl Wake {
    /// A wake-up of `agent` for `issue`.
    pub(crate) fn for_issue(agent: AgentId, issue: &Issue, trigger: RunTrigger) -> Self {
        Wake {
            agent,
            issue_key: Some(issue.key.clone()),
            trigger,
            mode: mode_for(trigger, true),
            priority: i64::from(issue.priority.get()),
            not_before: None,
        }
    }
}

/// The run mode a trigger asks for: a review when review was requested, the scheduled modes
/// for heartbeats, crons and audits, else work on the issue (a heartbeat without one).
pub(crate) const fn mode_for(trigger: RunTrigger, has_issue: bool) -> RunMode {
    match trigger {
        RunTrigger::ReviewRequested => RunMode::Review,
        RunTrigger::Heartbeat => RunMode::Heartbeat,
        RunTrigger::Cron => RunMode::Cron,
        RunTrigger::Audit => RunMode::Audit,
        _ if has_issue => RunMode::Task,
        _ => RunMode::Heartbeat,
    }
}

/// Why a wake-up is not enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The agent caused it (§6.1: an agent's own actions never wake it).
    OwnAction,
    /// The agent is deactivated.
    Inactive,
}

/// Whether a wake-up of `agent` caused by `actor` is skipped, and why.
pub(crate) fn skip(agent: &Agent, actor: &Actor) -> Option<Skip> {
    if actor.agent_id() == Some(agent.id) {
        Some(Skip::OwnAction)
    } else if !agent.config.active {
        Some(Skip::Inactive)
    } else {
        None
    }
}

/// Whom a comment by `actor` on `issue` wakes: the assignee, while the issue is in its hands
/// (`todo`, `in_progress`, `blocked`), unless the assignee wrote it. A comment on an issue in
/// review wakes nobody (the review run reads the comments), nor does one on a finished issue.
pub(crate) fn comment_wake(issue: &Issue, actor: &Actor) -> Option<AgentId> {
    let in_hand = matches!(
        issue.status,
        IssueStatus::Todo | IssueStatus::InProgress | IssueStatus::Blocked
    );
    issue
        .assignee_id
        .filter(|a| in_hand && !issue.deleted && actor.agent_id() != Some(*a))
}

/// Whom an edit that changed the assignee from `before` wakes: the new assignee of a
/// non-terminal issue, unless it made the change itself.
pub(crate) fn assignment_wake(
    before: Option<AgentId>,
    issue: &Issue,
    actor: &Actor,
) -> Option<AgentId> {
    issue.assignee_id.filter(|a| {
        before != Some(*a)
            && !issue.status.is_terminal()
            && !issue.deleted
            && actor.agent_id() != Some(*a)
    })
}

impl Mesa {
    /// Carries out the wake-ups, board notifications and queue clean-up of a committed issue
    /// transition (the other effects were applied to the row before the write). Never fails:
    /// the change has committed, so a failure here is logged.
    pub(crate) async fn carry_out_issue_effects(
        &self,
        actor: &Actor,
        issue: &Issue,
        effects: &[IssueEffect],
    ) {
        for effect in effects {
            match effect {
                IssueEffect::Wake { agent, trigger } => {
                    self.wake_quietly(actor, Wake::for_issue(*agent, issue, *trigger))
                        .await;
                }
                IssueEffect::NotifyBoard { message } => {
                    self.notify_board(message.clone(), Some(issue.key.clone()));
                }
                IssueEffect::DropQueuedRuns => {
                    let reason = format!("{} is {}", issue.key, issue.status);
                    if let Err(e) = self
                        .cancel_queued(actor, QueuedRuns::Issue(issue.key.clone()), reason)
                        .await
                    {
                        tracing::error!(error = ?e, issue = %issue.key,
                            "could not cancel the queued runs of a finished issue");
                    }
                }
                _ => {}
            }
        }
    }

    /// Carries out the wake-up (of the requester, trigger `approval_resolved`) and board
    /// notifications of a committed approval transition. Never fails (see above).
    pub(crate) async fn carry_out_approval_effects(
        &self,
        actor: &Actor,
        effects: &[ApprovalEffect],
    ) {
        for effect in effects {
            match effect {
                ApprovalEffect::Wake { agent, trigger } => {
                    let wake = Wake {
                        agent: *agent,
                        issue_key: None,
                        trigger: *trigger,
                        mode: mode_for(*trigger, false),
                        priority: 0,
                        not_before: None,
                    };
                    self.wake_quietly(actor, wake).await;
                }
                ApprovalEffect::NotifyBoard { message } => self.notify_board(message.clone(), None),
                _ => {}
            }
        }
    }

    /// Publishes a `BoardNotification` (SSE now; Telegram and Discord subscribe later).
    pub(crate) fn notify_board(&self, message: String, issue_key: Option<IssueKey>) {
        self.publish([DomainEvent::BoardNotification { message, issue_key }]);
    }

    /// Wakes the assignee of `issue` after a comment by `actor` (debounced), if it should be.
    pub(crate) async fn wake_on_comment(&self, actor: &Actor, issue: &Issue) {
        if let Some(agent) = comment_wake(issue, actor) {
            let mut wake = Wake::for_issue(agent, issue, RunTrigger::Comment);
            wake.not_before = Some(self.now() + COMMENT_DEBOUNCE);
            self.wake_quietly(actor, wake).await;
        }
    }

    /// Moves the review of `issue` to `reviewer` after the org chart changed: the previous
    /// reviewer's queued review run is cancelled, the new reviewer gets one
    /// (`review_requested`). Never fails (see above).
    pub(crate) async fn reroute_review(&self, issue: &Issue, reviewer: Option<AgentId>) {
        if let Some(old) = issue.reviewer_id.filter(|old| Some(*old) != reviewer) {
            let filter = RunFilter {
                agent: Some(old),
                issue: Some(issue.key.clone()),
                statuses: vec![RunStatus::Queued],
            };
            let queued = match self
                .inner
                .store
                .list_runs(&filter, &PageRequest::new(Some(10), None))
                .await
            {
                Ok(page) => page.items,
                Err(e) => {
                    tracing::error!(error = ?e, issue = %issue.key,
                        "could not read the previous reviewer's queued runs");
                    Vec::new()
                }
            };
            for run in queued.into_iter().filter(|r| r.mode == RunMode::Review) {
                let reason = format!("the review of {} moved to another reviewer", issue.key);
                if let Err(e) = self
                    .cancel_queued(&Actor::System, QueuedRuns::Run(run.id), reason)
                    .await
                {
                    tracing::error!(error = ?e, run = %run.id,
                        "could not cancel the previous reviewer's queued review");
                }
            }
        }
        if let Some(agent) = reviewer {
            let wake = Wake::for_issue(agent, issue, RunTrigger::ReviewRequested);
            self.wake_quietly(&Actor::System, wake).await;
        }
    }

    /// Wakes the new assignee after an edit changed the assignee from `before`.
    pub(crate) async fn wake_on_assignment(
        &self,
        actor: &Actor,
        before: Option<AgentId>,
        issue: &Issue,
    ) {
        if let Some(agent) = assignment_wake(before, issue, actor) {
            self.wake_quietly(actor, Wake::for_issue(agent, issue, RunTrigger::Assigned))
                .await;
        }
    }

    /// Wakes the assignee of `issue`'s parent (trigger `sub_issues_finished`, a task run on the
    /// parent) when `issue` has just finished and it was the last open sub-issue, so the parent
    /// is closed or followed up at once rather than at the next heartbeat. Skipped like any
    /// wake-up (§6.1: the assignee's own action wakes nobody). Never fails (see above).
    pub(crate) async fn wake_parent_when_children_finished(&self, actor: &Actor, issue: &Issue) {
        let Some(parent_key) = issue.parent_key.as_ref() else {
            return;
        };
        if !issue.status.is_terminal() {
            return;
        }
        match self.parent_to_wake(parent_key).await {
            Ok(Some((agent, parent))) => {
                let wake = Wake::for_issue(agent, &parent, RunTrigger::SubIssuesFinished);
                self.wake_quietly(actor, wake).await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = ?e, parent = %parent_key,
                "could not check the sub-issues of a parent"),
        }
    }

    /// The assignee of the open parent `key` whose sub-issues are all terminal, with the parent.
    async fn parent_to_wake(&self, key: &IssueKey) -> Result<Option<(AgentId, Issue)>> {
        let store = &self.inner.store;
        let parent = store.issue(key).await?;
        let Some(assignee) = parent.assignee_id else {
            return Ok(None);
        };
        if parent.status.is_terminal() || parent.deleted {
            return Ok(None);
        }
        let children = store.children(key).await?;
        let finished = children
            .iter()
            .filter(|c| !c.deleted)
            .all(|c| c.status.is_terminal());
        Ok(finished.then_some((assignee, parent)))
    }

    /// [`Mesa::enqueue_wake`], logging a failure instead of returning it.
    async fn wake_quietly(&self, actor: &Actor, wake: Wake) {
        let (agent, trigger) = (wake.agent, wake.trigger);
        if let Err(e) = self.enqueue_wake(actor, wake).await {
            tracing::error!(error = ?e, %agent, trigger = trigger.as_str(),
                "a wake-up could not be enqueued");
        }
    }

    /// Enqueues a wake-up (merging into the queued run of the same agent, issue and mode) and
    /// publishes `RunQueued`. `Ok(None)` when the wake-up is skipped (see [`skip`]).
    pub(crate) async fn enqueue_wake(
        &self,
        actor: &Actor,
        wake: Wake,
    ) -> Result<Option<EnqueueOutcome>> {
        let agent = match self.roster().await?.get(wake.agent) {
            Some(a) => a.clone(),
            None => self.inner.store.agent(wake.agent).await?,
        };
        if let Some(why) = skip(&agent, actor) {
            tracing::debug!(agent = %agent.slug, trigger = wake.trigger.as_str(), ?why,
                "wake-up skipped");
            return Ok(None);
        }
        // The board's own decisions (unblock, requeue, a comment) override the runaway guard:
        // each grants the issue one more run.
        if let Some(key) = &wake.issue_key
            && !actor.is_board()
            && !self.runaway_allows(&agent, key).await?
        {
            return Ok(None);
        }
        Ok(Some(self.enqueue_for(actor, &agent, wake).await?))
    }

    /// The runaway guard (SPEC §2) for a wake-up of `agent` on issue `key`: `true` to enqueue
    /// it. Once the issue has had `max_runs_per_issue` counted runs, the wake-up blocks the issue
    /// instead (in review: adds a system comment), tells the board and drops its queued runs.
    /// Terminal issues are never woken for.
    async fn runaway_allows(&self, agent: &Agent, key: &IssueKey) -> Result<bool> {
        let issue = self.inner.store.issue(key).await?;
        let max = self
            .inner
            .settings
            .read()
            .await
            .max_runs_per_issue(self.inner.config.max_runs_per_issue);
        let now = self.now();
        let snapshot = IssueSnapshot::from_issue(&issue);
        let effects = match runaway_guard(&snapshot, max, agent.config.runner.is_free(), now) {
            WakeGuard::Proceed { .. } => return Ok(true),
            WakeGuard::Block(t) => {
                let mut next = issue.clone();
                let mut comments = Vec::new();
                self.apply_effects(&Actor::System, &mut next, &t.effects, &mut comments);
                next.status = t.to;
                next.status_changed_at = now;
                next.updated_at = now;
                let activity = self.activity(
                    &Actor::System,
                    t.activity.action,
                    "issue",
                    key.as_str(),
                    t.activity.summary.clone(),
                    serde_json::json!({ "from": issue.status, "to": t.to, "guard": "runaway" }),
                );
                self.write_issue(issue.clone(), next, comments, vec![activity])
                    .await?;
                t.effects
            }
            WakeGuard::Suppress(effects) => {
                for effect in &effects {
                    if let IssueEffect::AddComment { kind, body } = effect {
                        self.system_comment(key, *kind, body).await?;
                    }
                }
                effects
            }
        };
        for effect in &effects {
            match effect {
                IssueEffect::NotifyBoard { message } => {
                    self.notify_board(message.clone(), Some(key.clone()));
                }
                IssueEffect::DropQueuedRuns => {
                    let reason = format!("the runaway guard stopped {key}");
                    self.cancel_queued(&Actor::System, QueuedRuns::Issue(key.clone()), reason)
                        .await?;
                }
                _ => {}
            }
        }
        tracing::info!(issue = %key, agent = %agent.slug, run_count = issue.run_count, max,
            "runaway guard: wake-up not queued");
        Ok(false)
    }

    /// Stores a comment by Mesa itself and publishes it.
    pub(crate) async fn system_comment(
        &self,
        key: &IssueKey,
        kind: CommentKind,
        body: &str,
    ) -> Result<()> {
        let comment = NewComment {
            id: Self::new_id(),
            issue_key: key.clone(),
            author_agent_id: None,
            author: Actor::System.to_string(),
            kind,
            body: body.to_owned(),
            created_at: self.now(),
        };
        let activity = self.activity(
            &Actor::System,
            "comment.created",
            "issue",
            key.as_str(),
            format!("{kind} on {key}"),
            serde_json::json!({ "comment_id": comment.id, "kind": kind }),
        );
        let stored = self
            .inner
            .store
            .add_comment(comment, vec![activity])
            .await?;
        self.publish([DomainEvent::CommentCreated(Box::new(stored))]);
        Ok(())
    }

    /// The wake-up a new issue's creation asks for (the workflow's `Wake` effect), as a run
    /// record the store queues in the creation's own transaction; `None` when the skip rules
    /// say no. A new issue has had no run, so the runaway guard never applies.
    pub(crate) async fn creation_wake(
        &self,
        actor: &Actor,
        effects: &[IssueEffect],
        priority: i64,
    ) -> Result<Option<NewRunRecord>> {
        let Some((agent, trigger)) = effects.iter().find_map(|e| match e {
            IssueEffect::Wake { agent, trigger } => Some((*agent, *trigger)),
            _ => None,
        }) else {
            return Ok(None);
        };
        let agent = match self.roster().await?.get(agent) {
            Some(a) => a.clone(),
            None => self.inner.store.agent(agent).await?,
        };
        if let Some(why) = skip(&agent, actor) {
            tracing::debug!(agent = %agent.slug, trigger = trigger.as_str(), ?why,
                "wake-up skipped");
            return Ok(None);
        }
        let mode = mode_for(trigger, true);
        // Filed under the new issue: the store gives the row the key it allocates.
        let activity = self.activity(
            actor,
            "run.queued",
            "issue",
            "",
            format!(
                "queued a {mode} run of {} ({})",
                agent.slug,
                trigger.as_str()
            ),
            serde_json::json!({ "agent": agent.slug, "mode": mode, "trigger": trigger }),
        );
        Ok(Some(NewRunRecord {
            id: Self::new_id(),
            agent_id: agent.id,
            issue_key: None,
            mode,
            trigger,
            runner: agent.config.runner,
            model: agent.config.model.clone(),
            priority,
            not_before: None,
            queued_at: self.now(),
            activity: vec![activity],
        }))
    }

    /// Enqueues a wake-up of `agent` without the skip rules (callers checked them).
    pub(crate) async fn enqueue_for(
        &self,
        actor: &Actor,
        agent: &Agent,
        wake: Wake,
    ) -> Result<EnqueueOutcome> {
        let mode = wake.mode;
        let on = wake
            .issue_key
            .as_ref()
            .map_or_else(String::new, |k| format!(" on {k}"));
        let activity = self.activity(
            actor,
            "run.queued",
            "agent",
            agent.slug.as_str(),
            format!(
                "queued a {mode} run of {}{on} ({})",
                agent.slug,
                wake.trigger.as_str()
            ),
            serde_json::json!({
                "issue_key": wake.issue_key,
                "mode": mode,
                "trigger": wake.trigger,
            }),
        );
        let outcome = self
            .inner
            .store
            .enqueue_run(NewRunRecord {
                id: Self::new_id(),
                agent_id: agent.id,
                issue_key: wake.issue_key,
                mode,
                trigger: wake.trigger,
                runner: agent.config.runner,
                model: agent.config.model.clone(),
                priority: wake.priority,
                not_before: wake.not_before,
                queued_at: self.now(),
                activity: vec![activity],
            })
            .await?;
        self.publish([DomainEvent::RunQueued(Box::new(outcome.run.clone()))]);
        Ok(outcome)
    }

    /// Cancels queued runs and publishes `RunFinished` for each; returns them.
    pub(crate) async fn cancel_queued(
        &self,
        actor: &Actor,
        runs: QueuedRuns,
        reason: String,
    ) -> Result<Vec<Run>> {
        let (entity, id) = match &runs {
            QueuedRuns::Run(id) => ("run", id.to_string()),
            QueuedRuns::Issue(key) => ("issue", key.to_string()),
        };
        let activity = self.activity(
            actor,
            "run.cancelled",
            entity,
            id.clone(),
            format!("cancelled queued runs of {entity} {id}: {reason}"),
            serde_json::json!({ "reason": reason }),
        );
        let cancelled = self
            .inner
            .store
            .cancel_queued_runs(CancelQueuedRuns {
                runs,
                reason,
                at: self.now(),
                activity: vec![activity],
            })
            .await?;
        self.publish(
            cancelled
                .iter()
                .map(|r| DomainEvent::RunFinished(Box::new(r.clone()))),
        );
        if cancelled.iter().any(|r| r.mode == RunMode::Audit) {
            self.settle_cancelled_audits(&cancelled).await?;
        }
        Ok(cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_domain::entity::AgentConfig;
    use mesa_domain::{IssueId, Markdown, Priority, Slug, Stages, Title, Version};

    fn id(n: u128) -> AgentId {
        AgentId::from(uuid::Uuid::from_u128(n))
    }

    fn agent(n: u128, active: bool) -> Agent {
        let mut config = AgentConfig::new(
            mesa_domain::Name::parse("Eng").unwrap(),
            Slug::parse("backend").unwrap(),
            mesa_domain::RunnerKind::Noop,
            mesa_domain::WorkingDir::parse("/tmp").unwrap(),
        );
        config.active = active;
        Agent {
            id: id(n),
            slug: Slug::parse("eng").unwrap(),
            config,
            paused_until: None,
            pause_reason: None,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            version: Version(1),
        }
    }

    fn issue(status: IssueStatus, assignee: Option<AgentId>) -> Issue {
        Issue {
            id: IssueId::from(uuid::Uuid::from_u128(9)),
            key: IssueKey::parse("MESA-1").unwrap(),
            title: Title::parse("Fix it").unwrap(),
            description: Markdown::parse("").unwrap(),
            issue_type: mesa_domain::IssueType::Task,
            status,
            priority: Priority::new(3).unwrap(),
            assignee_id: assignee,
            submitted_by: None,
            reviewer_id: None,
            parent_key: None,
            work_block_id: None,
            labels: Vec::new(),
            stages: Stages::empty(),
            current_stage: None,
            branch: None,
            started_at: None,
            completed_at: None,
            cancellation_reason: None,
            created_by: "board".into(),
            run_count: 0,
            status_changed_at: Timestamp::from_millis(0),
            deleted: false,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            version: Version(1),
        }
    }

    fn as_agent(n: u128) -> Actor {
        Actor::Agent {
            id: id(n),
            slug: Slug::parse("someone").unwrap(),
        }
    }

    #[test]
    fn triggers_choose_the_mode() {
        assert_eq!(mode_for(RunTrigger::ReviewRequested, true), RunMode::Review);
        for t in [
            RunTrigger::Assigned,
            RunTrigger::IssueCreated,
            RunTrigger::ChangesRequested,
            RunTrigger::Unblocked,
            RunTrigger::Reopened,
            RunTrigger::Comment,
            RunTrigger::Manual,
        ] {
            assert_eq!(mode_for(t, true), RunMode::Task, "{t}");
        }
        assert_eq!(mode_for(RunTrigger::Manual, false), RunMode::Heartbeat);
        assert_eq!(mode_for(RunTrigger::Audit, false), RunMode::Audit);
        assert_eq!(mode_for(RunTrigger::Cron, false), RunMode::Cron);
    }

    #[test]
    fn reviews_queue_before_new_work() {
        assert!(
            RunTrigger::ReviewRequested.queue_rank() < RunTrigger::Assigned.queue_rank(),
            "SPEC §6.2"
        );
    }

    #[test]
    fn own_actions_and_inactive_agents_are_skipped() {
        let a = agent(1, true);
        assert_eq!(skip(&a, &as_agent(1)), Some(Skip::OwnAction));
        assert_eq!(skip(&a, &as_agent(2)), None);
        assert_eq!(skip(&a, &Actor::board("b")), None);
        assert_eq!(
            skip(&agent(1, false), &Actor::board("b")),
            Some(Skip::Inactive)
        );
    }

    #[test]
    fn comments_wake_the_assignee_while_the_issue_is_in_its_hands() {
        let board = Actor::board("b");
        for status in [
            IssueStatus::Todo,
            IssueStatus::InProgress,
            IssueStatus::Blocked,
        ] {
            assert_eq!(
                comment_wake(&issue(status, Some(id(1))), &board),
                Some(id(1))
            );
            assert_eq!(
                comment_wake(&issue(status, Some(id(1))), &as_agent(2)),
                Some(id(1))
            );
            assert_eq!(
                comment_wake(&issue(status, Some(id(1))), &as_agent(1)),
                None
            );
        }
        for status in [
            IssueStatus::InReview,
            IssueStatus::BoardReview,
            IssueStatus::Done,
            IssueStatus::Cancelled,
        ] {
            assert_eq!(
                comment_wake(&issue(status, Some(id(1))), &board),
                None,
                "{status}"
            );
        }
        assert_eq!(comment_wake(&issue(IssueStatus::Todo, None), &board), None);
    }

    #[test]
    fn a_new_assignee_is_woken_unless_it_assigned_itself() {
        let board = Actor::board("b");
        let todo = issue(IssueStatus::Todo, Some(id(1)));
        assert_eq!(assignment_wake(None, &todo, &board), Some(id(1)));
        assert_eq!(assignment_wake(Some(id(2)), &todo, &board), Some(id(1)));
        assert_eq!(
            assignment_wake(Some(id(1)), &todo, &board),
            None,
            "unchanged"
        );
        assert_eq!(assignment_wake(None, &todo, &as_agent(1)), None, "self");
        let done = issue(IssueStatus::Done, Some(id(1)));
        assert_eq!(assignment_wake(None, &done, &board), None);
        assert_eq!(
            assignment_wake(Some(id(1)), &issue(IssueStatus::Todo, None), &board),
            None
        );
    }

    #[test]
    fn an_issue_wake_carries_its_priority() {
        let w = Wake::for_issue(
            id(1),
            &issue(IssueStatus::InReview, None),
            RunTrigger::ReviewRequested,
        );
        assert_eq!(w.priority, 3);
        assert_eq!(w.mode, RunMode::Review);
        assert_eq!(w.issue_key.as_ref().map(IssueKey::as_str), Some("MESA-1"));
    }
}
