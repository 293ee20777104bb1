//! Approvals, archetype patches, audits, directives and crons (SPEC §4).

use crate::{
    AgentId, ApprovalId, ApprovalKind, ApprovalStatus, ArchetypePatchId, AuditId, AuditStatus,
    CronId, DirectiveId, Markdown, PatchStatus, RunId, Slug, Timestamp, Title, Version,
};

/// Who decides an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "agent_id")]
pub enum Approver {
    /// The board.
    Board,
    /// An agent up the requester's chain.
    Agent(AgentId),
}

/// Who asked for an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "agent_id")]
pub enum Requester {
    /// The board itself.
    Board,
    /// An agent.
    Agent(AgentId),
}

/// The entity an approval is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    /// `work_block`, `archetype_patch`, `agent`, `issue`...
    pub entity_type: String,
    /// Its id or key.
    pub entity_id: String,
}

/// A request for a decision (SPEC §1 Approval, §4.2).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Approval {
    /// Identity.
    pub id: ApprovalId,
    /// What kind of decision.
    pub kind: ApprovalKind,
    /// Title.
    pub title: Title,
    /// Explanation.
    pub body: Markdown,
    /// Who asked.
    pub requested_by: Requester,
    /// Who decides.
    pub approver: Approver,
    /// What it is about.
    pub subject: Option<Subject>,
    /// Kind-specific data.
    pub payload: serde_json::Value,
    /// Lifecycle position.
    pub status: ApprovalStatus,
    /// The decider's comment.
    pub decision_comment: Option<String>,
    /// Actor string of the decider.
    pub decided_by: Option<String>,
    /// When decided.
    pub decided_at: Option<Timestamp>,
    /// When it lapses if undecided.
    pub expires_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// A proposed new body for an archetype (SPEC §1 ArchetypePatch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchetypePatch {
    /// Identity.
    pub id: ArchetypePatchId,
    /// The archetype.
    pub archetype_slug: Slug,
    /// The version it was written against.
    pub base_version: i64,
    /// The proposed body.
    pub proposed_body: Markdown,
    /// Why.
    pub rationale: Markdown,
    /// The proposing agent.
    pub proposed_by: Option<AgentId>,
    /// The audit that produced it.
    pub audit_id: Option<AuditId>,
    /// Lifecycle position.
    pub status: PatchStatus,
    /// Its approval.
    pub approval_id: Option<ApprovalId>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// An auditor run's record (SPEC §1 Audit).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    /// Identity.
    pub id: AuditId,
    /// The run.
    pub run_id: Option<RunId>,
    /// What to look at.
    pub focus: Option<String>,
    /// Lifecycle position.
    pub status: AuditStatus,
    /// Markdown summary.
    pub findings: Option<String>,
    /// The figures Mesa computed for the auditor's prompt (Markdown), once the run started.
    pub figures: Option<String>,
    /// How many days back the figures look (default 14).
    pub window_days: u32,
    /// Patches it proposed.
    pub patches_proposed: i64,
    /// Issues it created.
    pub issues_created: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
}

/// A short board rule for every prompt (SPEC §1 Directive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// Identity.
    pub id: DirectiveId,
    /// The rule.
    pub text: String,
    /// Inactive directives are kept but not used.
    pub active: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// A scheduled task for an agent (SPEC §1 Cron, §6.4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cron {
    /// Identity.
    pub id: CronId,
    /// The agent.
    pub agent_id: AgentId,
    /// The prompt.
    pub task: String,
    /// A 5-field cron expression or an interval such as `20m`.
    pub schedule: String,
    /// Inactive crons do not fire.
    pub active: bool,
    /// Last firing.
    pub last_run_at: Option<Timestamp>,
    /// Next firing.
    pub next_run_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// A pending approval's default lifetime: 72 hours (SPEC §4.2).
pub const APPROVAL_TTL: std::time::Duration = std::time::Duration::from_secs(72 * 3600);

impl Approval {
    /// True once an undecided approval has passed its expiry.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.status == ApprovalStatus::Pending && self.expires_at.is_some_and(|t| t <= now)
    }
}

/// A convenience for titles that are built by Mesa (e.g. "Activate block X").
pub fn generated_title(text: &str) -> Title {
    let mut t: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if t.trim().is_empty() {
        t = "Untitled".to_owned();
    }
    Title::parse(&t).unwrap_or_else(|_| Title::parse("Untitled").expect("a valid title"))
}

/// Markdown built by Mesa, truncated to the body limit.
pub fn generated_markdown(text: &str) -> Markdown {
    let mut t = text.replace('\0', "");
    if t.len() > crate::MAX_BODY_BYTES {
        let mut cut = crate::MAX_BODY_BYTES;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    Markdown::parse(&t).expect("cleaned of NUL and truncated to the limit")
}
