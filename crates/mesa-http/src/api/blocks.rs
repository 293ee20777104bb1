//! `/work-blocks`, `/apex-blocks` and `/strategy` (SPEC §3, §9.3).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{ApexBlock, WorkBlock};
use mesa_core::domain::{
    ApexBlockId, ApexStatus, IssueKey, Markdown, Title, ValidationError, Version, WorkBlockId,
    WorkBlockStatus,
};
use mesa_core::workflow::work_block::{BlockCommandKind, command_for_target};
use mesa_core::workflow::{WorkflowError, work_block::BlockCommand};
use mesa_core::{Mesa, NewWorkBlock, WorkBlockFields};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::{ApprovalDto, approval_json};
use super::dto::{IssueDto, Page, time};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(add_issue))
        .routes(routes!(remove_issue))
        .routes(routes!(list_apex, create_apex))
        .routes(routes!(show_apex, update_apex))
        .routes(routes!(strategy))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

fn block_id(text: &str) -> Result<WorkBlockId, ApiError> {
    WorkBlockId::parse(text).map_err(|e| ApiError::invalid("id", e.message))
}

fn apex_id(text: &str) -> Result<ApexBlockId, ApiError> {
    ApexBlockId::parse(text).map_err(|e| ApiError::invalid("id", e.message))
}

fn etag(version: Version) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", version.0)) {
        headers.insert(header::ETAG, v);
    }
    headers
}

/// Cuts one page out of a complete list; the cursor is the offset of the next item.
pub(crate) fn page_of<T: ToSchema>(
    items: Vec<T>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<T>, ApiError> {
    let limit = limit.unwrap_or(50).clamp(1, 500) as usize;
    let start = match cursor {
        None | Some("") => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("cursor", "cursor is not one this list returned"))?,
    };
    let end = start.saturating_add(limit).min(items.len());
    let next_cursor = (end < items.len()).then(|| end.to_string());
    Ok(Page {
        items: items.into_iter().skip(start).take(limit).collect(),
        next_cursor,
    })
}

/// A work block (SPEC §1 WorkBlock).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkBlockDto {
    /// UUID.
    id: String,
    /// Title.
    title: String,
    /// Markdown.
    goal: String,
    /// Markdown.
    acceptance_criteria: String,
    /// proposed, active, ready, shipped, cancelled.
    status: String,
    /// North-star metric.
    north_star_metric: Option<String>,
    /// Its target.
    north_star_target: Option<f64>,
    /// Its latest measurement.
    north_star_current: Option<f64>,
    /// The apex block it serves.
    apex_block_id: Option<String>,
    /// Latest activation.
    activated_at: Option<String>,
    /// Entered ready.
    ready_at: Option<String>,
    /// Shipped.
    shipped_at: Option<String>,
    /// Cancelled.
    cancelled_at: Option<String>,
    /// Actor string of the proposer.
    created_by: String,
    /// Creation time.
    created_at: String,
    /// Last update.
    updated_at: String,
    /// Optimistic-concurrency version (also the `ETag`).
    version: i64,
}

impl From<&WorkBlock> for WorkBlockDto {
    fn from(b: &WorkBlock) -> Self {
        WorkBlockDto {
            id: b.id.to_string(),
            title: b.title.to_string(),
            goal: b.goal.to_string(),
            acceptance_criteria: b.acceptance_criteria.to_string(),
            status: b.status.as_str().to_owned(),
            north_star_metric: b.north_star_metric.clone(),
            north_star_target: b.north_star_target,
            north_star_current: b.north_star_current,
            apex_block_id: b.apex_block_id.map(|a| a.to_string()),
            activated_at: b.activated_at.map(time),
            ready_at: b.ready_at.map(time),
            shipped_at: b.shipped_at.map(time),
            cancelled_at: b.cancelled_at.map(time),
            created_by: b.created_by.clone(),
            created_at: time(b.created_at),
            updated_at: time(b.updated_at),
            version: b.version.0,
        }
    }
}

