//! The plain-data snapshot a prompt is built from. The scheduler fills it from the store; this
//! module never reads anything itself.

use std::path::PathBuf;

use mesa_domain::{
    ApprovalKind, CommentKind, IssueKey, IssueStatus, IssueType, Priority, ReflectionOutcome,
    RunMode, RunTrigger, RunnerKind, Stage, Timestamp, WorkBlockStatus,
};

/// Everything one prompt needs (SPEC §7.3). Sections whose data is empty are left out.
#[derive(Debug, Clone)]
pub struct PromptInput {
    /// Why the agent runs: decides the main section, the rules and the API reference.
    pub mode: RunMode,
    /// The runner: decides whether the archetype body goes to the system prompt.
    pub runner: RunnerKind,
    /// The time the prompt is built (shown to the agent; never read from a clock here).
    pub now: Timestamp,
    /// What woke the agent, in the order the wake-ups came.
    pub triggers: Vec<RunTrigger>,
    /// Who the agent is.
    pub agent: AgentCard,
    /// The issue of a task or review run.
    pub issue: Option<IssueCard>,
    /// Where the process runs.
    pub workspace: Workspace,
    /// The active work block, for the CEO and its members.
    pub work_block: Option<WorkBlockCard>,
    /// Active board directives, in order.
    pub directives: Vec<String>,
    /// Skills relevant to the issue, best first.
    pub skills: Vec<SkillRef>,
    /// The agent's most relevant reflections, best first.
    pub reflections: Vec<ReflectionNote>,
    /// The CEO's view of the organization (ignored for other agents).
    pub org: Option<OrgContext>,
    /// What a review run reviews.
    pub review: Option<ReviewContext>,
    /// What a heartbeat run looks at.
    pub heartbeat: Option<HeartbeatContext>,
    /// The instructions of a cron or audit run.
    pub job: Option<JobContext>,
    /// Whether the `mesa` client is on the agent's PATH (SPEC §9.6).
    pub client_installed: bool,
}

/// The agent and its role.
#[derive(Debug, Clone, Default)]
pub struct AgentCard {
    /// Display name.
    pub name: String,
    /// Slug, how others assign to it.
    pub slug: String,
    /// The archetype's title (`Backend Engineer`).
    pub role: String,
    /// The archetype's slug (`backend`; `ceo` and `auditor` change the prompt).
    pub archetype: String,
    /// The archetype's Markdown body (the current version).
    pub archetype_body: String,
}

impl AgentCard {
    /// True for the CEO archetype.
    pub fn is_ceo(&self) -> bool {
        self.archetype == "ceo"
    }

    /// True for the auditor archetype.
    pub fn is_auditor(&self) -> bool {
        self.archetype == "auditor"
    }
}

/// The issue a run is about.
#[derive(Debug, Clone)]
pub struct IssueCard {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: String,
    /// Its type.
    pub issue_type: IssueType,
    /// Its priority.
    pub priority: Priority,
    /// Its status when the run was dispatched.
    pub status: IssueStatus,
    /// Assignee slug, if any.
    pub assignee: Option<String>,
    /// Label names.
    pub labels: Vec<String>,
    /// Markdown description.
    pub description: String,
    /// The checklist, in order.
    pub stages: Vec<Stage>,
    /// Acceptance-criteria warnings (SPEC §2).
    pub warnings: Vec<String>,
    /// The parent issue, if any.
    pub parent: Option<ParentSummary>,
    /// The latest comments, oldest first (only the last [`super::MAX_COMMENTS`] are shown).
    pub comments: Vec<CommentLine>,
    /// How many older comments exist that the caller did not pass.
    pub earlier_comments: usize,
}

/// A parent issue, in brief.
#[derive(Debug, Clone)]
pub struct ParentSummary {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: String,
    /// Its status.
    pub status: IssueStatus,
    /// The start of its description, or any short summary.
    pub summary: String,
}

/// One comment.
#[derive(Debug, Clone)]
pub struct CommentLine {
    /// Who wrote it (agent slug, `board`, `system`...).
    pub author: String,
    /// Its kind.
    pub kind: CommentKind,
    /// When.
    pub at: Timestamp,
    /// Markdown body.
    pub body: String,
}

/// Where the process runs (SPEC §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workspace {
    /// A git worktree of its own on the issue's branch.
    Worktree {
        /// The worktree directory (the process's working directory).
        path: PathBuf,
        /// The branch, `mesa/<key>`.
        branch: String,
    },
    /// A detached checkout of the branch under review, to read and test, never to change.
    ReviewCheckout {
        /// The worktree directory.
        path: PathBuf,
        /// The branch under review.
        branch: String,
    },
    /// Not isolated: the agent's working directory is used in place (not a git repository,
    /// or a run without an issue).
    InPlace {
        /// The working directory.
        path: PathBuf,
    },
}

