//! Incoming webhooks (SPEC §11.3): `POST /webhooks/{source}/issues` and
//! `POST /webhooks/{source}/comments`, authenticated by an HMAC-SHA256 signature over the raw
//! body with the source's secret (setting `webhook_secret_<source>`), not by a bearer token.
//!
//! The order is fixed, and nothing is parsed before the signature verifies:
//! 1. the source must have a secret (else 404: an unconfigured source has no endpoint);
//! 2. the body must fit in 1 MiB (413);
//! 3. the signature (`X-Hub-Signature-256` or `X-Mesa-Signature-256`) must verify, in constant
//!    time (401 `bad_signature`);
//! 4. the source's rate limit (setting `webhook_rate_limit_per_minute`, default 60; 429);
//! 5. a delivery id (`X-GitHub-Delivery` or `X-Mesa-Delivery`) is required (400), and a
//!    repeated one answers 200 `duplicate` and does nothing;
//! 6. the payload is parsed (400 not JSON, 422 naming the field) and acted on.
//!
//! Refusals are logged; from step 5 on they are also recorded in the delivery log as `failed`
//! with a note. Before that nothing is stored: nothing unauthenticated reaches the database.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::{Actor, CommentKind, WebhookDeliveryId, WebhookStatus};
use mesa_core::{DeliveryClaim, Mesa, WEBHOOK_SECRET_PREFIX, is_webhook_source};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use crate::AppState;
use crate::integrations::incoming::{
    self, CommentInput, DEFAULT_RATE_LIMIT_PER_MINUTE, DELIVERY_HEADERS, GITHUB_EVENT_HEADER,
    GithubEvent, MAX_BODY, MAX_DELIVERY_ID, SIGNATURE_HEADERS, ShapeError, SourceLimiter,
};

/// The per-source rate limiter of one router.
type Limiter = Arc<Mutex<SourceLimiter>>;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let limiter: Limiter = Arc::default();
    OpenApiRouter::new()
        .routes(routes!(issues))
        .routes(routes!(comments))
        .layer(Extension(limiter))
}

/// The generic issue shape (SPEC §11.3). Unknown fields are refused.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the wire shape; the handler parses the raw signed bytes"
)]
pub(crate) struct GenericIssue {
    /// 1..200 characters.
    title: String,
    /// Markdown.
    description: Option<String>,
    /// `task` (default), `bug`, `feature`, ...
    #[schema(rename = "type")]
    issue_type: Option<String>,
    /// 0 (none, default) to 4 (urgent).
    priority: Option<i64>,
}

/// The generic comment shape (SPEC §11.3). Unknown fields are refused.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the wire shape; the handler parses the raw signed bytes"
)]
pub(crate) struct GenericComment {
    /// The Mesa issue, e.g. `MESA-12`.
    issue_key: String,
    /// Who wrote it at the sender (named on the comment's first line).
    author: Option<String>,
    /// Markdown.
    body: String,
}

/// What became of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryReply {
    /// The sender's delivery id.
    delivery_id: String,
    /// `created` (an issue), `commented`, `ignored` (acknowledged, nothing done), `ping`, or
    /// `duplicate` (seen before; nothing done).
    result: String,
    /// True when the delivery id was seen before.
    duplicate: bool,
    /// The issue created or commented on.
    #[serde(skip_serializing_if = "Option::is_none")]
    issue_key: Option<String>,
    /// The comment created.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment_id: Option<String>,
    /// Why nothing was done, for `ignored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Creates an issue from a signed delivery: the generic shape, or a GitHub `issues` event
