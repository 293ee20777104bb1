//! Mesa's HTTP front end: the axum [`router`] and [`serve`].
//!
//! This crate knows HTTP, JSON wire shapes, HTML and SSE, and nothing below [`mesa_core`]:
//! it reaches storage only through the [`Mesa`] handle, so switching the database is a
//! configuration change, not a change here.
//!
//! Today it serves the operational endpoints: `GET /healthz` (the process is up) and
//! `GET /readyz` (the database answers and every migration is applied). The REST API and the
//! dashboard are added as modules beside [`health`].

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use mesa_core::Mesa;
use tokio::net::TcpListener;

pub mod api;
pub mod health;

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
}

impl AppState {
    /// State for `mesa` with default HTTP configuration.
    pub fn new(mesa: Mesa) -> Self {
        AppState {
            mesa,
            config: Arc::new(HttpConfig::default()),
        }
    }
}

/// The whole application as a router (tests drive it with `oneshot` or a real listener).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(api::routes())
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
