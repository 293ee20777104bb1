//! `GET /observability` (SPEC §4.3, run evaluation): the trajectory signatures of evaluated task
//! runs rolled up per archetype over a window of days.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use mesa_core::Mesa;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// The windows offered, in days.
const WINDOWS: [u32; 4] = [7, 14, 30, 90];

/// `?days=`.
#[derive(Debug, Deserialize)]
pub(super) struct WindowQuery {
    days: Option<u32>,
}

/// One archetype's row.
#[derive(Debug, Serialize)]
struct Row {
    archetype: String,
    runs: u64,
    succeeded: u64,
    avg_tool_calls: f64,
    avg_distinct_tools: f64,
    avg_reads_before_first_write: f64,
    tool_errors: u64,
    runs_with_edit: u64,
    avg_time_to_first_edit_ms: Option<f64>,
    avg_fidelity: Option<f64>,
}

/// `GET /observability`.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<WindowQuery>,
) -> Result<Html<String>, UiError> {
    let days = q.days.unwrap_or(14);
    let rows: Vec<Row> = mesa
        .observability(days)
        .await?
        .into_iter()
        .map(|a| Row {
            archetype: a.archetype,
            runs: a.runs,
            succeeded: a.succeeded,
            avg_tool_calls: a.avg_tool_calls,
            avg_distinct_tools: a.avg_distinct_tools,
            avg_reads_before_first_write: a.avg_reads_before_first_write,
            tool_errors: a.tool_errors,
            runs_with_edit: a.runs_with_edit,
            avg_time_to_first_edit_ms: a.avg_time_to_first_edit_ms,
            avg_fidelity: a.avg_fidelity,
        })
        .collect();
    let windows: Vec<[String; 3]> = WINDOWS
        .iter()
        .map(|d| {
            [
                d.to_string(),
                format!("{d} days"),
                format!("/observability?days={d}"),
            ]
        })
        .collect();
    let ctx = context! {
        days => days,
        enabled => mesa.settings().await.feature("run_evaluation"),
        archetypes => view(&rows),
        windows => view(&windows),
    };
    ui.page(
        &mesa,
        &user,
        "observability",
        "pages/observability.html",
        ctx,
    )
    .await
}
