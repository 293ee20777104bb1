//! The dashboard's pages, one module per area of SPEC §10. Each exposes `routes()`; handlers
//! take the [`Board`](super::session::Board) extractor (so they need a session), gather data
//! through [`mesa_core::Mesa`], and render with [`Ui::page`](super::Ui::page).

use axum::Router;

use crate::AppState;

mod agents;
mod blocks;
mod dashboard;
mod governance;
mod issues;
mod knowledge;
mod palette;
mod runs;
mod settings;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(dashboard::routes())
        .merge(palette::routes())
        .merge(issues::routes())
        .merge(agents::routes())
        .merge(runs::routes())
        .merge(blocks::routes())
        .merge(governance::routes())
        .merge(knowledge::routes())
        .merge(settings::routes())
}
