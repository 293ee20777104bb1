//! Handing work to the scheduler: `POST /agents/{slug}/wake`, `GET /runs/{id}/log` (text and
//! `?follow=1`), `POST /runs/{id}/cancel`, `POST /audits` — every success path and error code.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use mesa_core::domain::entity::TokenUsage;
use mesa_core::domain::{CostEventId, CostSource, DomainEvent, MicroUsd, RunId, RunStatus};
use mesa_core::store::{FinishRunRecord, StartRunRequest};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{Reply, TestApp};

const UNKNOWN_RUN: &str = "0190b1a2-0000-7000-8000-00000000dead";

async fn wake(app: &TestApp, slug: &str, body: Option<Value>) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/v1/agents/{slug}/wake"),
        Some(&app.board),
        body,
    )
    .await
}

/// A queued heartbeat run of `slug`, woken by the board.
async fn queued_run(app: &TestApp, slug: &str) -> RunId {
    let r = wake(app, slug, None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    RunId::parse(r.json["id"].as_str().unwrap()).unwrap()
}

async fn start(app: &TestApp, run: RunId) {
    let now = app.mesa.now();
    app.mesa
        .store()
        .start_run(StartRunRequest {
            run_id: run,
            node_id: "test".into(),
            now,
            lease_expires_at: now + Duration::from_secs(3600),
            reserve_usd: MicroUsd::ZERO,
            reserve_tokens: 0,
            day_start: now.day_start(0),
            prompt: None,
            activity: Vec::new(),
        })
        .await
        .unwrap();
}

async fn finish(app: &TestApp, run: RunId) {
    app.mesa
        .finish_run(FinishRunRecord {
            run_id: run,
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            failure_reason: None,
            stdout: None,
            diff: None,
            diff_stat: None,
            usage: TokenUsage::default(),
            cost_usd: MicroUsd::ZERO,
            cost_source: CostSource::Parsed,
            num_turns: None,
            finished_at: app.mesa.now(),
            // Nothing was used, so no cost event is written with it.
            cost_event_id: CostEventId::parse(&run.to_string()).unwrap(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
}

async fn create_issue(app: &TestApp, title: &str, assignee: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            Some(&app.board),
            Some(json!({"title": title, "assignee_slug": assignee})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["key"].as_str().unwrap().to_owned()
}

fn code(r: &Reply) -> &str {
    r.json["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_board_wakes_an_agent_with_or_without_an_issue() {
    let app = TestApp::new().await;
    // No body at all: a heartbeat run.
    let r = wake(&app, "devops", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["agent_slug"], "devops");
    assert_eq!(r.json["status"], "queued");
    assert_eq!(r.json["mode"], "heartbeat");
    assert_eq!(r.json["trigger"], "manual");
    assert_eq!(r.json["issue_key"], Value::Null);
    // Again: merged into the same queued run.
    let again = wake(&app, "devops", Some(json!({}))).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json["id"], r.json["id"]);

    // For an issue: a task run, merged into the one its assignment queued.
    let key = create_issue(&app, "Set up CI", "devops").await;
    let r = wake(&app, "devops", Some(json!({"issue_key": key}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["mode"], "task");
    assert_eq!(r.json["issue_key"], key.as_str());
    assert_eq!(r.json["triggers"], json!(["assigned", "manual"]));
    // By id as well as by slug.
    let agent = app.mesa.find_agent("qa").await.unwrap();
    let r = wake(&app, &agent.id.to_string(), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["agent_slug"], "qa");
}

#[tokio::test]
async fn wake_errors() {
    let app = TestApp::new().await;
    let r = wake(&app, "ghost", None).await;
    assert_eq!((r.status, code(&r)), (StatusCode::NOT_FOUND, "not_found"));
    let r = wake(&app, "devops", Some(json!({"issue_key": "MESA-999"}))).await;
    assert_eq!((r.status, code(&r)), (StatusCode::NOT_FOUND, "not_found"));
    let r = wake(&app, "devops", Some(json!({"issue_key": "not a key"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(r.json["error"]["field"], "issue_key");
    let r = wake(&app, "devops", Some(json!({"issue": "MESA-1"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(r.json["error"]["field"], "issue");
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents/devops/wake",
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "an empty body is allowed");

    // A finished issue.
    let key = create_issue(&app, "Old work", "devops").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/issues/{key}"),
            Some(&app.board),
            Some(json!({"status": "cancelled", "cancellation_reason": "not needed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = wake(&app, "devops", Some(json!({"issue_key": key}))).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::CONFLICT, "issue_finished")
    );

    // A deactivated agent.
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/agents/designer",
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = wake(&app, "designer", None).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::CONFLICT, "agent_inactive")
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reactivate")
    );

    // Agents may not wake anyone.
    let key = app.agent_key("ceo").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents/devops/wake",
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn issue_changes_queue_runs_and_inactive_agents_are_left_alone() {
    let app = TestApp::new().await;
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/agents/designer",
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let dormant = create_issue(&app, "Logo", "designer").await;
    let active = create_issue(&app, "Pipeline", "devops").await;
    let runs = |key: String| {
        let app = &app;
        async move {
            app.call(
                Method::GET,
                &format!("/api/v1/runs?issue={key}"),
                Some(&app.board),
                None,
            )
            .await
            .json["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    assert!(
        runs(dormant).await.is_empty(),
        "a deactivated agent is not woken"
    );
    let queued = runs(active).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["trigger"], "assigned");
    assert_eq!(queued[0]["agent_slug"], "devops");
}

#[tokio::test]
async fn the_log_is_text_for_the_board_and_the_runs_own_agent_only() {
    let app = TestApp::new().await;
    let run = queued_run(&app, "devops").await;
    start(&app, run).await;
    app.mesa
        .append_run_output(run, "compiling\n")
        .await
        .unwrap();
    app.mesa
        .append_run_output(run, "tests: ok\n")
        .await
        .unwrap();
    let uri = format!("/api/v1/runs/{run}/log");
    let r = app.call(Method::GET, &uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(r.json, Value::String("compiling\ntests: ok\n".into()));
    let own = app.agent_key("devops").await;
    let r = app.call(Method::GET, &uri, Some(&own), None).await;
    assert_eq!(r.status, StatusCode::OK);
    for other in ["qa", "ceo"] {
        let key = app.agent_key(other).await;
        let r = app.call(Method::GET, &uri, Some(&key), None).await;
        assert_eq!(
            (r.status, code(&r)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{other}"
        );
    }
    // A run with no output yet is an empty text.
    let empty = queued_run(&app, "qa").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/runs/{empty}/log"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, Value::Null, "empty body");

    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/runs/{UNKNOWN_RUN}/log"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::NOT_FOUND, "not_found"));
    let r = app
        .call(Method::GET, "/api/v1/runs/nope/log", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["error"]["field"], "id");
    for bad in ["follow=maybe", "tail=1"] {
        let r = app
            .call(Method::GET, &format!("{uri}?{bad}"), Some(&app.board), None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.json
        );
    }
}

/// Reads server-sent events from a streaming body until `want` are seen or the body ends.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    /// The next `(event, data)`, skipping keep-alive comments; `None` when the stream ends.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if name.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event in time")?
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }
}

async fn follow(app: &TestApp, run: RunId, token: &str) -> Events {
    let req = Request::builder()
        .uri(format!("/api/v1/runs/{run}/log?follow=1"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    Events {
        body: resp.into_body(),
        buffer: String::new(),
    }
}

#[tokio::test]
async fn following_a_log_streams_the_stored_output_then_new_output_then_the_finish() {
    let app = TestApp::new().await;
    let run = queued_run(&app, "devops").await;
    let other = queued_run(&app, "qa").await;
    start(&app, run).await;
    start(&app, other).await;
    app.mesa.append_run_output(run, "line 1\n").await.unwrap();

    let own = app.agent_key("devops").await;
    let mut events = follow(&app, run, &own).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "run_output");
    assert_eq!(data["text"], "line 1\n");
    assert_eq!(data["run_id"], run.to_string());

    // Another run's output is not this stream's.
    app.mesa.append_run_output(other, "noise\n").await.unwrap();
    app.mesa.append_run_output(run, "line 2\n").await.unwrap();
    app.mesa.append_run_output(run, "line 3\n").await.unwrap();
    let (name, data) = events.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &data["text"]),
        ("run_output", &json!("line 2\n"))
    );
    let (_, data) = events.next().await.unwrap();
    assert_eq!(data["text"], "line 3\n");

    finish(&app, run).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "run_finished");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["exit_code"], 0);
    assert!(data["finished_at"].is_string());
    assert!(
        events.next().await.is_none(),
        "the stream ends after run_finished"
    );

    // A finished run: the stored log and `run_finished` at once, then the end.
    let mut events = follow(&app, run, &app.board).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "run_output");
    assert_eq!(data["text"], "line 1\nline 2\nline 3\n");
    assert_eq!(events.next().await.unwrap().0, "run_finished");
    assert!(events.next().await.is_none());

    // Followers obey the same rights as readers.
    let req = Request::builder()
        .uri(format!("/api/v1/runs/{run}/log?follow=1"))
        .header(
            "authorization",
            format!("Bearer {}", app.agent_key("qa").await),
        )
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cancelling_a_queued_run_is_immediate_a_running_one_is_requested() {
    let app = TestApp::new().await;
    let queued = queued_run(&app, "devops").await;
    let uri = format!("/api/v1/runs/{queued}/cancel");
    let r = app.call(Method::POST, &uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "cancelled");
    assert!(r.json["finished_at"].is_string());
    let r = app.call(Method::POST, &uri, Some(&app.board), None).await;
    assert_eq!((r.status, code(&r)), (StatusCode::CONFLICT, "run_finished"));

    let running = queued_run(&app, "qa").await;
    start(&app, running).await;
    let mut bus = app.mesa.subscribe();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{running}/cancel"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["status"], "running", "the scheduler stops it");
    let mut requested = false;
    while let Ok(e) = bus.try_recv() {
        if let DomainEvent::RunCancelRequested(run) = &*e {
            requested |= run.id == running;
        }
    }
    assert!(requested, "the scheduler is told");
    let log = app
        .call(
            Method::GET,
            &format!("/api/v1/activity?entity=run:{running}"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.json);
    assert_eq!(
        log.json["items"][0]["action"], "run.cancel_requested",
        "the request is recorded: {}",
        log.json
    );

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{UNKNOWN_RUN}/cancel"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::NOT_FOUND, "not_found"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/runs/x/cancel",
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let own = app.agent_key("qa").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{running}/cancel"),
            Some(&own),
            None,
        )
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn audits_need_an_auditor_and_queue_its_run() {
    let app = TestApp::new().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/audits",
            Some(&app.board),
            Some(json!({})),
        )
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::CONFLICT, "no_auditor"));
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /api/v1/agents"),
        "says how to hire one: {}",
        r.json
    );

    let r = app
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&app.board),
            Some(
                json!({"slug": "auditor", "name": "Auditor", "archetype": "auditor",
                        "runner": "noop"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);

    let r = app
        .call(
            Method::POST,
            "/api/v1/audits",
            Some(&app.board),
            Some(json!({"focus": "review rejections"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "queued");
    assert_eq!(r.json["focus"], "review rejections");
    let run_id = r.json["run_id"].as_str().unwrap().to_owned();
    let run = app
        .call(
            Method::GET,
            &format!("/api/v1/runs/{run_id}"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(run.json["agent_slug"], "auditor");
    assert_eq!(run.json["mode"], "audit");
    assert_eq!(run.json["trigger"], "audit");
    assert_eq!(run.json["status"], "queued");
    let list = app
        .call(Method::GET, "/api/v1/audits", Some(&app.board), None)
        .await;
    assert_eq!(list.json["items"][0]["id"], r.json["id"]);

    // One queued audit at a time; no body is fine.
    let again = app
        .call(Method::POST, "/api/v1/audits", Some(&app.board), None)
        .await;
    assert_eq!(
        (again.status, code(&again)),
        (StatusCode::CONFLICT, "audit_queued")
    );
    assert!(
        again.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&run_id)
    );

    // Cancelling the queued audit run settles the audit; a new one may then be asked for.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/cancel"),
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let list = app
        .call(Method::GET, "/api/v1/audits", Some(&app.board), None)
        .await;
    assert_eq!(list.json["items"][0]["status"], "failed", "{}", list.json);
    assert!(list.json["items"][0]["finished_at"].is_string());
    let r = app
        .call(Method::POST, "/api/v1/audits", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["focus"], Value::Null);

    for (body, field) in [
        (json!({"focus": "x".repeat(2001)}), "focus"),
        (json!({"fokus": "typo"}), "fokus"),
    ] {
        let r = app
            .call(Method::POST, "/api/v1/audits", Some(&app.board), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
        assert_eq!(r.json["error"]["field"], field);
    }
    let key = app.agent_key("auditor").await;
    let r = app
        .call(Method::POST, "/api/v1/audits", Some(&key), Some(json!({})))
        .await;
    assert_eq!((r.status, code(&r)), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn the_new_routes_are_documented() {
    let app = TestApp::new().await;
    let doc = app.call(Method::GET, "/api/openapi.json", None, None).await;
    let paths = &doc.json["paths"];
    for (path, method) in [
        ("/api/v1/agents/{slug}/wake", "post"),
        ("/api/v1/runs/{id}/log", "get"),
        ("/api/v1/runs/{id}/cancel", "post"),
        ("/api/v1/audits", "post"),
        ("/api/v1/audits", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    let log = &paths["/api/v1/runs/{id}/log"]["get"]["responses"]["200"]["content"];
    assert!(log["text/plain"].is_object(), "{log}");
    assert!(log["text/event-stream"].is_object(), "{log}");
    let params = paths["/api/v1/runs/{id}/log"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let follow = params.iter().find(|p| p["name"] == "follow").unwrap();
    assert_eq!(follow["in"], "query", "{follow}");
    let cancel = &paths["/api/v1/runs/{id}/cancel"]["post"]["responses"];
    assert!(cancel["200"]["content"]["application/json"]["schema"]["$ref"].is_string());
    assert!(cancel["202"]["content"]["application/json"]["schema"]["$ref"].is_string());
}

/// Over a real listener: the follow stream's bytes on the wire, and graceful shutdown ends it
/// (an open follower never holds the server up).
#[tokio::test]
async fn a_followed_log_over_the_wire_ends_with_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::new().await;
    let run = queued_run(&app, "devops").await;
    start(&app, run).await;
    app.mesa.append_run_output(run, "hello\n").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(mesa_http::serve(
        listener,
        mesa_http::AppState::new(app.mesa.clone()),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/runs/{run}/log?follow=1 HTTP/1.1\r\nHost: mesa\r\n\
         Authorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        app.board
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 8192];
    let read = async {
        while !seen.contains("data: {") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the stored log in time");
    let lower = seen.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{seen}");
    assert!(lower.contains("content-type: text/event-stream"), "{seen}");
    assert!(seen.contains("event: run_output"), "{seen}");
    assert!(seen.contains(r#""text":"hello\n""#), "{seen}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("graceful shutdown ends the follow stream")
        .unwrap()
        .unwrap();
    // The server closed the connection: reading to the end returns.
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    })
    .await
    .expect("the connection closes");
}