fn block_response(status: StatusCode, b: &WorkBlock) -> Response {
    (status, etag(b.version), axum::Json(WorkBlockDto::from(b))).into_response()
}

/// Issue counts of a work block.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkBlockStatsDto {
    /// Member issues.
    planned: u64,
    /// Done.
    done: u64,
    /// Cancelled or won't do.
    cancelled: u64,
    /// Not terminal.
    open: u64,
    /// Runs on member issues.
    runs: u64,
    /// Their cost, USD.
    cost_usd: f64,
    /// Their tokens.
    tokens: i64,
    /// Seconds from the latest activation to shipping (null until shipped).
    cycle_time_sec: Option<u64>,
}

/// One north-star measurement.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NorthStarDto {
    /// The value.
    value: f64,
    /// Actor string of who recorded it.
    recorded_by: String,
    /// When.
    recorded_at: String,
}

/// `GET /work-blocks/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkBlockDetailDto {
    /// The block.
    work_block: WorkBlockDto,
    /// Member issues.
    issues: Vec<IssueDto>,
    /// Counts over the members.
    stats: WorkBlockStatsDto,
    /// North-star measurements, oldest first.
    north_star_history: Vec<NorthStarDto>,
}

/// `?status=` and pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only blocks of this status.
    status: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// List work blocks, newest first.
#[utoipa::path(get, path = "/work-blocks", tag = "work-blocks", params(ListQuery),
    responses((status = 200, body = Page<WorkBlockDto>), (status = 401), (status = 422)))]
async fn list(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(WorkBlockStatus::parse)
        .transpose()
        .map_err(invalid)?;
    let blocks = mesa.work_blocks(status).await?;
    let items = blocks.iter().map(WorkBlockDto::from).collect();
    Ok(axum::Json(page_of(items, q.limit, q.cursor.as_deref())?).into_response())
}

/// `POST /work-blocks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWorkBlockBody {
    /// 1..200 characters.
    title: String,
    /// Markdown.
    goal: Option<String>,
    /// Markdown.
    acceptance_criteria: Option<String>,
    /// North-star metric.
    north_star_metric: Option<String>,
    /// Its target.
    north_star_target: Option<f64>,
    /// The apex block it serves.
    apex_block_id: Option<String>,
}

fn apex_field(text: &str) -> Result<ApexBlockId, ApiError> {
    ApexBlockId::parse(text).map_err(|e| ApiError::invalid("apex_block_id", e.message))
}

/// Propose a work block (board or any agent).
#[utoipa::path(post, path = "/work-blocks", tag = "work-blocks", request_body = CreateWorkBlockBody,
    responses((status = 201, body = WorkBlockDto), (status = 401), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateWorkBlockBody>,
) -> Result<Response, ApiError> {
    if b.north_star_target.is_some_and(|t| !t.is_finite()) {
        return Err(ApiError::invalid(
            "north_star_target",
            "north_star_target must be a finite number",
        ));
    }
    let new = NewWorkBlock {
        title: Title::parse(&b.title).map_err(invalid)?,
        goal: Markdown::parse_field("goal", b.goal.as_deref().unwrap_or("")).map_err(invalid)?,
        acceptance_criteria: Markdown::parse_field(
            "acceptance_criteria",
            b.acceptance_criteria.as_deref().unwrap_or(""),
        )
        .map_err(invalid)?,
        north_star_metric: b.north_star_metric,
        north_star_target: b.north_star_target,
        apex_block_id: b.apex_block_id.as_deref().map(apex_field).transpose()?,
    };
    let block = mesa.create_work_block(&p.actor, new).await?;
    Ok(block_response(StatusCode::CREATED, &block))
}

