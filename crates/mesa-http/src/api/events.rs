//! `GET /api/v1/events`: committed domain events as server-sent events (SPEC §9.4).
//!
//! Each event is `event: <name>` / `data: <json>` / `id: <n>`, where `n` is the id the core's
//! event journal gave it (monotonically increasing within the process). The data is the entity
//! after the change in its API shape (`IssueDto`, with `previous_status` on `issue_updated`;
//! `CommentDto`, `WorkBlockDto`, `ApprovalDto`, `ActivityDto`), or a compact object for runs
//! (also `run_cancel_requested`), agents (no `env`), budget pauses, deletions (`{key}`), the
//! scheduler (`{paused}`) and board notifications (`board_notification`: `{message, issue_key}`).
//! `run_output` is not sent here (it belongs to the run-log stream).
//!
//! A client reconnecting with `Last-Event-ID: n` first receives every event after `n` that the
//! journal still keeps (the last 10,000), or one `resync` event when some are gone; then the
//! live events. A subscriber never slows publishing: it reads from a bounded broadcast buffer,
//! and one that falls behind (a client that stops reading) gets a single `resync` and continues
//! from the live events. Every event is rendered to JSON once, however many streams send it.
//! Streams end when the server shuts down ([`EventStreams::close`]), so graceful shutdown does
//! not wait for them.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mesa_core::domain::entity::{Agent, Issue, Run};
use mesa_core::domain::{AgentId, DomainEvent, IssueKey, Slug};
use mesa_core::{IssueView, JournalEntry, Mesa, Replay};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{OnceCell, broadcast, watch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::approvals::{ApprovalDto, Slugs};
use super::blocks::WorkBlockDto;
use super::dto::{CommentDto, IssueDto, time};
use super::error::ApiError;
use super::extract::Auth;
use super::ops::ActivityDto;
use crate::AppState;

/// Keep-alive comment period (SPEC §9.4).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How many rendered events are kept for streams that have not sent them yet.
const RENDERED_CAPACITY: usize = 4096;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The server's event streams: their shutdown signal and the events rendered once for all.
#[derive(Debug)]
pub struct EventStreams {
    closing: watch::Sender<bool>,
    rendered: Mutex<BTreeMap<u64, Arc<Rendered>>>,
}

/// An event's JSON data, rendered once (`None`: not sent on this stream).
type Rendered = OnceCell<Option<Arc<str>>>;

impl Default for EventStreams {
    fn default() -> Self {
        EventStreams {
            closing: watch::Sender::new(false),
            rendered: Mutex::new(BTreeMap::new()),
        }
    }
}

impl EventStreams {
    /// Ends every open stream (and every stream opened later): called when the server shuts
    /// down, so that graceful shutdown does not wait for them.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns `true` when the server shuts down (other streams end on it too).
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The JSON data of `entry`, rendered by the first stream that needs it; `None` for events
    /// this stream does not carry.
    async fn data(&self, mesa: &Mesa, entry: &JournalEntry) -> Option<Arc<str>> {
        let cell = {
            let mut map = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
            let cell = Arc::clone(map.entry(entry.id).or_default());
            while map.len() > RENDERED_CAPACITY {
                map.pop_first();
            }
            cell
        };
        cell.get_or_init(|| render(mesa, &entry.event))
            .await
            .clone()
    }
}

/// The event stream (board tokens only).
/// One server-sent event as a client parses it: its name, id and JSON data.
#[derive(Debug, utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the wire format for the OpenAPI document only"
)]
pub(crate) struct SseEvent {
    /// The event name (`issue_created`, `resync`, ...).
    event: Option<String>,
    /// The event id, for `Last-Event-ID`.
    id: Option<String>,
    /// The JSON payload, as text.
    data: String,
}

#[utoipa::path(get, path = "/events", tag = "events",
    params(("Last-Event-ID" = Option<u64>, Header,
        description = "The id of the last event received; what followed it is sent first")),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "`event: <name>` / `data: <json>` / `id: <n>` per committed change; \
                `resync` when the client must refetch", body = SseEvent),
        (status = 401), (status = 403)))]
