//! Run evaluation (SPEC §4.3, flag `run_evaluation`): a run's trajectory signature and the
//! roll-up per archetype behind the Observability page.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::domain::RunId;
use mesa_core::store::{ArchetypeEvaluation, RunEvaluation};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::time;
use super::error::ApiError;
use super::extract::Auth;
use crate::AppState;

/// The window the roll-up covers by default, in days.
const DEFAULT_DAYS: u32 = 14;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_evaluation))
        .routes(routes!(observability))
}

/// The evaluation of a run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvaluationDto {
    /// The run.
    pub(crate) run_id: String,
    /// The archetype of its agent when it ran.
    pub(crate) archetype: String,
    /// The trajectory signature: `tool_calls`, `tools`, `reads_before_first_write`,
    /// `tool_errors`, `time_to_first_edit_ms`.
    #[schema(value_type = Object)]
    pub(crate) signature: serde_json::Value,
    /// A judge's rubric, when one scored the run.
    #[schema(value_type = Option<Object>)]
    pub(crate) rubric: Option<serde_json::Value>,
    /// When it was computed.
    pub(crate) created_at: String,
}

impl From<&RunEvaluation> for EvaluationDto {
    fn from(e: &RunEvaluation) -> Self {
        EvaluationDto {
            run_id: e.run_id.to_string(),
            archetype: e.archetype.to_string(),
            signature: e.signature.clone(),
            rubric: e.rubric.clone(),
            created_at: time(e.created_at),
        }
    }
}

/// The evaluations of one archetype's runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArchetypeEvaluationDto {
    /// The archetype.
    pub(crate) archetype: String,
    /// Evaluated runs.
    pub(crate) runs: u64,
    /// Of them, runs that succeeded.
    pub(crate) succeeded: u64,
    /// Mean tool calls per run.
    pub(crate) avg_tool_calls: f64,
    /// Mean distinct tools per run.
    pub(crate) avg_distinct_tools: f64,
    /// Mean reads before the first write.
    pub(crate) avg_reads_before_first_write: f64,
    /// Failed tool calls.
    pub(crate) tool_errors: u64,
    /// Runs that edited a file.
    pub(crate) runs_with_edit: u64,
    /// Mean milliseconds to the first edit, over the runs that edited.
    pub(crate) avg_time_to_first_edit_ms: Option<f64>,
    /// Mean judged fidelity (0–1), over the runs a judge scored.
    pub(crate) avg_fidelity: Option<f64>,
}

impl From<&ArchetypeEvaluation> for ArchetypeEvaluationDto {
    fn from(a: &ArchetypeEvaluation) -> Self {
        ArchetypeEvaluationDto {
            archetype: a.archetype.clone(),
            runs: a.runs,
            succeeded: a.succeeded,
            avg_tool_calls: a.avg_tool_calls,
            avg_distinct_tools: a.avg_distinct_tools,
            avg_reads_before_first_write: a.avg_reads_before_first_write,
            tool_errors: a.tool_errors,
            runs_with_edit: a.runs_with_edit,
            avg_time_to_first_edit_ms: a.avg_time_to_first_edit_ms,
            avg_fidelity: a.avg_fidelity,
        }
    }
}

/// `GET /observability` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ObservabilityDto {
    /// The window, in days.
    pub(crate) days: u32,
    /// Whether run evaluation is on (`feature_run_evaluation`).
    pub(crate) enabled: bool,
    /// Per archetype, by name.
    pub(crate) archetypes: Vec<ArchetypeEvaluationDto>,
}

/// `GET /observability` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObservabilityQuery {
    /// The window in days (default 14, at most 365).
    days: Option<u32>,
}

/// The evaluation of a run (404 `not_found` when it was not evaluated).
#[utoipa::path(get, path = "/runs/{id}/evaluation", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = EvaluationDto), (status = 401), (status = 404), (status = 422)))]
async fn show_evaluation(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = RunId::parse(&id).map_err(|e| ApiError::invalid("id", e.message))?;
    // The same visibility as the run itself.
    mesa.run_for(&p.actor, id).await?;
    let evaluation = mesa
        .run_evaluation(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {id} was not evaluated")))?;
    Ok(axum::Json(EvaluationDto::from(&evaluation)).into_response())
}

/// Run evaluations rolled up per archetype over the last `days` days.
#[utoipa::path(get, path = "/observability", tag = "runs", params(ObservabilityQuery),
    responses((status = 200, body = ObservabilityDto), (status = 401), (status = 422)))]
async fn observability(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<ObservabilityQuery>,
) -> Result<Response, ApiError> {
    let days = q.days.unwrap_or(DEFAULT_DAYS);
    let rows = mesa.observability(days).await?;
    let body = ObservabilityDto {
        days,
        enabled: mesa.settings().await.feature("run_evaluation"),
        archetypes: rows.iter().map(ArchetypeEvaluationDto::from).collect(),
    };
    Ok(axum::Json(body).into_response())
}
