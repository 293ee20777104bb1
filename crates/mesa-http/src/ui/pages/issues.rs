//! Dashboard pages: issues (SPEC §10). Being built.

use axum::Router;

use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
