//! `/agents`: the roster, one agent with its budget, and the board's agent administration
//! (create, reconfigure, deactivate, revisions, rollback).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{Agent, AgentConfig, AgentRevision};
use mesa_core::domain::{AgentId, Name, RunnerKind, Slug, ValidationError, Version, WorkingDir};
use mesa_core::{AgentBudget, CoreError, Mesa, NewAgent, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(me))
        .routes(routes!(show, update, deactivate))
        .routes(routes!(revisions))
        .routes(routes!(rollback))
}

pub(crate) fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

/// Refuses anyone but the board before anything is read (the core refuses again on write).
pub(crate) fn board_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.is_board() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only the board may {what}")))
    }
}

/// The agent a path names (slug or id); anything that names no agent is 404.
pub(crate) async fn agent_at(mesa: &Mesa, slug_or_id: &str) -> Result<Agent, ApiError> {
    match mesa.find_agent(slug_or_id).await {
        Ok(a) => Ok(a),
        Err(CoreError::Invalid(_)) => Err(ApiError::not_found(format!("no agent {slug_or_id:?}"))),
        Err(e) => Err(e.into()),
    }
}

/// An agent's budget today (money in dollars).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BudgetDto {
    /// Tokens per budget day; 0 = unlimited.
    pub(crate) daily_token_limit: i64,
    /// Dollars per budget day; 0 = unlimited.
    pub(crate) daily_cost_limit_usd: f64,
    /// Tokens used since the start of the budget day.
    pub(crate) tokens_today: i64,
    /// Dollars spent since the start of the budget day.
    pub(crate) spent_today_usd: f64,
    /// Dollars held by runs in flight.
    pub(crate) reserved_usd: f64,
    /// Set by budget or quota pauses.
    pub(crate) paused_until: Option<String>,
}

impl From<&AgentBudget> for BudgetDto {
    fn from(b: &AgentBudget) -> Self {
        BudgetDto {
            daily_token_limit: b.daily_token_limit,
            daily_cost_limit_usd: b.daily_cost_limit_usd.as_usd(),
            tokens_today: b.tokens_today,
            spent_today_usd: b.spent_today_usd.as_usd(),
            reserved_usd: b.reserved_usd.as_usd(),
            paused_until: b.paused_until.map(time),
        }
    }
}

/// An agent (SPEC §1) with manager and reviewer by slug and its budget today.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentDto {
    /// UUID.
    pub(crate) id: String,
    /// Unique slug.
    pub(crate) slug: String,
    /// Display name.
    pub(crate) name: String,
    /// Archetype slug.
    pub(crate) archetype: String,
    /// Runner (SPEC §7.2).
    pub(crate) runner: String,
    /// Model; empty = the runner's default.
    pub(crate) model: String,
    /// Absolute project directory.
    pub(crate) working_dir: String,
    /// Turn limit per run.
    pub(crate) max_turns: u32,
    /// Wall-clock limit per run, seconds.
    pub(crate) timeout_sec: u32,
    /// Whether heartbeats are on.
    pub(crate) heartbeat_enabled: bool,
    /// Heartbeat period, seconds.
    pub(crate) heartbeat_interval_sec: u32,
    /// Manager slug.
    pub(crate) reports_to: Option<String>,
    /// Manager id.
    pub(crate) reports_to_id: Option<String>,
    /// Reviewer slug.
    pub(crate) reviewer: Option<String>,
    /// Reviewer id.
    pub(crate) reviewer_id: Option<String>,
    /// Inactive agents are never dispatched.
    pub(crate) active: bool,
    /// Whether the runner may drive a browser.
    pub(crate) chrome_enabled: bool,
    /// Tools the runner must refuse.
    pub(crate) disallowed_tools: Vec<String>,
    /// Tools the runner may use; empty = default.
    pub(crate) allowed_tools: Vec<String>,
    /// Concurrent runs allowed.
    pub(crate) max_concurrent_runs: u32,
    /// Server environment variable holding the provider key.
    pub(crate) api_key_env: Option<String>,
    /// Extra CLI arguments.
    pub(crate) runner_args: Vec<String>,
    /// Extra environment for the runner (values shown to the board only).
    pub(crate) env: BTreeMap<String, String>,
    /// argv for the `command` runner.
    pub(crate) command: Vec<String>,
    /// Endpoint for the `openai_compat` runner.
    pub(crate) base_url: Option<String>,
    /// Set by budget, quota and loop-guard pauses.
    pub(crate) paused_until: Option<String>,
    /// Why the agent is paused.
    pub(crate) pause_reason: Option<String>,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version (also the `ETag`).
    pub(crate) version: i64,
    /// Budget today.
    pub(crate) budget: BudgetDto,
}

