//! Dashboard pages: settings and costs (SPEC §10 "Settings", "Costs"; §6.2 budgets, §11.5
//! feature flags, §12 backup, §14 secrets).

use axum::Router;

use crate::AppState;

mod costs;
mod incoming;
mod outgoing;
mod page;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(page::routes())
        .merge(costs::routes())
        .merge(incoming::routes())
        .merge(outgoing::routes())
}