/// (action `opened`; a link back to the GitHub issue is kept for its comments). GitHub events
/// (`X-GitHub-Event`) are accepted on either route.
#[utoipa::path(post, path = "/webhooks/{source}/issues", tag = "webhooks",
    params(("source" = String, Path, description = "The source: [a-z0-9_]{1,40}, with a secret in setting webhook_secret_<source>")),
    request_body(content = GenericIssue, description = "Signed with X-Hub-Signature-256 or X-Mesa-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>"),
    security(()),
    responses(
        (status = 201, description = "issue created", body = DeliveryReply),
        (status = 200, description = "a duplicate delivery, or a ping", body = DeliveryReply),
        (status = 202, description = "acknowledged and ignored", body = DeliveryReply),
        (status = 400, description = "`missing_header` (delivery id) or `malformed_json`"),
        (status = 401, description = "`bad_signature`: missing or wrong signature"),
        (status = 404, description = "`not_found`: the source has no secret"),
        (status = 409, description = "`duplicate`: an open issue has this title"),
        (status = 413, description = "`payload_too_large`: over 1 MiB"),
        (status = 422, description = "`validation_failed`, naming the field"),
        (status = 429, description = "`rate_limited`: the source's limit, after authentication"),
    ))]
async fn issues(
    State(mesa): State<Mesa>,
    Extension(limiter): Extension<Limiter>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&mesa, &limiter, &source, Route::Issues, &headers, body).await
}

/// Posts a comment from a signed delivery: the generic shape, or a GitHub `issue_comment`
/// event (action `created`) on the Mesa issue linked to that GitHub issue.
#[utoipa::path(post, path = "/webhooks/{source}/comments", tag = "webhooks",
    params(("source" = String, Path, description = "The source: [a-z0-9_]{1,40}, with a secret in setting webhook_secret_<source>")),
    request_body(content = GenericComment, description = "Signed with X-Hub-Signature-256 or X-Mesa-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>"),
    security(()),
    responses(
        (status = 201, description = "comment posted", body = DeliveryReply),
        (status = 200, description = "a duplicate delivery, or a ping", body = DeliveryReply),
        (status = 202, description = "acknowledged and ignored", body = DeliveryReply),
        (status = 400, description = "`missing_header` (delivery id) or `malformed_json`"),
        (status = 401, description = "`bad_signature`: missing or wrong signature"),
        (status = 404, description = "`not_found`: the source has no secret, or no such issue"),
        (status = 413, description = "`payload_too_large`: over 1 MiB"),
        (status = 422, description = "`validation_failed`, naming the field"),
        (status = 429, description = "`rate_limited`: the source's limit, after authentication"),
    ))]
async fn comments(
    State(mesa): State<Mesa>,
    Extension(limiter): Extension<Limiter>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&mesa, &limiter, &source, Route::Comments, &headers, body).await
}

/// Which route a delivery came in on (the event name of generic deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Issues,
    Comments,
}

impl Route {
    fn event(self) -> &'static str {
        match self {
            Route::Issues => "issues",
            Route::Comments => "comments",
        }
    }
}

/// Logs a refusal (never its body) and turns it into the response.
fn refuse(source: &str, delivery: Option<&str>, err: ApiError) -> Response {
    tracing::warn!(
        source,
        delivery_id = delivery.unwrap_or(""),
        status = err.status().as_u16(),
        code = err.code(),
        reason = err.message(),
        "incoming webhook refused"
    );
    err.into_response()
}

async fn receive(
    mesa: &Mesa,
    limiter: &Limiter,
    source: &str,
    route: Route,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let bytes = match authenticate(mesa, source, headers, body).await {
        Ok(b) => b,
        Err(e) => return refuse(source, None, e),
    };
    let delivery_id = match rate_limit(mesa, limiter, source)
        .await
        .and_then(|()| delivery_id(headers))
    {
        Ok(id) => id,
        Err(e) => return refuse(source, None, e),
    };
    let github_event = header_text(headers, GITHUB_EVENT_HEADER);
    let event = github_event.unwrap_or(route.event());
    let delivery = match mesa
        .claim_delivery(source, event, delivery_id, &bytes)
        .await
    {
        Ok(DeliveryClaim::New(d)) => d,
        Ok(DeliveryClaim::Duplicate) => {
            tracing::info!(source, delivery_id, "duplicate incoming webhook delivery");
            let reply = DeliveryReply::new(delivery_id, "duplicate");
            return (StatusCode::OK, axum::Json(reply)).into_response();
        }
        Err(e) => return refuse(source, Some(delivery_id), e.into()),
    };
    let shape = mesa
        .setting_value(&format!("webhook_shape_{source}"))
        .await
        .unwrap_or_default();
    let outcome = match github_event {
        Some(event) => github(mesa, source, event, &bytes).await,
        None if shape == "github" => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_header",
            "a GitHub delivery needs the X-GitHub-Event header",
        )
        .with("header", "X-GitHub-Event")),
        None => generic(mesa, source, route, &bytes).await,
    };
    settle(mesa, source, delivery.id, delivery_id, outcome).await
}

