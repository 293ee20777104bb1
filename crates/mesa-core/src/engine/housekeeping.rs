//! Periodic work (SPEC §6.3, §6.4, §6.6): lease renewal, heartbeats that cost nothing when
//! idle, and crons. [`run`] is called on every scheduler pass and does what is due.

use std::collections::HashSet;
use std::time::Duration;

use mesa_domain::entity::Approver;
use mesa_domain::entity::{Agent, Cron};
use mesa_domain::{
    Actor, ApprovalStatus, IssueKey, IssueStatus, RunMode, RunStatus, RunTrigger, Timestamp,
    WorkBlockStatus,
};
use mesa_scheduler::policy;
use mesa_scheduler::schedule::{self, Schedule};
use mesa_store::{InboxOwner, PageRequest, RunFilter, Versioned};

use super::driver::Engine;
use crate::wakes::Wake;

/// Housekeeping runs at most this often, however often the scheduler passes.
const EVERY: Duration = Duration::from_secs(1);
/// How much of an inbox a heartbeat looks at.
const INBOX_WINDOW: u32 = 100;

/// Does what is due at `now`.
pub(crate) async fn run(engine: &Engine, now: Timestamp) -> crate::Result<()> {
    {
        let mut state = engine.state();
        if state
            .last_housekeeping
            .is_some_and(|t| now.since(t) < EVERY)
        {
            return Ok(());
        }
        state.last_housekeeping = Some(now);
    }
    renew_leases(engine, now).await?;
    expire_approvals(engine).await?;
    heartbeats(engine, now).await?;
    crons(engine, now).await?;
    Ok(())
}

/// Approvals past their expiry (SPEC §4.2, default 72 h) become `expired`, which wakes their
/// requester like any other resolution.
async fn expire_approvals(engine: &Engine) -> crate::Result<()> {
    let n = engine.mesa.expire_approvals().await?;
    if n > 0 {
        tracing::info!(expired = n, "pending approvals expired");
    }
    Ok(())
}

async fn renew_leases(engine: &Engine, now: Timestamp) -> crate::Result<()> {
    let every = engine.config.lease / 3;
    {
        let mut state = engine.state();
        if state
            .last_lease_renewal
            .is_some_and(|t| now.since(t) < every)
        {
            return Ok(());
        }
        state.last_lease_renewal = Some(now);
    }
    engine
        .mesa
        .inner
        .store
        .renew_leases(engine.node_id(), now + engine.config.lease)
        .await?;
    Ok(())
}

/// Heartbeats (SPEC §6.3): every `heartbeat_interval_sec`, an agent with heartbeats on is
/// checked for work; only when there is some is a heartbeat run queued. The decision is
/// logged either way.
async fn heartbeats(engine: &Engine, now: Timestamp) -> crate::Result<()> {
    let roster = engine.mesa.roster().await?;
    for agent in roster.to_vec() {
        let c = &agent.config;
        let last = engine.state().heartbeat_checks.get(&agent.id).copied();
        let interval = Duration::from_secs(u64::from(c.heartbeat_interval_sec));
        if !c.active || !policy::heartbeat_due(c.heartbeat_enabled, interval, last, now) {
            continue;
        }
        engine.state().heartbeat_checks.insert(agent.id, now);
        match work_for(engine, &agent).await? {
            None => tracing::debug!(agent = %agent.slug, "heartbeat: nothing to do, no run"),
            Some(why) => {
                tracing::info!(agent = %agent.slug, why, "heartbeat: queueing a run");
                let wake = Wake {
                    agent: agent.id,
                    issue_key: None,
                    trigger: RunTrigger::Heartbeat,
                    mode: RunMode::Heartbeat,
                    priority: 0,
                    not_before: None,
                };
                engine.mesa.enqueue_wake(&Actor::System, wake).await?;
            }
        }
    }
    Ok(())
}

/// What an agent has to do, if anything: an actionable inbox issue that no queued or running
/// run covers, a pending approval addressed to it, or (CEO) a `ready` block or backlog input.
async fn work_for(engine: &Engine, agent: &Agent) -> crate::Result<Option<&'static str>> {
    let store = &engine.mesa.inner.store;
    let covered: HashSet<Option<IssueKey>> = store
        .list_runs(
            &RunFilter {
                agent: Some(agent.id),
                statuses: vec![RunStatus::Queued, RunStatus::Running],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(500), None),
        )
        .await?
        .items
        .into_iter()
        .map(|r| r.issue_key)
        .collect();
    if covered.contains(&None) {
        // A heartbeat (or other issue-less run) is already queued or running.
        return Ok(None);
    }
    let inbox = store
        .inbox(
            InboxOwner::Agent(agent.id),
            &PageRequest::new(Some(INBOX_WINDOW), None),
        )
        .await?
        .items;
    if inbox
        .iter()
        .any(|i| i.status != IssueStatus::Blocked && !covered.contains(&Some(i.key.clone())))
    {
        return Ok(Some("an inbox issue no run covers"));
    }
    let approvals = store
        .list_approvals(
            Some(ApprovalStatus::Pending),
            &PageRequest::new(Some(500), None),
        )
        .await?
        .items;
    if approvals
        .iter()
        .any(|a| a.approver == Approver::Agent(agent.id))
    {
        return Ok(Some("a pending approval addressed to it"));
    }
    if agent.is_ceo() {
        if !store
            .list_work_blocks(Some(WorkBlockStatus::Ready))
            .await?
            .is_empty()
        {
            return Ok(Some("a ready work block"));
        }
        let backlog =
            super::backlog::backlog_path(std::path::Path::new(agent.config.working_dir.as_str()));
        if tokio::fs::read_to_string(&backlog)
            .await
            .is_ok_and(|t| !t.trim().is_empty())
        {
            return Ok(Some("backlog input"));
        }
    }
    Ok(None)
}

/// Crons (SPEC §6.4): a due cron queues a run of its agent (mode and trigger `cron`) and moves
/// its next firing; missed ticks fire once. The run obeys the same budget and caps as others.
async fn crons(engine: &Engine, now: Timestamp) -> crate::Result<()> {
    let mesa = &engine.mesa;
    let crons = mesa.inner.store.list_crons().await?;
    let offset = mesa.settings().await.budget_offset_minutes();
    for cron in crons.into_iter().filter(|c| c.active) {
        let schedule = match Schedule::parse(&cron.schedule, offset) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cron = %cron.id, error = %e, "skipping a cron with a bad schedule");
                continue;
            }
        };
        let tick = schedule::tick(&schedule, cron.next_run_at, now);
        if !tick.fire && tick.next_run_at == cron.next_run_at {
            continue;
        }
        if tick.fire {
            let wake = Wake {
                agent: cron.agent_id,
                issue_key: None,
                trigger: RunTrigger::Cron,
                mode: RunMode::Cron,
                priority: 0,
                not_before: None,
            };
            mesa.enqueue_wake(&Actor::System, wake).await?;
        }
        advance(engine, cron, tick, now).await;
    }
    Ok(())
}

async fn advance(engine: &Engine, cron: Cron, tick: schedule::CronTick, now: Timestamp) {
    let expected = cron.version;
    let id = cron.id;
    let row = Cron {
        last_run_at: if tick.fire {
            Some(now)
        } else {
            cron.last_run_at
        },
        next_run_at: tick.next_run_at,
        ..cron
    };
    let write = Versioned {
        row,
        expected,
        activity: Vec::new(),
    };
    if let Err(e) = engine.mesa.inner.store.update_cron(write).await {
        tracing::warn!(cron = %id, error = %e, "could not move a cron's next firing");
    }
}
