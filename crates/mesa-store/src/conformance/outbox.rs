//! Conformance scenarios of [`OutboxStore`]: queued items come back due by channel prefix in
//! due order, an attempt and the item's move commit together (and only on pending items), the
//! delivery log pages newest first and filters, and subscriptions are stored with their audit
//! rows.

use std::sync::Arc;

use mesa_domain::entity::{DeliveryAttempt, NewActivity, OutboxItem, OutgoingWebhook};
use mesa_domain::{OutboxId, OutboxStatus, Timestamp, WebhookId};
use uuid::Uuid;

use crate::{AttemptOutcome, OutboxFilter, OutboxStore, PageRequest, StoreError, SystemStore};

/// A pending item of `channel` queued at `created` (milliseconds), due then.
pub fn outbox_item(channel: &str, created: i64) -> OutboxItem {
    OutboxItem {
        id: OutboxId::from_uuid(Uuid::now_v7()),
        channel: channel.to_owned(),
        event: "issue_created".to_owned(),
        payload: r#"{"n":1}"#.to_owned(),
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: Timestamp::from_millis(created),
        last_error: None,
        created_at: Timestamp::from_millis(created),
        delivered_at: None,
    }
}

fn attempt(id: OutboxId, at: i64, code: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        outbox_id: id,
        attempt: 0,
        at: Timestamp::from_millis(at),
        status_code: code,
        error: None,
        duration_ms: 12,
    }
}

fn activity(action: &str) -> NewActivity {
    super::activity(action, "webhook", "x", Timestamp::from_millis(1))
}