/// Read a work block with its issues, stats and north-star history.
#[utoipa::path(get, path = "/work-blocks/{id}", tag = "work-blocks", params(("id" = String, Path)),
    responses((status = 200, body = WorkBlockDetailDto), (status = 401), (status = 404), (status = 422)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = mesa.work_block_detail(block_id(&id)?).await?;
    let body = WorkBlockDetailDto {
        work_block: WorkBlockDto::from(&d.block),
        issues: d.issues.iter().map(IssueDto::from).collect(),
        stats: WorkBlockStatsDto {
            planned: d.stats.planned,
            done: d.stats.done,
            cancelled: d.stats.cancelled,
            open: d.stats.open,
            runs: d.stats.runs,
            cost_usd: d.stats.cost.as_usd(),
            tokens: d.stats.tokens,
            cycle_time_sec: d.stats.cycle_time.map(|t| t.as_secs()),
        },
        north_star_history: d
            .north_star_history
            .iter()
            .map(|v| NorthStarDto {
                value: v.value,
                recorded_by: v.recorded_by.clone(),
                recorded_at: time(v.recorded_at),
            })
            .collect(),
    };
    Ok((etag(d.block.version), axum::Json(body)).into_response())
}

/// `PATCH /work-blocks/{id}` body: fields, `north_star_current`, or `status` (alone).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchWorkBlockBody {
    title: Option<String>,
    goal: Option<String>,
    acceptance_criteria: Option<String>,
    /// Null clears it.
    #[serde(default, deserialize_with = "double_option")]
    north_star_metric: Option<Option<String>>,
    /// Null clears it.
    #[serde(default, deserialize_with = "double_option")]
    north_star_target: Option<Option<f64>>,
    /// Null unlinks the block.
    #[serde(default, deserialize_with = "double_option")]
    apex_block_id: Option<Option<String>>,
    /// A new measurement (the CEO or the board).
    north_star_current: Option<f64>,
    /// Target status: active, ready, shipped, cancelled. Not combinable with other changes.
    status: Option<String>,
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

/// `{"approval": {...}}`: what an agent's activation or ship request returns (202).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApprovalRequested {
    /// The approval the board now decides.
    approval: ApprovalDto,
}

/// Update a work block. `status` moves go through §3.1; an agent asking to activate or ship
/// gets 202 with the approval it requested.
#[utoipa::path(patch, path = "/work-blocks/{id}", tag = "work-blocks", params(("id" = String, Path)), request_body = PatchWorkBlockBody,
    responses((status = 200, body = WorkBlockDto), (status = 202, body = ApprovalRequested), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422)))]
async fn update(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(b): Json<PatchWorkBlockBody>,
) -> Result<Response, ApiError> {
    let id = block_id(&id)?;
    let expected = if_match.or(b.version.map(Version));
    let fields = WorkBlockFields {
        title: b
            .title
            .as_deref()
            .map(Title::parse)
            .transpose()
            .map_err(invalid)?,
        goal: b
            .goal
            .as_deref()
            .map(|g| Markdown::parse_field("goal", g))
            .transpose()
            .map_err(invalid)?,
        acceptance_criteria: b
            .acceptance_criteria
            .as_deref()
            .map(|g| Markdown::parse_field("acceptance_criteria", g))
            .transpose()
            .map_err(invalid)?,
        north_star_metric: b.north_star_metric,
        north_star_target: b.north_star_target,
        apex_block_id: match b.apex_block_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(a)) => Some(Some(apex_field(&a)?)),
        },
    };
    if let Some(target) = b.status.as_deref() {
        if !fields.is_empty() || b.north_star_current.is_some() {
            return Err(ApiError::invalid(
                "status",
                "status cannot be combined with other changes; send it alone",
            ));
        }
        let to = WorkBlockStatus::parse(target).map_err(invalid)?;
        let block = mesa.work_block(id).await?;
        let command = match command_for_target(block.status, to) {
            Some(BlockCommandKind::Activate) => BlockCommand::Activate,
            Some(BlockCommandKind::Reopen) => BlockCommand::Reopen,
            Some(BlockCommandKind::MarkReady) => BlockCommand::MarkReady,
            Some(BlockCommandKind::Ship) => BlockCommand::Ship,
            Some(BlockCommandKind::Cancel) => BlockCommand::Cancel,
            _ => {
                return Err(
                    mesa_core::CoreError::from(WorkflowError::IllegalBlockTransition {
                        from: block.status,
                        command: BlockCommandKind::Propose,
                        allowed: mesa_core::workflow::work_block::allowed_block_commands(
                            block.status,
                        ),
                    })
                    .into(),
                );
            }
        };
        let before = block.status;
        let outcome = mesa
            .work_block_command(&p.actor, id, command, expected)
            .await?;
        return match outcome.approval {
            Some(a) if outcome.block.status == before => {
                let body = ApprovalRequested {
                    approval: approval_json(&mesa, &a).await?,
                };
                Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
            }
            _ => Ok(block_response(StatusCode::OK, &outcome.block)),
        };
    }
    if fields.is_empty() && b.north_star_current.is_none() {
        return Err(ApiError::invalid("body", "nothing to change"));
    }
    if let Some(v) = expected {
        let current = mesa.work_block(id).await?;
        if current.version != v {
            return Err(
                mesa_core::CoreError::from(mesa_core::store::StoreError::StaleVersion {
                    entity: "work_block",
                    id: id.to_string(),
                    expected: v,
                    actual: current.version,
                })
                .into(),
            );
        }
    }
    let mut block = None;
    if !fields.is_empty() {
        block = Some(
            mesa.update_work_block(&p.actor, id, fields, expected)
                .await?,
        );
    }
    if let Some(value) = b.north_star_current {
        block = Some(mesa.record_north_star(&p.actor, id, value).await?);
    }
    let block = match block {
        Some(b) => b,
        None => mesa.work_block(id).await?,
    };
    Ok(block_response(StatusCode::OK, &block))
}