/// One roster line.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentSummaryDto {
    /// UUID.
    pub(crate) id: String,
    /// Unique slug.
    pub(crate) slug: String,
    /// Display name.
    pub(crate) name: String,
    /// Archetype slug.
    pub(crate) archetype: String,
    /// Runner.
    pub(crate) runner: String,
    /// Model.
    pub(crate) model: String,
    /// Manager slug.
    pub(crate) reports_to: Option<String>,
    /// Reviewer slug.
    pub(crate) reviewer: Option<String>,
    /// Whether it may be dispatched.
    pub(crate) active: bool,
    /// `active`, `paused` or `inactive`.
    pub(crate) status: String,
}

fn slug_of(roster: &[Agent], id: Option<AgentId>) -> Option<String> {
    id.and_then(|id| roster.iter().find(|a| a.id == id))
        .map(|a| a.slug.to_string())
}

/// Shown instead of `env` values to agents: the board may have put provider keys there.
const REDACTED: &str = "[redacted]";

/// The full agent object as `GET /agents/{slug}` shows it; `env` values only for the board.
pub(crate) async fn agent_dto(
    mesa: &Mesa,
    viewer: &Principal,
    agent: &Agent,
) -> Result<AgentDto, ApiError> {
    let roster = mesa.agents().await?;
    let budget = mesa.agent_budget(agent).await?;
    let c = &agent.config;
    Ok(AgentDto {
        id: agent.id.to_string(),
        slug: agent.slug.to_string(),
        name: c.name.to_string(),
        archetype: c.archetype.to_string(),
        runner: c.runner.as_str().to_owned(),
        model: c.model.clone(),
        working_dir: c.working_dir.as_str().to_owned(),
        max_turns: c.max_turns,
        timeout_sec: c.timeout_sec,
        heartbeat_enabled: c.heartbeat_enabled,
        heartbeat_interval_sec: c.heartbeat_interval_sec,
        reports_to: slug_of(&roster, c.reports_to),
        reports_to_id: c.reports_to.map(|a| a.to_string()),
        reviewer: slug_of(&roster, c.reviewer_id),
        reviewer_id: c.reviewer_id.map(|a| a.to_string()),
        active: c.active,
        chrome_enabled: c.chrome_enabled,
        disallowed_tools: c.disallowed_tools.clone(),
        allowed_tools: c.allowed_tools.clone(),
        max_concurrent_runs: c.max_concurrent_runs,
        api_key_env: c.api_key_env.clone(),
        runner_args: c.runner_args.clone(),
        env: if viewer.is_board() {
            c.env.clone()
        } else {
            c.env
                .keys()
                .map(|k| (k.clone(), REDACTED.to_owned()))
                .collect()
        },
        command: c.command.clone(),
        base_url: c.base_url.clone(),
        paused_until: agent.paused_until.map(time),
        pause_reason: agent.paused_until.and_then(|_| agent.pause_reason.clone()),
        created_at: time(agent.created_at),
        updated_at: time(agent.updated_at),
        version: agent.version.0,
        budget: BudgetDto::from(&budget),
    })
}

/// The agent object with its `ETag`.
async fn agent_response(
    mesa: &Mesa,
    viewer: &Principal,
    status: StatusCode,
    agent: &Agent,
) -> Result<Response, ApiError> {
    let dto = agent_dto(mesa, viewer, agent).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", agent.version.0)) {
        headers.insert(header::ETAG, v);
    }
    Ok((status, headers, axum::Json(dto)).into_response())
}

/// The roster.
#[utoipa::path(get, path = "/agents", tag = "agents",
    responses((status = 200, body = Page<AgentSummaryDto>), (status = 401)))]
