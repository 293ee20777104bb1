//! Executing a started run (SPEC §7): run key, workspace, environment, the runner, the live
//! log, the outcome and what follows from it.

use std::time::Duration;

use mesa_domain::entity::{Agent, Run};
use mesa_domain::{
    Actor, CommentKind, CostSource, DomainEvent, IssueKey, MicroUsd, RunMode, RunStatus, RunTrigger,
};
use mesa_runner::capture::HeadTail;
use mesa_runner::env::{RunEnv, compose};
use mesa_runner::trajectory::{Trajectory, TrajectoryTracker};
use mesa_runner::worktree::{Access, Workspace};
use mesa_runner::{Invocation, RunOutcome, RunnerError, RunnerEvent};
use mesa_scheduler::RunSignal;
use mesa_scheduler::policy;
use mesa_store::FinishRunRecord;
use tokio::sync::mpsc;

use super::driver::{Engine, Started};
use crate::runs::RUN_LOG_CAP;
use crate::wakes::Wake;

/// Output is flushed to the stored log at least this often while a run prints.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// ... or when this much is waiting.
const FLUSH_BYTES: usize = 64 * 1024;
/// The stored log grows line by line up to half the cap; past it, lines are only streamed
/// live, and the final head-and-tail log is written when the run ends. So a run that prints
/// gigabytes costs the database nothing more than one that prints the cap.
const LIVE_STORE_LIMIT: usize = (RUN_LOG_CAP / 2) as usize;

/// Runs `started` to its end. Never fails: whatever goes wrong becomes the run's outcome.
pub(crate) async fn execute(engine: &Engine, started: Started, signal: RunSignal) {
    let Started { run, agent } = started;
    let id = run.id;
    let outcome = match prepare_and_run(engine, &run, &agent, &signal).await {
        Ok(done) => done,
        Err(failure) => Finished {
            outcome: failed(failure),
            workspace: None,
            log: None,
            backlog: None,
            trajectory: None,
        },
    };
    let trajectory = outcome.trajectory.clone();
    let backlog = outcome
        .backlog
        .clone()
        .filter(|_| outcome.outcome.status == RunStatus::Succeeded);
    let result_text = outcome.outcome.result_text.clone();
    if let Err(e) = finish(engine, &run, &agent, outcome, &signal).await {
        tracing::error!(run = %id, error = %e, "a finished run could not be recorded");
    }
    reflect_from_output(engine, id, result_text.as_deref()).await;
    if let Some(trajectory) = trajectory {
        evaluate(engine, &run, &agent, &trajectory).await;
        engine.mesa.judge_in_background(id, result_text).await;
    }
    if let Some(processed) = backlog {
        move_backlog(engine, &run, &agent, &processed).await;
    }
}

/// Stores the run's trajectory signature (SPEC §4.3 run evaluation; `evaluation.rs`).
async fn evaluate(engine: &Engine, run: &Run, agent: &Agent, trajectory: &Trajectory) {
    if let Err(e) = engine.mesa.record_evaluation(run, agent, trajectory).await {
        tracing::warn!(run = %run.id, error = %e, "could not store the run's evaluation");
    }
}

/// Whether a run is evaluated: task runs, while the `run_evaluation` flag is on.
async fn evaluated(engine: &Engine, run: &Run) -> bool {
    run.mode == RunMode::Task && engine.mesa.settings().await.feature("run_evaluation")
}

/// After a successful CEO run: its backlog sections go to `backlog.done.md` (`backlog.rs`).
async fn move_backlog(engine: &Engine, run: &Run, agent: &Agent, processed: &str) {
    let dir = std::path::Path::new(agent.config.working_dir.as_str());
    let now = engine.mesa.now();
    match super::backlog::move_processed(dir, processed, run.id, now).await {
        Ok(super::backlog::Moved::Moved) => {
            tracing::info!(run = %run.id, "processed backlog sections moved to backlog.done.md");
        }
        Ok(super::backlog::Moved::Gone) => {
            tracing::warn!(run = %run.id,
                "the processed backlog sections are no longer in backlog.md; nothing moved");
        }
        Err(e) => {
            tracing::error!(run = %run.id, error = %e,
                "could not move the processed backlog sections; backlog.md is unchanged");
        }
    }
}

/// Stores the final `REFLECTION:` block of a run's output as its reflection, when the agent
/// did not post one (SPEC §4.3; `Mesa::reflect_from_output`).
async fn reflect_from_output(engine: &Engine, run: mesa_domain::RunId, output: Option<&str>) {
    if let Err(e) = engine.mesa.reflect_from_output(run, output).await {
        tracing::warn!(run = %run, error = %e, "could not store the reflection of the output");
    }
}

