//! `POST /issues/similar` (near-duplicates, SPEC §2) and `DELETE /issues/{key}` (board only:
//! soft delete, or `?purge=true`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::domain::{IssueKey, Title};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::Page;
use super::error::ApiError;
use super::extract::{Auth, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(similar))
        .routes(routes!(delete))
}

/// `POST /issues/similar` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimilarBody {
    /// The title to check, 1..200 characters.
    title: String,
    /// Accepted for callers that have one; matching uses the title.
    description: Option<String>,
}

/// A near-duplicate.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SimilarDto {
    /// `MESA-12`.
    key: String,
    /// Its title.
    title: String,
    /// Its status.
    status: String,
    /// Normalized Levenshtein similarity of the normalized titles, 0..1.
    score: f64,
}

/// Near-duplicates of a title: open issues whose title is at least 0.7 similar (normalized
/// Levenshtein), and full-text matches on most of the title's words; best first, at most 20,
/// never paginated (`next_cursor` is null).
#[utoipa::path(post, path = "/issues/similar", tag = "issues", operation_id = "similar_issues", request_body = SimilarBody,
    responses((status = 200, body = Page<SimilarDto>), (status = 401), (status = 422)))]
async fn similar(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Json(b): Json<SimilarBody>,
) -> Result<Response, ApiError> {
    let title = Title::parse(&b.title).map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let found = mesa
        .similar_issues(&title, b.description.as_deref())
        .await?;
    Ok(axum::Json(Page {
        items: found
            .into_iter()
            .map(|s| SimilarDto {
                key: s.key.to_string(),
                title: s.title.to_string(),
                status: s.status.as_str().to_owned(),
                score: (s.score * 1000.0).round() / 1000.0,
            })
            .collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `DELETE /issues/{key}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteQuery {
    /// Remove the issue and its comments for good instead of hiding it.
    purge: Option<bool>,
}

/// Delete an issue (board only). Without `purge`: cancelled ("deleted by the board") if it
/// was not finished, and hidden from lists (still readable by key); with `?purge=true`:
/// removed for good.
#[utoipa::path(delete, path = "/issues/{key}", tag = "issues", operation_id = "delete_issue", params(("key" = String, Path), DeleteQuery),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn delete(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(key): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    let key = IssueKey::parse(&key).map_err(|e| ApiError::invalid("key", e.message))?;
    mesa.delete_issue(&p.actor, &key, q.purge.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