async fn list(State(mesa): State<Mesa>, Auth(_p): Auth) -> Result<Response, ApiError> {
    let now = mesa.now();
    let items = mesa
        .agent_views()
        .await?
        .into_iter()
        .map(|v| {
            let a = &v.agent;
            let status = if !a.config.active {
                "inactive"
            } else if a.paused_until.is_some_and(|t| t > now) {
                "paused"
            } else {
                "active"
            };
            AgentSummaryDto {
                id: a.id.to_string(),
                slug: a.slug.to_string(),
                name: a.config.name.to_string(),
                archetype: a.config.archetype.to_string(),
                runner: a.config.runner.as_str().to_owned(),
                model: a.config.model.clone(),
                reports_to: v.reports_to.as_ref().map(ToString::to_string),
                reviewer: v.reviewer.as_ref().map(ToString::to_string),
                active: a.config.active,
                status: status.to_owned(),
            }
        })
        .collect();
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    })
    .into_response())
}

/// The caller's own record with its budget today (agents only: a board token has no agent).
#[utoipa::path(get, path = "/agents/me", tag = "agents",
    responses((status = 200, body = AgentDto), (status = 401), (status = 403)))]
async fn me(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    let Some(agent) = &p.agent else {
        return Err(ApiError::forbidden(
            "a board token belongs to no agent; use GET /agents/{slug}",
        ));
    };
    // The principal's copy may predate a change; read the current row.
    let agent = mesa.find_agent(&agent.id.to_string()).await?;
    agent_response(&mesa, &p, StatusCode::OK, &agent).await
}

/// One agent by slug or id, with its budget today.
#[utoipa::path(get, path = "/agents/{slug}", tag = "agents", params(("slug" = String, Path)),
    responses((status = 200, body = AgentDto), (status = 401), (status = 404)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let agent = agent_at(&mesa, &slug).await?;
    agent_response(&mesa, &p, StatusCode::OK, &agent).await
}

/// `POST /agents` body: the slug and the configuration of SPEC §1.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AgentCreateBody)]
pub(crate) struct CreateBody {
    /// `[a-z0-9-]{1,64}`, unique.
    slug: String,
    /// Display name.
    name: String,
    /// Archetype slug.
    archetype: String,
    /// Runner (SPEC §7.2).
    runner: String,
    /// Model (default: the runner's).
    model: Option<String>,
    /// Existing absolute directory (default: the server's workspace).
    working_dir: Option<String>,
    /// Default 50.
    max_turns: Option<u32>,
    /// Default 1800.
    timeout_sec: Option<u32>,
    /// Default false.
    heartbeat_enabled: Option<bool>,
    /// Default 300.
    heartbeat_interval_sec: Option<u32>,
    /// Manager slug or id.
    reports_to: Option<String>,
    /// Reviewer slug or id (alias `reviewer_id`).
    #[serde(alias = "reviewer_id")]
    reviewer: Option<String>,
    /// Default true.
    active: Option<bool>,
    /// Default false.
    chrome_enabled: Option<bool>,
    /// Tools to refuse.
    disallowed_tools: Option<Vec<String>>,
    /// Tools allowed; empty = default.
    allowed_tools: Option<Vec<String>>,
    /// Default 1.
    max_concurrent_runs: Option<u32>,
    /// Server environment variable holding the provider key.
    api_key_env: Option<String>,
    /// Extra CLI arguments.
    runner_args: Option<Vec<String>>,
    /// Extra environment.
    env: Option<BTreeMap<String, String>>,
    /// argv for the `command` runner.
    command: Option<Vec<String>>,
    /// Endpoint for the `openai_compat` runner.
    base_url: Option<String>,
}

fn positive(field: &'static str, v: Option<u32>) -> Result<Option<u32>, ApiError> {
    match v {
        Some(0) => Err(ApiError::invalid(
            field,
            format!("{field} must be at least 1"),
        )),
        other => Ok(other),
    }
}

async fn reference(
    mesa: &Mesa,
    field: &'static str,
    r: Option<&str>,
) -> Result<Option<AgentId>, ApiError> {
    match r {
        None => Ok(None),
        Some(r) => Ok(Some(mesa.resolve_agent(field, r).await?.id)),
    }
}