/// What a run left behind.
struct Finished {
    outcome: RunOutcome,
    workspace: Option<Workspace>,
    /// The whole head-and-tail log, when the live log stopped storing.
    log: Option<String>,
    /// The backlog sections the run was handed.
    backlog: Option<String>,
    /// The trajectory signature of an evaluated run.
    trajectory: Option<Trajectory>,
}

fn failed(reason: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Failed,
        exit_code: None,
        failure_reason: Some(reason),
        usage: Default::default(),
        cost_usd: MicroUsd::ZERO,
        cost_source: CostSource::Parsed,
        num_turns: None,
        quota: None,
        result_text: None,
    }
}

async fn prepare_and_run(
    engine: &Engine,
    run: &Run,
    agent: &Agent,
    signal: &RunSignal,
) -> Result<Finished, String> {
    let mesa = &engine.mesa;
    let key = mesa
        .mint_run_key(agent, run.id)
        .await
        .map_err(|e| format!("could not mint the run key: {e}"))?;
    let working_dir = std::path::PathBuf::from(agent.config.working_dir.as_str());
    let access = if run.mode == RunMode::Review {
        Access::ReadOnly
    } else {
        Access::Write
    };
    let workspace = engine
        .worktrees
        .prepare(
            &working_dir,
            run.id,
            run.issue_key.as_ref().map(IssueKey::as_str),
            access,
        )
        .await
        .map_err(|e| format!("workspace: {e}"))?;
    let skills = super::skills::prepare(mesa, agent, run, &workspace).await;
    let prompt = super::prompt::build(mesa, agent, run, &workspace, skills)
        .await
        .map_err(|e| format!("could not build the prompt: {e}"))?;
    if let Err(e) = mesa
        .inner
        .store
        .set_run_workspace(
            run.id,
            workspace
                .is_isolated()
                .then(|| workspace.path().display().to_string()),
            workspace.branch().map(str::to_owned),
            workspace.base_commit().map(str::to_owned),
            Some(prompt.prompt.clone()),
        )
        .await
    {
        tracing::warn!(run = %run.id, error = %e, "could not record the run's workspace");
    }
    let scratch = mesa.config().data_dir.join("runs").join(run.id.to_string());
    let backlog = prompt.backlog.clone();
    let result = run_in(
        engine, run, agent, prompt, &workspace, &scratch, &key.raw, signal,
    )
    .await;
    if let Err(e) = tokio::fs::remove_dir_all(&scratch).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(run = %run.id, error = %e, "could not remove the run's scratch directory");
    }
    let (outcome, log, trajectory) = result?;
    Ok(Finished {
        outcome,
        workspace: Some(workspace),
        log,
        backlog,
        trajectory,
    })
}

#[expect(clippy::too_many_arguments, reason = "the parts of one run")]
async fn run_in(
    engine: &Engine,
    run: &Run,
    agent: &Agent,
    prompt: super::prompt::Built,
    workspace: &Workspace,
    scratch: &std::path::Path,
    run_key: &str,
    signal: &RunSignal,
) -> Result<(RunOutcome, Option<String>, Option<Trajectory>), String> {
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|e| format!("could not create {}: {e}", scratch.display()))?;
    let prompt_file = scratch.join("prompt.md");
    tokio::fs::write(&prompt_file, &prompt.prompt)
        .await
        .map_err(|e| format!("could not write {}: {e}", prompt_file.display()))?;
    let working_dir = agent.config.working_dir.as_str();
    let run_env = RunEnv {
        api_url: engine.config.api_url.clone(),
        api_key: run_key.to_owned(),
        agent_id: agent.id.to_string(),
        agent_slug: agent.slug.to_string(),
        agent_name: agent.config.name.to_string(),
        run_id: run.id.to_string(),
        issue_key: run.issue_key.as_ref().map(ToString::to_string),
        worktree: workspace.path().display().to_string(),
        artifact_docs: format!("{}/artifact-docs", working_dir.trim_end_matches('/')),
        prompt_file: prompt_file.display().to_string(),
    };
    let composed = compose(engine.config.server_env.clone(), &run_env, &agent.config);
    let mut secrets = composed.secrets;
    secrets.extend(engine.config.secrets.iter().cloned());
    let inv = Invocation {
        run_id: run.id,
        mode: run.mode,
        issue_key: run.issue_key.clone(),
        config: agent.config.clone(),
        prompt: prompt.prompt,
        system_prompt: prompt.system,
        workdir: workspace.path().to_path_buf(),
        scratch_dir: scratch.to_path_buf(),
        env: composed.env,
        timeout: Duration::from_secs(u64::from(agent.config.timeout_sec.max(1))),
        secrets,
    };
    let runner = mesa_runner::runner_for(agent.config.runner, &engine.config.prices);
    let (tx, rx) = mpsc::channel(1024);
    let running = runner.run(inv, tx, signal.cancel.clone());
    let tracker = evaluated(engine, run).await.then(TrajectoryTracker::new);
    let pump = pump_output(engine, run, rx, tracker);
    let (result, (log, trajectory)) = tokio::join!(running, pump);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e @ RunnerError::Unavailable { .. }) => failed(e.to_string()),
        Err(e) => failed(format!("runner error: {e}")),
    };
    Ok((outcome, log, trajectory))
}