/// `POST /work-blocks/{id}/issues` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddIssueBody {
    /// The issue's key.
    issue_key: String,
}

/// Add an issue to a proposed or active block; an issue in another block is 409.
#[utoipa::path(post, path = "/work-blocks/{id}/issues", tag = "work-blocks", params(("id" = String, Path)), request_body = AddIssueBody,
    responses((status = 200, body = WorkBlockDto), (status = 404), (status = 409), (status = 422)))]
async fn add_issue(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Json(b): Json<AddIssueBody>,
) -> Result<Response, ApiError> {
    let id = block_id(&id)?;
    let key = IssueKey::parse_field("issue_key", &b.issue_key).map_err(invalid)?;
    let outcome = mesa.add_issue_to_block(&p.actor, id, &key).await?;
    Ok(block_response(StatusCode::OK, &outcome.block))
}

/// Take an issue out of a block.
#[utoipa::path(delete, path = "/work-blocks/{id}/issues/{key}", tag = "work-blocks", params(("id" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = WorkBlockDto), (status = 404), (status = 409), (status = 422)))]
async fn remove_issue(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = block_id(&id)?;
    let key = IssueKey::parse_field("key", &key).map_err(invalid)?;
    let outcome = mesa.remove_issue_from_block(&p.actor, id, &key).await?;
    Ok(block_response(StatusCode::OK, &outcome.block))
}

/// An apex block (SPEC §1 ApexBlock).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApexBlockDto {
    /// UUID.
    id: String,
    /// Title.
    title: String,
    /// Markdown.
    goal: String,
    /// active or archived.
    status: String,
    /// Creation time.
    created_at: String,
    /// Last update.
    updated_at: String,
    /// Optimistic-concurrency version (also the `ETag`).
    version: i64,
}

impl From<&ApexBlock> for ApexBlockDto {
    fn from(a: &ApexBlock) -> Self {
        ApexBlockDto {
            id: a.id.to_string(),
            title: a.title.to_string(),
            goal: a.goal.to_string(),
            status: a.status.as_str().to_owned(),
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
            version: a.version.0,
        }
    }
}

fn apex_response(status: StatusCode, a: &ApexBlock) -> Response {
    (status, etag(a.version), axum::Json(ApexBlockDto::from(a))).into_response()
}

/// Pagination query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// List apex blocks, newest first.
#[utoipa::path(get, path = "/apex-blocks", tag = "apex-blocks", params(PageQuery),
    responses((status = 200, body = Page<ApexBlockDto>), (status = 401)))]