/// Step 4: one delivery from the source's bucket (setting `webhook_rate_limit_per_minute`).
async fn rate_limit(mesa: &Mesa, limiter: &Limiter, source: &str) -> Result<(), ApiError> {
    let limit = mesa
        .setting_value("webhook_rate_limit_per_minute")
        .await
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE);
    limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take(source, limit, Instant::now())
        .map_err(ApiError::rate_limited)
}

/// Steps 1 to 3: a configured source, a body within the limit, a valid signature.
async fn authenticate(
    mesa: &Mesa,
    source: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    let no_source = || ApiError::not_found(format!("no incoming webhook source {source:?}"));
    if !is_webhook_source(source) {
        return Err(no_source());
    }
    let secret = mesa
        .setting_value(&format!("{WEBHOOK_SECRET_PREFIX}{source}"))
        .await
        .filter(|s| !s.is_empty())
        .ok_or_else(no_source)?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 1 MiB",
        )
    };
    // Read up to the limit even when Content-Length already says too much: answering before
    // reading would leave the sender writing into a closed connection, losing the answer.
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    let signature = SIGNATURE_HEADERS
        .iter()
        .find_map(|h| header_text(headers, h));
    match signature {
        Some(sig) if incoming::verify(secret.as_bytes(), &bytes, sig) => Ok(bytes),
        Some(_) => Err(bad_signature("the signature does not match the body")),
        None => Err(bad_signature(
            "sign the body: X-Hub-Signature-256 or X-Mesa-Signature-256: sha256=<hex>",
        )),
    }
}

fn bad_signature(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Step 5: the sender's delivery id, 1..200 printable characters.
fn delivery_id(headers: &HeaderMap) -> Result<&str, ApiError> {
    let id = DELIVERY_HEADERS
        .iter()
        .find_map(|h| header_text(headers, h))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_header",
                "a delivery id is required: X-GitHub-Delivery or X-Mesa-Delivery",
            )
            .with("header", "X-Mesa-Delivery")
        })?;
    if id.len() > MAX_DELIVERY_ID {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_header",
            format!("the delivery id is longer than {MAX_DELIVERY_ID} characters"),
        )
        .with("header", "X-Mesa-Delivery"));
    }
    Ok(id)
}

/// What a delivery did, or why it was refused.
type Outcome = Result<(StatusCode, DeliveryReply), ApiError>;

fn shape_error(e: ShapeError) -> ApiError {
    match e {
        ShapeError::NotJson(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        ),
        ShapeError::Invalid { field, message } => ApiError::invalid(&field, message),
    }
}

async fn generic(mesa: &Mesa, source: &str, route: Route, bytes: &[u8]) -> Outcome {
    let actor = Actor::Webhook {
        source: source.to_owned(),
    };
    match route {
        Route::Issues => {
            let new = incoming::parse_generic_issue(bytes).map_err(shape_error)?;
            let view = mesa.create_issue(&actor, new).await?;
            Ok((
                StatusCode::CREATED,
                DeliveryReply::new("", "created").issue(view.issue.key.as_str()),
            ))
        }
        Route::Comments => {
            let input = incoming::parse_generic_comment(bytes).map_err(shape_error)?;
            comment(mesa, &actor, input).await
        }
    }
}

async fn comment(mesa: &Mesa, actor: &Actor, input: CommentInput) -> Outcome {
    let c = mesa
        .add_comment(actor, &input.issue_key, &input.body, CommentKind::Comment)
        .await?;
    let mut reply = DeliveryReply::new("", "commented").issue(input.issue_key.as_str());
    reply.comment_id = Some(c.id.to_string());
    Ok((StatusCode::CREATED, reply))
}

