//! Operations: `/activity`, `/runs` (read), and the board's levers `/settings`, `/scheduler`,
//! `/crons`, `/directives`, `/audits` (SPEC §9.3).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{ActivityEvent, Audit, Cron, Directive, Run};
use mesa_core::domain::{
    AgentId, Body, CronId, DirectiveId, IssueKey, RunId, RunStatus, ValidationError, Version,
};
use mesa_core::store::{ActivityFilter, PageRequest, RunFilter};
use mesa_core::{CronPatch, Mesa, NewCron, Principal, Settings};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activity))
        .routes(routes!(list_runs))
        .routes(routes!(show_run))
        .routes(routes!(get_settings, patch_settings))
        .routes(routes!(scheduler_status))
        .routes(routes!(scheduler_pause))
        .routes(routes!(scheduler_resume))
        .routes(routes!(list_crons, create_cron))
        .routes(routes!(update_cron, delete_cron))
        .routes(routes!(list_directives, create_directive))
        .routes(routes!(update_directive, delete_directive))
        .routes(routes!(list_audits))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

/// Refuses anyone but the board (reads the core leaves open to every caller).
fn board_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.is_board() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only the board may {what}")))
    }
}

fn with_etag(status: StatusCode, version: Version, body: impl Serialize) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", version.0)) {
        headers.insert(header::ETAG, v);
    }
    (status, headers, axum::Json(body)).into_response()
}

pub(crate) async fn slugs(mesa: &Mesa) -> Result<HashMap<AgentId, String>, ApiError> {
    Ok(mesa
        .agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.slug.to_string()))
        .collect())
}

// ---- activity ----

/// An audit-log row (SPEC §1 ActivityEvent).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivityDto {
    /// Monotonic position.
    pub(crate) id: i64,
    /// When.
    pub(crate) at: String,
    /// Actor string.
    pub(crate) actor: String,
    /// What happened, e.g. `issue.created`.
    pub(crate) action: String,
    /// `issue`, `agent`, `wiki`...
    pub(crate) entity_type: String,
    /// Issue key or entity id.
    pub(crate) entity_id: String,
    /// One human line.
    pub(crate) summary: String,
    /// Details.
    #[schema(value_type = Object)]
    pub(crate) data: serde_json::Value,
    /// Hash of the previous row.
    pub(crate) prev_hash: String,
    /// This row's hash.
    pub(crate) hash: String,
}

impl From<&ActivityEvent> for ActivityDto {
    fn from(a: &ActivityEvent) -> Self {
        ActivityDto {
            id: a.id.0,
            at: time(a.at),
            actor: a.actor.clone(),
            action: a.action.clone(),
            entity_type: a.entity_type.clone(),
            entity_id: a.entity_id.clone(),
            summary: a.summary.clone(),
            data: a.data.clone(),
            prev_hash: a.prev_hash.clone(),
            hash: a.hash.clone(),
        }
    }
}

/// `GET /activity` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivityQuery {
    /// `type:id`, e.g. `issue:MESA-12`.
    entity: Option<String>,
    /// An agent slug, `board` (every board token), `board:<name>`, `system`...
    actor: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/activity", tag = "ops", params(ActivityQuery),
    responses((status = 200, body = Page<ActivityDto>), (status = 401), (status = 422)))]
