//! The auditor's reads and its record's guarded writes (SPEC §4.3): the figures of a window,
//! what an audit run proposed, and the audit of a run.

use async_trait::async_trait;
use mesa_domain::entity::{Audit, NewActivity};
use mesa_domain::{
    AgentId, ArchetypePatchId, AuditStatus, IssueKey, MicroUsd, PatchStatus, RunId, Slug, Timestamp,
};

use crate::Result;

/// How many of an agent's most common failure reasons the figures keep.
pub const TOP_FAILURE_REASONS: usize = 3;
/// How many characters of a failure reason are compared (and kept): reasons that differ only
/// past this prefix (a path, a count) are counted as one.
pub const FAILURE_REASON_CHARS: usize = 120;

/// A half-open time window `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Its first instant.
    pub since: Timestamp,
    /// The instant after its last.
    pub until: Timestamp,
}

/// One agent's work in a window: its runs queued in the window, and the review rejections of
/// the issues assigned to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentWindowFigures {
    /// The agent.
    pub agent_id: Option<AgentId>,
    /// Runs queued in the window.
    pub runs: u64,
    /// Of them, `succeeded`.
    pub succeeded: u64,
    /// `failed` or `timed_out`.
    pub failed: u64,
    /// `cancelled`.
    pub cancelled: u64,
    /// Still `queued` or `running`.
    pub unfinished: u64,
    /// Their cost.
    pub cost: MicroUsd,
    /// Their tokens (input, output and cache).
    pub tokens: i64,
    /// Task runs on an issue.
    pub issue_runs: u64,
    /// The distinct issues of those task runs.
    pub issues: u64,
    /// `issue.request_changes` decisions in the window on issues now assigned to the agent.
    pub changes_requested: u64,
    /// The most common failure reasons (the first [`FAILURE_REASON_CHARS`] characters; the
    /// status when a run gave none), most frequent first, at most [`TOP_FAILURE_REASONS`].
    pub failure_reasons: Vec<(String, u64)>,
}

/// An issue waiting in `blocked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedIssue {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: String,
    /// Its assignee.
    pub assignee_id: Option<AgentId>,
    /// When it entered `blocked`.
    pub since: Timestamp,
}

/// The figures of a window that the store computes (the rest of an audit's figures, such as
/// alignment, archetypes, directives and skills, come from other reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowFigures {
    /// Every agent with a run or a review rejection in the window, by agent id.
    pub agents: Vec<AgentWindowFigures>,
    /// How many (not deleted) issues are `blocked` now.
    pub blocked_total: u64,
    /// The longest-blocked of them, at most the limit asked for.
    pub blocked: Vec<BlockedIssue>,
}

/// An archetype patch proposed during an audit run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchLine {
    /// The patch.
    pub id: ArchetypePatchId,
    /// Its archetype.
    pub archetype_slug: Slug,
    /// The version it was written against.
    pub base_version: i64,
    /// Its status now.
    pub status: PatchStatus,
}

/// What an agent proposed in a window: its run's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposedInWindow {
    /// Archetype patches it proposed, oldest first.
    pub patches: Vec<PatchLine>,
    /// Skills it promoted, oldest first: slug and title.
    pub skills: Vec<(Slug, String)>,
    /// Issues it created, oldest first: key and title.
    pub issues: Vec<(IssueKey, String)>,
}

/// The auditor's reads and writes (SPEC §4.3). Every read is a bounded aggregate: its cost
/// follows the window and the roster, not the size of the history.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The store's part of an audit's figures over `window`, with at most `blocked_limit`
    /// blocked issues listed.
    async fn window_figures(&self, window: TimeWindow, blocked_limit: u32)
    -> Result<WindowFigures>;
    /// What `agent` (whose actor string, as skills record their promoter, is `actor`)
    /// created in `window`: archetype patches, skills and issues.
    async fn proposed_in_window(
        &self,
        agent: AgentId,
        actor: &str,
        window: TimeWindow,
    ) -> Result<ProposedInWindow>;
    /// The audit recorded for a run, if any.
    async fn audit_of_run(&self, run: RunId) -> Result<Option<Audit>>;
    /// Writes `audit` (every field but its id and creation time) and its activity rows, but
    /// only while its stored status is one of `from`; `None` (and nothing written) when it
    /// has moved on. `NotFound` for an unknown audit.
    async fn advance_audit(
        &self,
        audit: Audit,
        from: &[AuditStatus],
        activity: Vec<NewActivity>,
    ) -> Result<Option<Audit>>;
}
