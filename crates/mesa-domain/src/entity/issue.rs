//! Issues, comments and labels.

use crate::{
    AgentId, Color, CommentId, CommentKind, IssueId, IssueKey, IssueStatus, IssueType, LabelId,
    Markdown, Name, Priority, Stages, Timestamp, Title, Version, WorkBlockId,
};

/// A unit of work (SPEC §1 Issue).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Issue {
    /// Identity.
    pub id: IssueId,
    /// `<PREFIX>-<n>`, unique.
    pub key: IssueKey,
    /// 1..200 characters.
    pub title: Title,
    /// Markdown.
    pub description: Markdown,
    /// Kind of work.
    pub issue_type: IssueType,
    /// Lifecycle position (SPEC §2).
    pub status: IssueStatus,
    /// 0..4.
    pub priority: Priority,
    /// Who holds it.
    pub assignee_id: Option<AgentId>,
    /// The agent that last submitted it for review (never its reviewer, SPEC §2); `None` when
    /// the board submitted it or nobody has.
    pub submitted_by: Option<AgentId>,
    /// While `in_review`: the agent that reviews it, resolved through the review chain of the
    /// assignee (SPEC §4.1) when it was submitted and again whenever the org chart changes.
    /// `None` in every other status.
    pub reviewer_id: Option<AgentId>,
    /// Parent issue (sub-issue link).
    pub parent_key: Option<IssueKey>,
    /// The work block it belongs to.
    pub work_block_id: Option<WorkBlockId>,
    /// Labels.
    pub labels: Vec<LabelId>,
    /// Optional checklist.
    pub stages: Stages,
    /// First `todo` stage (or n), `None` without stages.
    pub current_stage: Option<u32>,
    /// Git branch of its work, set by the scheduler.
    pub branch: Option<String>,
    /// First checkout.
    pub started_at: Option<Timestamp>,
    /// Set on entering a terminal status, cleared on reopen.
    pub completed_at: Option<Timestamp>,
    /// Why it was cancelled.
    pub cancellation_reason: Option<String>,
    /// Agent id, `board`, or `webhook:<source>`.
    pub created_by: String,
    /// Runs started for it (runaway guard, SPEC §2).
    pub run_count: i64,
    /// When the status last changed (cancel guard, SPEC §2).
    pub status_changed_at: Timestamp,
    /// Soft-deleted issues are hidden from lists.
    pub deleted: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// A comment on an issue (SPEC §1 Comment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comment {
    /// Identity.
    pub id: CommentId,
    /// The issue it belongs to.
    pub issue_key: IssueKey,
    /// The agent who wrote it; `None` for board, system and webhooks.
    pub author_agent_id: Option<AgentId>,
    /// Display name / actor string of the author.
    pub author: String,
    /// comment, evidence, system or review.
    pub kind: CommentKind,
    /// Markdown.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

/// A label (SPEC §1 Label).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Label {
    /// Identity.
    pub id: LabelId,
    /// Unique name.
    pub name: Name,
    /// `#rrggbb`.
    pub color: Color,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}