async fn activity(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, ApiError> {
    let mut filter = ActivityFilter::default();
    if let Some(e) = q.entity.as_deref() {
        let (kind, id) = e
            .split_once(':')
            .filter(|(k, i)| !k.is_empty() && !i.is_empty())
            .ok_or_else(|| {
                ApiError::invalid("entity", "entity must be type:id, e.g. issue:MESA-12")
            })?;
        filter.entity = Some((kind.to_owned(), id.to_owned()));
    }
    filter.actor = q.actor.filter(|a| !a.is_empty());
    let page = mesa
        .activity_log(&filter, &PageRequest::new(q.limit, q.cursor))
        .await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(ActivityDto::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

// ---- runs ----

/// A run (SPEC §1 Run). Lists leave out `prompt`, `stdout` and `diff`; agents see `stdout` only
/// of their own runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDto {
    /// UUID.
    pub(crate) id: String,
    /// The agent.
    pub(crate) agent_id: String,
    /// The agent's slug.
    pub(crate) agent_slug: Option<String>,
    /// The issue.
    pub(crate) issue_key: Option<String>,
    /// task, review, heartbeat, cron, audit.
    pub(crate) mode: String,
    /// queued, running, succeeded, failed, cancelled, timed_out.
    pub(crate) status: String,
    /// What woke it first.
    pub(crate) trigger: Option<String>,
    /// Every wake-up merged into it.
    pub(crate) triggers: Vec<String>,
    /// Runner.
    pub(crate) runner: String,
    /// Model.
    pub(crate) model: String,
    /// The prompt as sent.
    pub(crate) prompt: Option<String>,
    /// Worktree.
    pub(crate) worktree_path: Option<String>,
    /// Branch.
    pub(crate) branch: Option<String>,
    /// Base commit.
    pub(crate) base_commit: Option<String>,
    /// Exit code.
    pub(crate) exit_code: Option<i64>,
    /// Captured output (own runs only for agents).
    pub(crate) stdout: Option<String>,
    /// Diff of the worktree.
    pub(crate) diff: Option<String>,
    /// Diff summary.
    pub(crate) diff_stat: Option<String>,
    /// Input tokens.
    pub(crate) input_tokens: i64,
    /// Output tokens.
    pub(crate) output_tokens: i64,
    /// Cache reads.
    pub(crate) cache_read_tokens: i64,
    /// Cache writes.
    pub(crate) cache_write_tokens: i64,
    /// Money spent.
    pub(crate) cost_usd: f64,
    /// Money reserved while in flight.
    pub(crate) cost_reserved_usd: f64,
    /// Turns taken.
    pub(crate) num_turns: Option<i64>,
    /// Why it failed.
    pub(crate) failure_reason: Option<String>,
    /// The node that runs it.
    pub(crate) node_id: Option<String>,
    /// When queued.
    pub(crate) queued_at: String,
    /// When started.
    pub(crate) started_at: Option<String>,
    /// When finished.
    pub(crate) finished_at: Option<String>,
}

impl RunDto {
    pub(crate) fn new(r: &Run, slugs: &HashMap<AgentId, String>) -> Self {
        RunDto {
            id: r.id.to_string(),
            agent_id: r.agent_id.to_string(),
            agent_slug: slugs.get(&r.agent_id).cloned(),
            issue_key: r.issue_key.as_ref().map(ToString::to_string),
            mode: r.mode.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            trigger: r.triggers.first().map(|t| t.as_str().to_owned()),
            triggers: r.triggers.iter().map(|t| t.as_str().to_owned()).collect(),
            runner: r.runner.as_str().to_owned(),
            model: r.model.clone(),
            prompt: r.prompt.clone(),
            worktree_path: r.worktree_path.clone(),
            branch: r.branch.clone(),
            base_commit: r.base_commit.clone(),
            exit_code: r.exit_code,
            stdout: r.stdout.clone(),
            diff: r.diff.clone(),
            diff_stat: r.diff_stat.clone(),
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            cache_read_tokens: r.usage.cache_read_tokens,
            cache_write_tokens: r.usage.cache_write_tokens,
            cost_usd: r.cost_usd.as_usd(),
            cost_reserved_usd: r.cost_reserved_usd.as_usd(),
            num_turns: r.num_turns,
            failure_reason: r.failure_reason.clone(),
            node_id: r.node_id.clone(),
            queued_at: time(r.queued_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
        }
    }
}

/// `GET /runs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunQuery {
    /// Agent slug or id.
    agent: Option<String>,
    /// Issue key.
    issue: Option<String>,
    /// Comma-separated statuses.
    status: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// Runs, newest first (without prompt, output and diff).
#[utoipa::path(get, path = "/runs", tag = "ops", params(RunQuery),
    responses((status = 200, body = Page<RunDto>), (status = 401), (status = 422)))]
async fn list_runs(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<RunQuery>,
) -> Result<Response, ApiError> {
    let mut filter = RunFilter::default();
    if let Some(a) = q.agent.as_deref() {
        filter.agent = Some(mesa.resolve_agent("agent", a).await?.id);
    }
    if let Some(k) = q.issue.as_deref() {
        filter.issue = Some(IssueKey::parse_field("issue", k).map_err(invalid)?);
    }
    if let Some(statuses) = q.status.as_deref().filter(|s| !s.is_empty()) {
        for s in statuses.split(',') {
            filter
                .statuses
                .push(RunStatus::parse_field("status", s).map_err(invalid)?);
        }
    }
    let page = mesa
        .runs(&filter, &PageRequest::new(q.limit, q.cursor))
        .await?;
    let slugs = slugs(&mesa).await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(|r| RunDto::new(r, &slugs)).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// One run with its prompt and diff; the output only for the caller's own runs (board: all).
#[utoipa::path(get, path = "/runs/{id}", tag = "ops", params(("id" = String, Path)),
    responses((status = 200, body = RunDto), (status = 401), (status = 404), (status = 422)))]
