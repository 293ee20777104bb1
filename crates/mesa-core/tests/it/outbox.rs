//! The outbox and outgoing-webhook subscriptions through the embedding API: subscriptions are
//! the board's and validated field by field, their changes are audited without the secret, and
//! queued deliveries come due, move by their attempts' outcomes and show in the log.

use std::time::Duration;

use mesa_core::domain::OutboxStatus;
use mesa_core::store::{ActivityFilter, PageRequest};
use mesa_core::{AttemptOutcome, ErrorKind, NewOutboxItem, NewWebhook, OutboxFilter, WebhookPatch};

use crate::support::TestMesa;

fn hook(url: &str) -> NewWebhook {
    NewWebhook {
        url: url.to_owned(),
        secret: "top-secret-key".to_owned(),
        events: vec!["issue_created".to_owned()],
        active: true,
        description: "CI".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_the_boards_validated_and_audited_without_the_secret() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let refused = t
        .mesa
        .create_webhook(&ceo, hook("https://ci.example/h"))
        .await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
    assert_eq!(
        t.mesa.webhooks(&ceo).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );

    for (bad, field) in [
        (
            NewWebhook {
                url: "gopher://x".into(),
                ..hook("")
            },
            "url",
        ),
        (
            NewWebhook {
                secret: " ".into(),
                ..hook("https://ci.example/h")
            },
            "secret",
        ),
        (
            NewWebhook {
                events: vec!["run_output".into()],
                ..hook("https://ci.example/h")
            },
            "events",
        ),
    ] {
        let err = t.mesa.create_webhook(&t.board, bad).await.unwrap_err();
        assert_eq!(err.field(), Some(field));
    }
    assert!(
        t.mesa.webhooks(&t.board).await.unwrap().is_empty(),
        "nothing stored"
    );

    let created = t
        .mesa
        .create_webhook(&t.board, hook("https://ci.example/h"))
        .await
        .unwrap();
    let patch = WebhookPatch {
        active: Some(false),
        secret: Some("rotated".into()),
        ..Default::default()
    };
    let changed = t
        .mesa
        .update_webhook(&t.board, created.id, patch)
        .await
        .unwrap();
    assert!(!changed.active);
    assert_eq!(changed.secret, "rotated");
    t.mesa.delete_webhook(&t.board, created.id).await.unwrap();
    let gone = t.mesa.webhook(&t.board, created.id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);

    let log = t
        .mesa
        .activity_log(
            &ActivityFilter::default(),
            &PageRequest::new(Some(50), None),
        )
        .await
        .unwrap();
    let rows: Vec<_> = log
        .items
        .iter()
        .filter(|r| r.entity_type == "webhook")
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        vec!["webhook.deleted", "webhook.updated", "webhook.created"]
    );
    for r in rows {
        let text = r.data.to_string();
        assert!(
            !text.contains("top-secret-key") && !text.contains("rotated"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_come_due_and_move_by_their_outcomes() {
    let t = TestMesa::new().await;
    let queued = t
        .mesa
        .enqueue_outbox(vec![NewOutboxItem {
            channel: "discord".into(),
            event: "alert".into(),
            payload: "{}".into(),
        }])
        .await
        .unwrap();
    let id = queued[0].id;
    assert_eq!(t.mesa.due_outbox("discord", 10).await.unwrap().len(), 1);
    assert!(t.mesa.due_outbox("telegram", 10).await.unwrap().is_empty());

    let later = t.mesa.now() + Duration::from_secs(60);
    let retry = AttemptOutcome::Retry {
        status_code: Some(500),
        error: "HTTP 500".into(),
        next_attempt_at: later,
    };
    t.mesa
        .record_outbox_attempt(id, t.mesa.now(), 40, retry)
        .await
        .unwrap();
    assert!(
        t.mesa.due_outbox("discord", 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(
        t.mesa.next_outbox_due("discord").await.unwrap(),
        Some(later)
    );
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(
        t.mesa.due_outbox("discord", 10).await.unwrap().len(),
        1,
        "due again"
    );

    let done = AttemptOutcome::Delivered {
        status_code: Some(204),
    };
    let item = t
        .mesa
        .record_outbox_attempt(id, t.mesa.now(), 12, done)
        .await
        .unwrap();
    assert_eq!(item.status, OutboxStatus::Delivered);
    let entry = t.mesa.outbox_entry(&t.board, id).await.unwrap();
    assert_eq!(entry.attempts.len(), 2);
    assert_eq!(entry.attempts[0].status_code, Some(500));
    assert_eq!(entry.attempts[1].duration_ms, 12);
    let ceo = t.actor("ceo").await;
    let filter = OutboxFilter::default();
    let page = PageRequest::new(None, None);
    assert_eq!(
        t.mesa
            .outbox_log(&ceo, &filter, &page)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    assert_eq!(
        t.mesa
            .outbox_log(&t.board, &filter, &page)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}
