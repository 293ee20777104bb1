//! `/wiki`: pages by slug with revisions, search with a fuzzy fallback (SPEC §13).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::domain::entity::{WikiPage, WikiRevision};
use mesa_core::domain::{Markdown, Title, ValidationError, Version, WikiSlug};
use mesa_core::store::PageRequest;
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
        .routes(routes!(list, create))
        .routes(routes!(search))
        .routes(routes!(show, update, remove))
        .routes(routes!(revisions))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

fn slug_of(text: &str) -> Result<WikiSlug, ApiError> {
    WikiSlug::parse(text).map_err(invalid)
}

/// A wiki page (SPEC §1 WikiPage).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WikiPageDto {
    /// UUID.
    pub(crate) id: String,
    /// `[a-z0-9-]{1,128}`.
    pub(crate) slug: String,
    /// Title.
    pub(crate) title: String,
    /// Markdown.
    pub(crate) content: String,
    /// Actor string of the creator.
    pub(crate) created_by: String,
    /// Actor string of the last editor.
    pub(crate) updated_by: String,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version (also the revision number and the `ETag`).
    pub(crate) version: i64,
}

impl From<&WikiPage> for WikiPageDto {
    fn from(p: &WikiPage) -> Self {
        WikiPageDto {
            id: p.id.to_string(),
            slug: p.slug.to_string(),
            title: p.title.to_string(),
            content: p.content.clone(),
            created_by: p.created_by.clone(),
            updated_by: p.updated_by.clone(),
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
            version: p.version.0,
        }
    }
}

/// A kept edit of a page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WikiRevisionDto {
    /// The page version this edit produced.
    pub(crate) version: i64,
    /// Title at that revision.
    pub(crate) title: String,
    /// Content at that revision.
    pub(crate) content: String,
    /// Actor string of the editor.
    pub(crate) edited_by: String,
    /// When.
    pub(crate) created_at: String,
}

impl From<&WikiRevision> for WikiRevisionDto {
    fn from(r: &WikiRevision) -> Self {
        WikiRevisionDto {
            version: r.version.0,
            title: r.title.to_string(),
            content: r.content.clone(),
            edited_by: r.edited_by.clone(),
            created_at: time(r.created_at),
        }
    }
}

/// A search hit.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WikiHitDto {
    /// Page slug.
    pub(crate) slug: String,
    /// Page title.
    pub(crate) title: String,
    /// HTML-escaped excerpt with matches in `<mark>`.
    pub(crate) snippet: String,
}

fn page_response(status: StatusCode, page: &WikiPage) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", page.version.0)) {
        headers.insert(header::ETAG, v);
    }
    (status, headers, axum::Json(WikiPageDto::from(page))).into_response()
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

/// List wiki pages by title.
#[utoipa::path(get, path = "/wiki", tag = "wiki", params(PageQuery),
    responses((status = 200, body = Page<WikiPageDto>), (status = 401), (status = 422)))]
async fn list(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = mesa
        .wiki_pages(&PageRequest::new(q.limit, q.cursor))
        .await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(WikiPageDto::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// `POST /wiki` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WikiPageCreateBody)]
pub(crate) struct CreateBody {
    /// Slug; derived from the title when absent (collisions get `-2`, `-3`...).
    slug: Option<String>,
    /// 1..200 characters.
    title: String,
    /// Markdown.
    content: String,
}

/// Create a page. An explicit slug that is taken is 409.
#[utoipa::path(post, path = "/wiki", tag = "wiki", request_body = CreateBody,
    responses((status = 201, body = WikiPageDto), (status = 401), (status = 409), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let slug = b.slug.as_deref().map(slug_of).transpose()?;
    let title = Title::parse(&b.title).map_err(invalid)?;
    let content = Markdown::parse_field("content", &b.content).map_err(invalid)?;
    let page = mesa
        .create_wiki_page(&p.actor, slug, title, content)
        .await?;
    Ok(page_response(StatusCode::CREATED, &page))
}

/// Search query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// Words; each matches as a prefix.
    q: String,
    /// At most this many hits (default 20, at most 100).
    limit: Option<u32>,
}

/// Full-text search over title, slug and content with snippets; a fuzzy match over titles and
/// slugs when nothing matches.
#[utoipa::path(get, path = "/wiki/search", tag = "wiki", params(SearchQuery),
    responses((status = 200, body = Page<WikiHitDto>), (status = 401), (status = 422)))]
async fn search(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    if q.q.trim().is_empty() {
        return Err(ApiError::invalid("q", "q must not be empty"));
    }
    let hits = mesa.search_wiki(&q.q, q.limit.unwrap_or(20)).await?;
    Ok(axum::Json(Page {
        items: hits
            .iter()
            .map(|(page, snippet)| WikiHitDto {
                slug: page.slug.to_string(),
                title: page.title.to_string(),
                snippet: snippet.clone(),
            })
            .collect(),
        next_cursor: None,
    })
    .into_response())
}

/// Read a page.
#[utoipa::path(get, path = "/wiki/{slug}", tag = "wiki", params(("slug" = String, Path)),
    responses((status = 200, body = WikiPageDto), (status = 401), (status = 404)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let page = mesa.wiki_page(&slug_of(&slug)?).await?;
    Ok(page_response(StatusCode::OK, &page))
}

/// `PATCH /wiki/{slug}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WikiPagePatchBody)]
pub(crate) struct PatchBody {
    /// New title.
    title: Option<String>,
    /// New content.
    content: Option<String>,
    /// The version the edit was made on (like `If-Match`).
    version: Option<i64>,
}

/// Edit a page, keeping a revision. A stale `If-Match` or `version` is 412.
#[utoipa::path(patch, path = "/wiki/{slug}", tag = "wiki", params(("slug" = String, Path)), request_body = PatchBody,
    responses((status = 200, body = WikiPageDto), (status = 401), (status = 404), (status = 412), (status = 422)))]
async fn update(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(slug): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<Response, ApiError> {
    let slug = slug_of(&slug)?;
    if b.title.is_none() && b.content.is_none() {
        return Err(ApiError::invalid("body", "give a new title or content"));
    }
    let title = b
        .title
        .as_deref()
        .map(Title::parse)
        .transpose()
        .map_err(invalid)?;
    let content = b
        .content
        .as_deref()
        .map(|c| Markdown::parse_field("content", c))
        .transpose()
        .map_err(invalid)?;
    let page = mesa
        .update_wiki_page(
            &p.actor,
            &slug,
            title,
            content,
            if_match.or(b.version.map(Version)),
        )
        .await?;
    Ok(page_response(StatusCode::OK, &page))
}

/// Delete a page: the board any page, an agent only pages it created (403 otherwise).
#[utoipa::path(delete, path = "/wiki/{slug}", tag = "wiki", params(("slug" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn remove(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    mesa.delete_wiki_page(&p.actor, &slug_of(&slug)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Revisions of a page, newest first.
#[utoipa::path(get, path = "/wiki/{slug}/revisions", tag = "wiki", params(("slug" = String, Path)),
    responses((status = 200, body = Page<WikiRevisionDto>), (status = 401), (status = 404)))]
async fn revisions(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = slug_of(&slug)?;
    mesa.wiki_page(&slug).await?;
    let revs = mesa.wiki_revisions(&slug).await?;
    Ok(axum::Json(Page {
        items: revs.iter().map(WikiRevisionDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}
