//! Dashboard pages: knowledge (SPEC §10). Being built.

use axum::Router;

use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