async fn github(mesa: &Mesa, source: &str, event: &str, bytes: &[u8]) -> Outcome {
    let actor = Actor::Webhook {
        source: source.to_owned(),
    };
    match incoming::parse_github(event, bytes).map_err(shape_error)? {
        GithubEvent::Ping => Ok((StatusCode::OK, DeliveryReply::new("", "ping"))),
        GithubEvent::Ignored(reason) => {
            let mut reply = DeliveryReply::new("", "ignored");
            reply.note = Some(format!("ignored: {reason}"));
            Ok((StatusCode::ACCEPTED, reply))
        }
        GithubEvent::IssueOpened { url, issue } => {
            let view = mesa.create_issue(&actor, *issue).await?;
            let key = view.issue.key;
            if let Err(e) = mesa.link_external_issue(source, &url, &key).await {
                // The issue exists; only later comments will not find it.
                tracing::error!(source, %key, url, error = %e, "could not link a webhook issue");
            }
            Ok((
                StatusCode::CREATED,
                DeliveryReply::new("", "created").issue(key.as_str()),
            ))
        }
        GithubEvent::Comment { issue_url, body } => {
            match mesa.external_issue(source, &issue_url).await? {
                Some(issue_key) => comment(mesa, &actor, CommentInput { issue_key, body }).await,
                None => {
                    let mut reply = DeliveryReply::new("", "ignored");
                    reply.note = Some(format!("ignored: no Mesa issue is linked to {issue_url}"));
                    Ok((StatusCode::ACCEPTED, reply))
                }
            }
        }
    }
}

/// Step 6's end: the delivery log row becomes `processed` (with what was done) or `failed`
/// (with why), and the reply goes out.
async fn settle(
    mesa: &Mesa,
    source: &str,
    id: WebhookDeliveryId,
    delivery_id: &str,
    outcome: Outcome,
) -> Response {
    let (status, note, response) = match outcome {
        Ok((code, mut reply)) => {
            reply.delivery_id = delivery_id.to_owned();
            let note = reply.note.clone().unwrap_or_else(|| reply.summary());
            tracing::info!(source, delivery_id, result = %reply.result, "incoming webhook");
            (
                WebhookStatus::Processed,
                note,
                (code, axum::Json(reply)).into_response(),
            )
        }
        Err(e) if e.status().is_server_error() => {
            // Mesa's own failure, and nothing was created: forget the delivery so that the
            // sender's retry (same delivery id) is processed rather than called a duplicate.
            let response = refuse(source, Some(delivery_id), e);
            if let Err(e) = mesa.forget_delivery(id).await {
                tracing::error!(source, delivery_id, error = %e, "could not forget a webhook delivery");
            }
            return response;
        }
        Err(e) => {
            let note = format!("{} {}: {}", e.status().as_u16(), e.code(), e.message());
            (
                WebhookStatus::Failed,
                note,
                refuse(source, Some(delivery_id), e),
            )
        }
    };
    if let Err(e) = mesa.settle_delivery(id, status, Some(note)).await {
        tracing::error!(source, delivery_id, error = %e, "could not settle a webhook delivery");
    }
    response
}

impl DeliveryReply {
    fn new(delivery_id: &str, result: &str) -> Self {
        DeliveryReply {
            delivery_id: delivery_id.to_owned(),
            result: result.to_owned(),
            duplicate: result == "duplicate",
            issue_key: None,
            comment_id: None,
            note: None,
        }
    }

    fn issue(mut self, key: &str) -> Self {
        self.issue_key = Some(key.to_owned());
        self
    }

    /// The delivery log's note for a processed delivery.
    fn summary(&self) -> String {
        match (&self.issue_key, self.result.as_str()) {
            (Some(key), "created") => format!("created {key}"),
            (Some(key), "commented") => format!("commented on {key}"),
            (_, other) => other.to_owned(),
        }
    }
}