async fn show_run(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = RunId::parse(&id).map_err(|e| ApiError::invalid("id", e.message))?;
    let run = mesa.run_for(&p.actor, id).await?;
    Ok(axum::Json(RunDto::new(&run, &slugs(&mesa).await?)).into_response())
}

// ---- settings ----

/// A setting; secret values are never returned.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingDto {
    /// Key.
    pub(crate) key: String,
    /// Value as text; null for secrets.
    pub(crate) value: Option<String>,
    /// Write-only.
    pub(crate) secret: bool,
    /// Last update.
    pub(crate) updated_at: String,
}

fn settings_page(settings: &Settings) -> Page<SettingDto> {
    Page {
        items: settings
            .all()
            .map(|s| SettingDto {
                key: s.key.clone(),
                value: (!s.secret).then(|| s.value.clone()),
                secret: s.secret,
                updated_at: time(s.updated_at),
            })
            .collect(),
        next_cursor: None,
    }
}

/// Every setting (board only); secret values are null with `"secret": true`.
#[utoipa::path(get, path = "/settings", tag = "ops",
    responses((status = 200, body = Page<SettingDto>), (status = 401), (status = 403)))]
async fn get_settings(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "read settings")?;
    Ok(axum::Json(settings_page(&mesa.settings().await)).into_response())
}

/// Set settings (board only): `{key: value, ...}` with string, boolean or number values,
/// validated and stored in one transaction. An unknown feature flag is 422 naming the key.
#[utoipa::path(patch, path = "/settings", tag = "ops", request_body(content = Object),
    responses((status = 200, body = Page<SettingDto>), (status = 401), (status = 403), (status = 422)))]
async fn patch_settings(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    board_only(&p, "change settings")?;
    if b.is_empty() {
        return Err(ApiError::invalid("body", "give at least one setting"));
    }
    let mut values = Vec::with_capacity(b.len());
    for (key, value) in b {
        if key == mesa_core::SCHEDULER_PAUSED {
            return Err(ApiError::invalid(
                &key,
                "pause and resume the scheduler with POST /scheduler/pause and /scheduler/resume",
            ));
        }
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(v) => v.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(ApiError::invalid(
                    &key,
                    format!("{key} must be a string, a boolean or a number"),
                ));
            }
        };
        values.push((key, text));
    }
    let settings = mesa.put_settings(&p.actor, &values).await?;
    Ok(axum::Json(settings_page(&settings)).into_response())
}

// ---- scheduler ----

/// The scheduler's switch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SchedulerDto {
    /// True while the board has paused dispatch.
    pub(crate) paused: bool,
}

/// Whether the scheduler is paused (board only).
#[utoipa::path(get, path = "/scheduler", tag = "ops",
    responses((status = 200, body = SchedulerDto), (status = 401), (status = 403)))]
async fn scheduler_status(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "read the scheduler state")?;
    let paused = mesa.scheduler_paused().await;
    Ok(axum::Json(SchedulerDto { paused }).into_response())
}

/// Pause the scheduler (board only); nothing new is dispatched until it is resumed.
#[utoipa::path(post, path = "/scheduler/pause", tag = "ops",
    responses((status = 200, body = SchedulerDto), (status = 401), (status = 403)))]
async fn scheduler_pause(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    let paused = mesa.set_scheduler_paused(&p.actor, true).await?;
    Ok(axum::Json(SchedulerDto { paused }).into_response())
}

/// Resume the scheduler (board only).
#[utoipa::path(post, path = "/scheduler/resume", tag = "ops",
    responses((status = 200, body = SchedulerDto), (status = 401), (status = 403)))]
async fn scheduler_resume(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    let paused = mesa.set_scheduler_paused(&p.actor, false).await?;
    Ok(axum::Json(SchedulerDto { paused }).into_response())
}

// ---- crons ----

