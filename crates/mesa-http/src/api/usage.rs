//! Budgets and usage: `PUT /agents/{slug}/budget`, `GET|PUT /budget` (board), `GET /usage`,
//! `POST /usage/report` (agents). Money on the wire is dollars.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::MicroUsd;
use mesa_core::{BudgetLimits, Mesa, ReportedUsage, UsageSummary, UsageTotals};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::{agent_at, board_only, invalid};
use super::error::ApiError;
use super::extract::{Auth, Json};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_agent_budget))
        .routes(routes!(org_budget, put_org_budget))
        .routes(routes!(usage))
        .routes(routes!(report))
}

/// Daily limits (0 = unlimited).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BudgetLimitsDto {
    /// Tokens per budget day.
    pub(crate) daily_token_limit: i64,
    /// Dollars per budget day.
    pub(crate) daily_cost_limit_usd: f64,
    /// Dollars reserved per run in flight; null = from the agent's history.
    pub(crate) per_run_reserve_usd: Option<f64>,
}

impl From<BudgetLimits> for BudgetLimitsDto {
    fn from(l: BudgetLimits) -> Self {
        BudgetLimitsDto {
            daily_token_limit: l.daily_token_limit,
            daily_cost_limit_usd: l.daily_cost_limit_usd.as_usd(),
            per_run_reserve_usd: l.per_run_reserve_usd.map(MicroUsd::as_usd),
        }
    }
}

/// `PUT /budget` and `PUT /agents/{slug}/budget` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetBody {
    /// Tokens per budget day; 0 = unlimited.
    daily_token_limit: i64,
    /// Dollars per budget day; 0 = unlimited.
    daily_cost_limit_usd: f64,
    /// Dollars reserved per run in flight (default: from the agent's history).
    per_run_reserve_usd: Option<f64>,
}

fn limits(b: &BudgetBody) -> Result<BudgetLimits, ApiError> {
    if b.daily_token_limit < 0 {
        return Err(ApiError::invalid(
            "daily_token_limit",
            "daily_token_limit must not be negative (0 = unlimited)",
        ));
    }
    Ok(BudgetLimits {
        daily_token_limit: b.daily_token_limit,
        daily_cost_limit_usd: MicroUsd::from_usd("daily_cost_limit_usd", b.daily_cost_limit_usd)
            .map_err(invalid)?,
        per_run_reserve_usd: b
            .per_run_reserve_usd
            .map(|r| MicroUsd::from_usd("per_run_reserve_usd", r))
            .transpose()
            .map_err(invalid)?,
    })
}

/// Set an agent's daily limits (board only).
#[utoipa::path(put, path = "/agents/{slug}/budget", tag = "budget", params(("slug" = String, Path)), request_body = BudgetBody,
    responses((status = 200, body = BudgetLimitsDto), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn put_agent_budget(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    Json(b): Json<BudgetBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change budgets")?;
    let agent = agent_at(&mesa, &slug).await?;
    let set = mesa
        .put_budget(&p.actor, Some(&agent.id.to_string()), limits(&b)?)
        .await?;
    Ok(axum::Json(BudgetLimitsDto::from(set)).into_response())
}

/// The org-wide daily limits (board only; 0 = unlimited, the default).
#[utoipa::path(get, path = "/budget", tag = "budget",
    responses((status = 200, body = BudgetLimitsDto), (status = 401), (status = 403)))]
async fn org_budget(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    let l = mesa.org_budget(&p.actor).await?;
    Ok(axum::Json(BudgetLimitsDto::from(l)).into_response())
}

/// Set the org-wide daily limits (board only).
#[utoipa::path(put, path = "/budget", tag = "budget", request_body = BudgetBody,
    responses((status = 200, body = BudgetLimitsDto), (status = 401), (status = 403), (status = 422)))]
async fn put_org_budget(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<BudgetBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change budgets")?;
    let set = mesa.put_budget(&p.actor, None, limits(&b)?).await?;
    Ok(axum::Json(BudgetLimitsDto::from(set)).into_response())
}