async fn stream(
    State(mesa): State<Mesa>,
    State(streams): State<Arc<EventStreams>>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if !p.is_board() {
        return Err(
            ApiError::forbidden("only the board may follow the event stream")
                .with("required", "board"),
        );
    }
    // An id this server cannot place (not a number) is answered like one too old: resync.
    let after = headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    let journal = mesa.events().journal();
    let sub = journal.subscribe(after.map(|n| n.unwrap_or(u64::MAX)));
    let mut pending = std::collections::VecDeque::new();
    match sub.replay {
        Replay::Missed(entries) => pending.extend(entries.into_iter().map(Item::Entry)),
        Replay::Resync { last_id } => pending.push_back(Item::Resync(last_id)),
    }
    let closing = streams.closing.subscribe();
    let state = StreamState {
        mesa,
        streams,
        pending,
        live: sub.live,
        closing,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

enum Item {
    Entry(Arc<JournalEntry>),
    Resync(u64),
}

struct StreamState {
    mesa: Mesa,
    streams: Arc<EventStreams>,
    pending: std::collections::VecDeque<Item>,
    live: broadcast::Receiver<Arc<JournalEntry>>,
    closing: watch::Receiver<bool>,
}

impl StreamState {
    /// The next SSE event, or `None` when the stream ends (server shutdown).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let item = match self.pending.pop_front() {
                Some(item) => item,
                None => tokio::select! {
                    biased;
                    _ = self.closing.wait_for(|c| *c) => return None,
                    received = self.live.recv() => match received {
                        Ok(entry) => Item::Entry(entry),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Fell behind its buffer: tell it to refetch, go on from live.
                            let (last_id, live) = self.mesa.events().journal().resubscribe();
                            self.live = live;
                            Item::Resync(last_id)
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                },
            };
            match item {
                Item::Resync(last_id) => return Some(resync(last_id)),
                Item::Entry(entry) => {
                    if let Some(data) = self.streams.data(&self.mesa, &entry).await {
                        return Some(
                            Event::default()
                                .event(entry.event.name())
                                .id(entry.id.to_string())
                                .data(&*data),
                        );
                    }
                }
            }
        }
    }
}

/// The `resync` event: refetch, then continue after `last_id`.
fn resync(last_id: u64) -> Event {
    Event::default()
        .event("resync")
        .id(last_id.to_string())
        .data(json!({ "last_id": last_id }).to_string())
}

