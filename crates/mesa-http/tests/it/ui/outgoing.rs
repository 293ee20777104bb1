//! Outgoing webhooks and the delivery log in the dashboard (SPEC §11.2): subscriptions are
//! added, switched and deleted through forms (the secret is never shown), bad input is refused
//! next to its field, and the log lists every channel's deliveries with their attempts.

use axum::http::StatusCode;
use mesa_core::domain::{Actor, Timestamp};
use mesa_core::{AttemptOutcome, FakeClock, NewOutboxItem};

use super::{login, main_of};
use crate::support::TestApp;

/// 2026-03-02T10:00:00Z.
const START_MS: i64 = 1_772_445_600_000;

macro_rules! snapshot {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "[time]"),
            (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
        ]}, {
            insta::assert_snapshot!($name, main_of($html));
        });
    };
}

async fn app() -> TestApp {
    TestApp::with_clock(FakeClock::new(Timestamp::from_millis(START_MS))).await
}

#[tokio::test]
async fn webhooks_are_added_switched_and_deleted_and_the_secret_never_shows() {
    let app = app().await;
    let browser = login(&app).await;
    let empty = browser.get("/settings/webhooks/outgoing").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(
        empty.body.contains("No outgoing webhooks"),
        "{}",
        empty.body
    );
    assert!(
        empty.body.contains("webhooks_out</code> is off"),
        "flag hint"
    );

    let added = browser
        .post(
            "/settings/webhooks/outgoing",
            &[
                ("url", "https://ci.example/hook"),
                ("secret", "very-secret-value"),
                ("events", "issue_created, run_finished"),
                ("description", "CI"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    assert_eq!(added.location(), "/settings/webhooks/outgoing");
    let board = Actor::board("test");
    let hooks = app.mesa.webhooks(&board).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].events, vec!["issue_created", "run_finished"]);
    assert_eq!(hooks[0].secret, "very-secret-value");
    let page = browser.get("/settings/webhooks/outgoing").await;
    assert!(page.body.contains("https://ci.example/hook"));
    assert!(
        !page.body.contains("very-secret-value"),
        "the secret is write-only"
    );
    snapshot!("outgoing_webhooks", &page.body);

    let bad = browser
        .post(
            "/settings/webhooks/outgoing",
            &[
                ("url", "https://ci.example/other"),
                ("secret", "s"),
                ("events", "run_output"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"err-events\""), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"https://ci.example/other\""),
        "input kept"
    );
    assert_eq!(
        app.mesa.webhooks(&board).await.unwrap().len(),
        1,
        "nothing written"
    );

    let id = hooks[0].id;
    let off = browser
        .post(&format!("/settings/webhooks/outgoing/{id}/toggle"), &[])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert!(!app.mesa.webhook(&board, id).await.unwrap().active);

    let test = browser
        .post(&format!("/settings/webhooks/outgoing/{id}/test"), &[])
        .await;
    assert_eq!(test.status, StatusCode::SEE_OTHER);
    assert!(
        test.location()
            .starts_with("/settings/deliveries?channel=webhook:")
    );
    let log = browser.get(test.location()).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.body.contains(">ping<"), "{}", log.body);

    let gone = browser
        .post(&format!("/settings/webhooks/outgoing/{id}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(app.mesa.webhooks(&board).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_delivery_log_shows_status_attempts_and_errors() {
    let app = app().await;
    let browser = login(&app).await;
    let queued = app
        .mesa
        .enqueue_outbox(vec![NewOutboxItem {
            channel: "discord".into(),
            event: "alert".into(),
            payload: r#"{"kind":"alert","title":"MESA-1 is blocked","text":""}"#.into(),
        }])
        .await
        .unwrap();
    let id = queued[0].id;
    let at = app.mesa.now();
    let retry = AttemptOutcome::Retry {
        status_code: Some(502),
        error: "Discord answered HTTP 502".into(),
        next_attempt_at: Timestamp::from_millis(START_MS + 2_000),
    };
    app.mesa
        .record_outbox_attempt(id, at, 35, retry)
        .await
        .unwrap();

    let log = browser.get("/settings/deliveries?channel=discord").await;
    assert_eq!(log.status, StatusCode::OK);
    for text in ["discord", "alert", "pending", "Discord answered HTTP 502"] {
        assert!(log.body.contains(text), "{text}: {}", log.body);
    }
    snapshot!("deliveries", &log.body);
    let none = browser.get("/settings/deliveries?channel=telegram").await;
    assert!(none.body.contains("No deliveries"), "{}", none.body);

    let one = browser.get(&format!("/settings/deliveries/{id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.contains("502"), "{}", one.body);
    assert!(one.body.contains("35 ms"), "{}", one.body);
    assert!(
        one.body.contains("MESA-1 is blocked"),
        "the payload is shown"
    );
    snapshot!("delivery", &one.body);
    let missing = browser.get("/settings/deliveries/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
