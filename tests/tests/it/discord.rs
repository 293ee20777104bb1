//! Discord notifications (issue 7, SPEC §11.2) against a fake Discord webhook endpoint on
//! 127.0.0.1 that rate-limits the first request: Mesa's integrations run in this process (the
//! same `mesa_http::integrations::start` that `mesa serve` runs).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::{Actor, ApprovalKind, Markdown, Title, WorkingDir};
use mesa_core::{CoreConfig, Mesa, NewApproval, OutboxFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What Discord advertises in its 429 (seconds, fractional as Discord sends it).
const RETRY_AFTER: f64 = 1.25;

#[derive(Default)]
struct FakeDiscord {
    /// Every request: when it arrived and its body.
    requests: Mutex<Vec<(Instant, Value)>>,
}

async fn execute(State(fake): State<Arc<FakeDiscord>>, Json(body): Json<Value>) -> Response {
    let first = {
        let mut requests = fake.requests.lock().unwrap();
        requests.push((Instant::now(), body));
        requests.len() == 1
    };
    if first {
        let limited = json!({
            "message": "You are being rate limited.",
            "retry_after": RETRY_AFTER,
            "global": false,
        });
        // Discord rounds the header up; the body's value is the precise one.
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "2")],
            Json(limited),
        )
            .into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_notification_arrives_once_after_the_advertised_delay() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(FakeDiscord::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!(
        "http://{}/api/webhooks/1/token",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new()
        .route("/api/webhooks/1/token", axum::routing::post(execute))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = CoreConfig::new(
        dir.path().join("data"),
        WorkingDir::parse(&dir.path().to_string_lossy()).unwrap(),
    );
    let mesa = Mesa::builder()
        .sqlite(dir.path().join("mesa.db"))
        .config(config)
        .build()
        .await
        .unwrap();
    mesa.bootstrap_if_empty().await.unwrap();
    let board = Actor::board("test");
    let settings = [
        ("feature_discord", "true"),
        ("discord_webhook_url", hook_url.as_str()),
        ("public_url", "https://mesa.example"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    mesa.put_settings(&board, &settings).await.unwrap();
    let integrations = mesa_http::integrations::start(mesa.clone(), CancellationToken::new());

    let approval = mesa
        .request_approval(
            &board,
            NewApproval {
                kind: ApprovalKind::Other,
                title: Title::parse("Rotate the deploy key").unwrap(),
                body: Markdown::parse("The old one leaked.").unwrap(),
                subject: None,
                payload: json!({}),
            },
        )
        .await
        .unwrap();

    // Delivered when the outbox says so (the second attempt).
    let deadline = Instant::now() + Duration::from_secs(30);
    let item = loop {
        let page = mesa
            .outbox_log(
                &board,
                &OutboxFilter {
                    channel: Some("discord".into()),
                    status: None,
                },
                &mesa_core::store::PageRequest::new(None, None),
            )
            .await
            .unwrap();
        if let Some(item) = page.items.into_iter().find(|i| i.delivered_at.is_some()) {
            break item;
        }
        assert!(
            Instant::now() < deadline,
            "the notification was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(item.attempts, 2, "one 429, then delivered");
    integrations.shutdown().await;

    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        2,
        "sent once more after the 429, and only once"
    );
    let waited = requests[1].0 - requests[0].0;
    assert!(
        waited >= Duration::from_secs_f64(RETRY_AFTER),
        "retried after {waited:?}, before the advertised {RETRY_AFTER} s"
    );
    let body = &requests[1].1;
    assert_eq!(requests[0].1, *body, "the same message both times");
    let content = body["content"].as_str().unwrap();
    assert!(content.contains("Rotate the deploy key"), "{body}");
    let embed = &body["embeds"][0];
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .contains("The old one leaked.")
    );
    assert_eq!(
        embed["url"],
        format!("https://mesa.example/approvals/{}", approval.id)
    );
    mesa.close().await;
}
