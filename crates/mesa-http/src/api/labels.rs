//! `/labels`: everyone reads; the board creates, changes and deletes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::domain::entity::Label;
use mesa_core::domain::{Color, LabelId, Name, Version};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::{board_only, invalid};
use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, IfMatch, Json};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, delete))
}

/// A label (SPEC §1).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LabelDto {
    /// UUID.
    pub(crate) id: String,
    /// Unique name.
    pub(crate) name: String,
    /// `#rrggbb`.
    pub(crate) color: String,
    /// Creation time.
    pub(crate) created_at: String,
    /// Last update.
    pub(crate) updated_at: String,
    /// Optimistic-concurrency version (also the `ETag`).
    pub(crate) version: i64,
}

impl From<&Label> for LabelDto {
    fn from(l: &Label) -> Self {
        LabelDto {
            id: l.id.to_string(),
            name: l.name.to_string(),
            color: l.color.as_str().to_owned(),
            created_at: time(l.created_at),
            updated_at: time(l.updated_at),
            version: l.version.0,
        }
    }
}

fn label_response(status: StatusCode, label: &Label) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", label.version.0)) {
        headers.insert(header::ETAG, v);
    }
    (status, headers, axum::Json(LabelDto::from(label))).into_response()
}

fn label_id(text: &str) -> Result<LabelId, ApiError> {
    LabelId::parse(text).map_err(|_| ApiError::not_found(format!("no label {text:?}")))
}

/// Every label.
#[utoipa::path(get, path = "/labels", tag = "labels",
    responses((status = 200, body = Page<LabelDto>), (status = 401)))]
async fn list(State(mesa): State<Mesa>, Auth(_p): Auth) -> Result<Response, ApiError> {
    let labels = mesa.labels().await?;
    Ok(axum::Json(Page {
        items: labels.iter().map(LabelDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}

/// `POST /labels` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LabelCreateBody)]
pub(crate) struct CreateBody {
    /// Unique name.
    name: String,
    /// `#rrggbb`.
    color: String,
}

/// Create a label (board only).
#[utoipa::path(post, path = "/labels", tag = "labels", request_body = CreateBody,
    responses((status = 201, body = LabelDto), (status = 401), (status = 403), (status = 409), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "create labels")?;
    let name = Name::parse_field("name", &b.name).map_err(invalid)?;
    let color = Color::parse(&b.color).map_err(invalid)?;
    let label = mesa.create_label(&p.actor, name, color).await?;
    Ok(label_response(StatusCode::CREATED, &label))
}

/// `PATCH /labels/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LabelPatchBody)]
pub(crate) struct PatchBody {
    /// New name.
    name: Option<String>,
    /// New `#rrggbb`.
    color: Option<String>,
    /// The version the change was made on (like `If-Match`).
    version: Option<i64>,
}

/// Rename or recolor a label (board only).
#[utoipa::path(patch, path = "/labels/{id}", tag = "labels", params(("id" = String, Path)), request_body = PatchBody,
    responses((status = 200, body = LabelDto), (status = 401), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422)))]
async fn update(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    IfMatch(if_match): IfMatch,
    Path(id): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "change labels")?;
    let id = label_id(&id)?;
    let name = b
        .name
        .as_deref()
        .map(|n| Name::parse_field("name", n))
        .transpose()
        .map_err(invalid)?;
    let color = b
        .color
        .as_deref()
        .map(Color::parse)
        .transpose()
        .map_err(invalid)?;
    let label = mesa
        .update_label(
            &p.actor,
            id,
            name,
            color,
            if_match.or(b.version.map(Version)),
        )
        .await?;
    Ok(label_response(StatusCode::OK, &label))
}

/// Delete a label and detach it from every issue (board only).
#[utoipa::path(delete, path = "/labels/{id}", tag = "labels", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    board_only(&p, "delete labels")?;
    let id = label_id(&id)?;
    mesa.delete_label(&p.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
