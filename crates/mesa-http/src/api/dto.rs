//! Wire shapes shared by several resources. Domain types are not the wire format: each DTO is
//! converted by hand from the core's values.

use mesa_core::IssueView;
use mesa_core::domain::entity::Comment;
use mesa_core::domain::{Stage, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

/// `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items (never null).
    pub items: Vec<T>,
    /// Cursor of the next page, null on the last one.
    pub next_cursor: Option<String>,
}

/// The body of every error response (SPEC §9.2): `{"error": {"code", "message", ...details}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `code` and `message`, plus the details that apply to the code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `unauthenticated`, `invalid_token`, `forbidden`, `not_found`,
    /// `validation_failed`, `malformed_json`, `conflict`, `checkout_conflict`,
    /// `illegal_transition`, `duplicate`, `version_conflict`, `payload_too_large`,
    /// `rate_limited`, `budget_exceeded`, `internal`...
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// `validation_failed`: the offending request field or parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `duplicate`: the key of the existing issue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_key: Option<String>,
    /// `version_conflict`: the version the change should have been made on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// `forbidden` by the route's access rule: `board` or `agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<String>,
    /// `checkout_conflict`: the issue's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `illegal_transition`: the status the issue is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `illegal_transition`: the status asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `illegal_transition`: the commands allowed from `from`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// `conflict` on approving an issue with open sub-issues: their keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_children: Option<Vec<String>>,
    /// `conflict` on cancelling finished work without `force`: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_force: Option<bool>,
}

/// RFC 3339 text of a time.
pub fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// A checklist stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageDto {
    /// Position, 1..n.
    pub id: u32,
    /// Title.
    pub title: String,
    /// `todo` or `done`.
    pub status: String,
}

impl From<&Stage> for StageDto {
    fn from(s: &Stage) -> Self {
        StageDto {
            id: s.id,
            title: s.title.clone(),
            status: match s.status {
                mesa_core::domain::StageStatus::Todo => "todo".into(),
                mesa_core::domain::StageStatus::Done => "done".into(),
            },
        }
    }
}

/// An issue (SPEC §1).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueDto {
    /// UUID.
    pub id: String,
    /// `MESA-12`.
    pub key: String,
    /// Title.
    pub title: String,
    /// Markdown.
    pub description: String,
    /// task, bug, feature, api, backend, frontend, chore, research.
    #[serde(rename = "type")]
    pub issue_type: String,
    /// Status (SPEC §2).
    pub status: String,
    /// 0 none .. 4 urgent.
    pub priority: u8,
    /// Assignee id.
    pub assignee_id: Option<String>,
    /// Assignee slug.
    pub assignee_slug: Option<String>,
    /// The agent that last submitted it for review (`null` when the board did or nobody has).
    pub submitted_by: Option<String>,
    /// While `in_review`: the agent that reviews it (SPEC §4.1); `null` in other statuses.
    pub reviewer_id: Option<String>,
    /// Parent issue key.
    pub parent_key: Option<String>,
    /// Work block id.
    pub work_block_id: Option<String>,
    /// Label ids.
    pub labels: Vec<String>,
    /// Checklist.
    pub stages: Vec<StageDto>,
    /// First todo stage (or n).
    pub current_stage: Option<u32>,
    /// Git branch of the work.
    pub branch: Option<String>,
    /// First checkout.
    pub started_at: Option<String>,
    /// Entered a terminal status.
    pub completed_at: Option<String>,
    /// Why it was cancelled.
    pub cancellation_reason: Option<String>,
    /// Agent id, `board` or `webhook:<source>`.
    pub created_by: String,
    /// Runs started for it.
    pub run_count: i64,
    /// Creation time.
    pub created_at: String,
    /// Last update.
    pub updated_at: String,
    /// Optimistic-concurrency version (also the `ETag`).
    pub version: i64,
    /// Acceptance-criteria hints; present only when there are some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<&IssueView> for IssueDto {
    fn from(v: &IssueView) -> Self {
        let i = &v.issue;
        IssueDto {
            id: i.id.to_string(),
            key: i.key.to_string(),
            title: i.title.to_string(),
            description: i.description.to_string(),
            issue_type: i.issue_type.as_str().to_owned(),
            status: i.status.as_str().to_owned(),
            priority: i.priority.get(),
            assignee_id: i.assignee_id.map(|a| a.to_string()),
            assignee_slug: v.assignee_slug.as_ref().map(ToString::to_string),
            submitted_by: i.submitted_by.map(|a| a.to_string()),
            reviewer_id: i.reviewer_id.map(|a| a.to_string()),
            parent_key: i.parent_key.as_ref().map(ToString::to_string),
            work_block_id: i.work_block_id.map(|b| b.to_string()),
            labels: i.labels.iter().map(ToString::to_string).collect(),
            stages: i.stages.as_slice().iter().map(StageDto::from).collect(),
            current_stage: i.current_stage,
            branch: i.branch.clone(),
            started_at: i.started_at.map(time),
            completed_at: i.completed_at.map(time),
            cancellation_reason: i.cancellation_reason.clone(),
            created_by: i.created_by.clone(),
            run_count: i.run_count,
            created_at: time(i.created_at),
            updated_at: time(i.updated_at),
            version: i.version.0,
            warnings: v.warnings.clone(),
        }
    }
}

/// A comment (SPEC §1).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentDto {
    /// UUID.
    pub id: String,
    /// The issue.
    pub issue_key: String,
    /// The authoring agent.
    pub author_agent_id: Option<String>,
    /// Author (actor string).
    pub author: String,
    /// comment, evidence, system, review.
    pub kind: String,
    /// Markdown.
    pub body: String,
    /// When.
    pub created_at: String,
}

impl From<&Comment> for CommentDto {
    fn from(c: &Comment) -> Self {
        CommentDto {
            id: c.id.to_string(),
            issue_key: c.issue_key.to_string(),
            author_agent_id: c.author_agent_id.map(|a| a.to_string()),
            author: c.author.clone(),
            kind: c.kind.as_str().to_owned(),
            body: c.body.clone(),
            created_at: time(c.created_at),
        }
    }
}