/// A run as events show it (no prompt, output or diff).
#[derive(Debug, Serialize)]
struct RunEventDto {
    id: String,
    agent_id: String,
    agent_slug: Option<String>,
    issue_key: Option<String>,
    mode: String,
    status: String,
    triggers: Vec<String>,
    runner: String,
    model: String,
    exit_code: Option<i64>,
    failure_reason: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
    queued_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl RunEventDto {
    fn new(r: &Run, slug: Option<String>) -> Self {
        RunEventDto {
            id: r.id.to_string(),
            agent_id: r.agent_id.to_string(),
            agent_slug: slug,
            issue_key: r.issue_key.as_ref().map(ToString::to_string),
            mode: r.mode.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            triggers: r.triggers.iter().map(|t| t.as_str().to_owned()).collect(),
            runner: r.runner.as_str().to_owned(),
            model: r.model.clone(),
            exit_code: r.exit_code,
            failure_reason: r.failure_reason.clone(),
            input_tokens: r.usage.input_tokens,
            output_tokens: r.usage.output_tokens,
            cost_usd: r.cost_usd.as_usd(),
            queued_at: time(r.queued_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
        }
    }
}

/// An agent as events show it (no environment: it may hold provider keys).
#[derive(Debug, Serialize)]
struct AgentEventDto {
    id: String,
    slug: String,
    name: String,
    archetype: String,
    runner: String,
    model: String,
    reports_to: Option<String>,
    active: bool,
    paused_until: Option<String>,
    pause_reason: Option<String>,
    updated_at: String,
    version: i64,
}

impl AgentEventDto {
    fn new(a: &Agent, slug_of: impl Fn(AgentId) -> Option<String>) -> Self {
        AgentEventDto {
            id: a.id.to_string(),
            slug: a.slug.to_string(),
            name: a.config.name.to_string(),
            archetype: a.config.archetype.to_string(),
            runner: a.config.runner.as_str().to_owned(),
            model: a.config.model.clone(),
            reports_to: a.config.reports_to.and_then(slug_of),
            active: a.config.active,
            paused_until: a.paused_until.map(time),
            pause_reason: a.paused_until.and_then(|_| a.pause_reason.clone()),
            updated_at: time(a.updated_at),
            version: a.version.0,
        }
    }
}

/// `issue_updated`: the issue, and its previous status when that changed.
#[derive(Serialize)]
struct IssueUpdatedDto {
    #[serde(flatten)]
    issue: IssueDto,
    previous_status: Option<&'static str>,
}

/// Agent ids to slugs (empty if the roster cannot be read: the ids are still sent).
async fn roster(mesa: &Mesa) -> HashMap<AgentId, Slug> {
    match mesa.agents().await {
        Ok(agents) => agents.into_iter().map(|a| (a.id, a.slug)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "events: cannot read the roster");
            HashMap::new()
        }
    }
}

fn issue_dto(issue: &Issue, slugs: &HashMap<AgentId, Slug>) -> IssueDto {
    IssueDto::from(&IssueView {
        issue: issue.clone(),
        assignee_slug: issue.assignee_id.and_then(|id| slugs.get(&id).cloned()),
        warnings: Vec::new(),
    })
}

/// The JSON data of an event; `None` for `run_output`.
pub(crate) async fn render(mesa: &Mesa, event: &DomainEvent) -> Option<Arc<str>> {
    let slug_of =
        |slugs: &HashMap<AgentId, Slug>, id: AgentId| slugs.get(&id).map(ToString::to_string);
    let value = match event {
        DomainEvent::IssueCreated(i) => serde_json::to_string(&issue_dto(i, &roster(mesa).await)),
        DomainEvent::IssueUpdated { issue, from } => serde_json::to_string(&IssueUpdatedDto {
            issue: issue_dto(issue, &roster(mesa).await),
            previous_status: from.map(|s| s.as_str()),
        }),
        DomainEvent::IssueDeleted { key } => Ok(json!({ "key": key.as_str() }).to_string()),
        DomainEvent::CommentCreated(c) => serde_json::to_string(&CommentDto::from(&**c)),
        DomainEvent::RunQueued(r) | DomainEvent::RunStarted(r) | DomainEvent::RunFinished(r) => {
            let slug = slug_of(&roster(mesa).await, r.agent_id);
            serde_json::to_string(&RunEventDto::new(r, slug))
        }
        DomainEvent::RunOutput { .. } => return None,
        DomainEvent::AgentUpdated(a) => {
            let slugs = roster(mesa).await;
            serde_json::to_string(&AgentEventDto::new(a, |id| slug_of(&slugs, id)))
        }
        DomainEvent::ApprovalCreated(a) | DomainEvent::ApprovalResolved(a) => {
            match Slugs::load(mesa).await {
                Ok(slugs) => serde_json::to_string(&ApprovalDto::new(a, &slugs)),
                Err(_) => Ok(json!({
                    "id": a.id.to_string(),
                    "kind": a.kind.as_str(),
                    "status": a.status.as_str(),
                })
                .to_string()),
            }
        }
        DomainEvent::WorkBlockUpdated(b) => serde_json::to_string(&WorkBlockDto::from(&**b)),
        DomainEvent::BudgetExceeded { agent_id, until } => Ok(json!({
            "agent_id": agent_id.to_string(),
            "agent_slug": slug_of(&roster(mesa).await, *agent_id),
            "paused_until": time(*until),
        })
        .to_string()),
        DomainEvent::SchedulerPaused => Ok(json!({ "paused": true }).to_string()),
        DomainEvent::SchedulerResumed => Ok(json!({ "paused": false }).to_string()),
        DomainEvent::Activity(a) => serde_json::to_string(&ActivityDto::from(&**a)),
        DomainEvent::BoardNotification { message, issue_key } => Ok(json!({
            "message": message,
            "issue_key": issue_key.as_ref().map(IssueKey::as_str),
        })
        .to_string()),
        DomainEvent::RunCancelRequested(r) => {
            let slug = slug_of(&roster(mesa).await, r.agent_id);
            serde_json::to_string(&RunEventDto::new(r, slug))
        }
    };
    match value {
        Ok(text) => Some(Arc::from(text)),
        Err(e) => {
            tracing::error!(error = %e, event = event.name(), "events: cannot render an event");
            None
        }
    }
}