/// Stores and streams a run's output as it comes (batched), and returns the whole
/// head-and-tail log when the stored log stopped growing at [`LIVE_STORE_LIMIT`], with the
/// trajectory signature when `tracker` follows the run.
async fn pump_output(
    engine: &Engine,
    run: &Run,
    mut rx: mpsc::Receiver<RunnerEvent>,
    mut tracker: Option<TrajectoryTracker>,
) -> (Option<String>, Option<Trajectory>) {
    let mesa = &engine.mesa;
    let started = tokio::time::Instant::now();
    let mut all = HeadTail::new(usize::try_from(RUN_LOG_CAP).unwrap_or(usize::MAX));
    let mut pending = String::new();
    let mut stored = 0_usize;
    let mut last_flush = tokio::time::Instant::now();
    loop {
        let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
        let event = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(ev) => ev,
                Err(_) => {
                    stored += flush(mesa, run, &mut pending, stored).await;
                    last_flush = tokio::time::Instant::now();
                    continue;
                }
            }
        };
        match event {
            Some(RunnerEvent::Spawned { pid, pgid }) => {
                if let Err(e) = mesa
                    .inner
                    .store
                    .set_run_process(run.id, Some(i64::from(pid)), Some(i64::from(pgid)))
                    .await
                {
                    tracing::warn!(run = %run.id, error = %e, "could not record the process");
                }
            }
            Some(RunnerEvent::Output { line, .. }) => {
                if let Some(t) = tracker.as_mut() {
                    t.observe(&line, started.elapsed());
                }
                all.push(&line);
                all.push("\n");
                pending.push_str(&line);
                pending.push('\n');
                if pending.len() >= FLUSH_BYTES || last_flush.elapsed() >= FLUSH_EVERY {
                    stored += flush(mesa, run, &mut pending, stored).await;
                    last_flush = tokio::time::Instant::now();
                }
            }
            None => break,
        }
    }
    stored += flush(mesa, run, &mut pending, stored).await;
    let log = (stored >= LIVE_STORE_LIMIT || all.elided() > 0).then(|| all.into_string());
    (log, tracker.map(|t| t.finish()))
}

/// Sends `pending` live, storing it too while the stored log is under the limit; returns how
/// much was stored.
async fn flush(mesa: &crate::Mesa, run: &Run, pending: &mut String, stored: usize) -> usize {
    if pending.is_empty() {
        return 0;
    }
    let chunk = std::mem::take(pending);
    if stored < LIVE_STORE_LIMIT {
        match mesa.append_run_output(run.id, &chunk).await {
            Ok(()) => return chunk.len(),
            Err(e) => tracing::warn!(run = %run.id, error = %e, "could not store run output"),
        }
    } else {
        mesa.publish([DomainEvent::RunOutput {
            run_id: run.id,
            text: chunk,
        }]);
    }
    0
}

