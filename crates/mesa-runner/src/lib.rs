//! Everything that touches the operating system for a run (SPEC §7): git worktrees, the command
//! line of each agent CLI, spawning in a process group with an allow-listed environment, capture
//! with secret scrubbing and bounded memory, incremental output parsing and cost, timeouts and kill.
//!
//! The scheduler drives a run through [`AgentRunner::run`] with an [`Invocation`]; the runner
//! reports what happens as [`RunnerEvent`]s on a bounded channel and returns a [`RunOutcome`].

mod error;

pub mod argv;
pub mod capture;
pub mod env;
pub mod judge;
pub mod openai_compat;
pub mod outcome;
pub mod parse;
pub mod price;
pub mod process;
pub mod prompt;
pub mod runners;
pub mod scrub;
pub mod simulated;
pub mod skills;
pub mod trajectory;
pub mod worktree;

use std::path::PathBuf;
use std::time::Duration;

use mesa_domain::entity::{AgentConfig, TokenUsage};
use mesa_domain::{CostSource, IssueKey, MicroUsd, RunId, RunMode, RunStatus, Timestamp};

pub use error::{Result, RunnerError};
pub use runners::runner_for;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a runner reports while a run goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerEvent {
    /// The process started, in its own process group.
    Spawned {
        /// Process id.
        pid: u32,
        /// Process group id (equal to `pid`: the child leads its group).
        pgid: u32,
    },
    /// One line of output, already scrubbed of secrets, without its line ending.
    Output {
        /// The stream.
        stream: Stream,
        /// The text.
        line: String,
    },
}

/// Everything a runner needs for one run. Built by the scheduler; the runner never reads the
/// store.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The run.
    pub run_id: RunId,
    /// Why it runs.
    pub mode: RunMode,
    /// The issue, if any.
    pub issue_key: Option<IssueKey>,
    /// The agent's configuration at dispatch time (runner, model, turns, tools, command...).
    pub config: AgentConfig,
    /// The prompt (SPEC §7.3).
    pub prompt: String,
    /// The archetype body, for runners with a system prompt (claude); the others get it
    /// prepended to the prompt by [`prompt`].
    pub system_prompt: Option<String>,
    /// Where the process runs: the worktree, or the working directory when not isolated.
    pub workdir: PathBuf,
    /// A private directory for this run's files (prompt file, system prompt file), removed by
    /// the caller afterwards.
    pub scratch_dir: PathBuf,
    /// The complete environment of the process (see [`env::compose`]); nothing else is passed.
    pub env: Vec<(String, String)>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Values that must never reach a log: the run key, provider keys, secret settings.
    pub secrets: Vec<String>,
}

/// A provider quota or rate limit the runner recognized (SPEC §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaHit {
    /// When the provider said it resets, if it said.
    pub retry_at: Option<Timestamp>,
}

/// How a run ended, as the runner saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// `succeeded`, `failed`, `timed_out` or `cancelled`.
    pub status: RunStatus,
    /// Exit code of the process, when it exited.
    pub exit_code: Option<i64>,
    /// Why it did not succeed (scrubbed).
    pub failure_reason: Option<String>,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Money spent.
    pub cost_usd: MicroUsd,
    /// Where the cost figure comes from.
    pub cost_source: CostSource,
    /// Agent turns, when reported.
    pub num_turns: Option<i64>,
    /// Set when the failure was a provider quota or rate limit.
    pub quota: Option<QuotaHit>,
    /// The final text of the agent, when reported (scrubbed).
    pub result_text: Option<String>,
}

/// How a process ended (see [`process::run_process`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessExit {
    /// Exit code, when the process exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The deadline passed and the group was killed.
    pub timed_out: bool,
    /// The run was cancelled and the group was killed.
    pub cancelled: bool,
    /// The last non-empty line written to stderr (scrubbed), for failure reasons.
    pub last_stderr_line: Option<String>,
}

/// Runs one invocation to its end.
#[async_trait::async_trait]
pub trait AgentRunner: Send + Sync {
    /// Runs `inv`, sending [`RunnerEvent`]s to `events` as they happen, until the process ends,
    /// the timeout passes or `cancel` fires. Errors are for failures to run at all (binary
    /// missing, spawn failure); everything the agent did wrong is a [`RunOutcome`].
    async fn run(
        &self,
        inv: Invocation,
        events: tokio::sync::mpsc::Sender<RunnerEvent>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<RunOutcome>;
}
