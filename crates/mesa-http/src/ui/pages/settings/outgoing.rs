//! Outgoing webhooks and the delivery log (SPEC §11.2), linked from the Integrations section
//! of Settings:
//!
//! - `GET /settings/webhooks/outgoing`: the subscriptions (the secret shows only as set), a
//!   form to add one, and per subscription: switch on/off, send a test `ping`, delete;
//! - `GET /settings/deliveries`: every channel's deliveries, newest first (filter by channel
//!   and status): status, attempts, last error, next attempt;
//! - `GET /settings/deliveries/{id}`: one delivery, its payload and every attempt.
//!
//! Forms post to their own routes and redirect back (303); a refused subscription re-renders
//! the page with the message next to the field (422) and writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mesa_core::domain::entity::{OutboxItem, OutgoingWebhook};
use mesa_core::domain::{OutboxId, OutboxStatus, WebhookId};
use mesa_core::store::PageRequest;
use mesa_core::{
    CoreError, Mesa, NewOutboxItem, NewWebhook, OutboxFilter, SessionUser, WEBHOOK_EVENTS,
    WebhookPatch,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Deliveries shown per page of the log.
const SHOWN: u32 = 100;
const HOOKS: &str = "/settings/webhooks/outgoing";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(HOOKS, get(hooks_page).post(create))
        .route("/settings/webhooks/outgoing/{id}/toggle", post(toggle))
        .route("/settings/webhooks/outgoing/{id}/test", post(test))
        .route("/settings/webhooks/outgoing/{id}/delete", post(delete))
        .route("/settings/deliveries", get(log_page))
        .route("/settings/deliveries/{id}", get(delivery_page))
}

/// A subscription as listed.
#[derive(Debug, Serialize)]
struct HookRow {
    id: String,
    url: String,
    events: String,
    active: bool,
    description: String,
    channel: String,
    created_at: String,
}

impl From<&OutgoingWebhook> for HookRow {
    fn from(h: &OutgoingWebhook) -> Self {
        HookRow {
            id: h.id.to_string(),
            url: h.url.clone(),
            events: if h.events.is_empty() {
                "all events".to_owned()
            } else {
                h.events.join(", ")
            },
            active: h.active,
            description: h.description.clone(),
            channel: h.channel(),
            created_at: h.created_at.to_rfc3339(),
        }
    }
}

/// A delivery as listed.
#[derive(Debug, Serialize)]
struct ItemRow {
    id: String,
    channel: String,
    event: String,
    status: &'static str,
    attempts: u32,
    last_error: String,
    next_attempt_at: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

impl From<&OutboxItem> for ItemRow {
    fn from(i: &OutboxItem) -> Self {
        ItemRow {
            id: i.id.to_string(),
            channel: i.channel.clone(),
            event: i.event.clone(),
            status: i.status.as_str(),
            attempts: i.attempts,
            last_error: i.last_error.clone().unwrap_or_default(),
            next_attempt_at: (i.status == OutboxStatus::Pending)
                .then(|| i.next_attempt_at.to_rfc3339()),
            created_at: i.created_at.to_rfc3339(),
            delivered_at: i.delivered_at.map(|t| t.to_rfc3339()),
        }
    }
}

async fn hooks_page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    render_hooks(
        &mesa,
        &ui,
        &user,
        BTreeMap::new(),
        BTreeMap::new(),
        StatusCode::OK,
    )
    .await
}

