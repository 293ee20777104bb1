//! `GET /ui/events`: the dashboard's live channel (SPEC §10), read by htmx's SSE extension.
//! Every committed change becomes one or more named events whose data is HTML:
//!
//! - `toast`: a notification fragment for `#toasts` (issue created, approval requested, a run
//!   failed, a budget pause, a board notification);
//! - `issues`, `runs`, `agents`, `approvals`, `blocks`, `activity`: "something of this kind
//!   changed", for lists that refresh with `hx-trigger="sse:issues"`;
//! - `issue-<KEY>` and `run-<id>`: one issue or run changed (detail pages refresh);
//! - `run-output-<id>`: new output of a running run, as escaped text to append to its log
//!   (taken from the event bus directly: output is not journaled, so it has no id and is not
//!   replayed; the stored log has it);
//! - `resync`: the stream missed events; pages refetch what they show.
//!
//! Event ids are the journal's, so a reconnecting browser (which sends `Last-Event-ID`) gets
//! what it missed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mesa_core::domain::{DomainEvent, RunStatus};
use mesa_core::{JournalEntry, Mesa, Replay};
use tokio::sync::{broadcast, watch};

use super::session::Board;
use crate::api::events::EventStreams;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) async fn stream(
    State(mesa): State<Mesa>,
    State(streams): State<Arc<EventStreams>>,
    _board: Board,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let sub = mesa.events().journal().subscribe(after);
    let mut pending = VecDeque::new();
    match sub.replay {
        Replay::Missed(entries) => {
            for entry in entries {
                pending.extend(events_for(&entry));
            }
        }
        Replay::Resync { last_id } => pending.push_back(resync(last_id)),
    }
    let state = UiStream {
        output: mesa.events().subscribe(),
        mesa,
        pending,
        live: sub.live,
        closing: streams.closing(),
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

struct UiStream {
    mesa: Mesa,
    /// The bus itself, for run output: output chunks are not journaled (no ids, no replay).
    output: broadcast::Receiver<Arc<DomainEvent>>,
    pending: VecDeque<Event>,
    live: broadcast::Receiver<Arc<JournalEntry>>,
    closing: watch::Receiver<bool>,
}

impl UiStream {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            tokio::select! {
                biased;
                _ = self.closing.wait_for(|c| *c) => return None,
                received = self.live.recv() => match received {
                    Ok(entry) => self.pending.extend(events_for(&entry)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (last_id, live) = self.mesa.events().journal().resubscribe();
                        self.live = live;
                        self.pending.push_back(resync(last_id));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                received = self.output.recv() => match received {
                    Ok(event) => {
                        if let DomainEvent::RunOutput { run_id, text } = &*event {
                            self.pending.push_back(
                                Event::default()
                                    .event(format!("run-output-{run_id}"))
                                    .data(format!("<span>{}</span>", escape(text))),
                            );
                        }
                    }
                    // Missed output is in the stored log; the page shows it on reload.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn resync(last_id: u64) -> Event {
    Event::default()
        .event("resync")
        .id(last_id.to_string())
        .data("")
}

/// HTML-escapes text for a fragment.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A toast fragment: a message and an optional link.
fn toast(kind: &str, message: &str, href: Option<&str>) -> String {
    let link = href.map_or_else(String::new, |h| {
        format!(" <a href=\"{}\">Open</a>", escape(h))
    });
    // The client script adds the close button and the timeout.
    format!(
        "<div class=\"toast toast-{kind}\" role=\"status\"><div class=\"toast-body\">{}{link}</div></div>",
        escape(message)
    )
}

/// The SSE events one committed change becomes (see the module docs).
fn events_for(entry: &JournalEntry) -> Vec<Event> {
    let id = entry.id.to_string();
    let named = |name: &str, data: &str| Event::default().event(name).id(&id).data(data);
    let mut out = Vec::new();
    match &*entry.event {
        DomainEvent::IssueCreated(issue) => {
            let key = issue.key.to_string();
            out.push(named("issues", &key));
            out.push(named(
                "toast",
                &toast(
                    "success",
                    &format!("{key} created: {}", issue.title),
                    Some(&format!("/issues/{key}")),
                ),
            ));
        }
        DomainEvent::IssueUpdated { issue, .. } => {
            let key = issue.key.to_string();
            out.push(named("issues", &key));
            out.push(named(&format!("issue-{key}"), &key));
        }
        DomainEvent::IssueDeleted { key } => {
            out.push(named("issues", &key.to_string()));
            out.push(named(&format!("issue-{key}"), &key.to_string()));
        }
        DomainEvent::CommentCreated(comment) => {
            let key = comment.issue_key.to_string();
            out.push(named(&format!("issue-{key}"), &key));
        }
        DomainEvent::RunQueued(run) | DomainEvent::RunStarted(run) => {
            out.push(named("runs", &run.id.to_string()));
            out.push(named(&format!("run-{}", run.id), &run.id.to_string()));
        }
        DomainEvent::RunFinished(run) => {
            out.push(named("runs", &run.id.to_string()));
            out.push(named(&format!("run-{}", run.id), &run.id.to_string()));
            if matches!(run.status, RunStatus::Failed | RunStatus::TimedOut) {
                let what = run
                    .issue_key
                    .as_ref()
                    .map_or_else(String::new, |k| format!(" on {k}"));
                out.push(named(
                    "toast",
                    &toast(
                        "danger",
                        &format!("A run{what} {}", run.status.as_str().replace('_', " ")),
                        Some(&format!("/runs/{}", run.id)),
                    ),
                ));
            }
        }
        // Output chunks are not journaled; `UiStream` takes them from the bus.
        DomainEvent::RunOutput { .. } => {}
        DomainEvent::RunCancelRequested(run) => {
            out.push(named(&format!("run-{}", run.id), &run.id.to_string()));
        }
        DomainEvent::AgentUpdated(_) => out.push(named("agents", "")),
        DomainEvent::ApprovalCreated(approval) => {
            out.push(named("approvals", &approval.id.to_string()));
            out.push(named(
                "toast",
                &toast(
                    "warn",
                    &format!("Approval requested: {}", approval.title),
                    Some(&format!("/approvals/{}", approval.id)),
                ),
            ));
        }
        DomainEvent::ApprovalResolved(approval) => {
            out.push(named("approvals", &approval.id.to_string()));
        }
        DomainEvent::WorkBlockUpdated(block) => {
            out.push(named("blocks", &block.id.to_string()));
        }
        DomainEvent::BudgetExceeded { .. } => {
            out.push(named("agents", ""));
            out.push(named(
                "toast",
                &toast(
                    "warn",
                    "An agent reached its budget and is paused",
                    Some("/agents"),
                ),
            ));
        }
        DomainEvent::SchedulerPaused | DomainEvent::SchedulerResumed => {
            out.push(named("agents", ""));
        }
        DomainEvent::Activity(_) => out.push(named("activity", "")),
        DomainEvent::BoardNotification { message, issue_key } => {
            let href = issue_key.as_ref().map(|k| format!("/issues/{k}"));
            out.push(named("toast", &toast("success", message, href.as_deref())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toasts_escape_what_agents_wrote() {
        let html = toast("success", "<script>x</script>", Some("/issues/A-1\"><b>"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
    }
}
