//! Handing work to the scheduler and watching it (SPEC §6.1, §7.5, §9.3): `POST
//! /agents/{slug}/wake`, `GET /runs/{id}/log` (text, or with `?follow=1` a live SSE stream),
//! `POST /runs/{id}/cancel` and `POST /audits`.
//!
//! The follow stream sends `run_output` events (`{"run_id", "text"}`: first the stored log,
//! then each chunk as the runner appends it), and a last `run_finished` event
//! (`{"run_id", "status", "exit_code", "failure_reason", "finished_at"}`) after which it ends —
//! at once if the run had already finished. A follower that falls behind its buffer gets a
//! `resync` event (`{"run_id"}`: some output was skipped, refetch the log) and goes on. Keep-alive
//! comments every 15 s; the stream ends when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::Run;
use mesa_core::domain::{DomainEvent, IssueKey, RunId};
use mesa_core::{Mesa, RunCancel};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, watch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::time;
use super::error::ApiError;
use super::events::{EventStreams, SseEvent};
use super::extract::{Auth, OptionalJson, Query};
use super::ops::{AuditDto, RunDto, slugs};
use crate::AppState;

/// Keep-alive comment period, as on `/events` (SPEC §9.4).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wake))
        .routes(routes!(log))
        .routes(routes!(cancel))
        .routes(routes!(create_audit))
}

fn run_id(id: &str) -> Result<RunId, ApiError> {
    RunId::parse(id).map_err(|e| ApiError::invalid("id", e.message))
}

async fn run_dto(mesa: &Mesa, run: &Run) -> Result<RunDto, ApiError> {
    Ok(RunDto::new(run, &slugs(mesa).await?))
}

// ---- wake ----

/// `POST /agents/{slug}/wake` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WakeBody {
    /// The issue to work on; without one the run is a heartbeat.
    issue_key: Option<String>,
}

/// Queue a run of an agent now (board only, trigger `manual`). Merged into the agent's queued
/// run for the same issue and mode, if there is one. A paused agent's run waits for the pause.
#[utoipa::path(post, path = "/agents/{slug}/wake", tag = "runs",
    params(("slug" = String, Path, description = "Agent slug or id")),
    request_body(content = WakeBody, content_type = "application/json",
        description = "Optional; an empty body wakes the agent without an issue"),
    responses(
        (status = 202, description = "The queued run", body = RunDto),
        (status = 403), (status = 404, description = "`not_found`: no such agent or issue"),
        (status = 409, description = "`agent_inactive` (the agent is deactivated) or \
            `issue_finished` (the issue is terminal)"),
        (status = 422)))]
async fn wake(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(slug): Path<String>,
    OptionalJson(body): OptionalJson<WakeBody>,
) -> Result<Response, ApiError> {
    let issue = body
        .issue_key
        .as_deref()
        .map(|k| IssueKey::parse_field("issue_key", k))
        .transpose()
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let outcome = mesa.wake_agent(&p.actor, &slug, issue.as_ref()).await?;
    let dto = run_dto(&mesa, &outcome.run).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(dto)).into_response())
}

// ---- log ----

/// `GET /runs/{id}/log` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    /// `1` (or `true`) streams the log as server-sent events until the run finishes.
    follow: Option<String>,
}

fn follows(q: &LogQuery) -> Result<bool, ApiError> {
    match q.follow.as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ApiError::invalid("follow", "follow must be 1 or 0")),
    }
}

/// A run's captured output: the board reads any run's, an agent only its own (SPEC §9.1).
/// With `?follow=1`, a server-sent event stream: `run_output` events with the stored log and
/// then each new chunk, and a final `run_finished` (sent at once if the run has finished).
#[utoipa::path(get, path = "/runs/{id}/log", tag = "runs",
    params(("id" = String, Path, description = "Run id"), LogQuery),
    responses(
        (status = 200, description = "The log as text; with `follow=1` an event stream of \
            `run_output` (`{run_id, text}`), `resync` (`{run_id}`) and a last `run_finished` \
            (`{run_id, status, exit_code, failure_reason, finished_at}`)",
            content((String = "text/plain"), (SseEvent = "text/event-stream"))),
        (status = 403, description = "`forbidden`: another agent's run"),
        (status = 404), (status = 422)))]
