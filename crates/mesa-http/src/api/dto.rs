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
    /// `missing_header`: the request header that is missing (incoming webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
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

/// RFC 3339 text of a time: exactly [`Timestamp::to_rfc3339`] (UTC, milliseconds), written
/// digit by digit for the years 0 to 9999 (an inbox page holds a few hundred of them, and
/// formatting each through `format!` cost a third of rendering the page).
pub fn time(t: Timestamp) -> String {
    const MS_PER_DAY: i64 = 86_400_000;
    let ms = t.as_millis();
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let Ok(year) = u32::try_from(year) else {
        return t.to_rfc3339();
    };
    if year > 9999 {
        return t.to_rfc3339();
    }
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let fields = [
        (year, 4),
        (month, 2),
        (day, 2),
        (u32::try_from(in_day / 3_600_000).unwrap_or(0), 2),
        (u32::try_from(in_day / 60_000 % 60).unwrap_or(0), 2),
        (u32::try_from(in_day / 1000 % 60).unwrap_or(0), 2),
        (u32::try_from(in_day % 1000).unwrap_or(0), 3),
    ];
    let mut out = String::with_capacity(24);
    for (i, (value, width)) in fields.into_iter().enumerate() {
        if let Some(separator) = ["", "-", "-", "T", ":", ":", "."].get(i) {
            out.push_str(separator);
        }
        let mut divisor = 10_u32.pow(width - 1);
        while divisor > 0 {
            out.push(char::from(
                b'0' + u8::try_from(value / divisor % 10).unwrap_or(0),
            ));
            divisor /= 10;
        }
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_exactly_as_the_domain_writes_them() {
        let day = 86_400_000_i64;
        let mut instants = vec![
            0,
            -1,
            1,
            day - 1,
            -day,
            // 0000-01-01, 9999-12-31T23:59:59.999, and just past it.
            -62_167_219_200_000,
            253_402_300_799_999,
            253_402_300_800_000,
            // Leap days: 2000-02-29, 2100-03-01, 2024-02-29.
            951_782_400_123,
            4_107_542_400_000,
            1_709_164_800_999,
        ];
        // A walk over four centuries with an odd step, so every month, leap rule and field
        // value comes up.
        let mut t = -2_208_988_800_000_i64;
        while t < 10_413_792_000_000 {
            instants.push(t);
            t += 3_217_043_117;
        }
        for ms in instants {
            let t = Timestamp::from_millis(ms);
            assert_eq!(time(t), t.to_rfc3339(), "{ms}");
        }
    }
}
