//! The enqueuer: domain events become outbox items.
//!
//! - For people (`telegram`, `discord`, each while its flag is on), [`notification_of`]:
//!   an approval awaiting the board, a work block ready to ship, a budget pause, and the board
//!   notifications that are alerts (runaway guard, blocked issues, escalations, issues awaiting
//!   the board's review). A block that becomes ready requests its ship approval at the same
//!   moment; that approval is the one notification sent about it (kind `work_block_ready`,
//!   with the approval's buttons on Telegram): neither the block's own update nor the
//!   "ready to ship" and "Approval requested" board notifications are sent again.
//! - For machines (`webhook:<uuid>`, while `feature_webhooks_out` is on): every domain event
//!   but `run_output`, to every active subscription whose filter matches, as
//!   `{"id", "event", "created_at", "data"}` where `data` is the API's JSON of the event (the
//!   same as the SSE stream's).
//!
//! Events come from the in-memory bus; if the enqueuer falls behind by more than the bus holds
//! (`Lagged`), the events it missed are not delivered: it logs how many and goes on.

use mesa_core::Mesa;
use mesa_core::NewOutboxItem;
use mesa_core::domain::entity::{Approval, Approver, OutgoingWebhook};
use mesa_core::domain::{ApprovalKind, ApprovalStatus, DomainEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Hub, Notification, NotificationKind};

/// Subscribes to the event bus now and enqueues what events call for until `cancel` fires.
pub fn spawn(hub: Hub, cancel: CancellationToken) -> JoinHandle<()> {
    let events = hub.mesa().subscribe();
    tokio::spawn(run(hub, events, cancel))
}

async fn run(
    hub: Hub,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<DomainEvent>>,
    cancel: CancellationToken,
) {
    let mut hooks: Option<Vec<OutgoingWebhook>> = None;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(event) => {
                if changes_webhooks(&event) {
                    hooks = None;
                }
                if let Err(e) = enqueue(&hub, &event, &mut hooks).await {
                    tracing::warn!(event = event.name(), error = %e, "integrations: cannot queue an event");
                }
            }
            Err(RecvError::Lagged(missed)) => tracing::warn!(
                missed,
                "integrations: fell behind the event bus; {missed} events are not notified or \
                 delivered to outgoing webhooks"
            ),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Whether an event changed the outgoing-webhook subscriptions (their audit rows).
fn changes_webhooks(event: &DomainEvent) -> bool {
    matches!(event, DomainEvent::Activity(a) if a.entity_type == "webhook")
}

async fn enqueue(
    hub: &Hub,
    event: &DomainEvent,
    hooks: &mut Option<Vec<OutgoingWebhook>>,
) -> mesa_core::Result<()> {
    let mesa = hub.mesa();
    // Every event passes here: read single settings, not a copy of them all.
    let on = |flag: &'static str| async move {
        mesa.setting_value(flag).await.as_deref() == Some("true")
    };
    if let Some(mut n) = notification_of(event)
        && (on("feature_telegram").await || on("feature_discord").await)
    {
        n.link = link(mesa.setting_value("public_url").await.as_deref(), &n);
        hub.notify(&n).await?;
    }
    if matches!(event, DomainEvent::RunOutput { .. }) || !on("feature_webhooks_out").await {
        return Ok(());
    }
    if hooks.is_none() {
        *hooks = Some(mesa.webhooks_for_delivery().await?);
    }
    let targets: Vec<&OutgoingWebhook> = hooks
        .iter()
        .flatten()
        .filter(|h| h.wants(event.name()))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let Some(data) = crate::api::events::render(mesa, event).await else {
        return Ok(());
    };
    let items = targets
        .into_iter()
        .map(|h| webhook_item(mesa, h, event.name(), &data))
        .collect();
    hub.enqueue(items).await.map(|_| ())
}

/// The outbox item of `event` for subscription `hook`; the envelope's `id` is a fresh UUIDv7
/// (the delivery id, `X-Mesa-Delivery`, is the outbox item's own id).
fn webhook_item(mesa: &Mesa, hook: &OutgoingWebhook, event: &str, data: &str) -> NewOutboxItem {
    NewOutboxItem {
        channel: hook.channel(),
        event: event.to_owned(),
        payload: envelope(event, &mesa.now().to_rfc3339(), data),
    }
}

/// `{"id": <uuid>, "event": .., "created_at": .., "data": <data>}`; `data` is JSON already.
pub fn envelope(event: &str, created_at: &str, data: &str) -> String {
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": uuid_v7(),
        "event": event,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
}

fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The dashboard link of a notification under `public_url`.
fn link(public_url: Option<&str>, n: &Notification) -> Option<String> {
    let base = public_url?.trim().trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    let path = if let Some(id) = n.approval_id {
        format!("/approvals/{id}")
    } else if let Some(key) = &n.issue_key {
        format!("/issues/{key}")
    } else if let Some(id) = n.work_block_id {
        format!("/blocks/{id}")
    } else {
        String::from("/")
    };
    Some(format!("{base}{path}"))
}

