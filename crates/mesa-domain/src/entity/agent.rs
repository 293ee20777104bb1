//! Agents, their revisions, and archetypes.

use std::collections::BTreeMap;

use crate::{AgentId, Markdown, Name, RunnerKind, Slug, Timestamp, Title, Version, WorkingDir};

/// The configurable part of an agent: everything an [`AgentRevision`] snapshots and a rollback
/// restores. Identity (`id`, `slug`), `paused_until` and timestamps are not configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Display name.
    pub name: Name,
    /// Slug of the archetype (role) the agent follows.
    pub archetype: Slug,
    /// The program that runs it.
    pub runner: RunnerKind,
    /// Model name passed to the runner; empty = the runner's default.
    #[serde(default)]
    pub model: String,
    /// The project directory the agent works on.
    pub working_dir: WorkingDir,
    /// Turn limit per run.
    #[serde(default = "defaults::max_turns")]
    pub max_turns: u32,
    /// Wall-clock limit per run, seconds.
    #[serde(default = "defaults::timeout_sec")]
    pub timeout_sec: u32,
    /// Whether heartbeats are on.
    #[serde(default)]
    pub heartbeat_enabled: bool,
    /// Heartbeat period, seconds.
    #[serde(default = "defaults::heartbeat_interval_sec")]
    pub heartbeat_interval_sec: u32,
    /// Manager.
    #[serde(default)]
    pub reports_to: Option<AgentId>,
    /// Explicit reviewer, overriding the manager.
    #[serde(default)]
    pub reviewer_id: Option<AgentId>,
    /// Inactive agents are never dispatched.
    #[serde(default = "defaults::yes")]
    pub active: bool,
    /// Whether the runner may drive a browser.
    #[serde(default)]
    pub chrome_enabled: bool,
    /// Tools the runner must refuse.
    #[serde(default)]
    pub disallowed_tools: Vec<String>,
    /// Tools the runner may use; empty = the runner's default.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// How many runs of this agent may run at once.
    #[serde(default = "defaults::one")]
    pub max_concurrent_runs: u32,
    /// Name of a server environment variable holding the provider key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra CLI arguments.
    #[serde(default)]
    pub runner_args: Vec<String>,
    /// Extra environment for the runner.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// argv for the `command` runner.
    #[serde(default)]
    pub command: Vec<String>,
    /// Endpoint for the `openai_compat` runner.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Defaults of SPEC §1 for agent fields.
pub mod defaults {
    /// `max_turns` default.
    pub const fn max_turns() -> u32 {
        50
    }
    /// `timeout_sec` default.
    pub const fn timeout_sec() -> u32 {
        1800
    }
    /// `heartbeat_interval_sec` default.
    pub const fn heartbeat_interval_sec() -> u32 {
        300
    }
    /// `max_concurrent_runs` default.
    pub const fn one() -> u32 {
        1
    }
    /// `active` default.
    pub const fn yes() -> bool {
        true
    }
}

impl AgentConfig {
    /// A configuration with the defaults of SPEC §1 for everything but the required fields.
    pub fn new(name: Name, archetype: Slug, runner: RunnerKind, working_dir: WorkingDir) -> Self {
        AgentConfig {
            name,
            archetype,
            runner,
            model: String::new(),
            working_dir,
            max_turns: defaults::max_turns(),
            timeout_sec: defaults::timeout_sec(),
            heartbeat_enabled: false,
            heartbeat_interval_sec: defaults::heartbeat_interval_sec(),
            reports_to: None,
            reviewer_id: None,
            active: true,
            chrome_enabled: false,
            disallowed_tools: Vec::new(),
            allowed_tools: Vec::new(),
            max_concurrent_runs: defaults::one(),
            api_key_env: None,
            runner_args: Vec::new(),
            env: BTreeMap::new(),
            command: Vec::new(),
            base_url: None,
        }
    }
}

/// A configured AI persona (SPEC §1 Agent). Not a process: each execution is a [`super::Run`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Agent {
    /// Identity.
    pub id: AgentId,
    /// Unique slug.
    pub slug: Slug,
    /// The configuration (every revisioned field).
    pub config: AgentConfig,
    /// Set by budget, quota and loop-guard pauses.
    pub paused_until: Option<Timestamp>,
    /// Why the agent is paused (shown with `paused_until`).
    pub pause_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

impl Agent {
    /// True if this agent follows the `ceo` archetype.
    pub fn is_ceo(&self) -> bool {
        self.config.archetype.as_str() == "ceo"
    }
}

/// A stored snapshot of an agent's configuration (SPEC §1 AgentRevision).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentRevision {
    /// The agent.
    pub agent_id: AgentId,
    /// 1, 2, 3... per agent.
    pub number: i64,
    /// The configuration after the change.
    pub config: AgentConfig,
    /// Actor string of who changed it.
    pub changed_by: String,
    /// Why (free text; "rollback to revision N" for rollbacks).
    pub reason: String,
    /// When.
    pub created_at: Timestamp,
}

/// A role definition (SPEC §1 Archetype, §5): the current version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Archetype {
    /// Slug, e.g. `backend`.
    pub slug: Slug,
    /// Human title.
    pub title: Title,
    /// The Markdown body (the role prompt).
    pub body: Markdown,
    /// Current version number.
    pub version: i64,
    /// When the archetype was first created.
    pub created_at: Timestamp,
}

/// Where an archetype version came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArchetypeSource {
    /// Shipped with Mesa.
    Builtin,
    /// Edited by the board.
    Board,
    /// An approved [`super::ArchetypePatch`].
    Patch(crate::ArchetypePatchId),
    /// Restored from an older version.
    Rollback(i64),
}

impl ArchetypeSource {
    /// Storage form: `builtin`, `board`, `patch:<id>`, `rollback:<n>`.
    pub fn to_storage(&self) -> String {
        match self {
            ArchetypeSource::Builtin => "builtin".to_owned(),
            ArchetypeSource::Board => "board".to_owned(),
            ArchetypeSource::Patch(id) => format!("patch:{id}"),
            ArchetypeSource::Rollback(v) => format!("rollback:{v}"),
        }
    }

    /// Parses the storage form.
    pub fn from_storage(text: &str) -> Option<Self> {
        match text {
            "builtin" => Some(ArchetypeSource::Builtin),
            "board" => Some(ArchetypeSource::Board),
            _ => {
                if let Some(id) = text.strip_prefix("patch:") {
                    crate::ArchetypePatchId::parse(id)
                        .ok()
                        .map(ArchetypeSource::Patch)
                } else {
                    text.strip_prefix("rollback:")?
                        .parse()
                        .ok()
                        .map(ArchetypeSource::Rollback)
                }
            }
        }
    }
}

impl serde::Serialize for ArchetypeSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_storage())
    }
}

/// One version of an archetype (SPEC §1 ArchetypeVersion).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchetypeVersion {
    /// The archetype.
    pub slug: Slug,
    /// 1, 2, 3...
    pub version: i64,
    /// The title at that version.
    pub title: Title,
    /// The body at that version.
    pub body: Markdown,
    /// Where it came from.
    pub source: ArchetypeSource,
    /// When.
    pub created_at: Timestamp,
}
