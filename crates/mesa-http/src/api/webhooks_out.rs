//! Outgoing webhooks and the delivery log (SPEC §11.2), board only:
//! `/outgoing-webhooks` (CRUD; the secret is write-only, shown as `secret_set`),
//! `/outgoing-webhooks/{id}/deliveries` (that subscription's log), `/outgoing-webhooks/{id}/test`
//! (queues a `ping`), and `/outbox` (every channel's log, filterable) with `/outbox/{id}` (one
//! delivery and its attempts). Named apart from the incoming `/webhooks/{source}/...` routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{DeliveryAttempt, OutboxItem, OutgoingWebhook};
use mesa_core::domain::{OutboxId, OutboxStatus, WebhookId};
use mesa_core::store::PageRequest;
use mesa_core::{Mesa, NewOutboxItem, NewWebhook, OutboxFilter, WebhookPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::board_only;
use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hooks, create_hook))
        .routes(routes!(show_hook, patch_hook, delete_hook))
        .routes(routes!(hook_deliveries))
        .routes(routes!(test_hook))
        .routes(routes!(list_outbox))
        .routes(routes!(show_outbox))
}

/// An outgoing-webhook subscription (the secret is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookDto {
    /// UUID.
    pub(crate) id: String,
    /// Where events are POSTed.
    pub(crate) url: String,
    /// Event names delivered; empty means all.
    pub(crate) events: Vec<String>,
    /// Whether deliveries are made.
    pub(crate) active: bool,
    /// A note.
    pub(crate) description: String,
    /// Always true: a subscription has a secret, which is write-only.
    pub(crate) secret_set: bool,
    /// The outbox channel of its deliveries (`webhook:<id>`).
    pub(crate) channel: String,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) updated_at: String,
}

impl From<&OutgoingWebhook> for WebhookDto {
    fn from(h: &OutgoingWebhook) -> Self {
        WebhookDto {
            id: h.id.to_string(),
            url: h.url.clone(),
            events: h.events.clone(),
            active: h.active,
            description: h.description.clone(),
            secret_set: !h.secret.is_empty(),
            channel: h.channel(),
            created_at: time(h.created_at),
            updated_at: time(h.updated_at),
        }
    }
}

/// One delivery of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OutboxItemDto {
    /// UUID (also the `X-Mesa-Delivery` header).
    pub(crate) id: String,
    /// `telegram`, `discord` or `webhook:<uuid>`.
    pub(crate) channel: String,
    /// The event name.
    pub(crate) event: String,
    /// pending, delivered or dead.
    pub(crate) status: String,
    /// Attempts made.
    pub(crate) attempts: u32,
    /// When the next attempt is due (pending only).
    pub(crate) next_attempt_at: Option<String>,
    /// The last failure.
    pub(crate) last_error: Option<String>,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) delivered_at: Option<String>,
    /// The JSON sent, as text (only on `GET /outbox/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<String>,
    /// The attempts, oldest first (only on `GET /outbox/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attempt_log: Option<Vec<AttemptDto>>,
}

impl From<&OutboxItem> for OutboxItemDto {
    fn from(i: &OutboxItem) -> Self {
        OutboxItemDto {
            id: i.id.to_string(),
            channel: i.channel.clone(),
            event: i.event.clone(),
            status: i.status.as_str().to_owned(),
            attempts: i.attempts,
            next_attempt_at: (i.status == OutboxStatus::Pending).then(|| time(i.next_attempt_at)),
            last_error: i.last_error.clone(),
            created_at: time(i.created_at),
            delivered_at: i.delivered_at.map(time),
            payload: None,
            attempt_log: None,
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptDto {
    /// 1 for the first.
    pub(crate) attempt: u32,
    /// RFC 3339.
    pub(crate) at: String,
    /// The receiver's HTTP status, if it answered.
    pub(crate) status_code: Option<u16>,
    /// What went wrong.
    pub(crate) error: Option<String>,
    /// How long it took.
    pub(crate) duration_ms: u32,
}

impl From<&DeliveryAttempt> for AttemptDto {
    fn from(a: &DeliveryAttempt) -> Self {
        AttemptDto {
            attempt: a.attempt,
            at: time(a.at),
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

/// `POST /outgoing-webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// http:// or https:// URL.
    url: String,
    /// The HMAC-SHA256 key (write-only).
    secret: String,
    /// Event names; empty or absent means all.
    #[serde(default)]
    events: Vec<String>,
    /// Default true.
    active: Option<bool>,
    /// A note.
    #[serde(default)]
    description: String,
}

/// `PATCH /outgoing-webhooks/{id}` body; absent fields are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchBody {
    /// New URL.
    url: Option<String>,
    /// New secret.
    secret: Option<String>,
    /// New event filter.
    events: Option<Vec<String>>,
    /// On or off.
    active: Option<bool>,
    /// New note.
    description: Option<String>,
}

/// Query of the delivery logs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    /// Only this channel (`telegram`, `discord`, `webhook:<uuid>`); `/outbox` only.
    channel: Option<String>,
    /// pending, delivered or dead.
    status: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

fn hook_id(text: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(text).map_err(|_| ApiError::not_found(format!("no outgoing webhook {text:?}")))
}

fn outbox_id(text: &str) -> Result<OutboxId, ApiError> {
    OutboxId::parse(text).map_err(|_| ApiError::not_found(format!("no delivery {text:?}")))
}

fn status_of(text: Option<&str>) -> Result<Option<OutboxStatus>, ApiError> {
    text.map(|s| OutboxStatus::parse(s).map_err(|e| ApiError::invalid("status", e.message)))
        .transpose()
}

/// List outgoing webhooks (board only).
#[utoipa::path(get, path = "/outgoing-webhooks", tag = "webhooks",
    responses((status = 200, body = Page<WebhookDto>), (status = 401), (status = 403)))]
async fn list_hooks(State(mesa): State<Mesa>, Auth(p): Auth) -> Result<Response, ApiError> {
    board_only(&p, "read outgoing webhooks")?;
    let hooks = mesa.webhooks(&p.actor).await?;
    Ok(axum::Json(Page {
        items: hooks.iter().map(WebhookDto::from).collect(),
        next_cursor: None,
    })
    .into_response())
}

/// Subscribe a URL to events (board only).
#[utoipa::path(post, path = "/outgoing-webhooks", tag = "webhooks", request_body = CreateBody,
    responses((status = 201, body = WebhookDto), (status = 401), (status = 403), (status = 422)))]
