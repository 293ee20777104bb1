//! [`Engine`]: the [`Driver`] the scheduler runs over.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use mesa_domain::entity::{Agent, BudgetScope, Run};
use mesa_domain::{Actor, AgentId, DomainEvent, MicroUsd, RunId, RunStatus, Timestamp};
use mesa_runner::worktree::Worktrees;
use mesa_scheduler::policy::{self, AgentGate, Candidate, Load};
use mesa_scheduler::{Driver, RunSignal, SchedulerError, Snapshot};
use mesa_store::{BudgetScopeKind, PageRequest, RunFilter, StartRunRequest, StoreError};

use super::EngineConfig;
use crate::mesa::Mesa;

/// How many queued runs one pass looks at.
const QUEUE_WINDOW: u32 = 500;
/// How many running runs one pass counts (far above any node's cap).
const RUNNING_WINDOW: u32 = 500;
/// The reservation of a run whose agent has no history and no per-run reserve set.
pub(crate) const DEFAULT_RESERVE: MicroUsd = MicroUsd(500_000);
/// How many past runs the default reservation averages.
const RESERVE_HISTORY: u32 = 5;

/// Mutable bookkeeping of the engine (all of it reconstructible: losing it on restart only
/// repeats a heartbeat check or a notification).
#[derive(Debug, Default)]
pub(crate) struct EngineState {
    /// When housekeeping last ran.
    pub(crate) last_housekeeping: Option<Timestamp>,
    /// When leases were last renewed.
    pub(crate) last_lease_renewal: Option<Timestamp>,
    /// When each agent's heartbeat was last checked.
    pub(crate) heartbeat_checks: HashMap<AgentId, Timestamp>,
    /// Consecutive quota failures per agent (for the back-off).
    pub(crate) quota_streak: HashMap<AgentId, u32>,
    /// Budget pauses already told to the board: (agent, budget day start).
    pub(crate) budget_notified: HashSet<(AgentId, Timestamp)>,
}

/// The scheduler's driver over a [`Mesa`].
#[derive(Debug)]
pub struct Engine {
    pub(crate) mesa: Mesa,
    pub(crate) config: EngineConfig,
    pub(crate) worktrees: Worktrees,
    pub(crate) state: Mutex<EngineState>,
}

/// A run that was started and waits to be executed.
#[derive(Debug)]
pub struct Started {
    pub(crate) run: Run,
    pub(crate) agent: Agent,
}

fn driver_err(e: impl std::fmt::Display) -> SchedulerError {
    SchedulerError::Driver(e.to_string())
}

impl Engine {
    pub(crate) fn new(mesa: Mesa, config: EngineConfig) -> Self {
        let worktrees = Worktrees::new(mesa.config().data_dir.join("worktrees"));
        Engine {
            mesa,
            config,
            worktrees,
            state: Mutex::default(),
        }
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, EngineState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.mesa.config().node_id
    }

    /// The money a run of `agent` reserves: free runners nothing; else the per-run reserve of
    /// its budget policy, or the average of its last runs, or [`DEFAULT_RESERVE`].
    async fn reservation(&self, agent: &Agent) -> crate::Result<MicroUsd> {
        if agent.config.runner.is_free() {
            return Ok(MicroUsd::ZERO);
        }
        let limits = self
            .mesa
            .budget_limits(BudgetScope::Agent(agent.id))
            .await?;
        if let Some(r) = limits.per_run_reserve_usd {
            return Ok(r);
        }
        let history = self
            .mesa
            .inner
            .store
            .recent_run_costs(agent.id, RESERVE_HISTORY)
            .await?;
        if history.is_empty() {
            return Ok(DEFAULT_RESERVE);
        }
        let sum: i64 = history.iter().map(|c| c.0).sum();
        let n = i64::try_from(history.len()).unwrap_or(1);
        Ok(MicroUsd((sum / n).max(1)))
    }