/// Checks what the core does not: limits are positive, runner-specific fields are present.
fn check_runner(config: &AgentConfig) -> Result<(), ApiError> {
    if config.runner == RunnerKind::Command && config.command.is_empty() {
        return Err(ApiError::invalid(
            "command",
            "command (an argv list) is required for runner command",
        ));
    }
    Ok(())
}

/// Create an agent (board only).
#[utoipa::path(post, path = "/agents", tag = "agents", request_body = CreateBody,
    responses((status = 201, body = AgentDto), (status = 401), (status = 403), (status = 409), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "create agents")?;
    let slug = Slug::parse_field("slug", &b.slug).map_err(invalid)?;
    let working_dir = match &b.working_dir {
        Some(d) => WorkingDir::parse(d).map_err(invalid)?,
        None => mesa.config().workspace.clone(),
    };
    let mut config = AgentConfig::new(
        Name::parse_field("name", &b.name).map_err(invalid)?,
        Slug::parse_field("archetype", &b.archetype).map_err(invalid)?,
        RunnerKind::parse_field("runner", &b.runner).map_err(invalid)?,
        working_dir,
    );
    if let Some(m) = b.model {
        config.model = m;
    }
    if let Some(v) = positive("max_turns", b.max_turns)? {
        config.max_turns = v;
    }
    if let Some(v) = positive("timeout_sec", b.timeout_sec)? {
        config.timeout_sec = v;
    }
    if let Some(v) = b.heartbeat_enabled {
        config.heartbeat_enabled = v;
    }
    if let Some(v) = positive("heartbeat_interval_sec", b.heartbeat_interval_sec)? {
        config.heartbeat_interval_sec = v;
    }
    config.reports_to = reference(&mesa, "reports_to", b.reports_to.as_deref()).await?;
    config.reviewer_id = reference(&mesa, "reviewer", b.reviewer.as_deref()).await?;
    if let Some(v) = b.active {
        config.active = v;
    }
    if let Some(v) = b.chrome_enabled {
        config.chrome_enabled = v;
    }
    config.disallowed_tools = b.disallowed_tools.unwrap_or_default();
    config.allowed_tools = b.allowed_tools.unwrap_or_default();
    if let Some(v) = positive("max_concurrent_runs", b.max_concurrent_runs)? {
        config.max_concurrent_runs = v;
    }
    config.api_key_env = b.api_key_env;
    config.runner_args = b.runner_args.unwrap_or_default();
    config.env = b.env.unwrap_or_default();
    config.command = b.command.unwrap_or_default();
    config.base_url = b.base_url;
    check_runner(&config)?;
    if mesa.find_agent(slug.as_str()).await.is_ok() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("an agent with slug {slug} already exists"),
        )
        .with("field", "slug"));
    }
    let agent = mesa
        .create_agent(&p.actor, NewAgent { slug, config })
        .await?;
    agent_response(&mesa, &p, StatusCode::CREATED, &agent).await
}

