//! Wiki, reflections, skills, memory, activity, runs, settings, scheduler, crons, directives and
//! audits over HTTP.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mesa_core::domain::entity::AgentConfig;
use mesa_core::domain::entity::TokenUsage;
use mesa_core::domain::{
    Actor, CostSource, MicroUsd, Name, RunId, RunMode, RunStatus, RunTrigger, RunnerKind, Slug,
};
use mesa_core::store::{FinishRunRecord, NewRunRecord, StartRunRequest};
use mesa_core::{NewAgent, NewIssue};
use serde_json::{Value, json};

use crate::support::TestApp;

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn wiki_pages_are_created_read_edited_searched_and_deleted() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());

    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            b,
            Some(json!({"title": "Getting Started", "content": "Install the **mesa** binary."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["slug"], "getting-started");
    assert_eq!(r.json["created_by"], "board:test");
    assert_eq!(r.headers["etag"], "\"1\"");

    // The same title again gets `-2`; an explicit taken slug is a conflict and writes nothing.
    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            b,
            Some(json!({"title": "Getting started", "content": "again"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["slug"], "getting-started-2");
    let before = app.activity_rows().await;
    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            b,
            Some(json!({"slug": "getting-started", "title": "X", "content": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    for (body, f) in [
        (json!({"title": "", "content": ""}), "title"),
        (json!({"title": "T", "content": "", "sulg": "x"}), "sulg"),
        (
            json!({"slug": "Bad Slug", "title": "T", "content": ""}),
            "slug",
        ),
        (json!({"title": "T"}), "content"),
    ] {
        let r = app.call(POST, "/api/v1/wiki", b, Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
        assert_eq!(field(&r.json), f, "{}", r.json);
    }
    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            None,
            Some(json!({"title": "T", "content": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&r.json), "unauthenticated");
    assert_eq!(app.activity_rows().await, before);

    // List and read.
    let r = app.call(GET, "/api/v1/wiki?limit=1", b, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert!(r.json["next_cursor"].is_string());
    let r = app.call(GET, "/api/v1/wiki?bogus=1", b, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.call(GET, "/api/v1/wiki/getting-started", b, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["content"], "Install the **mesa** binary.");
    let r = app.call(GET, "/api/v1/wiki/nope", b, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&r.json), "not_found");
    let r = app.call(GET, "/api/v1/wiki/NOT_A_SLUG", b, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Edit with a version; a stale If-Match or body version is 412 and writes nothing.
    let r = app
        .call(
            PATCH,
            "/api/v1/wiki/getting-started",
            b,
            Some(json!({"content": "Run `mesa` to start.", "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.headers["etag"], "\"2\"");
    let before = app.activity_rows().await;
    let req = Request::builder()
        .method(PATCH)
        .uri("/api/v1/wiki/getting-started")
        .header("authorization", format!("Bearer {}", app.board))
        .header("content-type", "application/json")
        .header("if-match", "\"1\"")
        .body(Body::from(json!({"title": "Stale"}).to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.json);
    assert_eq!(code(&r.json), "version_conflict");
    let r = app
        .call(
            PATCH,
            "/api/v1/wiki/getting-started",
            b,
            Some(json!({"title": "Stale", "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = app
        .call(
            PATCH,
            "/api/v1/wiki/getting-started",
            b,
            Some(json!({"titel": "Typo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "titel");
    let r = app
        .call(
            PATCH,
            "/api/v1/wiki/getting-started",
            b,
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "body");
    let r = app
        .call(PATCH, "/api/v1/wiki/nope", b, Some(json!({"title": "X"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.activity_rows().await, before);

    // Revisions, newest first.
    let r = app
        .call(GET, "/api/v1/wiki/getting-started/revisions", b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let revs = r.json["items"].as_array().unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[0]["version"], 2);
    assert_eq!(revs[1]["content"], "Install the **mesa** binary.");
    assert_eq!(
        app.call(GET, "/api/v1/wiki/nope/revisions", b, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Search: FTS with prefix matching and snippets, then the fuzzy fallback.
    let r = app.call(GET, "/api/v1/wiki/search?q=sta", b, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().any(|i| i["slug"] == "getting-started"));
    assert!(
        items
            .iter()
            .any(|i| i["snippet"].as_str().unwrap().contains("<mark>")),
        "{}",
        r.json
    );
    assert!(r.json["next_cursor"].is_null());
    let r = app
        .call(GET, "/api/v1/wiki/search?q=gtngstrtd&limit=5", b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.json["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["slug"] == "getting-started"),
        "fuzzy: {}",
        r.json
    );
    let r = app.call(GET, "/api/v1/wiki/search?q=", b, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "q");
    let r = app.call(GET, "/api/v1/wiki/search", b, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Agents create and edit pages, delete only their own.
    let eng = app.agent_key("founding-engineer").await;
    let before = app.activity_rows().await;
    let r = app
        .call(DELETE, "/api/v1/wiki/getting-started", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&r.json), "forbidden");
    assert_eq!(app.activity_rows().await, before);
    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            Some(&eng),
            Some(json!({"slug": "eng-notes", "title": "Notes", "content": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["created_by"], "founding-engineer");
    let r = app
        .call(
            PATCH,
            "/api/v1/wiki/getting-started",
            Some(&eng),
            Some(json!({"content": "agents edit too"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["updated_by"], "founding-engineer");
    let r = app
        .call(DELETE, "/api/v1/wiki/eng-notes", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .call(DELETE, "/api/v1/wiki/getting-started-2", b, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(GET, "/api/v1/wiki/getting-started-2", b, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(DELETE, "/api/v1/wiki/getting-started-2", b, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Enqueues a run of `slug` on a new issue and returns (run id, issue key).
async fn queued_run(app: &TestApp, slug: &str, title: &str) -> (RunId, String) {
    let board = Actor::board("test");
    let issue = app
        .mesa
        .create_issue(&board, NewIssue::titled(title).unwrap())
        .await
        .unwrap();
    let agent = app.mesa.find_agent(slug).await.unwrap();
    let run_id = RunId::parse(&uuid_v7()).unwrap();
    app.mesa
        .store()
        .enqueue_run(NewRunRecord {
            id: run_id,
            agent_id: agent.id,
            issue_key: Some(issue.issue.key.clone()),
            mode: RunMode::Task,
            trigger: RunTrigger::Manual,
            runner: RunnerKind::Noop,
            model: String::new(),
            priority: 0,
            not_before: None,
            queued_at: app.mesa.now(),
            activity: vec![],
        })
        .await
        .unwrap();
    (run_id, issue.issue.key.to_string())
}

/// A fresh UUID text (unique within the test process; the crate has no `uuid` dependency).
fn uuid_v7() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        nanos >> 32,
        (nanos >> 16) & 0xffff,
        nanos & 0xfff,
        n & 0xfff,
        n
    )
}

#[tokio::test]
async fn reflections_are_bound_to_the_callers_run() {
    let app = TestApp::new().await;
    let (run_id, key) = queued_run(&app, "founding-engineer", "Reflect on me").await;
    let agent = app.mesa.find_agent("founding-engineer").await.unwrap();
    let run_key = app.mesa.mint_run_key(&agent, run_id).await.unwrap().raw;

    let r = app
        .call(
            POST,
            "/api/v1/reflections",
            Some(&run_key),
            Some(json!({"body": "Write the test first.", "outcome": "changes_requested"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["run_id"], run_id.to_string());
    assert_eq!(r.json["issue_key"], key);
    assert_eq!(r.json["outcome"], "changes_requested");
    assert_eq!(r.json["agent_id"], agent.id.to_string());

    // An agent key has no run: the reflection stands alone.
    let eng = app.agent_key("founding-engineer").await;
    let r = app
        .call(
            POST,
            "/api/v1/reflections",
            Some(&eng),
            Some(json!({"body": "Smaller commits."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json["run_id"].is_null());
    assert_eq!(r.json["outcome"], "succeeded");

    // Refusals write nothing.
    let before = app.activity_rows().await;
    let r = app
        .call(
            POST,
            "/api/v1/reflections",
            Some(&app.board),
            Some(json!({"body": "I am not an agent"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for (body, f) in [
        (json!({"body": "  "}), "body"),
        (json!({"body": "x", "outcome": "great"}), "outcome"),
        (json!({"body": "x", "run_id": "y"}), "run_id"),
    ] {
        let r = app
            .call(POST, "/api/v1/reflections", Some(&eng), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
        assert_eq!(field(&r.json), f);
    }
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn skills_are_promoted_by_the_board_and_the_ceo_only() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let skill = json!({"slug": "tdd", "title": "Test first", "body": "Write a failing test, then the code.", "tags": ["testing", "rust"]});
    let r = app
        .call(POST, "/api/v1/skills", b, Some(skill.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["source"], "board");
    assert_eq!(r.json["promoted_by"], "board:test");
    assert_eq!(r.json["tags"], json!(["testing", "rust"]));

    let ceo = app.agent_key("ceo").await;
    let r = app
        .call(POST, "/api/v1/skills", Some(&ceo), Some(json!({"slug": "delegate", "title": "Delegate", "body": "Split work by owner.", "tags": []})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["promoted_by"], "ceo");

    // An agent of the auditor archetype may promote too.
    let dir = app.mesa.config().workspace.clone();
    let config = AgentConfig::new(
        Name::parse("Aud").unwrap(),
        Slug::parse("auditor").unwrap(),
        RunnerKind::Noop,
        dir,
    );
    app.mesa
        .create_agent(
            &Actor::board("test"),
            NewAgent {
                slug: Slug::parse("aud").unwrap(),
                config,
            },
        )
        .await
        .unwrap();
    let aud = app.agent_key("aud").await;
    let r = app
        .call(POST, "/api/v1/skills", Some(&aud), Some(json!({"slug": "audit-often", "title": "Audit", "body": "Look at the figures.", "tags": ["audit"], "source": "agent"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["source"], "agent");

    let before = app.activity_rows().await;
    let eng = app.agent_key("founding-engineer").await;
    let after_key = app.activity_rows().await;
    let r = app
        .call(
            POST,
            "/api/v1/skills",
            Some(&eng),
            Some(json!({"slug": "mine", "title": "Mine", "body": "x", "tags": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let r = app.call(POST, "/api/v1/skills", b, Some(skill)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    for (body, f) in [
        (json!({"slug": "x", "title": "X", "body": "x"}), "tags"),
        (
            json!({"slug": "Bad", "title": "X", "body": "x", "tags": []}),
            "slug",
        ),
        (
            json!({"slug": "x", "title": "X", "body": "x", "tags": [""]}),
            "tags",
        ),
        (
            json!({"slug": "x", "title": "X", "body": "x", "tags": [], "source": "somewhere"}),
            "source",
        ),
        (
            json!({"slug": "x", "title": "X", "body": "x", "tags": [], "source": "wiki:missing"}),
            "source",
        ),
    ] {
        let r = app.call(POST, "/api/v1/skills", b, Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
        assert_eq!(field(&r.json), f, "{}", r.json);
    }
    assert_eq!(app.activity_rows().await, after_key);
    assert!(after_key > before);

    // Everyone reads.
    let r = app.call(GET, "/api/v1/skills", Some(&eng), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);
    let r = app
        .call(GET, "/api/v1/skills?q=failing", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.json);
    assert_eq!(items[0]["slug"], "tdd");
    let r = app.call(GET, "/api/v1/skills/tdd", Some(&eng), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["body"], "Write a failing test, then the code.");
    assert_eq!(
        app.call(GET, "/api/v1/skills/none", Some(&eng), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(GET, "/api/v1/skills?x=1", Some(&eng), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn memory_is_stored_and_recalled_per_agent_and_shared() {
    let app = TestApp::new().await;
    let eng = app.agent_key("founding-engineer").await;
    let qa = app.agent_key("qa").await;
    let r = app
        .call(
            POST,
            "/api/v1/memory",
            Some(&eng),
            Some(json!({"content": "The staging database is on port 5433", "tags": ["staging"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert!(r.json["agent_id"].is_string());
    let r = app
        .call(
            POST,
            "/api/v1/memory",
            Some(&eng),
            Some(json!({"content": "Staging deploys need the VPN", "shared": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json["agent_id"].is_null());

    let r = app
        .call(GET, "/api/v1/memory/recall?q=staging", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 2);
    // Another agent sees only the shared item.
    let r = app
        .call(
            GET,
            "/api/v1/memory/recall?q=staging&limit=10",
            Some(&qa),
            None,
        )
        .await;
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["content"], "Staging deploys need the VPN");
    assert_eq!(items[0]["recalled_count"], 2);

    let before = app.activity_rows().await;
    let r = app
        .call(
            POST,
            "/api/v1/memory",
            Some(&eng),
            Some(json!({"content": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "content");
    let r = app
        .call(
            POST,
            "/api/v1/memory",
            Some(&eng),
            Some(json!({"content": "x", "private": true})),
        )
        .await;
    assert_eq!(field(&r.json), "private");
    let r = app
        .call(GET, "/api/v1/memory/recall", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(GET, "/api/v1/memory/recall?q=%20", Some(&eng), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "q");
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn the_activity_log_filters_by_entity_and_actor() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let r = app
        .call(
            POST,
            "/api/v1/issues",
            b,
            Some(json!({"title": "Audit me"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let eng = app.agent_key("founding-engineer").await;
    let r = app
        .call(
            POST,
            &format!("/api/v1/issues/{key}/comments"),
            Some(&eng),
            Some(json!({"body": "looking"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app
        .call(
            GET,
            &format!("/api/v1/activity?entity=issue:{key}"),
            Some(&eng),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert!(items.len() >= 2);
    assert!(
        items
            .iter()
            .all(|i| i["entity_type"] == "issue" && i["entity_id"] == key.as_str())
    );

    let r = app
        .call(GET, "/api/v1/activity?actor=board&limit=500", b, None)
        .await;
    let items = r.json["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|i| i["actor"].as_str().unwrap().starts_with("board:"))
    );
    let r = app
        .call(GET, "/api/v1/activity?actor=founding-engineer", b, None)
        .await;
    let items = r.json["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["actor"] == "founding-engineer"));
    let r = app.call(GET, "/api/v1/activity?limit=1", b, None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .call(
            GET,
            &format!("/api/v1/activity?limit=1&cursor={cursor}"),
            b,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for uri in [
        "/api/v1/activity?entity=issue",
        "/api/v1/activity?cursor=junk",
        "/api/v1/activity?who=me",
    ] {
        let r = app.call(GET, uri, b, None).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            r.json
        );
    }
    assert_eq!(
        app.call(GET, "/api/v1/activity", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn runs_show_their_output_only_to_their_agent_and_the_board() {
    let app = TestApp::new().await;
    let (run_id, key) = queued_run(&app, "founding-engineer", "Run me").await;
    let now = app.mesa.now();
    let store = app.mesa.store();
    store
        .start_run(StartRunRequest {
            run_id,
            node_id: "test".into(),
            now,
            lease_expires_at: now + std::time::Duration::from_secs(60),
            reserve_usd: MicroUsd::ZERO,
            reserve_tokens: 0,
            day_start: now.day_start(0),
            prompt: Some("Do the work".into()),
            activity: vec![],
        })
        .await
        .unwrap();
    store
        .finish_run(FinishRunRecord {
            run_id,
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            failure_reason: None,
            stdout: Some("the private log".into()),
            diff: Some("+line".into()),
            diff_stat: None,
            usage: TokenUsage::default(),
            cost_usd: MicroUsd::ZERO,
            cost_source: CostSource::Parsed,
            num_turns: Some(1),
            finished_at: now,
            cost_event_id: mesa_core::domain::CostEventId::parse(&uuid_v7()).unwrap(),
            activity: vec![],
        })
        .await
        .unwrap();

    let eng = app.agent_key("founding-engineer").await;
    let qa = app.agent_key("qa").await;
    let b = Some(app.board.as_str());

    let r = app
        .call(GET, "/api/v1/runs?agent=founding-engineer", Some(&qa), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["agent_slug"], "founding-engineer");
    assert!(items[0]["prompt"].is_null());
    let r = app
        .call(
            GET,
            &format!("/api/v1/runs?issue={key}&status=succeeded,failed"),
            b,
            None,
        )
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    let r = app.call(GET, "/api/v1/runs?status=running", b, None).await;
    assert!(r.json["items"].as_array().unwrap().is_empty());

    let uri = format!("/api/v1/runs/{run_id}");
    let r = app.call(GET, &uri, Some(&eng), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["stdout"], "the private log");
    assert_eq!(r.json["prompt"], "Do the work");
    let r = app.call(GET, &uri, b, None).await;
    assert_eq!(r.json["stdout"], "the private log");
    let r = app.call(GET, &uri, Some(&qa), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["stdout"].is_null());
    assert_eq!(r.json["diff"], "+line");

    let r = app
        .call(GET, &format!("/api/v1/runs/{}", uuid_v7()), b, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for uri in [
        "/api/v1/runs/xyz",
        "/api/v1/runs?agent=nobody",
        "/api/v1/runs?status=done",
        "/api/v1/runs?issue=bad",
    ] {
        let r = app.call(GET, uri, b, None).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            r.json
        );
    }
}

#[tokio::test]
async fn settings_are_board_only_and_never_return_secrets() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let eng = app.agent_key("founding-engineer").await;

    let r = app
        .call(PATCH, "/api/v1/settings", b, Some(json!({"telegram_bot_token": "123:SECRETVALUE", "feature_memory": true, "instance_name": "Acme", "max_runs_per_issue": 9})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(!r.json.to_string().contains("SECRETVALUE"));
    let r = app.call(GET, "/api/v1/settings", b, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.json.to_string().contains("SECRETVALUE"));
    let items = r.json["items"].as_array().unwrap();
    let get = |k: &str| items.iter().find(|i| i["key"] == k).cloned().unwrap();
    assert_eq!(get("telegram_bot_token")["value"], Value::Null);
    assert_eq!(get("telegram_bot_token")["secret"], true);
    assert_eq!(get("feature_memory")["value"], "true");
    assert_eq!(get("instance_name")["value"], "Acme");
    assert_eq!(get("max_runs_per_issue")["value"], "9");
    assert!(app.mesa.settings().await.feature("memory"));
    // The audit log does not hold the secret either.
    let r = app.call(GET, "/api/v1/activity?limit=500", b, None).await;
    assert!(!r.json.to_string().contains("SECRETVALUE"));

    let before = app.activity_rows().await;
    for (body, f) in [
        (json!({"feature_teleport": true}), "feature_teleport"),
        (json!({"feature_memory": "maybe"}), "feature_memory"),
        (json!({"instance_name": null}), "instance_name"),
        (json!({"issue_prefix": "bad prefix"}), "issue_prefix"),
        (json!({}), "body"),
        (json!({"scheduler_paused": "true"}), "scheduler_paused"),
    ] {
        let r = app.call(PATCH, "/api/v1/settings", b, Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
        assert_eq!(field(&r.json), f, "{}", r.json);
    }
    let r = app.call(GET, "/api/v1/settings", Some(&eng), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            PATCH,
            "/api/v1/settings",
            Some(&eng),
            Some(json!({"instance_name": "Mine"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.activity_rows().await, before);
    assert_eq!(app.mesa.settings().await.instance_name(), "Acme");
}

#[tokio::test]
async fn the_board_pauses_and_resumes_the_scheduler() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let eng = app.agent_key("founding-engineer").await;
    let mut events = app.mesa.subscribe();

    let r = app.call(GET, "/api/v1/scheduler", b, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"paused": false}));

    let before = app.activity_rows().await;
    for (m, uri) in [
        (GET, "/api/v1/scheduler"),
        (POST, "/api/v1/scheduler/pause"),
        (POST, "/api/v1/scheduler/resume"),
    ] {
        let r = app.call(m, uri, Some(&eng), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(app.activity_rows().await, before);

    let r = app.call(POST, "/api/v1/scheduler/pause", b, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["paused"], true);
    assert_eq!(app.activity_rows().await, before + 1);
    assert!(app.mesa.scheduler_paused().await);
    assert_eq!(
        app.call(GET, "/api/v1/scheduler", b, None).await.json["paused"],
        true
    );
    // Pausing again changes nothing.
    app.call(POST, "/api/v1/scheduler/pause", b, None).await;
    assert_eq!(app.activity_rows().await, before + 1);
    let r = app.call(POST, "/api/v1/scheduler/resume", b, None).await;
    assert_eq!(r.json["paused"], false);
    assert_eq!(app.activity_rows().await, before + 2);

    let mut names = Vec::new();
    while let Ok(e) = events.try_recv() {
        names.push(e.name());
    }
    assert_eq!(names, ["scheduler_paused", "scheduler_resumed"]);
    let r = app
        .call(GET, "/api/v1/activity?entity=scheduler:scheduler", b, None)
        .await;
    let actions: Vec<_> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [json!("scheduler.resumed"), json!("scheduler.paused")]
    );
}

#[tokio::test]
async fn crons_are_board_only_with_validated_schedules() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let eng = app.agent_key("founding-engineer").await;

    let r = app
        .call(
            POST,
            "/api/v1/crons",
            b,
            Some(json!({"agent": "qa", "task": "Run the smoke tests", "schedule": "20m"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["agent_slug"], "qa");
    assert_eq!(r.json["active"], true);
    assert!(r.json["next_run_at"].is_string());
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = app
        .call(POST, "/api/v1/crons", b, Some(json!({"agent_slug": "devops", "task": "Check backups", "schedule": "0 3 * * 1-5", "active": false})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);

    let r = app.call(GET, "/api/v1/crons", b, None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 2);

    let uri = format!("/api/v1/crons/{id}");
    let r = app
        .call(
            PATCH,
            &uri,
            b,
            Some(json!({"schedule": "*/15 * * * *", "active": false, "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["schedule"], "*/15 * * * *");
    assert_eq!(r.json["version"], 2);

    let before = app.activity_rows().await;
    for schedule in ["every day", "61 * * * *", "* * * *", "0m", "5x"] {
        let r = app
            .call(
                POST,
                "/api/v1/crons",
                b,
                Some(json!({"agent": "qa", "task": "t", "schedule": schedule})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{schedule}");
        assert_eq!(field(&r.json), "schedule");
    }
    let r = app
        .call(
            POST,
            "/api/v1/crons",
            b,
            Some(json!({"agent": "nobody", "task": "t", "schedule": "1h"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "agent");
    let r = app
        .call(
            POST,
            "/api/v1/crons",
            b,
            Some(json!({"agent": "qa", "task": "", "schedule": "1h"})),
        )
        .await;
    assert_eq!(field(&r.json), "task");
    let r = app
        .call(PATCH, &uri, b, Some(json!({"schedule": "soon"})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(PATCH, &uri, b, Some(json!({"active": true, "version": 1})))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let missing = format!("/api/v1/crons/{}", uuid_v7());
    assert_eq!(
        app.call(PATCH, &missing, b, Some(json!({"active": true})))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(DELETE, &missing, b, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(DELETE, "/api/v1/crons/nope", b, None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(GET, "/api/v1/crons", Some(&eng), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .call(
            POST,
            "/api/v1/crons",
            Some(&eng),
            Some(json!({"agent": "qa", "task": "t", "schedule": "1h"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(PATCH, &uri, Some(&eng), Some(json!({"active": true})))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(DELETE, &uri, Some(&eng), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.activity_rows().await, before);

    assert_eq!(
        app.call(DELETE, &uri, b, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(GET, "/api/v1/crons", b, None).await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn directives_are_board_only() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let eng = app.agent_key("founding-engineer").await;

    let r = app
        .call(
            POST,
            "/api/v1/directives",
            b,
            Some(json!({"text": "Never push to main."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["active"], true);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/directives/{id}");
    let r = app
        .call(PATCH, &uri, b, Some(json!({"active": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["active"], false);
    assert_eq!(r.json["text"], "Never push to main.");
    let r = app.call(GET, "/api/v1/directives", b, None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);

    let before = app.activity_rows().await;
    let r = app
        .call(POST, "/api/v1/directives", b, Some(json!({"text": "   "})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&r.json), "text");
    let r = app
        .call(PATCH, &uri, b, Some(json!({"text": "x", "version": 1})))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let missing = format!("/api/v1/directives/{}", uuid_v7());
    assert_eq!(
        app.call(PATCH, &missing, b, Some(json!({"active": true})))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(DELETE, &missing, b, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(GET, "/api/v1/directives", Some(&eng), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            POST,
            "/api/v1/directives",
            Some(&eng),
            Some(json!({"text": "Obey me"}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(PATCH, &uri, Some(&eng), Some(json!({"active": true})))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(DELETE, &uri, Some(&eng), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.activity_rows().await, before);

    assert_eq!(
        app.call(DELETE, &uri, b, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.call(GET, "/api/v1/directives", b, None).await.json["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn audits_are_listed_for_the_board() {
    let app = TestApp::new().await;
    let r = app
        .call(GET, "/api/v1/audits", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"items": [], "next_cursor": null}));
    let eng = app.agent_key("founding-engineer").await;
    assert_eq!(
        app.call(GET, "/api/v1/audits", Some(&eng), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_openapi_document_lists_these_routes() {
    let app = TestApp::new().await;
    let r = app.call(GET, "/api/openapi.json", None, None).await;
    let paths = &r.json["paths"];
    for p in [
        "/api/v1/wiki/{slug}/revisions",
        "/api/v1/wiki/search",
        "/api/v1/skills/{slug}",
        "/api/v1/memory/recall",
        "/api/v1/reflections",
        "/api/v1/runs/{id}",
        "/api/v1/settings",
        "/api/v1/scheduler/pause",
        "/api/v1/crons/{id}",
        "/api/v1/directives",
        "/api/v1/audits",
        "/api/v1/activity",
    ] {
        assert!(paths.get(p).is_some(), "{p} missing");
    }
}

#[tokio::test]
async fn reflections_and_wiki_pages_are_promoted_to_skills() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let eng = app.agent_key("founding-engineer").await;
    let r = app
        .call(
            POST,
            "/api/v1/reflections",
            Some(&eng),
            Some(json!({"body": "## Run the migrations first\nThe tests need the schema."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let reflection = r.json["id"].as_str().unwrap().to_owned();

    // From a reflection: its first line is the title, its text the body.
    let r = app
        .call(
            POST,
            "/api/v1/skills",
            b,
            Some(json!({"slug": "migrations-first", "tags": ["database"], "from_reflection": reflection})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["title"], "Run the migrations first");
    assert_eq!(
        r.json["body"],
        "## Run the migrations first\nThe tests need the schema."
    );
    assert_eq!(r.json["source"], format!("reflection:{reflection}"));
    assert_eq!(
        (r.json["uses"].as_i64(), r.json["successes"].as_i64()),
        (Some(0), Some(0))
    );

    // From a wiki page, with a title of the promoter's own.
    let r = app
        .call(
            POST,
            "/api/v1/wiki",
            b,
            Some(json!({"slug": "deploys", "title": "Deploys", "content": "Tag, then push."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let ceo = app.agent_key("ceo").await;
    let r = app
        .call(
            POST,
            "/api/v1/skills",
            Some(&ceo),
            Some(json!({"slug": "deploys", "title": "How we deploy", "tags": [], "from_wiki": "deploys"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["title"], "How we deploy");
    assert_eq!(r.json["body"], "Tag, then push.");
    assert_eq!(r.json["source"], "wiki:deploys");

    // Refusals write nothing.
    let before = app.activity_rows().await;
    let missing = "01900000-0000-7000-8000-000000000001";
    for (body, status, f) in [
        (
            json!({"slug": "x", "tags": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
        (
            json!({"slug": "x", "tags": [], "from_reflection": missing}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "source",
        ),
        (
            json!({"slug": "x", "tags": [], "from_reflection": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "source",
        ),
        (
            json!({"slug": "x", "tags": [], "from_wiki": "deploys", "source": "board"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "source",
        ),
        (
            json!({"slug": "x", "tags": [], "from_wiki": "missing"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "source",
        ),
    ] {
        let r = app
            .call(POST, "/api/v1/skills", b, Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert_eq!(field(&r.json), f, "{body}: {}", r.json);
    }
    let r = app
        .call(
            POST,
            "/api/v1/skills",
            Some(&eng),
            Some(json!({"slug": "mine", "tags": [], "from_reflection": reflection})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(app.activity_rows().await, before);
}
