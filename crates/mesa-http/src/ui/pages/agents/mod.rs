//! Dashboard pages: agents (SPEC §10 "Agents", "Agent detail"; §4.1 org chart; §6, §7).
//!
//! `GET /agents` shows the org chart (a large one by its top levels, `GET /agents/org/{slug}`
//! opening an agent's reports) and a page of the roster with the scheduler switch; `GET
//! /agents/new` and `POST /agents` hire an agent; `GET
//! /agents/{slug}` one agent in tabs (overview, configuration, revisions, runs, reflections,
//! keys) with its actions. Every action is a plain form post that answers 303 back to the page
//! (Post/Redirect/Get) with a `done` code the page turns into a notice.

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

mod detail;
mod hire;
mod list;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents", get(list::page).post(hire::create))
        .route("/agents/new", get(hire::page))
        .route("/agents/scheduler", post(list::scheduler))
        .route("/agents/org/{slug}", get(list::org_reports))
        .route("/agents/{slug}", get(detail::page))
        .route("/agents/{slug}/config", post(detail::save_config))
        .route("/agents/{slug}/rollback", post(detail::rollback))
        .route("/agents/{slug}/wake", post(detail::wake))
        .route("/agents/{slug}/pause", post(detail::pause))
        .route("/agents/{slug}/resume", post(detail::resume))
        .route("/agents/{slug}/keys", post(detail::create_key))
        .route("/agents/{slug}/keys/{id}/revoke", post(detail::revoke_key))
}

/// The notice for a `done` code after a redirect (fixed texts: nothing from the URL is shown).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "saved" => "Configuration saved as a new revision.",
        "rolled_back" => "Rolled back: the old configuration is restored as a new revision.",
        "woken" => "Run queued.",
        "paused" => "Agent paused: it is deactivated and gets no new runs.",
        "resumed" => "Agent resumed: it is active again.",
        "revoked" => "Key revoked.",
        "scheduler_paused" => "Scheduler paused: nothing new is dispatched.",
        "scheduler_resumed" => "Scheduler resumed.",
        _ => return None,
    })
}

/// An agent's state as the roster shows it: `running`, `idle`, `paused` (budget, quota or
/// loop-guard pause) or `inactive`.
fn state(
    agent: &mesa_core::domain::entity::Agent,
    now: mesa_core::domain::Timestamp,
    running: bool,
) -> &'static str {
    if !agent.config.active {
        "inactive"
    } else if agent.paused_until.is_some_and(|t| t > now) {
        "paused"
    } else if running {
        "running"
    } else {
        "idle"
    }
}