/// Tokens and dollars over a period.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TotalsDto {
    /// Tokens.
    pub(crate) tokens: i64,
    /// Dollars.
    pub(crate) cost_usd: f64,
}

impl From<UsageTotals> for TotalsDto {
    fn from(t: UsageTotals) -> Self {
        TotalsDto {
            tokens: t.tokens,
            cost_usd: t.cost_usd.as_usd(),
        }
    }
}

/// What is left of today's budget; null = unlimited.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RemainingDto {
    /// Tokens left today.
    pub(crate) tokens: Option<i64>,
    /// Dollars left today, after reservations.
    pub(crate) cost_usd: Option<f64>,
}

/// `GET /usage`: the caller's usage (the board: the org's).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageDto {
    /// `agent` or `org`.
    pub(crate) scope: String,
    /// The agent's slug (null for the org).
    pub(crate) agent: Option<String>,
    /// Since the start of the budget day.
    pub(crate) today: TotalsDto,
    /// The last seven days.
    pub last_7d: TotalsDto,
    /// Ever.
    pub(crate) total: TotalsDto,
    /// Dollars held by runs in flight.
    pub(crate) reserved_usd: f64,
    /// The limits that apply.
    pub(crate) budget: BudgetLimitsDto,
    /// What is left today.
    pub(crate) remaining: RemainingDto,
}

fn usage_dto(agent: Option<String>, u: UsageSummary) -> UsageDto {
    UsageDto {
        scope: if agent.is_some() { "agent" } else { "org" }.to_owned(),
        agent,
        today: u.today.into(),
        last_7d: u.last_7d.into(),
        total: u.total.into(),
        reserved_usd: u.reserved_usd.as_usd(),
        budget: u.limits.into(),
        remaining: RemainingDto {
            tokens: u.tokens_remaining,
            cost_usd: u.cost_remaining_usd.map(MicroUsd::as_usd),
        },
    }
}

/// The caller's usage today, over seven days and ever, and what is left of today's budget.
#[utoipa::path(get, path = "/usage", tag = "budget",
    responses((status = 200, body = UsageDto), (status = 401)))]
async fn usage(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    let summary = mesa.usage_summary(p.agent.as_ref()).await?;
    let slug = p.agent.as_ref().map(|a| a.slug.to_string());
    Ok(axum::Json(usage_dto(slug, summary)).into_response())
}

/// `POST /usage/report` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportBody {
    /// Input tokens.
    input_tokens: i64,
    /// Output tokens.
    output_tokens: i64,
    /// Dollars, if known.
    cost_usd: Option<f64>,
}

/// Report usage the runner could not parse (agents); it adds to the caller's run (run keys)
/// and is recorded as a cost event with source `reported`; idempotent per `Idempotency-Key`.
#[utoipa::path(post, path = "/usage/report", tag = "budget", request_body = ReportBody,
    responses((status = 201, body = UsageDto), (status = 401), (status = 403), (status = 422)))]
async fn report(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(b): Json<ReportBody>,
) -> Result<Response, ApiError> {
    let Some(agent) = &p.agent else {
        return Err(ApiError::forbidden(
            "only agents report usage; a board token has no agent to charge",
        ));
    };
    for (field, v) in [
        ("input_tokens", b.input_tokens),
        ("output_tokens", b.output_tokens),
    ] {
        if v < 0 {
            return Err(ApiError::invalid(
                field,
                format!("{field} must not be negative"),
            ));
        }
    }
    let cost_usd = b
        .cost_usd
        .map(|c| MicroUsd::from_usd("cost_usd", c))
        .transpose()
        .map_err(invalid)?
        .unwrap_or(MicroUsd::ZERO);
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Idempotency-Key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?,
        ),
    };
    mesa.report_usage(
        &p.actor,
        p.run_id,
        ReportedUsage {
            input_tokens: b.input_tokens,
            output_tokens: b.output_tokens,
            cost_usd,
        },
        key,
    )
    .await?;
    let summary = mesa.usage_summary(Some(agent)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(usage_dto(Some(agent.slug.to_string()), summary)),
    )
        .into_response())
}
