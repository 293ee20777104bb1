//! Outgoing webhooks (issue 7, SPEC §11.2) against a receiver on 127.0.0.1: Mesa's router and
//! integrations run in this process (the same `mesa_http::serve` and
//! `mesa_http::integrations::start` that `mesa serve` runs). A "restart" stops both, closes
//! the database and opens it again in a new `Mesa`: everything that survives is on disk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mesa_core::domain::{Actor, Name, WorkingDir};
use mesa_core::{CoreConfig, Mesa, NewIssue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::flows::call;

const SECRET: &str = "receiver-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

/// A receiver that answers from a script (then 200), recording every request.
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<u16>>,
    /// Answer this to everything while set (overrides the script).
    always: Mutex<Option<u16>>,
    got: Mutex<Vec<Received>>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answered = match *r.always.lock().unwrap() {
        Some(code) => code,
        None => r.script.lock().unwrap().pop_front().unwrap_or(200),
    };
    r.got.lock().unwrap().push(Received {
        headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Mesa as `mesa serve` runs it: the API and the integrations, until [`Running::stop`].
struct Running {
    mesa: Mesa,
    url: String,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    integrations: mesa_http::integrations::Integrations,
}

impl Running {
    async fn start(db: &Path, dir: &Path) -> Running {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = CoreConfig::new(
            dir.join("data"),
            WorkingDir::parse(&dir.to_string_lossy()).unwrap(),
        );
        let mesa = Mesa::builder()
            .sqlite(db)
            .config(config)
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let state = mesa_http::AppState::new(mesa.clone());
        let shutdown = stop.clone().cancelled_owned();
        let server = tokio::spawn(async move {
            mesa_http::serve(listener, state, shutdown).await.unwrap();
        });
        let integrations = mesa_http::integrations::start(mesa.clone(), CancellationToken::new());
        Running {
            mesa,
            url,
            stop,
            server,
            integrations,
        }
    }

    /// Stops the integrations (an attempt in flight is abandoned) and the server, and closes
    /// the database.
    async fn stop(self) {
        self.integrations.shutdown().await;
        self.stop.cancel();
        let _ = self.server.await;
        self.mesa.close().await;
    }

    async fn token(&self) -> String {
        self.mesa
            .create_board_token(&Actor::board("test"), Name::parse("hooks").unwrap(), None)
            .await
            .unwrap()
            .raw
    }
}

fn paths() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesa.db");
    (dir, db)
}

/// Waits until `done` holds, failing after a generous deadline.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Turns outgoing webhooks on with a short back-off and subscribes `url` to `issue_created`.
async fn subscribe(run: &Running, token: &str, url: &str) -> String {
    let (status, body) = call(
        &run.url,
        token,
        "PATCH",
        "/settings",
        Some(json!({
            "feature_webhooks_out": true,
            "outbox_retry_base_ms": "150",
            "outbox_max_attempts": "50",
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, hook) = call(
        &run.url,
        token,
        "POST",
        "/outgoing-webhooks",
        Some(json!({"url": url, "secret": SECRET, "events": ["issue_created"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["secret_set"], true);
    assert!(
        hook.get("secret").is_none(),
        "the secret is write-only: {hook}"
    );
    hook["id"].as_str().unwrap().to_owned()
}

/// Attempts recorded on the outbox, over every delivery.
async fn attempts_recorded(mesa: &Mesa) -> u32 {
    let page = mesa
        .outbox_log(
            &Actor::board("test"),
            &mesa_core::OutboxFilter::default(),
            &mesa_core::store::PageRequest::new(None, None),
        )
        .await
        .unwrap();
    page.items.iter().map(|i| i.attempts).sum()
}

async fn new_issue(mesa: &Mesa, title: &str) -> String {
    mesa.create_issue(&Actor::board("test"), NewIssue::titled(title).unwrap())
        .await
        .unwrap()
        .issue
        .key
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_three_attempts_gets_the_event_on_the_fourth_across_a_restart() {
    let (dir, db) = paths();
    let receiver = Arc::new(Receiver::default());
    receiver.script.lock().unwrap().extend([503, 503, 503]);
    let hook_url = start_receiver(receiver.clone()).await;

    let run = Running::start(&db, dir.path()).await;
    let token = run.token().await;
    let hook = subscribe(&run, &token, &hook_url).await;
    let key = new_issue(&run.mesa, "Ship the webhooks").await;
    // The first attempt fails; Mesa stops right after recording it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while attempts_recorded(&run.mesa).await == 0 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the first attempt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.stop().await;
    let seen_before_restart = receiver.got().len();
    assert!(seen_before_restart < 4, "delivered before the restart");

    // A new process on the same database carries on from the outbox.
    let run = Running::start(&db, dir.path()).await;
    until("the fourth attempt", || receiver.got().len() >= 4).await;
    let got = receiver.got();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![503, 503, 503, 200],
        "three failures, then delivered, and nothing after"
    );
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.headers["x-mesa-delivery"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id across retries: {ids:?}"
    );
    let last = &got[3];
    let signature = last.headers["x-mesa-signature-256"].to_str().unwrap();
    assert!(
        mesa_http::integrations::incoming::verify(SECRET.as_bytes(), &last.body, signature),
        "the signature verifies against the body"
    );
    assert!(!mesa_http::integrations::incoming::verify(
        b"other", &last.body, signature
    ));
    assert_eq!(last.headers["x-mesa-event"], "issue_created");
    let envelope: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(envelope["event"], "issue_created");
    assert_eq!(envelope["data"]["key"], key.as_str());
    assert!(envelope["id"].is_string() && envelope["created_at"].is_string());

    // The delivery log says the same.
    let token = run.token().await;
    let (status, log) = call(
        &run.url,
        &token,
        "GET",
        &format!("/outgoing-webhooks/{hook}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(items[0]["attempts"], 4);
    assert_eq!(items[0]["id"], ids[0]);
    let (status, entry) = call(
        &run.url,
        &token,
        "GET",
        &format!("/outbox/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{entry}");
    let codes: Vec<Value> = entry["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(503), json!(503), json!(503), json!(200)]);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_webhooks_out_off_stops_deliveries_without_a_restart() {
    let (dir, db) = paths();
    let receiver = Arc::new(Receiver::default());
    *receiver.always.lock().unwrap() = Some(503);
    let hook_url = start_receiver(receiver.clone()).await;
    let run = Running::start(&db, dir.path()).await;
    let token = run.token().await;
    let hook = subscribe(&run, &token, &hook_url).await;
    new_issue(&run.mesa, "Retried while on").await;
    until("two failed attempts", || receiver.got().len() >= 2).await;

    let off = json!({"feature_webhooks_out": false});
    let (status, body) = call(&run.url, &token, "PATCH", "/settings", Some(off)).await;
    assert_eq!(status, 200, "{body}");
    // An attempt already in flight may still land; after it, nothing is sent however long we
    // wait (several back-off periods of 150 ms, 300 ms, ...), and new events are not queued.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = receiver.got().len();
    new_issue(&run.mesa, "Created while off").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.got().len(),
        seen,
        "no delivery while the flag is off"
    );
    let (_, log) = call(
        &run.url,
        &token,
        "GET",
        &format!("/outgoing-webhooks/{hook}/deliveries"),
        None,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "nothing queued while off: {log}");
    assert_eq!(
        items[0]["status"], "pending",
        "what was queued stays pending"
    );

    // On again: the pending delivery goes out.
    *receiver.always.lock().unwrap() = None;
    let on = json!({"feature_webhooks_out": true});
    let (status, body) = call(&run.url, &token, "PATCH", "/settings", Some(on)).await;
    assert_eq!(status, 200, "{body}");
    until("the delivery after switching on", || {
        receiver.got().iter().any(|r| r.answered == 200)
    })
    .await;
    run.stop().await;
}
