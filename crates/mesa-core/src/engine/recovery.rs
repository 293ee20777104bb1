//! Crash recovery (SPEC §6.6): the runs a previous process left `running`.

use std::collections::HashSet;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{Actor, CostSource, MicroUsd, RunStatus, Timestamp};
use mesa_store::FinishRunRecord;

use super::driver::Engine;

/// Finds the runs whose lease expired, or that this node ran before it restarted; kills any
/// surviving process group; marks them `failed` (`server_restart` for this node's own,
/// `lease_expired` for another node's), which releases their reservations and revokes their
/// keys; re-queues one wake-up per run; and removes left-over worktrees.
pub(crate) async fn recover(engine: &Engine, now: Timestamp) -> crate::Result<()> {
    let mesa = &engine.mesa;
    let node = engine.node_id().to_owned();
    let stale = mesa.inner.store.stale_runs(now, Some(&node)).await?;
    for run in &stale {
        if let Some(pgid) = run.pgid.and_then(|p| i32::try_from(p).ok())
            && pgid > 1
            && mesa_runner::process::kill_group(pgid)
        {
            tracing::warn!(run = %run.id, pgid, "killed the process group of a crashed run");
        }
        let reason = if run.node_id.as_deref() == Some(node.as_str()) {
            "server_restart"
        } else {
            "lease_expired"
        };
        let activity = mesa.activity(
            &Actor::System,
            "run.recovered",
            "run",
            run.id.to_string(),
            format!("marked run {} failed ({reason})", run.id),
            serde_json::json!({ "reason": reason, "agent_id": run.agent_id }),
        );
        let finished = mesa
            .finish_run(FinishRunRecord {
                run_id: run.id,
                status: RunStatus::Failed,
                exit_code: None,
                failure_reason: Some(reason.to_owned()),
                stdout: None,
                diff: None,
                diff_stat: None,
                usage: TokenUsage::default(),
                cost_usd: MicroUsd::ZERO,
                cost_source: CostSource::Parsed,
                num_turns: None,
                finished_at: now,
                cost_event_id: crate::Mesa::new_id(),
                activity: vec![activity],
            })
            .await;
        match finished {
            Ok(run) => super::execute::requeue(engine, &run, None).await,
            Err(e) => tracing::error!(run = %run.id, error = %e, "could not recover a run"),
        }
    }
    if !stale.is_empty() {
        tracing::warn!(runs = stale.len(), "recovered runs of a previous process");
    }
    // Nothing runs yet on this node, so every worktree left on disk is an orphan.
    match engine.worktrees.remove_orphans(&HashSet::new()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed left-over worktrees"),
        Err(e) => tracing::warn!(error = %e, "could not clean left-over worktrees"),
    }
    Ok(())
}
