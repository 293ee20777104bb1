//! Runs as the API and the (future) runner see them: manual wake-ups, the captured log and its
//! live follow, cancellation, finishing, and audits (SPEC §4.3, §6.1, §7.5, §9.3).
//!
//! The log lock: [`Mesa::append_run_output`] stores a chunk and publishes `RunOutput` while
//! holding `Inner::run_log`, and [`Mesa::follow_run_log`] subscribes to the bus and reads the
//! stored log while holding it too. So every chunk is either in the stored log the follower
//! read or among the events it receives after, never both and never neither.

use std::sync::Arc;

use mesa_domain::entity::{Audit, Run};
use mesa_domain::{
    Actor, AuditStatus, DomainEvent, IssueKey, IssueStatus, RunId, RunMode, RunStatus, RunTrigger,
};
use mesa_store::{Created, EnqueueOutcome, FinishRunRecord, QueuedRuns};
use tokio::sync::broadcast;

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;
use crate::wakes::{Wake, mode_for};

/// How much output a run keeps, in characters (SPEC §7.5: 8 MiB, head and tail kept).
pub const RUN_LOG_CAP: u64 = 8 * 1024 * 1024;

/// The longest audit focus accepted.
const MAX_FOCUS: usize = 2_000;

/// What [`Mesa::cancel_run`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCancel {
    /// The run was queued and is now `cancelled`.
    Cancelled(Run),
    /// The run is running: the request is recorded and `RunCancelRequested` published; the
    /// scheduler stops the process and finishes the run as `cancelled`.
    Requested(Run),
}

/// A run's stored log and the live events after it (see [`Mesa::follow_run_log`]).
#[derive(Debug)]
pub struct RunLogFollow {
    /// The run as stored when the follow began, with its output so far in `stdout`.
    pub run: Run,
    /// Every event published after that read; the follower keeps the `RunOutput` and
    /// `RunFinished` events of its run.
    pub events: broadcast::Receiver<Arc<DomainEvent>>,
}

impl Mesa {
    /// `POST /agents/{slug}/wake` (board only): queues a run of the agent, for an issue or not,
    /// with trigger `manual` (merged into its queued run of the same issue and mode, if any).
    /// The mode is `review` when the issue awaits review and the agent is not its assignee,
    /// `task` for other issues, `heartbeat` without one. A deactivated agent is refused
    /// (`agent_inactive`), as is a finished issue (`issue_finished`); a paused agent is queued
    /// and waits for its pause to end.
    pub async fn wake_agent(
        &self,
        actor: &Actor,
        agent: &str,
        issue: Option<&IssueKey>,
    ) -> Result<EnqueueOutcome> {
        Self::require_board(actor, "wake agents")?;
        let agent = self.find_agent(agent).await?;
        if !agent.config.active {
            return Err(CoreError::refused(
                "agent_inactive",
                format!(
                    "{} is deactivated; reactivate it (PATCH /api/v1/agents/{} with \
                     {{\"active\": true}}) before waking it",
                    agent.slug, agent.slug
                ),
            ));
        }
        let wake = match issue {
            None => Wake {
                agent: agent.id,
                issue_key: None,
                trigger: RunTrigger::Manual,
                mode: mode_for(RunTrigger::Manual, false),
                priority: 0,
                not_before: None,
            },
            Some(key) => {
                let issue = self.inner.store.issue(key).await?;
                if issue.status.is_terminal() || issue.deleted {
                    return Err(CoreError::refused(
                        "issue_finished",
                        format!(
                            "{key} is {}; reopen it before waking an agent for it",
                            issue.status
                        ),
                    ));
                }
                let mut wake = Wake::for_issue(agent.id, &issue, RunTrigger::Manual);
                let reviews = matches!(issue.status, IssueStatus::InReview)
                    && issue.assignee_id != Some(agent.id);
                wake.mode = if reviews {
                    RunMode::Review
                } else {
                    RunMode::Task
                };
                wake
            }
        };
        self.enqueue_for(actor, &agent, wake).await
    }

