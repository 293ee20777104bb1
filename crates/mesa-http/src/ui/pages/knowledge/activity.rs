//! `/activity`: the audit log, newest first, filterable by actor and entity, with the status
//! of the hash chain (SPEC §1 ActivityEvent, §10 "Activity", §14). Walking the chain reads
//! every row, so it runs only on request (`POST /activity/verify`); the page shows the last
//! outcome, kept in a small file of the data directory.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mesa_core::Mesa;
use mesa_core::domain::entity::ActivityEvent;
use mesa_core::store::{ActivityFilter, PageRequest};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ops::ActivityDto;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Rows per page.
const PAGE_SIZE: u32 = 50;
/// With an action prefix (not indexed), rows are scanned newest first in pages of this size...
const SCAN_PAGE: u32 = 500;
/// ...at most this many pages per request, so a rare prefix costs a bounded time; the pager
/// continues the scan.
const SCAN_PAGES: usize = 4;
/// The file (in the data directory) holding the last verification's outcome.
const LAST_CHECK_FILE: &str = "activity-chain-check.json";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/activity", get(list))
        .route("/activity/verify", post(verify))
}

/// `GET /activity` filters (all optional; empty values are ignored).
#[derive(Debug, Default, Deserialize, Serialize)]
struct ActivityQuery {
    /// An agent slug, `board`, `board:<name>`, `system`...
    #[serde(default)]
    actor: String,
    /// Action prefix, e.g. `wiki.` or `issue.create`.
    #[serde(default)]
    action: String,
    /// Entity type, e.g. `issue`.
    #[serde(default)]
    entity_type: String,
    /// Entity id, e.g. `MESA-12` (used with `entity_type`).
    #[serde(default)]
    entity_id: String,
    #[serde(default, skip_serializing)]
    cursor: Option<String>,
}

impl ActivityQuery {
    fn filter(&self) -> ActivityFilter {
        let mut filter = ActivityFilter::default();
        let (kind, id) = (self.entity_type.trim(), self.entity_id.trim());
        if !kind.is_empty() && !id.is_empty() {
            filter.entity = Some((kind.to_owned(), id.to_owned()));
        }
        let actor = self.actor.trim();
        if !actor.is_empty() {
            filter.actor = Some(actor.to_owned());
        }
        filter
    }

    /// The query string of these filters (no cursor), for pager links.
    fn query_string(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                [
                    ("actor", self.actor.trim()),
                    ("action", self.action.trim()),
                    ("entity_type", self.entity_type.trim()),
                    ("entity_id", self.entity_id.trim()),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
            )
            .finish()
    }
}

/// The outcome of the last chain verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChainCheck {
    /// Rows checked.
    checked: u64,
    /// The first row that does not verify.
    first_bad: Option<i64>,
    /// When it ran (RFC 3339).
    at: String,
}

fn check_path(mesa: &Mesa) -> PathBuf {
    mesa.config().data_dir.join(LAST_CHECK_FILE)
}

/// The last verification, if one ran (an unreadable file counts as none).
async fn last_check(mesa: &Mesa) -> Option<ChainCheck> {
    let bytes = tokio::fs::read(check_path(mesa)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where an entity's page is, if it has one.
fn entity_href(kind: &str, id: &str) -> Option<String> {
    let enc: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let base = match kind {
        "issue" => "/issues",
        "agent" => "/agents",
        "run" => "/runs",
        "work_block" | "block" => "/blocks",
        "wiki" => "/wiki",
        "approval" => "/approvals",
        "archetype" => "/governance/archetypes",
        _ => return None,
    };
    Some(format!("{base}/{enc}"))
}

/// A row of the log as the page shows it.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    event: ActivityDto,
    href: Option<String>,
}

async fn list(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ActivityQuery>,
) -> Result<Html<String>, UiError> {
    let first_page = q.cursor.is_none();
    let (events, next_cursor, scanned) = fetch(&mesa, &q).await?;
    let rows: Vec<Row> = events
        .iter()
        .map(|a| {
            let mut event = ActivityDto::from(a);
            event.data = serde_json::Value::Null;
            let href = entity_href(&event.entity_type, &event.entity_id);
            Row { event, href }
        })
        .collect();
    let qs = q.query_string();
    let here = if qs.is_empty() {
        "/activity".to_owned()
    } else {
        format!("/activity?{qs}")
    };
    let next_url = next_cursor.map(|c| {
        let sep = if qs.is_empty() { "?" } else { "&" };
        let c: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
        format!("{here}{sep}cursor={c}")
    });
    let ctx = context! {
        filters => view(&q),
        rows => view(&rows),
        next_url => next_url,
        here => here,
        live => first_page,
        scanned => scanned,
        check => view(&last_check(&mesa).await),
    };
    ui.page(&mesa, &user, "activity", "pages/activity.html", ctx)
        .await
}

/// The rows to show and the cursor after them. Without an action prefix, one indexed page;
/// with one, up to [`SCAN_PAGES`] pages filtered here (`scanned` then says how many rows were
/// read, so the page can say that older matches may follow).
async fn fetch(
    mesa: &Mesa,
    q: &ActivityQuery,
) -> Result<(Vec<ActivityEvent>, Option<String>, Option<usize>), UiError> {
    let filter = q.filter();
    let prefix = q.action.trim();
    if prefix.is_empty() {
        let page = mesa
            .activity_log(
                &filter,
                &PageRequest::new(Some(PAGE_SIZE), q.cursor.clone()),
            )
            .await?;
        return Ok((page.items, page.next_cursor, None));
    }
    let mut found = Vec::new();
    let mut cursor = q.cursor.clone();
    let mut scanned = 0;
    for _ in 0..SCAN_PAGES {
        let page = mesa
            .activity_log(&filter, &PageRequest::new(Some(SCAN_PAGE), cursor))
            .await?;
        scanned += page.items.len();
        found.extend(
            page.items
                .into_iter()
                .filter(|a| a.action.starts_with(prefix)),
        );
        cursor = page.next_cursor;
        if cursor.is_none() || found.len() >= usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok((found, cursor, Some(scanned)))
}

/// `POST /activity/verify`: walks the whole chain, records the outcome, back to the log.
async fn verify(State(mesa): State<Mesa>, Board(_user): Board) -> Result<Response, UiError> {
    let report = mesa.verify_activity().await?;
    let check = ChainCheck {
        checked: report.checked,
        first_bad: report.first_bad.map(|id| id.0),
        at: mesa.now().to_rfc3339(),
    };
    let json = serde_json::to_vec(&check)
        .map_err(|e| UiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(err) = tokio::fs::write(check_path(&mesa), json).await {
        tracing::warn!(error = %err, "cannot record the activity chain check");
    }
    Ok(Redirect::to("/activity").into_response())
}