/// The active work block.
#[derive(Debug, Clone)]
pub struct WorkBlockCard {
    /// Its title.
    pub title: String,
    /// Its status.
    pub status: WorkBlockStatus,
    /// Its goal (Markdown).
    pub goal: String,
    /// Its north-star metric, if any.
    pub north_star: Option<NorthStar>,
    /// Its member issues.
    pub issues: Vec<MemberIssue>,
}

/// A north-star metric with its target and latest measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct NorthStar {
    /// What is measured.
    pub metric: String,
    /// The target, if set.
    pub target: Option<f64>,
    /// The latest measurement, if any.
    pub current: Option<f64>,
}

/// An issue in a list (work-block members, decisions, inbox).
#[derive(Debug, Clone)]
pub struct MemberIssue {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: String,
    /// Its status.
    pub status: IssueStatus,
    /// Assignee slug, if any.
    pub assignee: Option<String>,
}

/// A skill to point the agent at.
#[derive(Debug, Clone)]
pub struct SkillRef {
    /// Its slug (`GET /api/v1/skills/{slug}`).
    pub slug: String,
    /// Its title.
    pub title: String,
    /// A file in the working directory holding it (Claude Code's native skills), if written.
    pub path: Option<String>,
}

/// A reflection of the agent's.
#[derive(Debug, Clone)]
pub struct ReflectionNote {
    /// The issue it was about.
    pub issue_key: Option<IssueKey>,
    /// How that run ended.
    pub outcome: ReflectionOutcome,
    /// When it was written.
    pub at: Timestamp,
    /// What was learned.
    pub body: String,
}

/// The CEO's view of the organization.
#[derive(Debug, Clone, Default)]
pub struct OrgContext {
    /// The team, in org-chart order.
    pub roster: Vec<RosterEntry>,
    /// Issues waiting on a CEO decision, with the reason.
    pub needs_decision: Vec<DecisionItem>,
    /// Pending approvals the CEO asked for or must decide.
    pub approvals: Vec<ApprovalLine>,
    /// The text of `artifact-docs/backlog.md`, when there is new input.
    pub backlog: Option<String>,
}

/// One agent of the roster.
#[derive(Debug, Clone, Default)]
pub struct RosterEntry {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Archetype title.
    pub role: String,
    /// The manager's slug (`None`: reports to the board).
    pub reports_to: Option<String>,
    /// Non-terminal issues assigned.
    pub open_issues: u32,
    /// Runs queued or running.
    pub runs_in_flight: u32,
    /// Why it cannot take work now (inactive, paused until...), if so.
    pub unavailable: Option<String>,
}

/// An issue waiting for a decision.
#[derive(Debug, Clone)]
pub struct DecisionItem {
    /// The issue.
    pub issue: MemberIssue,
    /// Why it needs one (blocked with a question, unassigned, ready to close...).
    pub reason: String,
}

/// A pending approval.
#[derive(Debug, Clone)]
pub struct ApprovalLine {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: ApprovalKind,
    /// Its title.
    pub title: String,
    /// Who asked (agent slug or `board`).
    pub requested_by: String,
    /// True when this agent is the approver and must resolve it.
    pub addressed_to_you: bool,
    /// When it was asked.
    pub created_at: Timestamp,
}

/// What a review run reviews.
#[derive(Debug, Clone, Default)]
pub struct ReviewContext {
    /// The agent that submitted the issue.
    pub submitted_by: Option<String>,
    /// The commit the branch started from, for `git diff`.
    pub base_commit: Option<String>,
    /// `git diff --stat` of the work.
    pub diff_stat: String,
    /// The diff itself, or a summary of it (shown up to a bound).
    pub diff: String,
    /// The evidence comments since the checkout, oldest first.
    pub evidence: Vec<CommentLine>,
}

/// What a heartbeat run looks at.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatContext {
    /// When the agent's previous run started, if it had one.
    pub last_run_at: Option<Timestamp>,
    /// The agent's inbox, in inbox order.
    pub inbox: Vec<InboxItem>,
    /// What changed since the last run, oldest first.
    pub changes: Vec<ChangeLine>,
    /// Pending approvals addressed to the agent.
    pub approvals: Vec<ApprovalLine>,
}

/// One inbox row.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// The issue.
    pub issue: MemberIssue,
    /// Its priority.
    pub priority: Priority,
    /// True when it waits for this agent's review rather than its work.
    pub awaiting_your_review: bool,
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct ChangeLine {
    /// When.
    pub at: Timestamp,
    /// What (an activity summary).
    pub summary: String,
}

/// The instructions of a cron or audit run.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    /// The cron's task, or the audit's focus.
    pub instructions: String,
    /// Figures Mesa computed for the run (the auditor's window), as text.
    pub figures: String,
}
