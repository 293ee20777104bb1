//! `/issues`: list, create, read, update, the §2 transitions, comments.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::stage::StageInput;
use mesa_core::domain::{
    CommentKind, IssueKey, IssueStatus, IssueType, LabelId, Markdown, Priority, ReviewDecision,
    Stages, Title, Version, WorkBlockId,
};
use mesa_core::store::{IssueFilter, PageRequest};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::{IssuePatch, IssueView, Mesa, NewIssue};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{CommentDto, IssueDto, Page};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(checkout))
        .routes(routes!(release))
        .routes(routes!(review))
        .routes(routes!(list_comments, add_comment))
}

fn key_of(text: &str) -> Result<IssueKey, ApiError> {
    IssueKey::parse(text).map_err(|e| ApiError::invalid("key", e.message))
}

/// An optional JSON body: an empty one is the default, bad syntax is 400 `malformed_json` and
/// the wrong shape 422 on `field`.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    field: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON",
            )
        } else {
            ApiError::invalid(field, e.to_string())
        }
    })
}

/// The issue with its `ETag`.
pub(crate) fn issue_response(status: StatusCode, view: &IssueView) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", view.issue.version.0)) {
        headers.insert(header::ETAG, v);
    }
    (status, headers, axum::Json(IssueDto::from(view))).into_response()
}

/// Filters of `GET /issues`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Comma-separated statuses.
    status: Option<String>,
    /// Assignee slug or id.
    assignee: Option<String>,
    /// Label id or name.
    label: Option<String>,
    /// Work block id.
    work_block: Option<String>,
    /// Parent issue key.
    parent: Option<String>,
    /// Full-text query.
    q: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// List issues.
#[utoipa::path(get, path = "/issues", tag = "issues", params(ListQuery),
    responses((status = 200, body = Page<IssueDto>), (status = 401), (status = 422)))]
