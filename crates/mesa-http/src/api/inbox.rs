//! `GET /inbox`: the caller's actionable issues (SPEC §9.3).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::store::PageRequest;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{IssueDto, Page};
use super::error::ApiError;
use super::extract::{Auth, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbox))
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

/// My actionable issues: assigned to me and not terminal, plus the reviews awaiting me
/// (for the board: the issues in `board_review`); priority first, then most recently updated.
#[utoipa::path(get, path = "/inbox", tag = "issues", params(PageQuery),
    responses((status = 200, body = Page<IssueDto>), (status = 401), (status = 422)))]
async fn inbox(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let list = mesa
        .inbox(&p.actor, &PageRequest::new(q.limit, q.cursor))
        .await?;
    Ok(axum::Json(Page {
        items: list.items.iter().map(IssueDto::from).collect(),
        next_cursor: list.next_cursor,
    })
    .into_response())
}