/// `PATCH /agents/{slug}` body: any configuration field; the rest is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AgentPatchBody)]
pub(crate) struct PatchBody {
    name: Option<String>,
    archetype: Option<String>,
    runner: Option<String>,
    model: Option<String>,
    working_dir: Option<String>,
    max_turns: Option<u32>,
    timeout_sec: Option<u32>,
    heartbeat_enabled: Option<bool>,
    heartbeat_interval_sec: Option<u32>,
    /// Manager slug or id; null clears.
    #[serde(default, deserialize_with = "double_option")]
    reports_to: Option<Option<String>>,
    /// Reviewer slug or id; null clears (alias `reviewer_id`).
    #[serde(default, deserialize_with = "double_option", alias = "reviewer_id")]
    reviewer: Option<Option<String>>,
    active: Option<bool>,
    chrome_enabled: Option<bool>,
    disallowed_tools: Option<Vec<String>>,
    allowed_tools: Option<Vec<String>>,
    max_concurrent_runs: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    api_key_env: Option<Option<String>>,
    runner_args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    base_url: Option<Option<String>>,
    /// Why (stored on the revision).
    reason: Option<String>,
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

async fn merge(mesa: &Mesa, mut c: AgentConfig, b: PatchBody) -> Result<AgentConfig, ApiError> {
    if let Some(v) = &b.name {
        c.name = Name::parse_field("name", v).map_err(invalid)?;
    }
    if let Some(v) = &b.archetype {
        c.archetype = Slug::parse_field("archetype", v).map_err(invalid)?;
    }
    if let Some(v) = &b.runner {
        c.runner = RunnerKind::parse_field("runner", v).map_err(invalid)?;
    }
    if let Some(v) = b.model {
        c.model = v;
    }
    if let Some(v) = &b.working_dir {
        c.working_dir = WorkingDir::parse(v).map_err(invalid)?;
    }
    if let Some(v) = positive("max_turns", b.max_turns)? {
        c.max_turns = v;
    }
    if let Some(v) = positive("timeout_sec", b.timeout_sec)? {
        c.timeout_sec = v;
    }
    if let Some(v) = b.heartbeat_enabled {
        c.heartbeat_enabled = v;
    }
    if let Some(v) = positive("heartbeat_interval_sec", b.heartbeat_interval_sec)? {
        c.heartbeat_interval_sec = v;
    }
    if let Some(r) = &b.reports_to {
        c.reports_to = reference(mesa, "reports_to", r.as_deref()).await?;
    }
    if let Some(r) = &b.reviewer {
        c.reviewer_id = reference(mesa, "reviewer", r.as_deref()).await?;
    }
    if let Some(v) = b.active {
        c.active = v;
    }
    if let Some(v) = b.chrome_enabled {
        c.chrome_enabled = v;
    }
    if let Some(v) = b.disallowed_tools {
        c.disallowed_tools = v;
    }
    if let Some(v) = b.allowed_tools {
        c.allowed_tools = v;
    }
    if let Some(v) = positive("max_concurrent_runs", b.max_concurrent_runs)? {
        c.max_concurrent_runs = v;
    }
    if let Some(v) = b.api_key_env {
        c.api_key_env = v;
    }
    if let Some(v) = b.runner_args {
        c.runner_args = v;
    }
    if let Some(v) = b.env {
        c.env = v;
    }
    if let Some(v) = b.command {
        c.command = v;
    }
    if let Some(v) = b.base_url {
        c.base_url = v;
    }
    check_runner(&c)?;
    Ok(c)
}

/// Change an agent's configuration (board only); every change is a revision.
#[utoipa::path(patch, path = "/agents/{slug}", tag = "agents", params(("slug" = String, Path)), request_body = PatchBody,
    responses((status = 200, body = AgentDto), (status = 401), (status = 403), (status = 404), (status = 412), (status = 422)))]
async fn update(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(slug): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change agents")?;
    let current = agent_at(&mesa, &slug).await?;
    let expected = if_match.or(b.version.map(Version));
    let reason = b.reason.clone().unwrap_or_else(|| "updated".to_owned());
    let config = merge(&mesa, current.config.clone(), b).await?;
    let agent = mesa
        .update_agent_config(
            &p.actor,
            &current.id.to_string(),
            config,
            Some(expected.unwrap_or(current.version)),
            &reason,
        )
        .await?;
    agent_response(&mesa, &p, StatusCode::OK, &agent).await
}

/// Deactivate an agent (board only): `active` becomes false, as a revision.
#[utoipa::path(delete, path = "/agents/{slug}", tag = "agents", params(("slug" = String, Path)),
    responses((status = 200, body = AgentDto), (status = 401), (status = 403), (status = 404)))]
async fn deactivate(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "deactivate agents")?;
    let current = agent_at(&mesa, &slug).await?;
    let agent = mesa
        .deactivate_agent(&p.actor, &current.id.to_string(), None)
        .await?;
    agent_response(&mesa, &p, StatusCode::OK, &agent).await
}

/// A stored configuration of an agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RevisionDto {
    /// 1, 2, 3... per agent.
    pub(crate) number: i64,
    /// The configuration after the change (agent references as ids).
    pub(crate) config: AgentConfigDto,
    /// Actor string of who changed it.
    pub(crate) changed_by: String,
    /// Why.
    pub(crate) reason: String,
    /// When.
    pub(crate) created_at: String,
}

