//! The issue page's "Pull request" panel (SPEC §11.4) against a fake GitHub REST API on a local
//! port: the page loads the panel lazily; the fragment shows the PR's state, each reviewer's
//! latest review and each check's conclusion; answers are cached; a GitHub failure is a quiet
//! note; nothing is shown while `github_repo` is not set. Also the incoming-webhook delivery
//! log page (SPEC §11.3).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mesa_core::NewIssue;
use mesa_core::domain::Actor;
use serde_json::{Value, json};

use super::login;
use crate::support::TestApp;

/// What the fake answers and what it saw.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    /// Every pulls search, as `head` query values.
    heads: std::sync::Mutex<Vec<String>>,
    /// Answer 500 to everything.
    broken: bool,
    /// The branch has no pull request.
    empty: bool,
}

fn authorized(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    h("authorization") == "Bearer ghp_fake"
        && h("accept") == "application/vnd.github+json"
        && !h("x-github-api-version").is_empty()
        && h("user-agent").starts_with("mesa/")
}

async fn pulls(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    fake.heads
        .lock()
        .unwrap()
        .push(q.get("head").cloned().unwrap_or_default());
    if fake.broken {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    if !authorized(&headers) || q.get("state").map(String::as_str) != Some("all") {
        return (StatusCode::UNAUTHORIZED, "bad request").into_response();
    }
    if fake.empty {
        return Json(json!([])).into_response();
    }
    Json(json!([{
        "number": 42,
        "title": "Fix the login redirect",
        "html_url": "https://github.com/acme/app/pull/42",
        "state": "open",
        "draft": false,
        "merged_at": null,
        "head": {"sha": "abc123", "ref": "mesa/MESA-1"}
    }]))
    .into_response()
}

async fn reviews(State(fake): State<Arc<Fake>>, Path(n): Path<u64>) -> Json<Value> {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(n, 42);
    Json(json!([
        {"user": {"login": "ann"}, "state": "CHANGES_REQUESTED"},
        {"user": {"login": "bob"}, "state": "COMMENTED"},
        {"user": {"login": "ann"}, "state": "APPROVED"}
    ]))
}

async fn checks(State(fake): State<Arc<Fake>>, Path(sha): Path<String>) -> Json<Value> {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(sha, "abc123");
    Json(json!({"total_count": 2, "check_runs": [
        {"name": "unit-tests", "status": "completed", "conclusion": "success"},
        {"name": "clippy", "status": "completed", "conclusion": "failure"}
    ]}))
}

async fn start_fake(fake: Arc<Fake>) -> SocketAddr {
    let app = axum::Router::new()
        .route("/repos/acme/app/pulls", get(pulls))
        .route("/repos/acme/app/pulls/{n}/reviews", get(reviews))
        .route("/repos/acme/app/commits/{sha}/check-runs", get(checks))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An app with one issue and GitHub pointed at `api`; returns the app and the issue key.
async fn app_with_github(api: &str) -> (TestApp, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = TestApp::new().await;
    let board = Actor::board("test");
    let key = app
        .mesa
        .create_issue(&board, NewIssue::titled("Login redirect loops").unwrap())
        .await
        .unwrap()
        .issue
        .key
        .to_string();
    let settings = [
        ("github_repo", "acme/app"),
        ("github_api_url", api),
        ("github_token", "ghp_fake"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    app.mesa.put_settings(&board, &settings).await.unwrap();
    (app, key)
}

#[tokio::test]
async fn the_panel_loads_lazily_and_shows_state_reviews_and_checks() {
    let fake = Arc::new(Fake::default());
    let addr = start_fake(Arc::clone(&fake)).await;
    let (app, key) = app_with_github(&format!("http://{addr}")).await;
    let browser = login(&app).await;

    let page = browser.get(&format!("/issues/{key}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!(
            r#"hx-get="/issues/{key}/pull-request" hx-trigger="load""#
        )),
        "the panel loads itself after the page"
    );
    assert!(!page.body.contains("Fix the login redirect"));
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        0,
        "the page never waits on GitHub"
    );

    let panel = browser
        .get_htmx(&format!("/issues/{key}/pull-request"))
        .await;
    assert_eq!(panel.status, StatusCode::OK, "{}", panel.body);
    let text = &panel.body;
    for expected in [
        r#"href="https://github.com/acme/app/pull/42""#,
        "#42 Fix the login redirect",
        ">open<",
        "ann: approved",
        "bob: commented",
        "success</span> unit-tests",
        "failure</span> clippy",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert_eq!(
        fake.heads.lock().unwrap().as_slice(),
        [format!("acme:mesa/{key}")]
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    insta::assert_snapshot!("pull_request_panel", panel.body);

    // Within the cache's lifetime GitHub is not asked again.
    let again = browser
        .get_htmx(&format!("/issues/{key}/pull-request"))
        .await;
    assert_eq!(again.body, panel.body);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_github_failure_is_a_quiet_note() {
    let fake = Arc::new(Fake {
        broken: true,
        ..Fake::default()
    });
    let addr = start_fake(Arc::clone(&fake)).await;
    let (app, key) = app_with_github(&format!("http://{addr}")).await;
    let browser = login(&app).await;
    let panel = browser
        .get_htmx(&format!("/issues/{key}/pull-request"))
        .await;
    assert_eq!(panel.status, StatusCode::OK, "{}", panel.body);
    assert!(
        panel
            .body
            .contains("could not be loaded: GitHub answered 500"),
        "{}",
        panel.body
    );
    assert_eq!(
        browser.get(&format!("/issues/{key}")).await.status,
        StatusCode::OK
    );

    // Nothing listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let (app, key) = app_with_github(&format!("http://{dead}")).await;
    let browser = login(&app).await;
    let panel = browser
        .get_htmx(&format!("/issues/{key}/pull-request"))
        .await;
    assert_eq!(panel.status, StatusCode::OK);
    assert!(
        panel.body.contains("GitHub could not be reached"),
        "{}",
        panel.body
    );
}

#[tokio::test]
async fn no_pull_request_and_no_repository() {
    let fake = Arc::new(Fake {
        empty: true,
        ..Fake::default()
    });
    let addr = start_fake(Arc::clone(&fake)).await;
    let (app, key) = app_with_github(&format!("http://{addr}")).await;
    let browser = login(&app).await;
    let panel = browser
        .get_htmx(&format!("/issues/{key}/pull-request"))
        .await;
    assert!(
        panel
            .body
            .contains(&format!("No pull request for <code>mesa/{key}</code>")),
        "{}",
        panel.body
    );

    app.mesa
        .put_settings(
            &Actor::board("test"),
            &[("github_repo".to_owned(), String::new())],
        )
        .await
        .unwrap();
    let page = browser.get(&format!("/issues/{key}")).await;
    assert!(
        !page.body.contains("pull-request"),
        "no panel without a repository"
    );
}

#[tokio::test]
async fn the_incoming_delivery_log_lists_deliveries() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let empty = browser.get("/settings/webhooks/incoming").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No deliveries yet"));

    let claim = app
        .mesa
        .claim_delivery("ci", "issues", "delivery-77", b"{}")
        .await
        .unwrap();
    let mesa_core::DeliveryClaim::New(d) = claim else {
        panic!("a new delivery")
    };
    app.mesa
        .settle_delivery(
            d.id,
            mesa_core::domain::WebhookStatus::Failed,
            Some("422 validation_failed: title is required".to_owned()),
        )
        .await
        .unwrap();
    let page = browser.get("/settings/webhooks/incoming").await;
    let main = super::main_of(&page.body);
    for expected in [
        "ci",
        "issues",
        "delivery-77",
        "failed",
        "422 validation_failed: title is required",
    ] {
        assert!(main.contains(expected), "{expected:?} missing from {main}");
    }
}