async fn list(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let mut filter = IssueFilter::default();
    if let Some(statuses) = q.status.as_deref().filter(|s| !s.is_empty()) {
        for s in statuses.split(',') {
            filter
                .statuses
                .push(IssueStatus::parse(s).map_err(|e| ApiError::invalid("status", e.message))?);
        }
    }
    if let Some(a) = &q.assignee {
        filter.assignee = Some(mesa.resolve_agent("assignee", a).await?.id);
    }
    if let Some(l) = &q.label {
        let id = match LabelId::parse(l) {
            Ok(id) => id,
            Err(_) => mesa
                .labels()
                .await?
                .into_iter()
                .find(|x| x.name.as_str().eq_ignore_ascii_case(l))
                .map(|x| x.id)
                .ok_or_else(|| {
                    ApiError::invalid("label", format!("label names no label: {l:?}"))
                })?,
        };
        filter.label = Some(id);
    }
    if let Some(b) = &q.work_block {
        filter.work_block =
            Some(WorkBlockId::parse(b).map_err(|e| ApiError::invalid("work_block", e.message))?);
    }
    if let Some(p) = &q.parent {
        filter.parent = Some(
            IssueKey::parse_field("parent", p)
                .map_err(|e| ApiError::invalid("parent", e.message))?,
        );
    }
    filter.text = q.q.clone();
    let page = mesa
        .issues(&filter, &PageRequest::new(q.limit, q.cursor.clone()))
        .await?;
    let body = Page {
        items: page.items.iter().map(IssueDto::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(axum::Json(body).into_response())
}

/// `POST /issues` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// 1..200 characters.
    title: String,
    /// Markdown.
    description: Option<String>,
    /// Issue type (default task).
    #[serde(rename = "type")]
    issue_type: Option<String>,
    /// 0..4 (default 0).
    priority: Option<i64>,
    /// Assignee slug or id (default: the CEO).
    assignee_slug: Option<String>,
    /// Parent issue key (alias `parent_issue_key`).
    #[serde(alias = "parent_issue_key")]
    parent_key: Option<String>,
    /// Label ids.
    labels: Option<Vec<String>>,
    /// Work block id.
    work_block_id: Option<String>,
    /// Checklist.
    #[schema(value_type = Option<Vec<Object>>)]
    stages: Option<Vec<StageInput>>,
}

fn invalid(e: mesa_core::domain::ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

fn labels(list: Option<Vec<String>>) -> Result<Vec<LabelId>, ApiError> {
    list.unwrap_or_default()
        .iter()
        .map(|l| LabelId::parse(l).map_err(|e| ApiError::invalid("labels", e.message)))
        .collect()
}

/// Create an issue.
#[utoipa::path(post, path = "/issues", tag = "issues", request_body = CreateBody,
    responses((status = 201, body = IssueDto), (status = 401), (status = 409), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let new = NewIssue {
        title: Title::parse(&b.title).map_err(invalid)?,
        description: Markdown::parse(b.description.as_deref().unwrap_or("")).map_err(invalid)?,
        issue_type: b
            .issue_type
            .as_deref()
            .map(IssueType::parse)
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default(),
        priority: b
            .priority
            .map(Priority::new)
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default(),
        assignee: b.assignee_slug,
        parent_key: b
            .parent_key
            .as_deref()
            .map(|k| IssueKey::parse_field("parent_key", k))
            .transpose()
            .map_err(invalid)?,
        labels: labels(b.labels)?,
        work_block_id: b
            .work_block_id
            .as_deref()
            .map(WorkBlockId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("work_block_id", e.message))?,
        stages: b
            .stages
            .map(Stages::parse)
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default(),
    };
    let view = mesa.create_issue(&p.actor, new).await?;
    Ok(issue_response(StatusCode::CREATED, &view))
}

/// Read an issue with its comments, sub-issues and runs.
#[utoipa::path(get, path = "/issues/{key}", tag = "issues", params(("key" = String, Path)),
    responses((status = 200, body = IssueDetailDto), (status = 401), (status = 404), (status = 422)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let detail = mesa.issue_detail(&key_of(&key)?).await?;
    let runs = detail
        .runs
        .iter()
        .map(|r| IssueRunDto {
            id: r.id.to_string(),
            agent_id: r.agent_id.to_string(),
            mode: r.mode.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            cost_usd: r.cost_usd.as_usd(),
            queued_at: r.queued_at.to_rfc3339(),
        })
        .collect();
    let body = IssueDetailDto {
        issue: IssueDto::from(&detail.issue),
        comments: detail.comments.iter().map(CommentDto::from).collect(),
        children: detail.children.iter().map(IssueDto::from).collect(),
        runs,
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /issues/{key}`: the issue with its comments, sub-issues and runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssueDetailDto {
    /// The issue.
    issue: IssueDto,
    /// Its comments, oldest first.
    comments: Vec<CommentDto>,
    /// Its sub-issues.
    children: Vec<IssueDto>,
    /// Its runs.
    runs: Vec<IssueRunDto>,
}

/// A run of an issue, in summary.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssueRunDto {
    /// UUID.
    id: String,
    /// The agent's id.
    agent_id: String,
    /// `task`, `heartbeat`...
    mode: String,
    /// Run status.
    status: String,
    /// Dollars spent.
    cost_usd: f64,
    /// When it was queued.
    queued_at: String,
}

/// `PATCH /issues/{key}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchBody {
    title: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    issue_type: Option<String>,
    priority: Option<i64>,
    /// Assignee slug or id; null unassigns.
    #[serde(default, deserialize_with = "double_option")]
    assignee_slug: Option<Option<String>>,
    /// Parent key; null detaches (alias `parent_issue_key`).
    #[serde(
        default,
        deserialize_with = "double_option",
        alias = "parent_issue_key"
    )]
    parent_key: Option<Option<String>>,
    /// A status name or a §2 command.
    status: Option<String>,
    /// Comment for the transition.
    comment: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    stages: Option<Vec<StageInput>>,
    labels: Option<Vec<String>>,
    cancellation_reason: Option<String>,
    force: Option<bool>,
    /// The version the change was made on (like `If-Match`).
    version: Option<i64>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Update an issue; `status` changes go through the §2 table.
#[utoipa::path(patch, path = "/issues/{key}", tag = "issues", params(("key" = String, Path)), request_body = PatchBody,
    responses((status = 200, body = IssueDto), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422)))]