async fn create_hook(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "configure outgoing webhooks")?;
    let new = NewWebhook {
        url: b.url,
        secret: b.secret,
        events: b.events,
        active: b.active.unwrap_or(true),
        description: b.description,
    };
    let hook = mesa.create_webhook(&p.actor, new).await?;
    Ok((StatusCode::CREATED, axum::Json(WebhookDto::from(&hook))).into_response())
}

/// Read an outgoing webhook (board only).
#[utoipa::path(get, path = "/outgoing-webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookDto), (status = 401), (status = 403), (status = 404)))]
async fn show_hook(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "read outgoing webhooks")?;
    let hook = mesa.webhook(&p.actor, hook_id(&id)?).await?;
    Ok(axum::Json(WebhookDto::from(&hook)).into_response())
}

/// Change an outgoing webhook (board only).
#[utoipa::path(patch, path = "/outgoing-webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = PatchBody,
    responses((status = 200, body = WebhookDto), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn patch_hook(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Json(b): Json<PatchBody>,
) -> Result<Response, ApiError> {
    board_only(&p, "configure outgoing webhooks")?;
    let patch = WebhookPatch {
        url: b.url,
        secret: b.secret,
        events: b.events,
        active: b.active,
        description: b.description,
    };
    let hook = mesa.update_webhook(&p.actor, hook_id(&id)?, patch).await?;
    Ok(axum::Json(WebhookDto::from(&hook)).into_response())
}

/// Delete an outgoing webhook (board only); its queued deliveries are not made.
#[utoipa::path(delete, path = "/outgoing-webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_hook(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    board_only(&p, "configure outgoing webhooks")?;
    mesa.delete_webhook(&p.actor, hook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The deliveries of one outgoing webhook, newest first (board only).
#[utoipa::path(get, path = "/outgoing-webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), LogQuery),
    responses((status = 200, body = Page<OutboxItemDto>), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn hook_deliveries(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    board_only(&p, "read the delivery log")?;
    let hook = mesa.webhook(&p.actor, hook_id(&id)?).await?;
    let filter = OutboxFilter {
        channel: Some(hook.channel()),
        status: status_of(q.status.as_deref())?,
    };
    log_page(&mesa, &p, &filter, PageRequest::new(q.limit, q.cursor)).await
}

/// Queue a `ping` delivery to an outgoing webhook now (board only); it is delivered like any
/// event, so it shows in the delivery log.
#[utoipa::path(post, path = "/outgoing-webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, body = OutboxItemDto), (status = 401), (status = 403), (status = 404)))]
async fn test_hook(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "test outgoing webhooks")?;
    let hook = mesa.webhook(&p.actor, hook_id(&id)?).await?;
    let data = serde_json::json!({ "webhook_id": hook.id.to_string() }).to_string();
    let payload = crate::integrations::hub::envelope("ping", &mesa.now().to_rfc3339(), &data);
    let queued = mesa
        .enqueue_outbox(vec![NewOutboxItem {
            channel: hook.channel(),
            event: "ping".to_owned(),
            payload,
        }])
        .await?;
    let item = queued
        .first()
        .ok_or_else(|| ApiError::not_found("nothing was queued"))?;
    Ok((StatusCode::ACCEPTED, axum::Json(OutboxItemDto::from(item))).into_response())
}

/// The delivery log of every channel, newest first (board only).
#[utoipa::path(get, path = "/outbox", tag = "webhooks", params(LogQuery),
    responses((status = 200, body = Page<OutboxItemDto>), (status = 401), (status = 403), (status = 422)))]
async fn list_outbox(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    board_only(&p, "read the delivery log")?;
    let filter = OutboxFilter {
        channel: q.channel.filter(|c| !c.is_empty()),
        status: status_of(q.status.as_deref())?,
    };
    log_page(&mesa, &p, &filter, PageRequest::new(q.limit, q.cursor)).await
}

async fn log_page(
    mesa: &Mesa,
    p: &mesa_core::Principal,
    filter: &OutboxFilter,
    page: PageRequest,
) -> Result<Response, ApiError> {
    let page = mesa.outbox_log(&p.actor, filter, &page).await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(OutboxItemDto::from).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// One delivery with its payload and attempts (board only).
#[utoipa::path(get, path = "/outbox/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = OutboxItemDto), (status = 401), (status = 403), (status = 404)))]
async fn show_outbox(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    board_only(&p, "read the delivery log")?;
    let entry = mesa.outbox_entry(&p.actor, outbox_id(&id)?).await?;
    let mut dto = OutboxItemDto::from(&entry.item);
    dto.payload = Some(entry.item.payload.clone());
    dto.attempt_log = Some(entry.attempts.iter().map(AttemptDto::from).collect());
    Ok(axum::Json(dto).into_response())
}
