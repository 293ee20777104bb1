//! `/archetypes` and `/archetype-patches` (SPEC §1 Archetype and ArchetypePatch, §5, §9.3).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{Archetype, ArchetypePatch, ArchetypeVersion};
use mesa_core::domain::{
    ApprovalDecision, ArchetypePatchId, Markdown, PatchStatus, Slug, Title, ValidationError,
};
use mesa_core::{Mesa, Principal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::Slugs;
use super::blocks::page_of;
use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, edit))
        .routes(routes!(rollback))
        .routes(routes!(list_patches, propose_patch))
        .routes(routes!(approve_patch))
        .routes(routes!(reject_patch))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

fn slug_of(text: &str) -> Result<Slug, ApiError> {
    Slug::parse_field("slug", text).map_err(invalid)
}

/// An archetype's current version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArchetypeDto {
    /// Slug, e.g. `backend`.
    slug: String,
    /// Human title.
    title: String,
    /// The Markdown role prompt.
    body: String,
    /// Current version number.
    version: i64,
    /// When the archetype was first created.
    created_at: String,
}

impl From<&Archetype> for ArchetypeDto {
    fn from(a: &Archetype) -> Self {
        ArchetypeDto {
            slug: a.slug.to_string(),
            title: a.title.to_string(),
            body: a.body.to_string(),
            version: a.version,
            created_at: time(a.created_at),
        }
    }
}

/// One version of an archetype.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArchetypeVersionDto {
    /// 1, 2, 3...
    version: i64,
    /// The title at that version.
    title: String,
    /// The body at that version.
    body: String,
    /// builtin, board, patch:<id>, rollback:<n>.
    source: String,
    /// When.
    created_at: String,
}

impl From<&ArchetypeVersion> for ArchetypeVersionDto {
    fn from(v: &ArchetypeVersion) -> Self {
        ArchetypeVersionDto {
            version: v.version,
            title: v.title.to_string(),
            body: v.body.to_string(),
            source: v.source.to_storage(),
            created_at: time(v.created_at),
        }
    }
}

/// `GET /archetypes/{slug}`: the current version and every version, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArchetypeDetailDto {
    /// The current version.
    #[serde(flatten)]
    archetype: ArchetypeDto,
    /// Every version, newest first.
    versions: Vec<ArchetypeVersionDto>,
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

/// List archetypes (current versions) by slug.
#[utoipa::path(get, path = "/archetypes", tag = "archetypes", params(PageQuery),
    responses((status = 200, body = Page<ArchetypeDto>), (status = 401)))]
async fn list(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let items = mesa
        .archetypes()
        .await?
        .iter()
        .map(ArchetypeDto::from)
        .collect();
    Ok(axum::Json(page_of(items, q.limit, q.cursor.as_deref())?).into_response())
}

async fn detail(mesa: &Mesa, slug: &Slug) -> Result<ArchetypeDetailDto, ApiError> {
    let a = mesa.archetype(slug).await?;
    let versions = mesa.archetype_versions(slug).await?;
    Ok(ArchetypeDetailDto {
        archetype: ArchetypeDto::from(&a),
        versions: versions.iter().map(ArchetypeVersionDto::from).collect(),
    })
}

/// Read an archetype with its versions.
#[utoipa::path(get, path = "/archetypes/{slug}", tag = "archetypes", params(("slug" = String, Path)),
    responses((status = 200, body = ArchetypeDetailDto), (status = 401), (status = 404)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(detail(&mesa, &slug_of(&slug)?).await?).into_response())
}

/// `PATCH /archetypes/{slug}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditArchetypeBody {
    /// The new Markdown body.
    body: String,
    /// A new title.
    title: Option<String>,
    /// The version the edit was made on (like `If-Match`).
    version: Option<i64>,
}

/// Edit an archetype: a new version (board only).
#[utoipa::path(patch, path = "/archetypes/{slug}", tag = "archetypes", params(("slug" = String, Path)), request_body = EditArchetypeBody,
    responses((status = 200, body = ArchetypeDetailDto), (status = 403), (status = 404), (status = 412), (status = 422)))]
async fn edit(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(slug): Path<String>,
    Json(b): Json<EditArchetypeBody>,
) -> Result<Response, ApiError> {
    let slug = slug_of(&slug)?;
    let body = Markdown::parse_field("body", &b.body).map_err(invalid)?;
    if body.as_str().trim().is_empty() {
        return Err(ApiError::invalid("body", "body must not be empty"));
    }
    let title = b
        .title
        .as_deref()
        .map(Title::parse)
        .transpose()
        .map_err(invalid)?;
    let expected = if_match.map(|v| v.0).or(b.version);
    mesa.edit_archetype(&p.actor, &slug, title, body, expected)
        .await?;
    Ok(axum::Json(detail(&mesa, &slug).await?).into_response())
}

/// `POST /archetypes/{slug}/rollback` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackArchetypeBody {
    /// The version to restore (as a new version).
    version: i64,
}

/// Restore an old version as a new one (board only).
#[utoipa::path(post, path = "/archetypes/{slug}/rollback", tag = "archetypes", params(("slug" = String, Path)), request_body = RollbackArchetypeBody,
    responses((status = 200, body = ArchetypeDetailDto), (status = 403), (status = 404), (status = 422)))]