async fn update(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(key): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    let parent_key = match b.parent_key {
        None => None,
        Some(None) => Some(None),
        Some(Some(k)) => Some(Some(
            IssueKey::parse_field("parent_key", &k).map_err(invalid)?,
        )),
    };
    let patch = IssuePatch {
        title: b
            .title
            .as_deref()
            .map(Title::parse)
            .transpose()
            .map_err(invalid)?,
        description: b
            .description
            .as_deref()
            .map(Markdown::parse)
            .transpose()
            .map_err(invalid)?,
        issue_type: b
            .issue_type
            .as_deref()
            .map(IssueType::parse)
            .transpose()
            .map_err(invalid)?,
        priority: b.priority.map(Priority::new).transpose().map_err(invalid)?,
        assignee: b.assignee_slug,
        parent_key,
        stages: b.stages.map(Stages::parse).transpose().map_err(invalid)?,
        labels: b.labels.map(|l| labels(Some(l))).transpose()?,
        status: b.status,
        comment: b.comment,
        cancellation_reason: b.cancellation_reason,
        force: b.force.unwrap_or(false),
        expected: if_match.or(b.version.map(Version)),
    };
    let view = mesa.update_issue(&p.actor, &key, patch).await?;
    Ok(issue_response(StatusCode::OK, &view))
}

/// `POST /issues/{key}/checkout` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckoutBody {
    /// Statuses the caller expects (default todo and blocked); alias `expectedStatuses`.
    #[serde(alias = "expectedStatuses")]
    expected_statuses: Option<Vec<String>>,
}

/// Atomically claim an issue (SPEC §2.2).
#[utoipa::path(post, path = "/issues/{key}/checkout", tag = "issues", params(("key" = String, Path)), request_body(content = CheckoutBody, content_type = "application/json"),
    responses((status = 200, body = IssueDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn checkout(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    let b: CheckoutBody = optional_body(&body, "expected_statuses")?;
    let expected = b
        .expected_statuses
        .map(|list| {
            list.iter()
                .map(|s| IssueStatus::parse_field("expected_statuses", s))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(invalid)?;
    let view = mesa
        .checkout_issue(&p.actor, &key, expected, p.run_id)
        .await?;
    Ok(issue_response(StatusCode::OK, &view))
}

/// Optional comment body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentOnly {
    comment: Option<String>,
}

/// Give an issue back (→ todo, unassigned).
#[utoipa::path(post, path = "/issues/{key}/release", tag = "issues", params(("key" = String, Path)), request_body(content = CommentOnly, content_type = "application/json"),
    responses((status = 200, body = IssueDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn release(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    let b: CommentOnly = optional_body(&body, "comment")?;
    let view = mesa
        .issue_command(
            &p.actor,
            &key,
            IssueCommand::Release { comment: b.comment },
            None,
        )
        .await?;
    Ok(issue_response(StatusCode::OK, &view))
}

/// `POST /issues/{key}/review` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    /// approve, request_changes, escalate or reject.
    decision: String,
    /// Required for request_changes and reject.
    comment: Option<String>,
}

/// Decide a review (also the board's decision on `board_review`).
#[utoipa::path(post, path = "/issues/{key}/review", tag = "issues", params(("key" = String, Path)), request_body = ReviewBody,
    responses((status = 200, body = IssueDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn review(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(key): Path<String>,
    Json(b): Json<ReviewBody>,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    let decision = ReviewDecision::parse(&b.decision).map_err(invalid)?;
    let view = mesa
        .issue_command(
            &p.actor,
            &key,
            IssueCommand::Review {
                decision,
                comment: b.comment,
            },
            None,
        )
        .await?;
    Ok(issue_response(StatusCode::OK, &view))
}

/// Pagination query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Comments of an issue, oldest first.
#[utoipa::path(get, path = "/issues/{key}/comments", tag = "issues", params(("key" = String, Path), PageQuery),
    responses((status = 200, body = Page<CommentDto>), (status = 404), (status = 422)))]
async fn list_comments(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(key): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    mesa.issue(&key).await?;
    let page = mesa
        .comments(&key, &PageRequest::new(q.limit, q.cursor))
        .await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(CommentDto::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// `POST /issues/{key}/comments` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentBody {
    /// Markdown.
    body: String,
    /// comment (default) or evidence.
    kind: Option<String>,
}

/// Post a comment.
#[utoipa::path(post, path = "/issues/{key}/comments", tag = "issues", params(("key" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = CommentDto), (status = 404), (status = 409), (status = 422)))]
async fn add_comment(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(key): Path<String>,
    Json(b): Json<CommentBody>,
) -> Result<Response, ApiError> {
    let key = key_of(&key)?;
    let kind = b
        .kind
        .as_deref()
        .map(CommentKind::parse)
        .transpose()
        .map_err(invalid)?
        .unwrap_or(CommentKind::Comment);
    let comment = mesa.add_comment(&p.actor, &key, &b.body, kind).await?;
    Ok((StatusCode::CREATED, axum::Json(CommentDto::from(&comment))).into_response())
}