/// The notification for people an event calls for, if any (see the module's documentation).
pub fn notification_of(event: &DomainEvent) -> Option<Notification> {
    match event {
        DomainEvent::ApprovalCreated(a) => approval_notification(a),
        DomainEvent::BudgetExceeded { agent_id, until } => Some(Notification::new(
            NotificationKind::BudgetPaused,
            "An agent hit its budget and was paused",
            format!("Agent {agent_id} is paused until {}.", until.to_rfc3339()),
        )),
        DomainEvent::BoardNotification { message, issue_key } if is_alert(message) => {
            let mut n = Notification::new(NotificationKind::Alert, message.clone(), "");
            n.issue_key = issue_key.as_ref().map(|k| k.as_str().to_owned());
            Some(n)
        }
        _ => None,
    }
}

/// Board notifications that repeat an approval's or a ready block's are not alerts.
fn is_alert(message: &str) -> bool {
    !message.is_empty()
        && !message.starts_with("Approval requested (")
        && !message.ends_with(" is ready to ship")
}

fn approval_notification(a: &Approval) -> Option<Notification> {
    if a.status != ApprovalStatus::Pending || a.approver != Approver::Board {
        return None;
    }
    let ready = a.kind == ApprovalKind::WorkBlockShip;
    let (kind, title) = if ready {
        (
            NotificationKind::WorkBlockReady,
            format!("Ready to ship: {}", a.title),
        )
    } else {
        (
            NotificationKind::ApprovalRequested,
            format!("Approval requested ({}): {}", a.kind.as_str(), a.title),
        )
    };
    let mut n = Notification::new(kind, title, a.body.as_str());
    n.approval_id = Some(a.id);
    if let Some(subject) = &a.subject {
        match subject.entity_type.as_str() {
            "work_block" => {
                n.work_block_id = mesa_core::domain::WorkBlockId::parse(&subject.entity_id).ok();
            }
            "issue" => n.issue_key = Some(subject.entity_id.clone()),
            _ => {}
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_leave_out_what_an_approval_already_says() {
        assert!(is_alert("MESA-4 was blocked: runaway guard"));
        assert!(!is_alert("Approval requested (agent_hire): Hire a tester"));
        assert!(!is_alert("Work block \"Login\" is ready to ship"));
        assert!(!is_alert(""));
    }

    #[test]
    fn board_notifications_become_alerts_with_their_issue() {
        let event = DomainEvent::BoardNotification {
            message: "MESA-4 awaits the board's review".into(),
            issue_key: Some(mesa_core::domain::IssueKey::parse("MESA-4").unwrap()),
        };
        let n = notification_of(&event).unwrap();
        assert_eq!(n.kind, NotificationKind::Alert);
        assert_eq!(n.issue_key.as_deref(), Some("MESA-4"));
        assert_eq!(
            link(Some("https://mesa.example/"), &n).as_deref(),
            Some("https://mesa.example/issues/MESA-4")
        );
        assert_eq!(link(None, &n), None);
        assert!(notification_of(&DomainEvent::SchedulerPaused).is_none());
    }

    fn approval(kind: ApprovalKind, approver: Approver) -> Approval {
        use mesa_core::domain::entity::{Requester, Subject};
        use mesa_core::domain::{ApprovalId, Markdown, Timestamp, Title, Version};
        Approval {
            id: ApprovalId::from_uuid(uuid::Uuid::nil()),
            kind,
            title: Title::parse("Ship work block \"Login\"").unwrap(),
            body: Markdown::parse("All issues are done.").unwrap(),
            requested_by: Requester::Board,
            approver,
            subject: Some(Subject {
                entity_type: "work_block".into(),
                entity_id: uuid::Uuid::nil().to_string(),
            }),
            payload: serde_json::json!({}),
            status: ApprovalStatus::Pending,
            decision_comment: None,
            decided_by: None,
            decided_at: None,
            expires_at: None,
            created_at: Timestamp::from_millis(0),
            version: Version::FIRST,
        }
    }

    #[test]
    fn a_ship_approval_is_the_one_block_ready_notification_and_agents_approvals_are_not_sent() {
        let ship = approval(ApprovalKind::WorkBlockShip, Approver::Board);
        let n = notification_of(&DomainEvent::ApprovalCreated(Box::new(ship))).unwrap();
        assert_eq!(n.kind, NotificationKind::WorkBlockReady);
        assert!(n.approval_id.is_some() && n.work_block_id.is_some());
        assert_eq!(
            link(Some("https://m.example"), &n).unwrap(),
            format!("https://m.example/approvals/{}", uuid::Uuid::nil())
        );
        let other = approval(ApprovalKind::Other, Approver::Board);
        let n = notification_of(&DomainEvent::ApprovalCreated(Box::new(other))).unwrap();
        assert_eq!(n.kind, NotificationKind::ApprovalRequested);
        let manager = mesa_core::domain::AgentId::from_uuid(uuid::Uuid::nil());
        let routed = approval(ApprovalKind::Other, Approver::Agent(manager));
        assert!(notification_of(&DomainEvent::ApprovalCreated(Box::new(routed))).is_none());
        let mut decided = approval(ApprovalKind::Other, Approver::Board);
        decided.status = ApprovalStatus::Approved;
        assert!(notification_of(&DomainEvent::ApprovalCreated(Box::new(decided))).is_none());
    }

    #[test]
    fn the_envelope_wraps_the_data() {
        let text = envelope(
            "issue_deleted",
            "2026-01-01T00:00:00Z",
            r#"{"key":"MESA-1"}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "issue_deleted");
        assert_eq!(v["data"]["key"], "MESA-1");
        assert_eq!(v["created_at"], "2026-01-01T00:00:00Z");
        assert!(v["id"].as_str().is_some_and(|id| id.len() == 36));
    }
}
