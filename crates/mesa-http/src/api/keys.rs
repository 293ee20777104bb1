//! Credentials (SPEC §9.1), board only: agent keys (`/agents/{slug}/keys`, `/keys/{id}`) and
//! board tokens (`/tokens`). Raw values are returned once, at creation; lists never show them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::ApiKey;
use mesa_core::domain::{ApiKeyId, ApiKeyKind, Name, Timestamp};
use mesa_core::{Mesa, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::{agent_at, board_only, invalid};
use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, Json};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_agent_key))
        .routes(routes!(revoke_agent_key))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

fn expiry(text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| Timestamp::parse_rfc3339("expires_at", t))
        .transpose()
        .map_err(invalid)
}

/// `POST /agents/{slug}/keys` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentKeyBody {
    /// Name (default `<slug> key`).
    name: Option<String>,
    /// RFC 3339 expiry, in the future.
    expires_at: Option<String>,
}

/// A newly created agent key; `key` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewAgentKeyDto {
    /// UUID.
    pub(crate) id: String,
    /// The raw key (`mesa_agt_...`), shown once.
    pub(crate) key: String,
    /// First 12 characters.
    pub(crate) prefix: String,
    /// Expiry.
    pub(crate) expires_at: Option<String>,
}

/// Create a long-lived key for an agent that runs outside Mesa (board only).
#[utoipa::path(post, path = "/agents/{slug}/keys", tag = "keys", params(("slug" = String, Path)),
    request_body(content = AgentKeyBody, content_type = "application/json"),
    responses((status = 201, body = NewAgentKeyDto), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn create_agent_key(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    board_only(&p, "create agent keys")?;
    let b: AgentKeyBody = if body.iter().all(u8::is_ascii_whitespace) {
        AgentKeyBody::default()
    } else {
        let req = axum::http::Request::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .map_err(|_| ApiError::invalid("body", "unreadable body"))?;
        let Json(b) =
            <Json<AgentKeyBody> as axum::extract::FromRequest<()>>::from_request(req, &()).await?;
        b
    };
    let agent = agent_at(&mesa, &slug).await?;
    let name = b
        .name
        .as_deref()
        .map(|n| Name::parse_field("name", n))
        .transpose()
        .map_err(invalid)?;
    let minted = mesa
        .create_agent_key(
            &p.actor,
            &agent.id.to_string(),
            name,
            expiry(b.expires_at.as_deref())?,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewAgentKeyDto {
            id: minted.key.id.to_string(),
            key: minted.raw,
            prefix: minted.key.prefix,
            expires_at: minted.key.expires_at.map(time),
        }),
    )
        .into_response())
}

/// Revokes key `id` if it is of `kind`; anything else is 404.
async fn revoke(mesa: &Mesa, p: &Principal, id: &str, kind: ApiKeyKind) -> Result<(), ApiError> {
    let missing = || ApiError::not_found(format!("no {kind} key {id:?}"));
    let id = ApiKeyId::parse(id).map_err(|_| missing())?;
    let key = mesa
        .keys(None)
        .await?
        .into_iter()
        .find(|k| k.id == id && k.kind == kind)
        .ok_or_else(missing)?;
    mesa.revoke_key(&p.actor, key.id).await?;
    Ok(())
}

/// Revoke an agent key (board only).
#[utoipa::path(delete, path = "/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn revoke_agent_key(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    board_only(&p, "revoke keys")?;
    revoke(&mesa, &p, &id, ApiKeyKind::Agent).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    /// Name (shown as `board:<name>` in the audit log).
    name: String,
    /// RFC 3339 expiry, in the future.
    expires_at: Option<String>,
}

/// A newly created board token; `token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewTokenDto {
    /// UUID.
    pub(crate) id: String,
    /// The raw token (`mesa_brd_...`), shown once.
    pub(crate) token: String,
    /// First 12 characters.
    pub(crate) prefix: String,
    /// Expiry.
    pub(crate) expires_at: Option<String>,
}

/// A board token or agent key, without its value or hash.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyDto {
    /// UUID.
    pub(crate) id: String,
    /// `board` or `agent`.
    pub(crate) kind: String,
    /// First 12 characters.
    pub(crate) prefix: String,
    /// Name.
    pub(crate) name: String,
    /// The agent (agent keys).
    pub(crate) agent_id: Option<String>,
    /// Expiry.
    pub(crate) expires_at: Option<String>,
    /// Revocation.
    pub(crate) revoked_at: Option<String>,
    /// Last successful use.
    pub(crate) last_used_at: Option<String>,
    /// Creation time.
    pub(crate) created_at: String,
}

impl From<&ApiKey> for KeyDto {
    fn from(k: &ApiKey) -> Self {
        KeyDto {
            id: k.id.to_string(),
            kind: k.kind.as_str().to_owned(),
            prefix: k.prefix.clone(),
            name: k.name.clone(),
            agent_id: k.agent_id.map(|a| a.to_string()),
            expires_at: k.expires_at.map(time),
            revoked_at: k.revoked_at.map(time),
            last_used_at: k.last_used_at.map(time),
            created_at: time(k.created_at),
        }
    }
}

/// Board tokens and agent keys, newest first, without raw values (board only).
#[utoipa::path(get, path = "/tokens", tag = "keys",
    responses((status = 200, body = Page<KeyDto>), (status = 401), (status = 403)))]
async fn list_tokens(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "list tokens")?;
    let keys = mesa.keys(None).await?;
    Ok(axum::Json(Page {
        items: keys.iter().map(KeyDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}

/// Create a board token (board only).
#[utoipa::path(post, path = "/tokens", tag = "keys", request_body = TokenBody,
    responses((status = 201, body = NewTokenDto), (status = 401), (status = 403), (status = 422)))]
async fn create_token(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<TokenBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "create tokens")?;
    let name = Name::parse_field("name", &b.name).map_err(invalid)?;
    let minted = mesa
        .create_board_token(&p.actor, name, expiry(b.expires_at.as_deref())?)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewTokenDto {
            id: minted.key.id.to_string(),
            token: minted.raw,
            prefix: minted.key.prefix,
            expires_at: minted.key.expires_at.map(time),
        }),
    )
        .into_response())
}

/// Revoke a board token (board only).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn revoke_token(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    board_only(&p, "revoke tokens")?;
    revoke(&mesa, &p, &id, ApiKeyKind::Board).await?;
    Ok(StatusCode::NO_CONTENT)
}
