//! Errors of the runner layer.

/// Why a run could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The runner's program is not installed (SPEC §7.2).
    #[error("runner_unavailable: {binary} not found on PATH")]
    Unavailable {
        /// The program that was looked for.
        binary: String,
    },
    /// The agent's configuration cannot be run (e.g. `command` runner without a command).
    #[error("invalid runner configuration: {0}")]
    Config(String),
    /// Spawning or talking to the process failed.
    #[error("process error: {0}")]
    Io(#[from] std::io::Error),
    /// A git operation failed.
    #[error("git error: {0}")]
    Git(#[from] git2::Error),
    /// A worktree could not be prepared or cleaned (invalid issue key for a branch, branch
    /// already checked out elsewhere, left-over directory...).
    #[error("workspace error: {0}")]
    Workspace(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Results of this crate.
pub type Result<T, E = RunnerError> = std::result::Result<T, E>;