/// An agent's configuration as a revision stores it: other agents by id, `env` unredacted
/// (revisions are for the board only).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentConfigDto {
    /// Display name.
    pub(crate) name: String,
    /// Archetype slug.
    pub(crate) archetype: String,
    /// Runner (SPEC §7.2).
    pub(crate) runner: String,
    /// Model; empty = the runner's default.
    pub(crate) model: String,
    /// Absolute project directory.
    pub(crate) working_dir: String,
    /// Turn limit per run.
    pub(crate) max_turns: u32,
    /// Wall-clock limit per run, seconds.
    pub(crate) timeout_sec: u32,
    /// Whether heartbeats are on.
    pub(crate) heartbeat_enabled: bool,
    /// Heartbeat period, seconds.
    pub(crate) heartbeat_interval_sec: u32,
    /// Manager id.
    pub(crate) reports_to: Option<String>,
    /// Reviewer id.
    pub(crate) reviewer_id: Option<String>,
    /// Inactive agents are never dispatched.
    pub(crate) active: bool,
    /// Whether the runner may drive a browser.
    pub(crate) chrome_enabled: bool,
    /// Tools the runner must refuse.
    pub(crate) disallowed_tools: Vec<String>,
    /// Tools the runner may use; empty = default.
    pub(crate) allowed_tools: Vec<String>,
    /// Concurrent runs allowed.
    pub(crate) max_concurrent_runs: u32,
    /// Server environment variable holding the provider key.
    pub(crate) api_key_env: Option<String>,
    /// Extra CLI arguments.
    pub(crate) runner_args: Vec<String>,
    /// Extra environment for the runner.
    pub(crate) env: BTreeMap<String, String>,
    /// argv for the `command` runner.
    pub(crate) command: Vec<String>,
    /// Endpoint for the `openai_compat` runner.
    pub(crate) base_url: Option<String>,
}

impl From<&AgentConfig> for AgentConfigDto {
    fn from(c: &AgentConfig) -> Self {
        AgentConfigDto {
            name: c.name.to_string(),
            archetype: c.archetype.to_string(),
            runner: c.runner.as_str().to_owned(),
            model: c.model.clone(),
            working_dir: c.working_dir.as_str().to_owned(),
            max_turns: c.max_turns,
            timeout_sec: c.timeout_sec,
            heartbeat_enabled: c.heartbeat_enabled,
            heartbeat_interval_sec: c.heartbeat_interval_sec,
            reports_to: c.reports_to.map(|a| a.to_string()),
            reviewer_id: c.reviewer_id.map(|a| a.to_string()),
            active: c.active,
            chrome_enabled: c.chrome_enabled,
            disallowed_tools: c.disallowed_tools.clone(),
            allowed_tools: c.allowed_tools.clone(),
            max_concurrent_runs: c.max_concurrent_runs,
            api_key_env: c.api_key_env.clone(),
            runner_args: c.runner_args.clone(),
            env: c.env.clone(),
            command: c.command.clone(),
            base_url: c.base_url.clone(),
        }
    }
}

impl From<&AgentRevision> for RevisionDto {
    fn from(r: &AgentRevision) -> Self {
        RevisionDto {
            number: r.number,
            config: AgentConfigDto::from(&r.config),
            changed_by: r.changed_by.clone(),
            reason: r.reason.clone(),
            created_at: time(r.created_at),
        }
    }
}

/// An agent's revisions, newest first (board only).
#[utoipa::path(get, path = "/agents/{slug}/revisions", tag = "agents", params(("slug" = String, Path)),
    responses((status = 200, body = Page<RevisionDto>), (status = 401), (status = 403), (status = 404)))]
async fn revisions(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "read agent revisions")?;
    let agent = agent_at(&mesa, &slug).await?;
    let list = mesa.agent_revisions(&agent.id.to_string()).await?;
    Ok(axum::Json(Page {
        items: list.iter().map(RevisionDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `POST /agents/{slug}/rollback` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    /// The revision number to restore.
    revision: i64,
}

/// Restore an old revision as a new one (board only).
#[utoipa::path(post, path = "/agents/{slug}/rollback", tag = "agents", params(("slug" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = AgentDto), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn rollback(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    Json(b): Json<RollbackBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "roll back agents")?;
    let agent = agent_at(&mesa, &slug).await?;
    let agent = mesa
        .rollback_agent(&p.actor, &agent.id.to_string(), b.revision)
        .await?;
    agent_response(&mesa, &p, StatusCode::OK, &agent).await
}