    /// A run with its captured output, for the board or the run's own agent (SPEC §9.1: other
    /// agents' run logs are not theirs to read → `Forbidden`).
    pub async fn run_log(&self, actor: &Actor, id: RunId) -> Result<Run> {
        let run = self.inner.store.run(id).await?;
        let own = actor.agent_id() == Some(run.agent_id);
        if actor.is_board() || matches!(actor, Actor::System) || own {
            Ok(run)
        } else {
            Err(CoreError::Forbidden(
                "only the board and the run's own agent may read a run's log".into(),
            ))
        }
    }

    /// The stored log and the live events after it, with no chunk missed or repeated (see the
    /// module documentation). Same rights as [`Mesa::run_log`].
    pub async fn follow_run_log(&self, actor: &Actor, id: RunId) -> Result<RunLogFollow> {
        self.run_log(actor, id).await?;
        let _guard = self.inner.run_log.lock().await;
        let events = self.subscribe();
        let run = self.inner.store.run(id).await?;
        Ok(RunLogFollow { run, events })
    }

    /// Appends a chunk of a queued or running run's output (already scrubbed of secrets, SPEC
    /// §7.5) to its stored log and publishes it as `RunOutput` for live followers. The log
    /// keeps [`RUN_LOG_CAP`] characters, head and tail. The runner calls this; it should batch
    /// lines (every few hundred milliseconds) rather than call it per line, since every call is
    /// one durable write. A finished run is a conflict.
    pub async fn append_run_output(&self, id: RunId, chunk: &str) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let _guard = self.inner.run_log.lock().await;
        self.inner
            .store
            .append_run_output(id, chunk, RUN_LOG_CAP)
            .await?;
        self.publish([DomainEvent::RunOutput {
            run_id: id,
            text: chunk.to_owned(),
        }]);
        Ok(())
    }

    /// Finishes a run (see [`mesa_store::RunStore::finish_run`]) and publishes `RunFinished`,
    /// which ends the run's log followers. For the scheduler. The audit of an audit run ends
    /// with it (without a final message: see `Mesa::finish_run_with_result`).
    pub async fn finish_run(&self, record: FinishRunRecord) -> Result<Run> {
        self.finish_run_with_result(record, None).await
    }

    /// [`Mesa::finish_run`] with the run's final message (`result_text`, the runner's parsed
    /// result), which becomes the findings of the run's audit if it has one (SPEC §4.3). An
    /// audit that cannot be recorded is logged; the run stays finished.
    pub(crate) async fn finish_run_with_result(
        &self,
        record: FinishRunRecord,
        result_text: Option<&str>,
    ) -> Result<Run> {
        let run = self.inner.store.finish_run(record).await?;
        self.publish([DomainEvent::RunFinished(Box::new(run.clone()))]);
        if let Err(e) = self.settle_audit(&run, result_text).await {
            tracing::error!(run = %run.id, error = %e, "the run's audit could not be ended");
        }
        Ok(run)
    }

    /// `POST /runs/{id}/cancel` (board only). A queued run becomes `cancelled` at once; for a
    /// running one the request is recorded in the audit log and `RunCancelRequested` is
    /// published for the scheduler, which stops the process. A finished run is refused
    /// (`run_finished`).
    pub async fn cancel_run(&self, actor: &Actor, id: RunId) -> Result<RunCancel> {
        Self::require_board(actor, "cancel runs")?;
        let run = self.inner.store.run(id).await?;
        if run.status == RunStatus::Queued {
            let reason = format!("cancelled by {actor}");
            if let Some(done) = self
                .cancel_queued(actor, QueuedRuns::Run(id), reason)
                .await?
                .into_iter()
                .next()
            {
                return Ok(RunCancel::Cancelled(done));
            }
        }
        // Not queued (any more: the scheduler may have started it meanwhile).
        let run = self.inner.store.run(id).await?;
        if run.status.is_finished() {
            return Err(CoreError::refused(
                "run_finished",
                format!(
                    "run {id} already finished ({}); there is nothing to cancel",
                    run.status
                ),
            ));
        }
        let activity = self.activity(
            actor,
            "run.cancel_requested",
            "run",
            id.to_string(),
            format!("asked to cancel running run {id}"),
            serde_json::json!({ "agent_id": run.agent_id, "issue_key": run.issue_key }),
        );
        let rows = self.inner.store.append_activity(vec![activity]).await?;
        self.publish_activity(rows);
        self.publish([DomainEvent::RunCancelRequested(Box::new(run.clone()))]);
        Ok(RunCancel::Requested(run))
    }

    /// Marks the audits of cancelled audit runs `failed`, so none waits for a run that will
    /// never come.
    pub(crate) async fn settle_cancelled_audits(&self, cancelled: &[Run]) -> Result<()> {
        let audits = self.inner.store.list_audits().await?;
        for audit in audits {
            let Some(run) = cancelled.iter().find(|r| Some(r.id) == audit.run_id) else {
                continue;
            };
            if audit.status != AuditStatus::Queued {
                continue;
            }
            let reason = run.failure_reason.as_deref().unwrap_or("cancelled");
            self.inner
                .store
                .update_audit(Audit {
                    status: AuditStatus::Failed,
                    findings: Some(format!(
                        "The audit run was cancelled before it started ({reason})."
                    )),
                    finished_at: run.finished_at,
                    ..audit
                })
                .await?;
        }
        Ok(())
    }

    /// `POST /audits` (board only): queues a run of the org's auditor (the first active agent
    /// with the `auditor` archetype; none is `no_auditor`), mode and trigger `audit`, and
    /// records the Audit. While an audit run is still queued, another request is refused
    /// (`audit_queued`, naming it): the queued audit will run once. The figures of the
    /// audit's prompt look back `window_days` (1 to 90; default 14) from the run's start.
    pub async fn request_audit(
        &self,
        actor: &Actor,
        focus: Option<&str>,
        window_days: Option<u32>,
    ) -> Result<(Audit, Run)> {
        Self::require_board(actor, "request audits")?;
        let window_days = crate::audit::parse_window_days(window_days.map(i64::from))?;
        let focus = match focus.map(str::trim) {
            None | Some("") => None,
            Some(f) if f.chars().count() > MAX_FOCUS => {
                return Err(mesa_domain::ValidationError::new(
                    "focus",
                    format!("focus must be at most {MAX_FOCUS} characters"),
                )
                .into());
            }
            Some(f) => Some(f.to_owned()),
        };
        let roster = self.roster().await?;
        let Some(auditor) = roster
            .iter()
            .find(|a| a.config.archetype.as_str() == "auditor" && a.config.active)
            .cloned()
        else {
            return Err(CoreError::refused(
                "no_auditor",
                "no active agent has the auditor archetype; hire one with POST /api/v1/agents \
                 {\"slug\": \"auditor\", \"name\": \"Auditor\", \"archetype\": \"auditor\", \
                 \"runner\": \"claude_code\"} (or reactivate a deactivated auditor), then ask again",
            ));
        };
        let wake = Wake {
            agent: auditor.id,
            issue_key: None,
            trigger: RunTrigger::Audit,
            mode: RunMode::Audit,
            priority: 0,
            not_before: None,
        };
        let outcome = self.enqueue_for(actor, &auditor, wake).await?;
        if outcome.merged {
            let queued = self
                .inner
                .store
                .list_audits()
                .await?
                .into_iter()
                .find(|a| a.run_id == Some(outcome.run.id));
            let named = queued.map_or_else(String::new, |a| format!(" (audit {})", a.id));
            return Err(CoreError::refused(
                "audit_queued",
                format!(
                    "an audit is already queued{named}, run {}; it has not started yet",
                    outcome.run.id
                ),
            ));
        }
        let audit = Audit {
            id: Self::new_id(),
            run_id: Some(outcome.run.id),
            focus,
            status: AuditStatus::Queued,
            findings: None,
            figures: None,
            window_days,
            patches_proposed: 0,
            issues_created: 0,
            created_at: self.now(),
            finished_at: None,
        };
        let activity = self.activity(
            actor,
            "audit.requested",
            "audit",
            audit.id.to_string(),
            format!("requested an audit by {}", auditor.slug),
            serde_json::json!({
                "run_id": outcome.run.id,
                "focus": audit.focus,
                "window_days": window_days,
            }),
        );
        let audit = self
            .inner
            .store
            .create_audit(Created::new(audit, vec![activity]))
            .await?;
        Ok((audit, outcome.run))
    }
}