    /// Pauses `agent` until `until` with `reason` (no revision: a pause is state, not
    /// configuration) and publishes the change.
    pub(crate) async fn pause_agent(
        &self,
        agent: &Agent,
        until: Timestamp,
        reason: String,
        action: &str,
    ) -> crate::Result<Agent> {
        let mesa = &self.mesa;
        let current = mesa.inner.store.agent(agent.id).await?;
        if current.paused_until.is_some_and(|t| t >= until) {
            return Ok(current);
        }
        let slug = current.slug.clone();
        let activity = mesa.activity(
            &Actor::System,
            action,
            "agent",
            slug.as_str(),
            format!("paused {slug} until {until}: {reason}"),
            serde_json::json!({ "paused_until": until.to_rfc3339(), "reason": reason }),
        );
        let expected = current.version;
        let updated = Agent {
            paused_until: Some(until),
            pause_reason: Some(reason),
            updated_at: mesa.now(),
            ..current
        };
        let stored = mesa
            .inner
            .store
            .update_agent(mesa_store::AgentWrite {
                agent: updated,
                expected,
                revision: None,
                activity: vec![activity],
            })
            .await?;
        mesa.forget_roster().await;
        mesa.publish([DomainEvent::AgentUpdated(Box::new(stored.clone()))]);
        Ok(stored)
    }

    /// A start refused by the budget (SPEC §6.2): the agent is paused until the budget day
    /// ends, its queued runs wait, and the board is told once per agent and day.
    async fn over_budget(&self, agent: &Agent, scope: BudgetScopeKind) -> crate::Result<()> {
        let mesa = &self.mesa;
        let offset = mesa.settings().await.budget_offset_minutes();
        let now = mesa.now();
        let day = now.day_start(offset);
        let until = now.next_day_start(offset);
        let which = match scope {
            BudgetScopeKind::Agent => "its daily budget",
            BudgetScopeKind::Org => "the org's daily budget",
        };
        let reason = format!("{which} is spent");
        self.pause_agent(agent, until, reason.clone(), "agent.budget_paused")
            .await?;
        let first = self.state().budget_notified.insert((agent.id, day));
        if first {
            mesa.publish([DomainEvent::BudgetExceeded {
                agent_id: agent.id,
                until,
            }]);
            mesa.notify_board(
                format!(
                    "{} is paused until {until}: {reason}; its queued runs wait",
                    agent.slug
                ),
                None,
            );
        }
        Ok(())
    }

