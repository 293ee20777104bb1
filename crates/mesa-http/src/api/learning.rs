//! The self-improvement loop (SPEC §4.3): `/reflections`, `/skills`, `/memory`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{MemoryItem, Reflection, Skill};
use mesa_core::domain::{Body, ReflectionOutcome, Slug, Title, ValidationError};
use mesa_core::{Mesa, SkillPromotion};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_reflection))
        .routes(routes!(list_skills, create_skill))
        .routes(routes!(show_skill))
        .routes(routes!(store_memory))
        .routes(routes!(recall_memory))
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(&e.field, e.message)
}

/// A reflection (SPEC §1 Reflection).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReflectionDto {
    /// UUID.
    pub(crate) id: String,
    /// The agent.
    pub(crate) agent_id: String,
    /// The run it reflects on (run keys).
    pub(crate) run_id: Option<String>,
    /// That run's issue.
    pub(crate) issue_key: Option<String>,
    /// succeeded, failed or changes_requested.
    pub(crate) outcome: String,
    /// Markdown.
    pub(crate) body: String,
    /// When.
    pub(crate) created_at: String,
}

impl From<&Reflection> for ReflectionDto {
    fn from(r: &Reflection) -> Self {
        ReflectionDto {
            id: r.id.to_string(),
            agent_id: r.agent_id.to_string(),
            run_id: r.run_id.map(|x| x.to_string()),
            issue_key: r.issue_key.as_ref().map(ToString::to_string),
            outcome: r.outcome.as_str().to_owned(),
            body: r.body.clone(),
            created_at: time(r.created_at),
        }
    }
}

/// A skill (SPEC §1 Skill).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SkillDto {
    /// UUID.
    pub(crate) id: String,
    /// Unique slug.
    pub(crate) slug: String,
    /// Title.
    pub(crate) title: String,
    /// Markdown.
    pub(crate) body: String,
    /// Tags.
    pub(crate) tags: Vec<String>,
    /// `reflection:<id>`, `wiki:<slug>`, `board` or `agent`.
    pub(crate) source: String,
    /// Actor string of the promoter.
    pub(crate) promoted_by: String,
    /// Runs that used it.
    pub(crate) uses: i64,
    /// Those whose issue ended done.
    pub(crate) successes: i64,
    /// Offered to agents.
    pub(crate) active: bool,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version.
    pub(crate) version: i64,
}

impl From<&Skill> for SkillDto {
    fn from(s: &Skill) -> Self {
        SkillDto {
            id: s.id.to_string(),
            slug: s.slug.to_string(),
            title: s.title.to_string(),
            body: s.body.clone(),
            tags: s.tags.clone(),
            source: s.source.clone(),
            promoted_by: s.promoted_by.clone(),
            uses: s.uses,
            successes: s.successes,
            active: s.active,
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
            version: s.version.0,
        }
    }
}

/// A memory item (SPEC §1 MemoryItem).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemoryDto {
    /// UUID.
    pub(crate) id: String,
    /// Owner; null = shared.
    pub(crate) agent_id: Option<String>,
    /// What to remember.
    pub(crate) content: String,
    /// Tags.
    pub(crate) tags: Vec<String>,
    /// Creation time.
    pub(crate) created_at: String,
    /// How often recalled.
    pub(crate) recalled_count: i64,
    /// Last recall.
    pub(crate) last_recalled_at: Option<String>,
}

impl From<&MemoryItem> for MemoryDto {
    fn from(m: &MemoryItem) -> Self {
        MemoryDto {
            id: m.id.to_string(),
            agent_id: m.agent_id.map(|a| a.to_string()),
            content: m.content.clone(),
            tags: m.tags.clone(),
            created_at: time(m.created_at),
            recalled_count: m.recalled_count,
            last_recalled_at: m.last_recalled_at.map(time),
        }
    }
}

/// `POST /reflections` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReflectionBody {
    /// What worked, what failed, what to do differently.
    body: String,
    /// succeeded, failed or changes_requested (default: from the run's status).
    outcome: Option<String>,
}

/// Post a reflection; with a run key it is bound to that run and its issue. Agents only.
#[utoipa::path(post, path = "/reflections", tag = "learning", request_body = ReflectionBody,
    responses((status = 201, body = ReflectionDto), (status = 401), (status = 403), (status = 422)))]
async fn create_reflection(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<ReflectionBody>,
) -> Result<Response, ApiError> {
    let body = Body::parse(&b.body).map_err(invalid)?;
    let outcome = b
        .outcome
        .as_deref()
        .map(ReflectionOutcome::parse)
        .transpose()
        .map_err(invalid)?;
    let r = mesa
        .post_reflection(&p.actor, p.run_id, body, outcome)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ReflectionDto::from(&r))).into_response())
}

/// `GET /skills` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkillQuery {
    /// Full-text query over title, body and tags.
    q: Option<String>,
}