/// Records the outcome and its consequences.
async fn finish(
    engine: &Engine,
    run: &Run,
    agent: &Agent,
    finished: Finished,
    signal: &RunSignal,
) -> crate::Result<()> {
    let mesa = &engine.mesa;
    let Finished {
        mut outcome,
        workspace,
        log,
        backlog: _,
        trajectory: _,
    } = finished;
    let shutdown = signal.shutdown.is_cancelled();
    if outcome.status == RunStatus::Cancelled && shutdown {
        outcome.failure_reason = Some("shutdown".to_owned());
    }
    let changes = match &workspace {
        Some(ws) => match engine.worktrees.finish(ws).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "could not record the worktree diff");
                None
            }
        },
        None => None,
    };
    let now = mesa.now();
    let status = outcome.status;
    let reason = if outcome.quota.is_some() {
        Some("quota".to_owned())
    } else {
        outcome.failure_reason.clone()
    };
    let activity = mesa.activity(
        &Actor::System,
        "run.finished",
        "run",
        run.id.to_string(),
        format!(
            "{} run of {} {status}{}",
            run.mode,
            agent.slug,
            reason
                .as_deref()
                .map_or_else(String::new, |r| format!(": {r}"))
        ),
        serde_json::json!({
            "status": status,
            "failure_reason": reason,
            "cost_usd": outcome.cost_usd.as_usd(),
            "tokens": outcome.usage.total(),
        }),
    );
    let stored = mesa
        .finish_run_with_result(
            FinishRunRecord {
                run_id: run.id,
                status,
                exit_code: outcome.exit_code,
                failure_reason: reason.clone(),
                stdout: log,
                diff: changes.as_ref().map(|c| c.diff.clone()),
                diff_stat: changes.as_ref().map(|c| c.diff_stat.clone()),
                usage: outcome.usage,
                cost_usd: outcome.cost_usd,
                cost_source: outcome.cost_source,
                num_turns: outcome.num_turns,
                finished_at: now,
                cost_event_id: crate::Mesa::new_id(),
                activity: vec![activity],
            },
            outcome.result_text.as_deref(),
        )
        .await?;
    after(engine, &stored, agent, &outcome, shutdown).await
}

/// What follows from an outcome: a system comment on failure, a quota pause with the wake-up
/// re-queued after it, a re-queued wake-up after a shutdown, the quota streak.
async fn after(
    engine: &Engine,
    run: &Run,
    agent: &Agent,
    outcome: &RunOutcome,
    shutdown: bool,
) -> crate::Result<()> {
    let mesa = &engine.mesa;
    let now = mesa.now();
    if let Some(quota) = outcome.quota {
        let streak = {
            let mut state = engine.state();
            let s = state.quota_streak.entry(agent.id).or_default();
            let before = *s;
            *s = s.saturating_add(1);
            before
        };
        let until = policy::quota_pause_until(quota.retry_at, streak, now);
        let reason = format!(
            "provider quota or rate limit{}",
            outcome
                .failure_reason
                .as_deref()
                .map_or_else(String::new, |r| format!(": {r}"))
        );
        engine
            .pause_agent(agent, until, reason.clone(), "agent.quota_paused")
            .await?;
        mesa.notify_board(
            format!("{} is paused until {until}: {reason}", agent.slug),
            run.issue_key.clone(),
        );
        requeue(engine, run, Some(until)).await;
        return Ok(());
    }
    if outcome.status == RunStatus::Succeeded {
        engine.state().quota_streak.remove(&agent.id);
    }
    if shutdown && outcome.status == RunStatus::Cancelled {
        // The work was interrupted, not refused: it resumes after the restart.
        requeue(engine, run, None).await;
        return Ok(());
    }
    if matches!(outcome.status, RunStatus::Failed | RunStatus::TimedOut)
        && let Some(key) = &run.issue_key
    {
        let why = outcome
            .failure_reason
            .as_deref()
            .unwrap_or("no reason given");
        let body = format!(
            "Run {} of {} {}: {why}. It is not retried by itself; a later wake-up may retry it \
             (this issue has had {} counted runs).",
            run.id,
            agent.slug,
            if outcome.status == RunStatus::TimedOut {
                "timed out"
            } else {
                "failed"
            },
            mesa.inner
                .store
                .issue(key)
                .await
                .map(|i| i.run_count)
                .unwrap_or_default()
        );
        mesa.system_comment(key, CommentKind::System, &body).await?;
    }
    Ok(())
}

/// Queues the wake-up of an interrupted run again (trigger `recovery`).
pub(crate) async fn requeue(
    engine: &Engine,
    run: &Run,
    not_before: Option<mesa_domain::Timestamp>,
) {
    let mesa = &engine.mesa;
    let priority = match &run.issue_key {
        Some(key) => match mesa.inner.store.issue(key).await {
            Ok(issue) if issue.status.is_terminal() || issue.deleted => return,
            Ok(issue) => i64::from(issue.priority.get()),
            Err(_) => return,
        },
        None => 0,
    };
    let wake = Wake {
        agent: run.agent_id,
        issue_key: run.issue_key.clone(),
        trigger: RunTrigger::Recovery,
        mode: run.mode,
        priority,
        not_before,
    };
    if let Err(e) = mesa.enqueue_wake(&Actor::System, wake).await {
        tracing::error!(run = %run.id, error = %e, "could not re-queue the wake-up");
    }
}