async fn render_hooks(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    errors: BTreeMap<String, String>,
    values: BTreeMap<String, String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let hooks: Vec<HookRow> = mesa
        .webhooks(&user.principal.actor)
        .await?
        .iter()
        .map(HookRow::from)
        .collect();
    // Every field the form shows, empty unless kept from a refused post.
    let mut shown: BTreeMap<String, String> = ["url", "events", "description"]
        .into_iter()
        .map(|k| (k.to_owned(), String::new()))
        .collect();
    shown.extend(values);
    let ctx = context! {
        hooks => view(&hooks),
        events => WEBHOOK_EVENTS.to_vec(),
        errors => view(&errors),
        values => view(&shown),
        flag_on => mesa.settings().await.feature("webhooks_out"),
    };
    let html = ui
        .page(mesa, user, "settings", "pages/webhooks_outgoing.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

/// The event filter as typed: names separated by commas or spaces; empty means all.
fn events_of(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `POST /settings/webhooks/outgoing`: url, secret, events, description (and `_csrf`).
async fn create(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let new = NewWebhook {
        url: field("url"),
        secret: form.get("secret").cloned().unwrap_or_default(),
        events: events_of(&field("events")),
        active: true,
        description: field("description"),
    };
    match mesa.create_webhook(&user.principal.actor, new).await {
        Ok(_) => Ok(Redirect::to(HOOKS).into_response()),
        Err(CoreError::Invalid(e)) => {
            // Everything typed is kept except the secret.
            let values = ["url", "events", "description"]
                .into_iter()
                .map(|k| (k.to_owned(), field(k)))
                .collect();
            let errors = BTreeMap::from([(e.field.to_string(), e.message)]);
            render_hooks(
                &mesa,
                &ui,
                &user,
                errors,
                values,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

fn hook_id(text: &str) -> Result<WebhookId, UiError> {
    WebhookId::parse(text).map_err(|_| UiError::not_found("no such outgoing webhook"))
}

/// Switches a subscription on or off.
async fn toggle(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let actor = &user.principal.actor;
    let id = hook_id(&id)?;
    let hook = mesa.webhook(actor, id).await?;
    let patch = WebhookPatch {
        active: Some(!hook.active),
        ..WebhookPatch::default()
    };
    mesa.update_webhook(actor, id, patch).await?;
    Ok(Redirect::to(HOOKS).into_response())
}

/// Queues a `ping` to a subscription and shows its log.
async fn test(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let hook = mesa.webhook(&user.principal.actor, hook_id(&id)?).await?;
    let data = serde_json::json!({ "webhook_id": hook.id.to_string() }).to_string();
    let payload = crate::integrations::hub::envelope("ping", &mesa.now().to_rfc3339(), &data);
    mesa.enqueue_outbox(vec![NewOutboxItem {
        channel: hook.channel(),
        event: "ping".to_owned(),
        payload,
    }])
    .await?;
    let to = format!("/settings/deliveries?channel={}", hook.channel());
    Ok(Redirect::to(&to).into_response())
}

/// Deletes a subscription.
async fn delete(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    mesa.delete_webhook(&user.principal.actor, hook_id(&id)?)
        .await?;
    Ok(Redirect::to(HOOKS).into_response())
}

/// `GET /settings/deliveries` query.
#[derive(Debug, Default, Deserialize)]
struct LogQuery {
    channel: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

async fn log_page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<LogQuery>,
) -> Result<Response, UiError> {
    let channel = q.channel.filter(|c| !c.trim().is_empty());
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| OutboxStatus::parse(s).ok());
    let filter = OutboxFilter {
        channel: channel.clone(),
        status,
    };
    let page = mesa
        .outbox_log(
            &user.principal.actor,
            &filter,
            &PageRequest::new(Some(SHOWN), q.cursor),
        )
        .await?;
    let rows: Vec<ItemRow> = page.items.iter().map(ItemRow::from).collect();
    let mut channels = vec!["telegram".to_owned(), "discord".to_owned()];
    channels.extend(
        mesa.webhooks(&user.principal.actor)
            .await?
            .iter()
            .map(OutgoingWebhook::channel),
    );
    let ctx = context! {
        rows => view(&rows),
        channel => channel.unwrap_or_default(),
        status => status.map(OutboxStatus::as_str).unwrap_or_default(),
        channels => channels,
        statuses => ["pending", "delivered", "dead"],
        next_cursor => page.next_cursor,
    };
    let html = ui
        .page(&mesa, &user, "settings", "pages/deliveries.html", ctx)
        .await?;
    Ok(html.into_response())
}

/// An attempt as listed.
#[derive(Debug, Serialize)]
struct AttemptRow {
    attempt: u32,
    at: String,
    status_code: Option<u16>,
    error: String,
    duration_ms: u32,
}

async fn delivery_page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = OutboxId::parse(&id).map_err(|_| UiError::not_found("no such delivery"))?;
    let entry = mesa.outbox_entry(&user.principal.actor, id).await?;
    let attempts: Vec<AttemptRow> = entry
        .attempts
        .iter()
        .map(|a| AttemptRow {
            attempt: a.attempt,
            at: a.at.to_rfc3339(),
            status_code: a.status_code,
            error: a.error.clone().unwrap_or_default(),
            duration_ms: a.duration_ms,
        })
        .collect();
    let payload = serde_json::from_str::<serde_json::Value>(&entry.item.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| entry.item.payload.clone());
    let ctx = context! {
        item => view(&ItemRow::from(&entry.item)),
        attempts => view(&attempts),
        payload => payload,
    };
    let html = ui
        .page(&mesa, &user, "settings", "pages/delivery.html", ctx)
        .await?;
    Ok(html.into_response())
}

#[cfg(test)]
mod tests {
    use super::events_of;

    #[test]
    fn events_split_on_commas_and_spaces() {
        assert_eq!(
            events_of("issue_created, run_finished  comment_created"),
            vec!["issue_created", "run_finished", "comment_created"]
        );
        assert!(events_of("  ").is_empty());
    }
}