async fn log(
    State(mesa): State<Mesa>,
    State(streams): State<Arc<EventStreams>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    if !follows(&q)? {
        let run = mesa.run_log(&p.actor, id).await?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            run.stdout.unwrap_or_default(),
        )
            .into_response());
    }
    let follow = mesa.follow_run_log(&p.actor, id).await?;
    let mut pending = VecDeque::new();
    let stored = follow.run.stdout.as_deref().unwrap_or_default();
    if !stored.is_empty() {
        pending.push_back(output_event(id, stored));
    }
    let finished = follow.run.status.is_finished();
    if finished {
        pending.push_back(finished_event(&follow.run));
    }
    let state = Follow {
        run_id: id,
        pending,
        done: finished,
        events: follow.events,
        closing: streams.closing(),
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// One follower's position.
struct Follow {
    run_id: RunId,
    pending: VecDeque<Event>,
    /// `run_finished` was queued: end after `pending`.
    done: bool,
    events: broadcast::Receiver<Arc<DomainEvent>>,
    closing: watch::Receiver<bool>,
}

impl Follow {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        if self.done || *self.closing.borrow() {
            return None;
        }
        loop {
            let received = tokio::select! {
                biased;
                _ = self.closing.wait_for(|c| *c) => return None,
                r = self.events.recv() => r,
            };
            match received {
                Ok(event) => match &*event {
                    DomainEvent::RunOutput { run_id, text } if *run_id == self.run_id => {
                        return Some(output_event(*run_id, text));
                    }
                    DomainEvent::RunFinished(run) if run.id == self.run_id => {
                        self.done = true;
                        return Some(finished_event(run));
                    }
                    _ => {}
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(
                        Event::default()
                            .event("resync")
                            .data(json!({ "run_id": self.run_id.to_string() }).to_string()),
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn output_event(run_id: RunId, text: &str) -> Event {
    Event::default()
        .event("run_output")
        .data(json!({ "run_id": run_id.to_string(), "text": text }).to_string())
}

/// `run_finished` on the log stream.
#[derive(Debug, Serialize)]
struct RunFinishedData {
    run_id: String,
    status: &'static str,
    exit_code: Option<i64>,
    failure_reason: Option<String>,
    finished_at: Option<String>,
}

fn finished_event(run: &Run) -> Event {
    let data = RunFinishedData {
        run_id: run.id.to_string(),
        status: run.status.as_str(),
        exit_code: run.exit_code,
        failure_reason: run.failure_reason.clone(),
        finished_at: run.finished_at.map(time),
    };
    Event::default()
        .event("run_finished")
        .data(serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned()))
}

// ---- cancel ----

/// Cancel a run (board only). A queued run is `cancelled` at once (200); for a running run the
/// request is recorded and the scheduler stops it (202, the run as it is now). A finished run is
/// 409 `run_finished`.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The queued run, now cancelled", body = RunDto),
        (status = 202, description = "The running run; cancellation was requested", body = RunDto),
        (status = 403), (status = 404),
        (status = 409, description = "`run_finished`: the run already finished"),
        (status = 422)))]
async fn cancel(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let (status, run) = match mesa.cancel_run(&p.actor, id).await? {
        RunCancel::Cancelled(run) => (StatusCode::OK, run),
        RunCancel::Requested(run) => (StatusCode::ACCEPTED, run),
    };
    Ok((status, axum::Json(run_dto(&mesa, &run).await?)).into_response())
}

// ---- audits ----

/// `POST /audits` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditBody {
    /// What the auditor should look at (at most 2,000 characters).
    focus: Option<String>,
    /// How many days back the audit's figures look (1 to 90; default 14).
    window_days: Option<i64>,
}

/// Request an audit (board only): queues a run of the org's auditor (mode and trigger
/// `audit`) and records the Audit.
#[utoipa::path(post, path = "/audits", tag = "ops",
    request_body(content = AuditBody, content_type = "application/json",
        description = "Optional"),
    responses(
        (status = 201, description = "The audit, queued", body = AuditDto),
        (status = 403),
        (status = 409, description = "`no_auditor` (no active agent has the auditor \
            archetype; the message says how to hire one) or `audit_queued` (an audit run is \
            still queued)"),
        (status = 422)))]
async fn create_audit(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    OptionalJson(body): OptionalJson<AuditBody>,
) -> Result<Response, ApiError> {
    let window_days =
        mesa_core::parse_window_days(body.window_days).map_err(super::agents::invalid)?;
    let (audit, _run) = mesa
        .request_audit(&p.actor, body.focus.as_deref(), Some(window_days))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(AuditDto::from(&audit))).into_response())
}