/// Due items of a channel prefix, earliest first; `_` and `%` in a prefix are literal.
pub async fn due_items_come_by_channel_prefix_in_due_order<S>(store: Arc<S>)
where
    S: OutboxStore + ?Sized,
{
    let s = &*store;
    let hook_a = outbox_item("webhook:a", 30);
    let hook_b = outbox_item("webhook:b", 10);
    let discord = outbox_item("discord", 20);
    let later = outbox_item("webhook:c", 5_000);
    s.enqueue_outbox(vec![
        hook_a.clone(),
        hook_b.clone(),
        discord.clone(),
        later.clone(),
    ])
    .await
    .unwrap();
    let due = s
        .due_outbox("webhook:", Timestamp::from_millis(100), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![hook_b.id, hook_a.id],
        "only due webhook items, earliest first"
    );
    assert_eq!(due[1], hook_a, "stored as given");
    let one = s
        .due_outbox("webhook:", Timestamp::from_millis(100), 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        s.next_outbox_due("webhook:").await.unwrap(),
        Some(Timestamp::from_millis(10))
    );
    assert_eq!(s.next_outbox_due("telegram").await.unwrap(), None);
    // `_` and `%` in a prefix are literal.
    assert!(
        s.due_outbox("webhook_", Timestamp::from_millis(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An attempt is numbered and logged with the item's move; only pending items take attempts.
pub async fn an_attempt_moves_the_item_and_is_logged_in_one_go<S>(store: Arc<S>)
where
    S: OutboxStore + ?Sized,
{
    let s = &*store;
    let it = outbox_item("discord", 0);
    s.enqueue_outbox(vec![it.clone()]).await.unwrap();

    let retry = AttemptOutcome::Retry {
        status_code: Some(503),
        error: "HTTP 503".into(),
        next_attempt_at: Timestamp::from_millis(2_000),
    };
    let mut a = attempt(it.id, 100, Some(503));
    a.error = Some("HTTP 503".into());
    let after = s.record_outbox_attempt(it.id, a, retry).await.unwrap();
    assert_eq!(after.status, OutboxStatus::Pending);
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_at, Timestamp::from_millis(2_000));
    assert_eq!(after.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        s.due_outbox("discord", Timestamp::from_millis(1_999), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let done = AttemptOutcome::Delivered {
        status_code: Some(204),
    };
    let after = s
        .record_outbox_attempt(it.id, attempt(it.id, 2_000, Some(204)), done.clone())
        .await
        .unwrap();
    assert_eq!(after.status, OutboxStatus::Delivered);
    assert_eq!(after.attempts, 2);
    assert_eq!(after.delivered_at, Some(Timestamp::from_millis(2_000)));
    assert_eq!(after.last_error, None);
    assert!(
        s.due_outbox("discord", Timestamp::from_millis(9_999), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let log = s.outbox_attempts(it.id).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|a| (a.attempt, a.status_code))
            .collect::<Vec<_>>(),
        vec![(1, Some(503)), (2, Some(204))]
    );
    assert_eq!(log[0].error.as_deref(), Some("HTTP 503"));

    // A delivered item takes no more attempts; an unknown one is not found.
    let again = s
        .record_outbox_attempt(it.id, attempt(it.id, 3_000, None), done.clone())
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert_eq!(s.outbox_attempts(it.id).await.unwrap().len(), 2);
    let nobody = OutboxId::from_uuid(uuid::Uuid::now_v7());
    let missing = s
        .record_outbox_attempt(nobody, attempt(nobody, 1, None), done)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    let dead = outbox_item("discord", 0);
    s.enqueue_outbox(vec![dead.clone()]).await.unwrap();
    let gone = AttemptOutcome::Dead {
        status_code: Some(410),
        error: "gone".into(),
    };
    let after = s
        .record_outbox_attempt(dead.id, attempt(dead.id, 5, Some(410)), gone)
        .await
        .unwrap();
    assert_eq!(after.status, OutboxStatus::Dead);
    assert_eq!(after.last_error.as_deref(), Some("gone"));
}

/// The delivery log pages newest first and filters by channel and status.
pub async fn the_log_pages_newest_first_and_filters<S>(store: Arc<S>)
where
    S: OutboxStore + ?Sized,
{
    let s = &*store;
    let items: Vec<OutboxItem> = (0..5)
        .map(|n| outbox_item(if n % 2 == 0 { "discord" } else { "telegram" }, n))
        .collect();
    s.enqueue_outbox(items.clone()).await.unwrap();
    let first = s
        .list_outbox(&OutboxFilter::default(), &PageRequest::new(Some(2), None))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![items[4].id, items[3].id]
    );
    let rest = s
        .list_outbox(
            &OutboxFilter::default(),
            &PageRequest::new(Some(10), first.next_cursor),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.next_cursor, None);
    let discord = OutboxFilter {
        channel: Some("discord".into()),
        status: None,
    };
    let page = s
        .list_outbox(&discord, &PageRequest::new(None, None))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let delivered = OutboxFilter {
        channel: None,
        status: Some(OutboxStatus::Delivered),
    };
    assert!(
        s.list_outbox(&delivered, &PageRequest::new(None, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Subscriptions are created, replaced and deleted with their audit rows.
pub async fn subscriptions_are_stored_with_their_audit_rows<S>(store: Arc<S>)
where
    S: OutboxStore + SystemStore + ?Sized,
{
    let s = &*store;
    let mut hook = OutgoingWebhook {
        id: WebhookId::from_uuid(uuid::Uuid::now_v7()),
        url: "https://example.test/hook".into(),
        secret: "s3cret".into(),
        events: vec!["issue_created".into()],
        active: true,
        description: "CI".into(),
        created_at: Timestamp::from_millis(1),
        updated_at: Timestamp::from_millis(1),
    };
    let rows = s
        .create_webhook(&hook, vec![activity("webhook.created")])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(s.webhook(hook.id).await.unwrap(), Some(hook.clone()));
    hook.active = false;
    hook.events.clear();
    s.update_webhook(&hook, vec![activity("webhook.updated")])
        .await
        .unwrap();
    assert_eq!(s.webhooks().await.unwrap(), vec![hook.clone()]);
    s.delete_webhook(hook.id, vec![activity("webhook.deleted")])
        .await
        .unwrap();
    assert_eq!(s.webhook(hook.id).await.unwrap(), None);
    let again = s
        .delete_webhook(hook.id, vec![activity("webhook.deleted")])
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound { .. })),
        "{again:?}"
    );
    let missing = s.update_webhook(&hook, vec![]).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    let chain = s.verify_activity_chain().await.unwrap();
    assert!(chain.checked >= 3, "{chain:?}");
}
