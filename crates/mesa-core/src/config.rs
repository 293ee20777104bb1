//! [`CoreConfig`]: the core's typed configuration, parsed at the edge (`bin/mesa`) and passed in.

use std::path::PathBuf;

use mesa_domain::{RunnerKind, WorkingDir};

/// Configuration of a [`crate::Mesa`]. The core never reads the environment or config files;
/// the front end fills this in.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Where Mesa keeps its own files (worktrees, backups).
    pub data_dir: PathBuf,
    /// The project directory bootstrapped agents work on (SPEC §4.4 `--workspace`).
    pub workspace: WorkingDir,
    /// The org template used when the database is empty (SPEC §4.4), default `startup`.
    pub template: String,
    /// Agent CLIs found on PATH, in any order; bootstrap picks the first of SPEC §4.4's
    /// preference order that is here, else `dry_run`.
    pub available_runners: Vec<RunnerKind>,
    /// Runaway guard: runs per issue before the next wake blocks it (SPEC §2), default 8.
    pub max_runs_per_issue: u32,
    /// Extra archetype files (`*.md`) imported at bootstrap, overriding built-ins by slug.
    pub archetypes_dir: Option<PathBuf>,
    /// This node's id (SPEC §15), recorded on runs.
    pub node_id: String,
}

impl CoreConfig {
    /// Defaults for a data directory and workspace.
    pub fn new(data_dir: impl Into<PathBuf>, workspace: WorkingDir) -> Self {
        CoreConfig {
            data_dir: data_dir.into(),
            workspace,
            template: "startup".to_owned(),
            available_runners: Vec::new(),
            max_runs_per_issue: 8,
            archetypes_dir: None,
            node_id: "local".to_owned(),
        }
    }

    /// The runner bootstrap gives new agents: the first preferred CLI available, else `dry_run`.
    pub fn bootstrap_runner(&self) -> RunnerKind {
        RunnerKind::CLI_PREFERENCE
            .iter()
            .copied()
            .find(|r| self.available_runners.contains(r))
            .unwrap_or(RunnerKind::DryRun)
    }
}
