//! The engine: the scheduler's [`Driver`] over the store and the runners (SPEC §6, §7). The
//! scheduler crate decides what may start and runs the loop; this module starts runs (budget
//! check-and-reserve), executes them (run key, worktree, environment, runner, live log), records
//! their outcome with its consequences (failure comments, quota pauses, loop guard), keeps
//! leases, fires heartbeats and crons, and recovers the runs of a previous process.
//!
//! Nothing here runs until [`Mesa::start_scheduler`] (or [`Mesa::scheduler`] for tests that
//! step it) is called.

mod backlog;
mod driver;
mod execute;
mod housekeeping;
mod prompt;
mod recovery;
mod skills;

use std::sync::Arc;
use std::time::Duration;

use mesa_domain::DomainEvent;
use mesa_runner::price::PriceTable;
use mesa_scheduler::{Handle, Scheduler, SchedulerConfig};
use tokio::task::JoinHandle;

pub use driver::Engine;

use crate::mesa::Mesa;

/// Configuration of the engine, filled in by the front end (the core reads no environment).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Runs at once on this node (SPEC §6.2 `MESA_MAX_RUNS`, default 4).
    pub max_runs: u32,
    /// The API base URL runners call (`MESA_API_URL`), e.g. `http://127.0.0.1:3000`.
    pub api_url: String,
    /// The server's environment, from which runners get only an allow-list (SPEC §7.2).
    pub server_env: Vec<(String, String)>,
    /// Values that must never reach a run's log besides the run's own keys (secret settings).
    pub secrets: Vec<String>,
    /// How long running runs get after SIGTERM at shutdown (SPEC §6.6, default 10 s).
    pub shutdown_grace: Duration,
    /// How long a lease lasts; renewed every third of it (SPEC §6.6: every 10 s).
    pub lease: Duration,
    /// The longest sleep of the loop between passes.
    pub tick: Duration,
    /// Prices for runners that report tokens without cost.
    pub prices: PriceTable,
    /// Per-agent loop guard: runs per hour before the agent is paused (SPEC §6.5, default 30).
    pub max_runs_per_hour: u32,
}

impl EngineConfig {
    /// Defaults for an API at `api_url`.
    pub fn new(api_url: impl Into<String>) -> Self {
        EngineConfig {
            max_runs: 4,
            api_url: api_url.into(),
            server_env: Vec::new(),
            secrets: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            prices: PriceTable::default(),
            max_runs_per_hour: 30,
        }
    }
}

/// A scheduler running in the background (see [`Mesa::start_scheduler`]).
#[derive(Debug)]
pub struct RunningScheduler {
    handle: Handle,
    main: JoinHandle<()>,
    forward: JoinHandle<()>,
}

impl RunningScheduler {
    /// The scheduler's handle (wake it, cancel a run).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Graceful shutdown (SPEC §6.6): stop dispatching, SIGTERM every run's process group, give
    /// them the grace period, SIGKILL, record them `cancelled` (reason `shutdown`), and return.
    pub async fn shutdown(self) {
        self.handle.shutdown();
        if let Err(e) = self.main.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
        self.forward.abort();
    }
}

impl Mesa {
    /// A scheduler over this Mesa, not started: tests call [`Scheduler::step`] on it.
    pub fn scheduler(&self, config: EngineConfig) -> Scheduler<Engine> {
        let scheduler_config = SchedulerConfig {
            max_runs: config.max_runs,
            tick: config.tick,
            shutdown_wait: config.shutdown_grace + Duration::from_secs(10),
        };
        Scheduler::new(
            Arc::new(Engine::new(self.clone(), config)),
            scheduler_config,
        )
    }

    /// Starts the scheduler in the background: recovery of the previous process's runs, then
    /// dispatch on every wake-up, with a pass at least every `tick`.
    pub fn start_scheduler(&self, config: EngineConfig) -> RunningScheduler {
        let scheduler = self.scheduler(config);
        let handle = scheduler.handle();
        let forward = self.forward_to_scheduler(handle.clone());
        let main = tokio::spawn(scheduler.run());
        RunningScheduler {
            handle,
            main,
            forward,
        }
    }

    /// Feeds the scheduler from the event bus: anything that may let a run start wakes it at
    /// once (so dispatch latency is the time of one pass, not a tick), and cancel requests reach
    /// the run they name.
    pub fn forward_to_scheduler(&self, handle: Handle) -> JoinHandle<()> {
        let mut events = self.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => match &*event {
                        DomainEvent::RunQueued(_)
                        | DomainEvent::RunFinished(_)
                        | DomainEvent::SchedulerResumed
                        | DomainEvent::AgentUpdated(_) => handle.notify(),
                        DomainEvent::RunCancelRequested(run) => {
                            handle.cancel_run(run.id);
                        }
                        _ => {}
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => handle.notify(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