    /// The loop guard (SPEC §6.5): `true` (and the agent paused, the board told) when `agent`
    /// started too many runs in the last hour.
    async fn loop_guard(&self, agent: &Agent, now: Timestamp) -> crate::Result<bool> {
        if agent.config.runner.is_free() {
            return Ok(false);
        }
        let hour = Duration::from_secs(3600);
        let started = self
            .mesa
            .inner
            .store
            .started_runs_since(agent.id, now - hour)
            .await?;
        let max = self.config.max_runs_per_hour;
        if !policy::loop_guard_trips(u32::try_from(started).unwrap_or(u32::MAX), max) {
            return Ok(false);
        }
        let reason = format!("loop guard: {started} runs in the last hour (limit {max})");
        self.pause_agent(agent, now + hour, reason.clone(), "agent.loop_guard")
            .await?;
        self.mesa.notify_board(
            format!("{} is paused for an hour: {reason}", agent.slug),
            None,
        );
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Driver for Engine {
    type Started = Started;

    fn now(&self) -> Timestamp {
        self.mesa.now()
    }

    async fn recover(&self, now: Timestamp) -> mesa_scheduler::Result<()> {
        super::recovery::recover(self, now)
            .await
            .map_err(driver_err)
    }

    async fn housekeeping(&self, now: Timestamp) -> mesa_scheduler::Result<()> {
        super::housekeeping::run(self, now)
            .await
            .map_err(driver_err)
    }

    async fn snapshot(&self, now: Timestamp) -> mesa_scheduler::Result<Snapshot> {
        let mesa = &self.mesa;
        let store = &mesa.inner.store;
        // Paused, nothing may start: the queue is not read (it may hold thousands of runs,
        // and a paused server would otherwise read hundreds of them every pass for nothing).
        if mesa.scheduler_paused().await {
            return Ok(Snapshot {
                paused: true,
                queued: Vec::new(),
                agents: HashMap::new(),
                load: Load::default(),
            });
        }
        let queued = store
            .queued_runs(now, QUEUE_WINDOW)
            .await
            .map_err(driver_err)?;
        let running = store
            .list_runs(
                &RunFilter {
                    statuses: vec![RunStatus::Running],
                    ..RunFilter::default()
                },
                &PageRequest::new(Some(RUNNING_WINDOW), None),
            )
            .await
            .map_err(driver_err)?
            .items;
        let roster = mesa.roster().await.map_err(driver_err)?;
        let mut agents = HashMap::new();
        for run in &queued {
            if let Some(a) = roster.get(run.agent_id) {
                agents.insert(
                    a.id,
                    AgentGate {
                        active: a.config.active,
                        paused_until: a.paused_until,
                        max_concurrent_runs: a.config.max_concurrent_runs,
                    },
                );
            }
        }
        let mut load = Load::default();
        for run in &running {
            if run.node_id.as_deref() == Some(self.node_id()) {
                load.running += 1;
            }
            *load.per_agent.entry(run.agent_id).or_default() += 1;
            load.pairs.insert((run.agent_id, run.issue_key.clone()));
        }
        Ok(Snapshot {
            paused: false,
            queued: queued
                .into_iter()
                .map(|r| Candidate {
                    run_id: r.id,
                    agent_id: r.agent_id,
                    issue_key: r.issue_key,
                    not_before: r.not_before,
                })
                .collect(),
            agents,
            load,
        })
    }

    async fn start(&self, id: RunId, now: Timestamp) -> mesa_scheduler::Result<Option<Started>> {
        self.start_run(id, now).await.map_err(driver_err)
    }

    async fn execute(&self, started: Started, signal: RunSignal) {
        super::execute::execute(self, started, signal).await;
    }
}

impl Engine {
    async fn start_run(&self, id: RunId, now: Timestamp) -> crate::Result<Option<Started>> {
        let mesa = &self.mesa;
        let store = &mesa.inner.store;
        let run = store.run(id).await?;
        if run.status != RunStatus::Queued {
            return Ok(None);
        }
        let agent = store.agent(run.agent_id).await?;
        if self.loop_guard(&agent, now).await? {
            return Ok(None);
        }
        let reserve_usd = self.reservation(&agent).await?;
        let offset = mesa.settings().await.budget_offset_minutes();
        let activity = mesa.activity(
            &Actor::System,
            "run.started",
            "run",
            id.to_string(),
            format!(
                "started a {} run of {}{} ({}, reserved {reserve_usd})",
                run.mode,
                agent.slug,
                run.issue_key
                    .as_ref()
                    .map_or_else(String::new, |k| format!(" on {k}")),
                agent.config.runner
            ),
            serde_json::json!({
                "agent": agent.slug,
                "issue_key": run.issue_key,
                "runner": agent.config.runner,
                "reserved_usd": reserve_usd.as_usd(),
            }),
        );
        let started = store
            .start_run(StartRunRequest {
                run_id: id,
                node_id: self.node_id().to_owned(),
                now,
                lease_expires_at: now + self.config.lease,
                reserve_usd,
                reserve_tokens: 0,
                day_start: now.day_start(offset),
                prompt: None,
                activity: vec![activity],
            })
            .await;
        let run = match started {
            Ok(run) => run,
            Err(StoreError::BudgetExceeded { scope }) => {
                self.over_budget(&agent, scope).await?;
                return Ok(None);
            }
            // Cancelled or started elsewhere in between.
            Err(StoreError::RunState { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        mesa.publish([DomainEvent::RunStarted(Box::new(run.clone()))]);
        Ok(Some(Started { run, agent }))
    }
}