async fn rollback(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    Json(b): Json<RollbackArchetypeBody>,
) -> Result<Response, ApiError> {
    let slug = slug_of(&slug)?;
    mesa.rollback_archetype(&p.actor, &slug, b.version).await?;
    Ok(axum::Json(detail(&mesa, &slug).await?).into_response())
}

/// A proposed archetype patch (SPEC §1 ArchetypePatch).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PatchDto {
    /// UUID.
    id: String,
    /// The archetype.
    archetype_slug: String,
    /// The version it was written against.
    base_version: i64,
    /// The proposed body.
    proposed_body: String,
    /// Why.
    rationale: String,
    /// The proposing agent's id.
    proposed_by: Option<String>,
    /// The proposing agent's slug.
    proposed_by_slug: Option<String>,
    /// The audit that produced it.
    audit_id: Option<String>,
    /// pending, approved, rejected, superseded.
    status: String,
    /// The approval that decides it.
    approval_id: Option<String>,
    /// Creation time.
    created_at: String,
}

impl PatchDto {
    pub(crate) fn new(p: &ArchetypePatch, slugs: &Slugs) -> Self {
        PatchDto {
            id: p.id.to_string(),
            archetype_slug: p.archetype_slug.to_string(),
            base_version: p.base_version,
            proposed_body: p.proposed_body.to_string(),
            rationale: p.rationale.to_string(),
            proposed_by: p.proposed_by.map(|a| a.to_string()),
            proposed_by_slug: p.proposed_by.map(|a| slugs.of(a)),
            audit_id: p.audit_id.map(|a| a.to_string()),
            status: p.status.as_str().to_owned(),
            approval_id: p.approval_id.map(|a| a.to_string()),
            created_at: time(p.created_at),
        }
    }
}

/// `?status=` and pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchQuery {
    /// pending, approved, rejected or superseded.
    status: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// List archetype patches, newest first.
#[utoipa::path(get, path = "/archetype-patches", tag = "archetypes", params(PatchQuery),
    responses((status = 200, body = Page<PatchDto>), (status = 401), (status = 422)))]
async fn list_patches(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<PatchQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(PatchStatus::parse)
        .transpose()
        .map_err(invalid)?;
    let slugs = Slugs::load(&mesa).await?;
    let items = mesa
        .archetype_patches(status)
        .await?
        .iter()
        .map(|p| PatchDto::new(p, &slugs))
        .collect();
    Ok(axum::Json(page_of(items, q.limit, q.cursor.as_deref())?).into_response())
}

/// `POST /archetype-patches` body (aliases `agent_slug`, `proposed_content`, SPEC §9.5).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposePatchBody {
    /// The archetype (alias `agent_slug`).
    #[serde(alias = "agent_slug")]
    archetype_slug: String,
    /// The proposed Markdown body (alias `proposed_content`).
    #[serde(alias = "proposed_content")]
    proposed_body: String,
    /// Why the change helps.
    rationale: Option<String>,
}

/// Propose a new body for an archetype; creates an `archetype_patch` approval for the board.
#[utoipa::path(post, path = "/archetype-patches", tag = "archetypes", request_body = ProposePatchBody,
    responses((status = 201, body = PatchDto), (status = 401), (status = 422)))]
async fn propose_patch(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<ProposePatchBody>,
) -> Result<Response, ApiError> {
    let slug = Slug::parse_field("archetype_slug", &b.archetype_slug).map_err(invalid)?;
    let body = Markdown::parse_field("proposed_body", &b.proposed_body).map_err(invalid)?;
    let rationale = Markdown::parse_field("rationale", b.rationale.as_deref().unwrap_or(""))
        .map_err(invalid)?;
    let proposed = mesa
        .propose_archetype_patch(&p.actor, &slug, body, rationale)
        .await?;
    let slugs = Slugs::load(&mesa).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(PatchDto::new(&proposed.patch, &slugs)),
    )
        .into_response())
}

/// Optional `{comment}` body of approve and reject.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchDecisionBody {
    /// The board's comment.
    comment: Option<String>,
}

async fn decide(
    mesa: &Mesa,
    p: &Principal,
    id: &str,
    body: &[u8],
    decision: ApprovalDecision,
) -> Result<Response, ApiError> {
    let id = ArchetypePatchId::parse(id).map_err(|e| ApiError::invalid("id", e.message))?;
    let b: PatchDecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
        PatchDecisionBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body is not valid JSON",
                )
            } else {
                ApiError::invalid("comment", e.to_string())
            }
        })?
    };
    let patch = mesa
        .decide_archetype_patch(&p.actor, id, decision, b.comment)
        .await?;
    let slugs = Slugs::load(mesa).await?;
    Ok(axum::Json(PatchDto::new(&patch, &slugs)).into_response())
}

/// Approve a patch: its approval is resolved and a new archetype version created (board only).
#[utoipa::path(post, path = "/archetype-patches/{id}/approve", tag = "archetypes", params(("id" = String, Path)), request_body(content = PatchDecisionBody, content_type = "application/json"),
    responses((status = 200, body = PatchDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn approve_patch(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(&mesa, &p, &id, &body, ApprovalDecision::Approve).await
}

/// Reject a patch (board only).
#[utoipa::path(post, path = "/archetype-patches/{id}/reject", tag = "archetypes", params(("id" = String, Path)), request_body(content = PatchDecisionBody, content_type = "application/json"),
    responses((status = 200, body = PatchDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn reject_patch(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(&mesa, &p, &id, &body, ApprovalDecision::Reject).await
}
