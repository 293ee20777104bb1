//! The dashboard (SPEC §10): server-rendered pages from the minijinja templates in
//! `templates/`, HTMX for interactions and the SSE extension for live updates, all assets
//! embedded. Every page needs a board session (`session.rs`); every state-changing request is
//! checked for its CSRF token and `Origin` before any handler runs.
//!
//! Page handlers gather data through [`Mesa`] (reusing the API's DTOs as view models, so a
//! page shows exactly what the API returns) and render with `Ui::page`, which adds what the
//! layout needs: the current page, the user, the CSRF token, the navigation counts.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mesa_core::domain::{Actor, IssueStatus, RunStatus};
use mesa_core::{Mesa, SessionUser};
use minijinja::Value;
use minijinja::context;

use crate::AppState;

pub(crate) mod assets;
pub(crate) mod chart;
pub(crate) mod diff;
pub(crate) mod error;
pub(crate) mod events;
mod login;
pub(crate) mod markdown;
mod pages;
pub(crate) mod session;
pub mod templates;

pub use templates::Templates;

use error::UiError;

/// The dashboard's state: its templates.
#[derive(Debug, Clone)]
pub struct Ui {
    templates: Templates,
}

impl Ui {
    /// A dashboard rendering with `templates`.
    pub fn new(templates: Templates) -> Self {
        Ui { templates }
    }

    /// Renders a template with exactly `ctx` (fragments, the login page).
    pub(crate) fn render(&self, name: &str, ctx: &Value) -> Result<Html<String>, UiError> {
        self.templates
            .render(name, ctx)
            .map(Html)
            .map_err(|e| UiError::render(&e))
    }

    /// Renders page template `name` for `user`, adding what the layout needs to `ctx`:
    /// `page` (the navigation id), `user`, `csrf`, `nav` (counts), `version`, `now_ms`, and
    /// `no_agent_cli` (no agent CLI was found on PATH at start: the layout shows the banner of
    /// SPEC §4.4).
    pub(crate) async fn page(
        &self,
        mesa: &Mesa,
        user: &SessionUser,
        page: &str,
        name: &str,
        ctx: Value,
    ) -> Result<Html<String>, UiError> {
        let nav = nav_counts(mesa).await?;
        let full = context! {
            page => page,
            user => board_name(&user.principal.actor),
            csrf => user.csrf.as_str(),
            nav => nav,
            version => env!("CARGO_PKG_VERSION"),
            now_ms => mesa.now().as_millis(),
            no_agent_cli => mesa.config().available_runners.is_empty(),
            ..ctx
        };
        self.render(name, &full)
    }
}

/// Any serializable view model as a template value.
pub(crate) fn view<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// The board member's display name (the token name).
pub(crate) fn board_name(actor: &Actor) -> String {
    match actor {
        Actor::Board { token_name } => token_name.clone(),
        other => other.to_string(),
    }
}

/// The sidebar's counts: open issues, issues in review, pending approvals, runs in flight (from
/// the core's read cache while nothing was committed since they were counted).
async fn nav_counts(mesa: &Mesa) -> Result<Value, UiError> {
    let counts = mesa.status_counts().await?;
    Ok(context! {
        issues_open => counts.issues_in(&[
            IssueStatus::Todo, IssueStatus::InProgress, IssueStatus::Blocked,
            IssueStatus::InReview, IssueStatus::BoardReview,
        ]),
        in_review => counts.issues_in(&[IssueStatus::InReview, IssueStatus::BoardReview]),
        approvals_pending => counts.approvals_pending,
        runs_active => counts.runs_in(&[RunStatus::Running, RunStatus::Queued]),
    })
}

/// Security headers on every dashboard response: no inline scripts or eval (htmx is
/// configured for that), nothing from other origins, no framing.
async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The dashboard's routes: pages, login, the palette, live events and static files.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .merge(pages::routes())
        .route("/ui/events", get(events::stream))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        .layer(middleware::from_fn(security_headers))
        .route("/static/{hash}/{*path}", get(assets::serve))
}

/// Renders a not-found page for unknown dashboard paths.
pub(crate) async fn not_found() -> Response {
    UiError::not_found("there is no page here").into_response()
}
