//! `GET /inbox`: the caller's actionable issues (SPEC §9.3).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mesa_core::store::PageRequest;
use mesa_core::{IssueList, Mesa};
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
    // The page is rendered once per change of the data: later requests for the same inbox
    // page get the same bytes until anything is committed (see `Mesa::inbox_rendered`).
    let body = mesa
        .inbox_rendered(&p.actor, &PageRequest::new(q.limit, q.cursor), render)
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from_owner(ArcBytes(body)),
    )
        .into_response())
}

/// The JSON of an inbox page, exactly as `axum::Json(Page { .. })` writes it.
fn render(list: IssueList) -> Vec<u8> {
    serde_json::to_vec(&Page {
        items: list.items.iter().map(IssueDto::from).collect(),
        next_cursor: list.next_cursor,
    })
    .expect("an issue page is plain data and always serializes")
}

/// A shared rendered page as a response body, without copying it.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}
