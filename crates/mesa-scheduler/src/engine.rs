//! The run loop: wake on a notification, a tick or a finished run; dispatch what [`policy::plan`]
//! allows; run each started run as its own task; on shutdown stop dispatching, signal every
//! run and wait for them within the grace period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesa_domain::{AgentId, RunId, Timestamp};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::policy::{self, AgentGate, Candidate, Load};

/// What the scheduler needs from the world: the queue, the agents, starting and executing
/// runs, and periodic housekeeping. The core implements it with the store and the runners.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// A run that was started (reserved and marked running) and waits to be executed.
    type Started: Send + 'static;

    /// Now, by the driver's clock.
    fn now(&self) -> Timestamp;

    /// Runs left over by a previous process (SPEC §6.6): kill, fail, release, re-queue. Called
    /// once, before the first pass.
    async fn recover(&self, now: Timestamp) -> Result<()>;

    /// Periodic work that is due at `now` (leases, heartbeats, crons); the driver decides what
    /// is due, so calling it often is cheap.
    async fn housekeeping(&self, now: Timestamp) -> Result<()>;

    /// The dispatch inputs at `now`.
    async fn snapshot(&self, now: Timestamp) -> Result<Snapshot>;

    /// Starts a planned run: the budget check-and-reserve and the move to `running`, in one
    /// transaction. `None` when it may not start after all (budget, gone); the driver records
    /// why.
    async fn start(&self, run: RunId, now: Timestamp) -> Result<Option<Self::Started>>;

    /// Executes a started run to its end and records the outcome. `signal.cancel` fires when the
    /// run is cancelled or the scheduler shuts down (then `signal.shutdown` is cancelled too).
    async fn execute(&self, started: Self::Started, signal: RunSignal);
}

/// The dispatch inputs.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The board's pause switch.
    pub paused: bool,
    /// Queued runs in queue order.
    pub queued: Vec<Candidate>,
    /// The agents of the queued runs.
    pub agents: HashMap<AgentId, AgentGate>,
    /// What is running.
    pub load: Load,
}

/// The signals a running run watches.
#[derive(Debug, Clone)]
pub struct RunSignal {
    /// Fires on cancel or shutdown.
    pub cancel: CancellationToken,
    /// Fires on shutdown only.
    pub shutdown: CancellationToken,
}

/// Knobs of the loop.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Runs at once on this node (SPEC §6.2 `MESA_MAX_RUNS`, default 4).
    pub max_runs: u32,
    /// The longest sleep between passes when nothing notifies.
    pub tick: Duration,
    /// How long shutdown waits for runs after signalling them (their own grace plus a margin).
    pub shutdown_wait: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_runs: 4,
            tick: Duration::from_secs(1),
            shutdown_wait: Duration::from_secs(20),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Runs started.
    pub started: Vec<RunId>,
    /// Runs planned but refused at start (budget).
    pub refused: Vec<RunId>,
    /// Runs left queued by the plan.
    pub held: usize,
}

/// A cheap handle to a running scheduler: wake it, cancel a run, shut it down.
#[derive(Clone, Debug)]
pub struct Handle {
    notify: Arc<Notify>,
    runs: Arc<Mutex<HashMap<RunId, CancellationToken>>>,
    shutdown: CancellationToken,
}

impl Handle {
    /// Asks for a dispatch pass now (something was queued, finished or unpaused).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// Cancels a running run; `false` if this scheduler is not running it.
    pub fn cancel_run(&self, run: RunId) -> bool {
        let runs = self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        runs.get(&run).map(CancellationToken::cancel).is_some()
    }

    /// Stops dispatching and signals every run; [`Scheduler::run`] returns once they ended.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Whether shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Runs in flight on this scheduler.
    pub fn running(&self) -> usize {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// The scheduler over a [`Driver`].
pub struct Scheduler<D: Driver> {
    driver: Arc<D>,
    config: SchedulerConfig,
    handle: Handle,
    tasks: JoinSet<RunId>,
}

impl<D: Driver> std::fmt::Debug for Scheduler<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .field("running", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl<D: Driver> Scheduler<D> {
    /// A scheduler over `driver`.
    pub fn new(driver: Arc<D>, config: SchedulerConfig) -> Self {
        Scheduler {
            driver,
            config,
            handle: Handle {
                notify: Arc::new(Notify::new()),
                runs: Arc::default(),
                shutdown: CancellationToken::new(),
            },
            tasks: JoinSet::new(),
        }
    }

    /// Its handle.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Recovery of a previous process's runs (see [`Driver::recover`]).
    pub async fn recover(&self) -> Result<()> {
        self.driver.recover(self.driver.now()).await
    }

    /// One pass: housekeeping, then dispatch of what the plan allows. Started runs execute in
    /// their own tasks; [`Scheduler::settle`] waits for them.
    pub async fn step(&mut self) -> Result<StepReport> {
        self.reap();
        let mut report = StepReport::default();
        if self.handle.is_shutting_down() {
            return Ok(report);
        }
        let now = self.driver.now();
        self.driver.housekeeping(now).await?;
        let snap = self.driver.snapshot(now).await?;
        let plan = policy::plan(
            &snap.queued,
            &snap.agents,
            &snap.load,
            self.config.max_runs,
            snap.paused,
            now,
        );
        report.held = plan.held.len();
        for id in plan.start {
            match self.driver.start(id, now).await? {
                Some(started) => {
                    self.spawn(id, started);
                    report.started.push(id);
                }
                None => report.refused.push(id),
            }
        }
        Ok(report)
    }

    fn spawn(&mut self, id: RunId, started: D::Started) {
        let cancel = self.handle.shutdown.child_token();
        self.handle
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, cancel.clone());
        let signal = RunSignal {
            cancel,
            shutdown: self.handle.shutdown.clone(),
        };
        let driver = Arc::clone(&self.driver);
        let runs = Arc::clone(&self.handle.runs);
        let notify = Arc::clone(&self.handle.notify);
        self.tasks.spawn(async move {
            driver.execute(started, signal).await;
            runs.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
            // Capacity freed: the next queued run may start.
            notify.notify_one();
            id
        });
    }

    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a run task panicked");
            }
        }
    }

    /// Waits until every run started so far has ended (tests).
    pub async fn settle(&mut self) {
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a run task panicked");
            }
        }
    }

    /// Runs the loop until [`Handle::shutdown`]: recovery first, then a pass on every notify,
    /// tick or finished run. On shutdown every run is signalled and awaited for at most
    /// `shutdown_wait`.
    pub async fn run(mut self) {
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "crash recovery failed; continuing");
        }
        let notify = Arc::clone(&self.handle.notify);
        let shutdown = self.handle.shutdown.clone();
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "scheduler pass failed; retrying on the next tick");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = notify.notified() => {}
                () = tokio::time::sleep(self.config.tick) => {}
            }
        }
        tracing::info!(running = self.tasks.len(), "scheduler stopping");
        let wait = self.config.shutdown_wait;
        if tokio::time::timeout(wait, self.settle()).await.is_err() {
            tracing::error!(
                left = self.tasks.len(),
                "runs did not stop in time; abandoning them"
            );
            self.tasks.abort_all();
        }
    }
}
