//! `GET /settings/webhooks/incoming`: the log of incoming webhook deliveries (SPEC §11.3), newest
//! first: source, event, the sender's delivery id, what became of it and why, and when. Linked
//! from the Integrations section of Settings.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mesa_core::Mesa;
use minijinja::context;
use serde::Serialize;

use crate::AppState;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Rows shown.
const SHOWN: u32 = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/settings/webhooks/incoming", get(page))
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    source: String,
    event: String,
    delivery_id: String,
    status: &'static str,
    note: String,
    at: String,
}

async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    let rows: Vec<Row> = mesa
        .incoming_deliveries(SHOWN)
        .await?
        .into_iter()
        .map(|d| Row {
            source: d.source,
            event: d.event,
            delivery_id: d.delivery_id,
            status: d.status.as_str(),
            note: d.note.unwrap_or_default(),
            at: d.created_at.to_rfc3339(),
        })
        .collect();
    let html = ui
        .page(
            &mesa,
            &user,
            "settings",
            "pages/webhooks_incoming.html",
            context! { rows => view(&rows), shown => SHOWN },
        )
        .await?;
    Ok(html.into_response())
}