/// A cron (SPEC §1 Cron).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CronDto {
    /// UUID.
    pub(crate) id: String,
    /// The agent.
    pub(crate) agent_id: String,
    /// The agent's slug.
    pub(crate) agent_slug: Option<String>,
    /// The prompt.
    pub(crate) task: String,
    /// 5-field cron expression or interval.
    pub(crate) schedule: String,
    /// Fires when true.
    pub(crate) active: bool,
    /// Last firing.
    pub(crate) last_run_at: Option<String>,
    /// Next firing (intervals; the scheduler computes it for cron expressions).
    pub(crate) next_run_at: Option<String>,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version.
    pub(crate) version: i64,
}

impl CronDto {
    fn new(c: &Cron, slugs: &HashMap<AgentId, String>) -> Self {
        CronDto {
            id: c.id.to_string(),
            agent_id: c.agent_id.to_string(),
            agent_slug: slugs.get(&c.agent_id).cloned(),
            task: c.task.clone(),
            schedule: c.schedule.clone(),
            active: c.active,
            last_run_at: c.last_run_at.map(time),
            next_run_at: c.next_run_at.map(time),
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
            version: c.version.0,
        }
    }
}

fn cron_id(text: &str) -> Result<CronId, ApiError> {
    CronId::parse(text).map_err(|e| ApiError::invalid("id", e.message))
}

/// Crons (board only).
#[utoipa::path(get, path = "/crons", tag = "ops",
    responses((status = 200, body = Page<CronDto>), (status = 401), (status = 403)))]
async fn list_crons(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "read crons")?;
    let slugs = slugs(&mesa).await?;
    Ok(axum::Json(Page {
        items: mesa
            .crons()
            .await?
            .iter()
            .map(|c| CronDto::new(c, &slugs))
            .collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `POST /crons` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CronBody {
    /// Agent slug or id (alias `agent_slug`).
    #[serde(alias = "agent_slug")]
    agent: String,
    /// The prompt.
    task: String,
    /// A 5-field cron expression or an interval (`20m`, `1h`, `1d`).
    schedule: String,
    /// Default true.
    active: Option<bool>,
}

/// Schedule a task for an agent (board only). A malformed schedule is 422.
#[utoipa::path(post, path = "/crons", tag = "ops", request_body = CronBody,
    responses((status = 201, body = CronDto), (status = 401), (status = 403), (status = 422)))]
async fn create_cron(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CronBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "schedule crons")?;
    let new = NewCron {
        agent: b.agent,
        task: Body::parse_field("task", &b.task).map_err(invalid)?,
        schedule: b.schedule,
        active: b.active.unwrap_or(true),
    };
    let cron = mesa.create_cron(&p.actor, new).await?;
    let dto = CronDto::new(&cron, &slugs(&mesa).await?);
    Ok(with_etag(StatusCode::CREATED, cron.version, dto))
}

/// `PATCH /crons/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CronPatchBody {
    /// Agent slug or id (alias `agent_slug`).
    #[serde(alias = "agent_slug")]
    agent: Option<String>,
    /// The prompt.
    task: Option<String>,
    /// New schedule.
    schedule: Option<String>,
    /// On or off.
    active: Option<bool>,
    /// The version the change was made on (like `If-Match`).
    version: Option<i64>,
}

/// Change a cron (board only).
#[utoipa::path(patch, path = "/crons/{id}", tag = "ops", params(("id" = String, Path)), request_body = CronPatchBody,
    responses((status = 200, body = CronDto), (status = 401), (status = 403), (status = 404), (status = 412), (status = 422)))]
async fn update_cron(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(b): Json<CronPatchBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change crons")?;
    let id = cron_id(&id)?;
    let patch = CronPatch {
        agent: b.agent,
        task: b
            .task
            .as_deref()
            .map(|t| Body::parse_field("task", t))
            .transpose()
            .map_err(invalid)?,
        schedule: b.schedule,
        active: b.active,
        expected: if_match.or(b.version.map(Version)),
    };
    let cron = mesa.update_cron(&p.actor, id, patch).await?;
    let dto = CronDto::new(&cron, &slugs(&mesa).await?);
    Ok(with_etag(StatusCode::OK, cron.version, dto))
}

/// Delete a cron (board only).
#[utoipa::path(delete, path = "/crons/{id}", tag = "ops", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_cron(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "delete crons")?;
    mesa.delete_cron(&p.actor, cron_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- directives ----

/// A directive (SPEC §1 Directive).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DirectiveDto {
    /// UUID.
    pub(crate) id: String,
    /// The rule.
    pub(crate) text: String,
    /// Given to prompts when true.
    pub(crate) active: bool,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version.
    pub(crate) version: i64,
}