async fn list_apex(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let items = mesa
        .apex_blocks()
        .await?
        .iter()
        .map(ApexBlockDto::from)
        .collect();
    Ok(axum::Json(page_of(items, q.limit, q.cursor.as_deref())?).into_response())
}

/// Read an apex block.
#[utoipa::path(get, path = "/apex-blocks/{id}", tag = "apex-blocks", params(("id" = String, Path)),
    responses((status = 200, body = ApexBlockDto), (status = 401), (status = 404), (status = 422)))]
async fn show_apex(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let a = mesa.apex_block(apex_id(&id)?).await?;
    Ok(apex_response(StatusCode::OK, &a))
}

/// `POST /apex-blocks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApexBody {
    /// 1..200 characters.
    title: String,
    /// Markdown.
    goal: Option<String>,
}

/// Create an apex block (board only).
#[utoipa::path(post, path = "/apex-blocks", tag = "apex-blocks", request_body = CreateApexBody,
    responses((status = 201, body = ApexBlockDto), (status = 401), (status = 403), (status = 422)))]
async fn create_apex(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateApexBody>,
) -> Result<Response, ApiError> {
    let title = Title::parse(&b.title).map_err(invalid)?;
    let goal = Markdown::parse_field("goal", b.goal.as_deref().unwrap_or("")).map_err(invalid)?;
    let a = mesa.create_apex_block(&p.actor, title, goal).await?;
    Ok(apex_response(StatusCode::CREATED, &a))
}

/// `PATCH /apex-blocks/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchApexBody {
    title: Option<String>,
    goal: Option<String>,
    /// active or archived.
    status: Option<String>,
    /// The version the change was made on (like `If-Match`).
    version: Option<i64>,
}

/// Update or archive an apex block (board only).
#[utoipa::path(patch, path = "/apex-blocks/{id}", tag = "apex-blocks", params(("id" = String, Path)), request_body = PatchApexBody,
    responses((status = 200, body = ApexBlockDto), (status = 403), (status = 404), (status = 412), (status = 422)))]
async fn update_apex(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(b): Json<PatchApexBody>,
) -> Result<Response, ApiError> {
    let id = apex_id(&id)?;
    let title = b
        .title
        .as_deref()
        .map(Title::parse)
        .transpose()
        .map_err(invalid)?;
    let goal = b
        .goal
        .as_deref()
        .map(|g| Markdown::parse_field("goal", g))
        .transpose()
        .map_err(invalid)?;
    let status = b
        .status
        .as_deref()
        .map(ApexStatus::parse)
        .transpose()
        .map_err(invalid)?;
    let a = mesa
        .update_apex_block(
            &p.actor,
            id,
            title,
            goal,
            status,
            if_match.or(b.version.map(Version)),
        )
        .await?;
    Ok(apex_response(StatusCode::OK, &a))
}

/// Unaligned work and spend.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DriftDto {
    /// Non-terminal issues that do not roll up to an active apex block.
    issues: u64,
    /// Unaligned spend of the last 30 days, USD.
    cost_usd: f64,
}

/// `GET /strategy` (SPEC §3.2). With nothing to measure an alignment is 1.0 and drift 0.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StrategyDto {
    /// Share (0..1) of non-terminal issues in a block linked to an active apex block.
    work_alignment: f64,
    /// Share (0..1) of the last 30 days' cost that rolls up to an active apex block.
    spend_alignment: f64,
    /// What does not.
    drift: DriftDto,
}

/// Alignment of work and spend with the active apex blocks.
#[utoipa::path(get, path = "/strategy", tag = "strategy",
    responses((status = 200, body = StrategyDto), (status = 401)))]
async fn strategy(State(mesa): State<Mesa>, Auth(_p): Auth) -> Result<Response, ApiError> {
    let s = mesa.strategy().await?;
    Ok(axum::Json(StrategyDto {
        work_alignment: s.work_alignment,
        spend_alignment: s.spend_alignment,
        drift: DriftDto {
            issues: s.drift_issues.len() as u64,
            cost_usd: s.drift_cost.as_usd(),
        },
    })
    .into_response())
}
