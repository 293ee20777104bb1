//! Mesa's HTTP front end: the axum [`router`] and [`serve`].
//!
//! This crate knows HTTP, JSON wire shapes, HTML and SSE, and nothing below [`mesa_core`]:
//! it reaches storage only through the [`Mesa`] handle, so switching the database is a
//! configuration change, not a change here.
//!
//! It serves the operational endpoints (`GET /healthz`, `GET /readyz`, `GET /metrics`), the
//! JSON API under `/api/v1` with its OpenAPI document at `/api/openapi.json` ([`api`]), and the
//! SSE stream of committed changes at `/api/v1/events`, and the dashboard ([`ui`]): HTML pages
//! for the board behind a session login, live over SSE at `/ui/events`.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use mesa_core::Mesa;
use tokio::net::TcpListener;

pub mod api;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod ui;

/// Configuration of the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// The URL people reach Mesa at, if behind a proxy (SPEC §14 `public_url`).
    pub public_url: Option<String>,
}

/// Shared state of every handler.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The core.
    pub mesa: Mesa,
    /// HTTP configuration.
    pub config: Arc<HttpConfig>,
    /// Request counters and timings for `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The open event streams (ended at shutdown).
    pub streams: Arc<api::events::EventStreams>,
    /// The dashboard's templates.
    pub ui: Arc<ui::Ui>,
}

impl AppState {
    /// State for `mesa` with default HTTP configuration.
    pub fn new(mesa: Mesa) -> Self {
        AppState {
            mesa,
            config: Arc::new(HttpConfig::default()),
            metrics: Arc::default(),
            streams: Arc::default(),
            ui: Arc::new(ui::Ui::new(ui::Templates::embedded())),
        }
    }
}

/// The whole application as a router (tests drive it with `oneshot` or a real listener).
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .merge(health::routes())
        .merge(api::routes(&state))
        .merge(ui::routes(&state))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024));
    metrics::instrument(app, &state).with_state(state)
}

/// Unknown paths: the API's JSON error under `/api`, the dashboard's page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        api::error::ApiError::not_found(format!("no route {}", uri.path())).into_response()
    } else {
        ui::not_found().await
    }
}

/// Serves `state` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = Arc::clone(&state.streams);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Event streams never end by themselves: end them so in-flight requests can finish.
            streams.close();
        })
        .await
}