impl From<&Directive> for DirectiveDto {
    fn from(d: &Directive) -> Self {
        DirectiveDto {
            id: d.id.to_string(),
            text: d.text.clone(),
            active: d.active,
            created_at: time(d.created_at),
            updated_at: time(d.updated_at),
            version: d.version.0,
        }
    }
}

fn directive_id(text: &str) -> Result<DirectiveId, ApiError> {
    DirectiveId::parse(text).map_err(|e| ApiError::invalid("id", e.message))
}

/// Directives, oldest first (board only).
#[utoipa::path(get, path = "/directives", tag = "ops",
    responses((status = 200, body = Page<DirectiveDto>), (status = 401), (status = 403)))]
async fn list_directives(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "manage directives")?;
    Ok(axum::Json(Page {
        items: mesa
            .directives()
            .await?
            .iter()
            .map(DirectiveDto::from)
            .collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `POST /directives` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectiveBody {
    /// The rule (1..2000 characters).
    text: String,
    /// Default true.
    active: Option<bool>,
}

/// Add a directive (board only).
#[utoipa::path(post, path = "/directives", tag = "ops", request_body = DirectiveBody,
    responses((status = 201, body = DirectiveDto), (status = 401), (status = 403), (status = 422)))]
async fn create_directive(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<DirectiveBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "give directives")?;
    let d = mesa
        .create_directive(&p.actor, &b.text, b.active.unwrap_or(true))
        .await?;
    Ok(with_etag(
        StatusCode::CREATED,
        d.version,
        DirectiveDto::from(&d),
    ))
}

/// `PATCH /directives/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectivePatchBody {
    /// New text.
    text: Option<String>,
    /// On or off.
    active: Option<bool>,
    /// The version the change was made on (like `If-Match`).
    version: Option<i64>,
}

/// Change a directive (board only).
#[utoipa::path(patch, path = "/directives/{id}", tag = "ops", params(("id" = String, Path)), request_body = DirectivePatchBody,
    responses((status = 200, body = DirectiveDto), (status = 401), (status = 403), (status = 404), (status = 412), (status = 422)))]
async fn update_directive(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(b): Json<DirectivePatchBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change directives")?;
    let d = mesa
        .update_directive(
            &p.actor,
            directive_id(&id)?,
            b.text.as_deref(),
            b.active,
            if_match.or(b.version.map(Version)),
        )
        .await?;
    Ok(with_etag(StatusCode::OK, d.version, DirectiveDto::from(&d)))
}

/// Remove a directive (board only).
#[utoipa::path(delete, path = "/directives/{id}", tag = "ops", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_directive(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "remove directives")?;
    mesa.delete_directive(&p.actor, directive_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- audits ----

/// An auditor run's record (SPEC §1 Audit).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditDto {
    /// UUID.
    pub(crate) id: String,
    /// The run.
    pub(crate) run_id: Option<String>,
    /// What it looked at.
    pub(crate) focus: Option<String>,
    /// queued, running, finished, failed.
    pub(crate) status: String,
    /// Markdown summary: the auditor's final message and what its run proposed.
    pub(crate) findings: Option<String>,
    /// The figures Mesa computed for the auditor's prompt (Markdown), once its run started.
    pub(crate) figures: Option<String>,
    /// How many days back the figures look.
    pub(crate) window_days: u32,
    /// Patches proposed.
    pub(crate) patches_proposed: i64,
    /// Issues created.
    pub(crate) issues_created: i64,
    /// Creation time.
    pub(crate) created_at: String,
    /// When it finished.
    pub(crate) finished_at: Option<String>,
}

impl From<&Audit> for AuditDto {
    fn from(a: &Audit) -> Self {
        AuditDto {
            id: a.id.to_string(),
            run_id: a.run_id.map(|r| r.to_string()),
            focus: a.focus.clone(),
            status: a.status.as_str().to_owned(),
            findings: a.findings.clone(),
            figures: a.figures.clone(),
            window_days: a.window_days,
            patches_proposed: a.patches_proposed,
            issues_created: a.issues_created,
            created_at: time(a.created_at),
            finished_at: a.finished_at.map(time),
        }
    }
}

/// Audits, newest first (board only).
#[utoipa::path(get, path = "/audits", tag = "ops",
    responses((status = 200, body = Page<AuditDto>), (status = 401), (status = 403)))]
async fn list_audits(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "read audits")?;
    Ok(axum::Json(Page {
        items: mesa.audits().await?.iter().map(AuditDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}