/// List skills (by slug; with `q`, best match first).
#[utoipa::path(get, path = "/skills", tag = "learning", params(SkillQuery),
    responses((status = 200, body = Page<SkillDto>), (status = 401), (status = 422)))]
async fn list_skills(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Query(q): Query<SkillQuery>,
) -> Result<Response, ApiError> {
    let skills = mesa.skills(q.q.as_deref()).await?;
    Ok(axum::Json(Page {
        items: skills.iter().map(SkillDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `POST /skills` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkillBody {
    /// `[a-z0-9-]{1,64}`, unique.
    slug: String,
    /// Title; with a reflection or wiki source, defaults to the source's.
    title: Option<String>,
    /// Markdown; with a reflection or wiki source, defaults to the source's.
    body: Option<String>,
    /// Tags.
    tags: Vec<String>,
    /// `reflection:<id>`, `wiki:<slug>`, `board` or `agent`.
    source: Option<String>,
    /// Promote this reflection (the same as `source: "reflection:<id>"`).
    from_reflection: Option<String>,
    /// Promote this wiki page (the same as `source: "wiki:<slug>"`).
    from_wiki: Option<String>,
}

impl SkillBody {
    /// The source, from `source` or one of the `from_*` shorthands (only one may be given).
    fn source(&self) -> Result<Option<String>, ApiError> {
        let given = [
            self.source.clone(),
            self.from_reflection
                .as_ref()
                .map(|id| format!("reflection:{id}")),
            self.from_wiki.as_ref().map(|slug| format!("wiki:{slug}")),
        ];
        let mut given = given.into_iter().flatten();
        let first = given.next();
        if given.next().is_some() {
            return Err(ApiError::invalid(
                "source",
                "give one of source, from_reflection and from_wiki",
            ));
        }
        Ok(first)
    }
}

/// Promote a skill (the board, the CEO or an auditor; others 403): from a reflection
/// (`from_reflection`) or a wiki page (`from_wiki`), whose title and body are used unless given,
/// or from a title and body. A taken slug is 409; an unknown source is 422.
#[utoipa::path(post, path = "/skills", tag = "learning", request_body = SkillBody,
    responses((status = 201, body = SkillDto), (status = 401), (status = 403), (status = 409), (status = 422)))]
async fn create_skill(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<SkillBody>,
) -> Result<Response, ApiError> {
    let promotion = SkillPromotion {
        slug: Slug::parse(&b.slug).map_err(invalid)?,
        title: b
            .title
            .as_deref()
            .map(Title::parse)
            .transpose()
            .map_err(invalid)?,
        body: b
            .body
            .as_deref()
            .map(Body::parse)
            .transpose()
            .map_err(invalid)?,
        source: b.source()?,
        tags: b.tags,
    };
    let skill = mesa.promote_skill(&p.actor, promotion).await?;
    Ok((StatusCode::CREATED, axum::Json(SkillDto::from(&skill))).into_response())
}

/// Read a skill.
#[utoipa::path(get, path = "/skills/{slug}", tag = "learning", params(("slug" = String, Path)),
    responses((status = 200, body = SkillDto), (status = 401), (status = 404), (status = 422)))]
async fn show_skill(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = Slug::parse(&slug).map_err(invalid)?;
    let skill = mesa.skill(&slug).await?;
    Ok(axum::Json(SkillDto::from(&skill)).into_response())
}

/// `POST /memory` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemoryBody {
    /// What to remember.
    content: String,
    /// Tags.
    tags: Option<Vec<String>>,
    /// Shared with every agent (the board's items are always shared).
    shared: Option<bool>,
}

/// Store a memory item.
#[utoipa::path(post, path = "/memory", tag = "learning", request_body = MemoryBody,
    responses((status = 201, body = MemoryDto), (status = 401), (status = 422)))]
async fn store_memory(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<MemoryBody>,
) -> Result<Response, ApiError> {
    let content = Body::parse_field("content", &b.content).map_err(invalid)?;
    let item = mesa
        .store_memory(
            &p.actor,
            content,
            &b.tags.unwrap_or_default(),
            b.shared.unwrap_or(false),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(MemoryDto::from(&item))).into_response())
}

/// `GET /memory/recall` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecallQuery {
    /// Every word must occur in the content or the tags.
    q: String,
    /// At most this many (default 10, at most 100).
    limit: Option<u32>,
}

/// Recall the caller's memory and shared memory, newest first.
#[utoipa::path(get, path = "/memory/recall", tag = "learning", params(RecallQuery),
    responses((status = 200, body = Page<MemoryDto>), (status = 401), (status = 422)))]
async fn recall_memory(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Query(q): Query<RecallQuery>,
) -> Result<Response, ApiError> {
    let items = mesa
        .recall_memory(&p.actor, &q.q, q.limit.unwrap_or(10))
        .await?;
    Ok(axum::Json(Page {
        items: items.iter().map(MemoryDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}
