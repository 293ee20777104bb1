//! Dashboard pages: runs (SPEC §10 "Runs", "Run detail"; §7).
//!
//! `GET /runs` lists runs newest first with filters (status, agent, issue) as bookmarkable
//! query parameters, refreshed live on `sse:runs`; `GET /runs/{id}` shows one run: its
//! figures, prompt, diff (with line classes and light syntax highlighting) and log (formatted
//! or raw; growing live while the run runs); `POST /runs/{id}/cancel` cancels it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mesa_core::domain::entity::Run;
use mesa_core::domain::{AgentId, IssueKey, RunId, RunStatus};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{Mesa, RunCancel};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ops::{RunDto, slugs};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

mod highlight;
mod log;
mod observability;

/// Runs per page.
const PER_PAGE: u32 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list))
        .route("/runs/{id}", get(detail))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/observability", get(observability::page))
}

/// A run as a list row: the API's run plus its duration.
#[derive(Debug, Serialize)]
pub(super) struct RunRow {
    #[serde(flatten)]
    run: RunDto,
    duration_ms: Option<i64>,
}

/// How long a finished run took.
fn duration_ms(r: &Run) -> Option<i64> {
    Some(r.finished_at?.as_millis() - r.started_at?.as_millis())
}

/// List rows for runs (without their large text fields).
pub(super) fn rows(runs: &[Run], slugs: &HashMap<AgentId, String>) -> Vec<RunRow> {
    runs.iter()
        .map(|r| {
            let mut run = RunDto::new(r, slugs);
            run.stdout = None;
            run.prompt = None;
            run.diff = None;
            RunRow {
                run,
                duration_ms: duration_ms(r),
            }
        })
        .collect()
}

/// `GET /runs` query: the filters and the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    status: String,
    agent: String,
    issue: String,
    cursor: String,
}

impl ListQuery {
    /// The filter, or the message for a bad parameter.
    async fn filter(&self, mesa: &Mesa) -> Result<RunFilter, String> {
        let mut f = RunFilter::default();
        if !self.status.is_empty() {
            f.statuses
                .push(RunStatus::parse_field("status", &self.status).map_err(|e| e.message)?);
        }
        if !self.agent.is_empty() {
            f.agent = Some(
                mesa.resolve_agent("agent", &self.agent)
                    .await
                    .map_err(|e| e.to_string())?
                    .id,
            );
        }
        if !self.issue.trim().is_empty() {
            f.issue =
                Some(IssueKey::parse_field("issue", self.issue.trim()).map_err(|e| e.message)?);
        }
        Ok(f)
    }

    /// This list's URL with another cursor.
    fn url_with_cursor(&self, cursor: &str) -> String {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                [
                    ("status", self.status.as_str()),
                    ("agent", self.agent.as_str()),
                    ("issue", self.issue.trim()),
                    ("cursor", cursor),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
            )
            .finish();
        if q.is_empty() {
            "/runs".to_owned()
        } else {
            format!("/runs?{q}")
        }
    }
}

/// `GET /runs`: runs, newest first, filtered; a bad filter shows its message (422).
async fn list(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let (filter, error) = match q.filter(&mesa).await {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e)),
    };
    let slugs = slugs(&mesa).await?;
    let (runs, next_url) = match &filter {
        Some(f) => {
            let cursor = Some(q.cursor.clone()).filter(|c| !c.is_empty());
            let page = mesa
                .runs(f, &PageRequest::new(Some(PER_PAGE), cursor))
                .await?;
            let next = page.next_cursor.map(|c| q.url_with_cursor(&c));
            (rows(&page.items, &slugs), next)
        }
        None => (Vec::new(), None),
    };
    let mut agents: Vec<[String; 2]> = vec![[String::new(), "Any agent".to_owned()]];
    let mut by_slug: Vec<&String> = slugs.values().collect();
    by_slug.sort();
    agents.extend(by_slug.into_iter().map(|s| [s.clone(), format!("@{s}")]));
    let mut statuses = vec![[String::new(), "Any status".to_owned()]];
    statuses.extend(
        RunStatus::ALL
            .iter()
            .map(|s| [s.as_str().to_owned(), s.as_str().replace('_', " ")]),
    );
    let self_url = q.url_with_cursor(&q.cursor);
    let ctx = context! {
        runs => view(&runs),
        next_url => next_url,
        error => error,
        filters => context! { status => q.status, agent => q.agent, issue => q.issue.trim() },
        agents => view(&agents),
        statuses => view(&statuses),
        self_url => self_url,
    };
    let status = if filter.is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = ui
        .page(&mesa, &user, "runs", "pages/runs.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

/// `GET /runs/{id}` query: which log view.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DetailQuery {
    log: String,
    done: String,
}

fn run_id(text: &str) -> Result<RunId, UiError> {
    RunId::parse(text).map_err(|_| UiError::not_found("there is no such run"))
}

/// `GET /runs/{id}`: one run with its prompt, diff and log (`?log=raw` for the raw view).
async fn detail(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, UiError> {
    let run = mesa.run_log(&user.principal.actor, run_id(&id)?).await?;
    let slugs = slugs(&mesa).await?;
    let dto = RunDto::new(&run, &slugs);
    let raw = q.log == "raw";
    let stdout = run.stdout.as_deref().unwrap_or_default();
    let (blocks, elided) = if raw {
        (Vec::new(), 0)
    } else {
        log::format(stdout)
    };
    let diff = run.diff.as_deref().map(highlight::render_diff);
    let live = matches!(run.status, RunStatus::Running | RunStatus::Queued);
    let cost_source = mesa.run_cost_source(run.id).await?.map(|s| s.as_str());
    let evaluation = mesa
        .run_evaluation(run.id)
        .await?
        .map(|e| view(&crate::api::evaluation::EvaluationDto::from(&e)));
    let id = run.id.to_string();
    let ctx = context! {
        run => view(&dto),
        duration_ms => duration_ms(&run),
        raw => raw,
        blocks => view(&blocks),
        elided => elided,
        diff => diff.map(Value::from_safe_string),
        live => live,
        cancellable => live,
        cost_source => cost_source,
        evaluation => evaluation,
        cancelled => (q.done == "cancel_requested").then_some("Cancellation requested: the scheduler stops the run."),
        log_tabs => view(&[
            ["formatted", "Formatted", &format!("/runs/{id}")],
            ["raw", "Raw", &format!("/runs/{id}?log=raw")],
        ]),
        log_tab => if raw { "raw" } else { "formatted" },
    };
    ui.page(&mesa, &user, "runs", "pages/run.html", ctx).await
}

/// `POST /runs/{id}/cancel`: cancels a queued run, or asks the scheduler to stop a running one.
async fn cancel(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = run_id(&id)?;
    let target = match mesa.cancel_run(&user.principal.actor, id).await? {
        RunCancel::Cancelled(_) => format!("/runs/{id}"),
        RunCancel::Requested(_) => format!("/runs/{id}?done=cancel_requested"),
    };
    Ok(Redirect::to(&target).into_response())
}
