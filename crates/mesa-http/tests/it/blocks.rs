//! Work blocks, apex blocks, strategy, approvals, archetypes and patches, and the inbox over the
//! router: success paths, error codes, and refusals that write nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// A request and the refusal it must get: method, uri, token, body, status, code, field.
type Case<'a> = (
    Method,
    String,
    Option<&'a str>,
    Option<Value>,
    StatusCode,
    &'a str,
    Option<&'a str>,
);

fn code(r: &Reply) -> (StatusCode, Option<&str>) {
    (r.status, r.json["error"]["code"].as_str())
}

async fn new_block(app: &TestApp, token: &str, title: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/work-blocks",
            Some(token),
            Some(json!({"title": title})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn new_issue(app: &TestApp, body: Value) -> String {
    let r = app
        .call(Method::POST, "/api/v1/issues", Some(&app.board), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["key"].as_str().unwrap().to_owned()
}

/// A finished run of `agent` on `issue` that cost `usd`, written through the store.
async fn spend(app: &TestApp, n: u32, agent: &str, issue: Option<&str>, usd: f64) {
    use mesa_core::domain::entity::TokenUsage;
    use mesa_core::domain::{
        CostEventId, CostSource, IssueKey, MicroUsd, RunId, RunMode, RunStatus, RunTrigger,
    };
    use mesa_core::store::{FinishRunRecord, NewRunRecord, StartRunRequest};
    let store = app.mesa.store();
    let agent = app.mesa.find_agent(agent).await.unwrap();
    let now = app.mesa.now();
    let id = RunId::parse(&format!("0190b1a2-0000-7000-8000-{n:012}")).unwrap();
    let run = store
        .enqueue_run(NewRunRecord {
            id,
            agent_id: agent.id,
            issue_key: issue.map(|k| IssueKey::parse(k).unwrap()),
            mode: if issue.is_some() {
                RunMode::Task
            } else {
                RunMode::Heartbeat
            },
            trigger: RunTrigger::Manual,
            runner: agent.config.runner,
            model: String::new(),
            priority: 0,
            not_before: None,
            queued_at: now,
            activity: Vec::new(),
        })
        .await
        .unwrap()
        .run;
    store
        .start_run(StartRunRequest {
            run_id: run.id,
            node_id: "test".into(),
            now,
            lease_expires_at: now + std::time::Duration::from_secs(600),
            reserve_usd: MicroUsd::ZERO,
            reserve_tokens: 0,
            day_start: now.day_start(0),
            prompt: None,
            activity: Vec::new(),
        })
        .await
        .unwrap();
    store
        .finish_run(FinishRunRecord {
            run_id: run.id,
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            failure_reason: None,
            stdout: None,
            diff: None,
            diff_stat: None,
            usage: TokenUsage::default(),
            cost_usd: MicroUsd::from_usd("cost_usd", usd).unwrap(),
            cost_source: CostSource::Reported,
            num_turns: None,
            finished_at: now,
            cost_event_id: CostEventId::parse(&format!("0190b1a2-0000-7000-9000-{n:012}")).unwrap(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn work_block_create_read_list_patch_and_errors() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let r = app
        .call(
            Method::POST,
            "/api/v1/work-blocks",
            b,
            Some(
                json!({"title": "Sprint 1", "goal": "ship login", "north_star_metric": "signups",
                         "north_star_target": 100.0}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "proposed");
    assert_eq!(r.json["north_star_target"], 100.0);
    assert_eq!(r.headers["etag"], "\"1\"");
    let id = r.json["id"].as_str().unwrap().to_owned();

    let r = app
        .call(Method::GET, "/api/v1/work-blocks?status=proposed", b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["next_cursor"], Value::Null);
    let r = app
        .call(Method::GET, "/api/v1/work-blocks?status=active", b, None)
        .await;
    assert_eq!(r.json["items"], json!([]));

    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{id}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["work_block"]["title"], "Sprint 1");
    assert_eq!(
        r.json["stats"],
        json!({"planned": 0, "done": 0, "cancelled": 0, "open": 0, "runs": 0, "cost_usd": 0.0,
               "tokens": 0, "cycle_time_sec": null})
    );
    assert_eq!(r.json["issues"], json!([]));

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"title": "Sprint one", "north_star_target": null, "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["title"], "Sprint one");
    assert_eq!(r.json["north_star_target"], Value::Null);
    assert_eq!(r.json["version"], 2);

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"north_star_current": 12.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["north_star_current"], 12.5);
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{id}"), b, None)
        .await;
    assert_eq!(r.json["north_star_history"][0]["value"], 12.5);

    // Refusals: each with its code, and none writes anything.
    let before = app.activity_rows().await;
    let qa = app.agent_key("qa").await;
    let before = before.max(app.activity_rows().await);
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(format!("/api/v1/work-blocks/{id}"))
        .header("authorization", format!("Bearer {}", app.board))
        .header("content-type", "application/json")
        .header("if-match", "\"1\"")
        .body(Body::from(json!({"title": "stale"}).to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(
        code(&r),
        (StatusCode::PRECONDITION_FAILED, Some("version_conflict"))
    );
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/api/v1/work-blocks".into(),
            b,
            Some(json!({"titel": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("titel"),
        ),
        (
            Method::POST,
            "/api/v1/work-blocks".into(),
            b,
            Some(json!({"title": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("title"),
        ),
        (
            Method::POST,
            "/api/v1/work-blocks".into(),
            b,
            Some(json!({"title": "x", "apex_block_id": "0190b1a2-0000-7000-8000-000000000000"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("apex_block_id"),
        ),
        (
            Method::POST,
            "/api/v1/work-blocks".into(),
            None,
            Some(json!({"title": "x"})),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        (
            Method::GET,
            "/api/v1/work-blocks?status=done".into(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("status"),
        ),
        (
            Method::GET,
            "/api/v1/work-blocks?colour=red".into(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("colour"),
        ),
        (
            Method::GET,
            "/api/v1/work-blocks/nope".into(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("id"),
        ),
        (
            Method::GET,
            "/api/v1/work-blocks/0190b1a2-0000-7000-8000-000000000000".into(),
            b,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "proposed"})),
            StatusCode::CONFLICT,
            "illegal_transition",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "shipped"})),
            StatusCode::CONFLICT,
            "illegal_transition",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "active", "title": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("status"),
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "bogus"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("status"),
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("body"),
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"title": "x", "version": 1})),
            StatusCode::PRECONDITION_FAILED,
            "version_conflict",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            Some(&qa),
            Some(json!({"title": "mine"})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            Some(&qa),
            Some(json!({"north_star_current": 3.0})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/work-blocks/{id}"),
            Some(&qa),
            Some(json!({"status": "ready"})),
            StatusCode::CONFLICT,
            "illegal_transition",
            None,
        ),
    ];
    for (method, uri, token, body, status, want, field) in cases {
        let r = app.call(method.clone(), &uri, token, body.clone()).await;
        assert_eq!(
            code(&r),
            (status, Some(want)),
            "{method} {uri} {body:?}: {}",
            r.json
        );
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f, "{method} {uri}: {}", r.json);
        }
    }
    assert_eq!(app.activity_rows().await, before, "refusals write nothing");

    // Cancelled blocks are terminal.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "cancelled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "cancelled");
    assert!(r.json["cancelled_at"].is_string());
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"title": "again"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("conflict")));
}

#[tokio::test]
async fn an_agents_activation_request_is_an_approval_the_board_resolves() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let ceo = app.agent_key("ceo").await;
    let id = new_block(&app, &ceo, "Sprint 1").await;
    let other = new_block(&app, &app.board, "Sprint 2").await;

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            Some(&ceo),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let approval = &r.json["approval"];
    assert_eq!(approval["kind"], "work_block_activation");
    assert_eq!(approval["status"], "pending");
    assert_eq!(approval["approver"], "board");
    assert_eq!(approval["requested_by"], "ceo");
    assert_eq!(approval["subject_type"], "work_block");
    assert_eq!(approval["subject_id"], id.as_str());
    let approval_id = approval["id"].as_str().unwrap().to_owned();
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{id}"), b, None)
        .await;
    assert_eq!(r.json["work_block"]["status"], "proposed");

    // The CEO may not resolve what is addressed to the board.
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{approval_id}/resolve"),
            Some(&ceo),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{approval_id}/resolve"),
            b,
            Some(json!({"decision": "approve", "comment": "go"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(r.json["decided_by"], "board:test");
    assert_eq!(r.json["decision_comment"], "go");
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{id}"), b, None)
        .await;
    assert_eq!(r.json["work_block"]["status"], "active");
    assert!(r.json["work_block"]["activated_at"].is_string());

    // Resolving twice, and a second active block, are conflicts that write nothing.
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{approval_id}/resolve"),
            b,
            Some(json!({"status": "rejected"})),
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("conflict")),
        "{}",
        r.json
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{other}"),
            b,
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("conflict")),
        "{}",
        r.json
    );
    assert_eq!(app.activity_rows().await, before);

    // The CEO marks it ready (200, with a ship approval for the board); the board ships.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            Some(&ceo),
            Some(json!({"status": "ready"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "ready");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            Some(&ceo),
            Some(json!({"status": "shipped"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["approval"]["kind"], "work_block_ship");
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "shipped"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "shipped");
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{id}"), b, None)
        .await;
    assert!(r.json["stats"]["cycle_time_sec"].is_u64(), "{}", r.json);
    // Shipped blocks are immutable.
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/work-blocks/{id}"),
            b,
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("illegal_transition")));
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn issues_join_and_leave_blocks() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let engineer = app.agent_key("founding-engineer").await;
    let one = new_block(&app, &app.board, "One").await;
    let two = new_block(&app, &app.board, "Two").await;
    let key = new_issue(&app, json!({"title": "Build it"})).await;

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/work-blocks/{one}/issues"),
            Some(&engineer),
            Some(json!({"issue_key": key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{one}"), b, None)
        .await;
    assert_eq!(r.json["issues"][0]["key"], key.as_str());
    assert_eq!(r.json["stats"]["planned"], 1);
    assert_eq!(r.json["stats"]["open"], 1);

    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/work-blocks/{two}/issues"),
            b,
            Some(json!({"issue_key": key})),
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::CONFLICT, Some("conflict")),
        "{}",
        r.json
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/work-blocks/{two}/issues"),
            b,
            Some(json!({"issue_key": "MESA-99"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("not_found")));
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/work-blocks/{two}/issues"),
            b,
            Some(json!({"issue_key": "not a key"})),
        )
        .await;
    assert_eq!(
        code(&r),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert_eq!(r.json["error"]["field"], "issue_key");
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/work-blocks/{two}/issues/{key}"),
            b,
            None,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("conflict")));
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/work-blocks/{one}/issues/{key}"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app
        .call(Method::GET, &format!("/api/v1/work-blocks/{one}"), b, None)
        .await;
    assert_eq!(r.json["stats"]["planned"], 0);

    // A cancelled block takes no issues.
    app.call(
        Method::PATCH,
        &format!("/api/v1/work-blocks/{two}"),
        b,
        Some(json!({"status": "cancelled"})),
    )
    .await;
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/work-blocks/{two}/issues"),
            b,
            Some(json!({"issue_key": key})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn apex_blocks_and_strategy() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let ceo = app.agent_key("ceo").await;

    let r = app.call(Method::GET, "/api/v1/strategy", b, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"work_alignment": 1.0, "spend_alignment": 1.0,
               "drift": {"issues": 0, "cost_usd": 0.0}})
    );

    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/apex-blocks",
            Some(&ceo),
            Some(json!({"title": "Win"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("forbidden")));
    let r = app
        .call(
            Method::POST,
            "/api/v1/apex-blocks",
            b,
            Some(json!({"goal": "x"})),
        )
        .await;
    assert_eq!(r.json["error"]["field"], "title");
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            "/api/v1/apex-blocks",
            b,
            Some(json!({"title": "Win the market", "goal": "10k users"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "active");
    let apex = r.json["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/apex-blocks/{apex}"),
            Some(&ceo),
            None,
        )
        .await;
    assert_eq!(r.json["title"], "Win the market");
    let r = app
        .call(Method::GET, "/api/v1/apex-blocks", Some(&ceo), None)
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    let r = app
        .call(
            Method::GET,
            "/api/v1/apex-blocks/0190b1a2-0000-7000-8000-000000000000",
            b,
            None,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("not_found")));

    let r = app
        .call(
            Method::POST,
            "/api/v1/work-blocks",
            Some(&ceo),
            Some(json!({"title": "Aligned", "apex_block_id": apex})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let block = r.json["id"].as_str().unwrap().to_owned();
    let aligned = new_issue(
        &app,
        json!({"title": "Aligned work", "work_block_id": block}),
    )
    .await;
    let child = new_issue(&app, json!({"title": "Child work", "parent_key": aligned})).await;
    let drifting = new_issue(&app, json!({"title": "Drifting work"})).await;

    // $3 on the aligned issue, $1 through the child (its parent's block), $4 unaligned
    // (a drifting issue and a heartbeat without an issue).
    spend(&app, 1, "founding-engineer", Some(&aligned), 3.0).await;
    spend(&app, 2, "founding-engineer", Some(&child), 1.0).await;
    spend(&app, 3, "designer", Some(&drifting), 2.5).await;
    spend(&app, 4, "ceo", None, 1.5).await;

    let r = app
        .call(Method::GET, "/api/v1/strategy", Some(&ceo), None)
        .await;
    let work = r.json["work_alignment"].as_f64().unwrap();
    assert!((work - 2.0 / 3.0).abs() < 1e-9, "{}", r.json);
    assert_eq!(r.json["drift"]["issues"], 1);
    assert_eq!(r.json["spend_alignment"], 0.5, "{}", r.json);
    assert_eq!(r.json["drift"]["cost_usd"], 4.0, "{}", r.json);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/work-blocks/{block}"),
            b,
            None,
        )
        .await;
    // The run that spent $3, and the CEO's wake-up queued when the issue was created.
    assert_eq!(r.json["stats"]["runs"], 2, "{}", r.json);
    assert_eq!(r.json["stats"]["cost_usd"], 3.0, "{}", r.json);

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/apex-blocks/{apex}"),
            b,
            Some(json!({"status": "archived", "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "archived");
    let r = app.call(Method::GET, "/api/v1/strategy", b, None).await;
    assert_eq!(r.json["work_alignment"], 0.0);
    assert_eq!(r.json["spend_alignment"], 0.0);
    assert_eq!(r.json["drift"]["issues"], 3);
    assert_eq!(r.json["drift"]["cost_usd"], 8.0);

    let before = app.activity_rows().await;
    for (token, body, want) in [
        (
            Some(ceo.as_str()),
            json!({"title": "x"}),
            StatusCode::FORBIDDEN,
        ),
        (
            b,
            json!({"status": "gone"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            b,
            json!({"title": "x", "version": 1}),
            StatusCode::PRECONDITION_FAILED,
        ),
    ] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/apex-blocks/{apex}"),
                token,
                Some(body),
            )
            .await;
        assert_eq!(r.status, want, "{}", r.json);
    }
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn approvals_request_list_and_resolve() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let engineer = app.agent_key("founding-engineer").await;
    let qa = app.agent_key("qa").await;
    let designer = app.agent_key("designer").await;

    let before = app.activity_rows().await;
    for (body, field) in [
        (
            json!({"kind": "agent_hire", "title": "Hire", "body": "we need help"}),
            "payload.name",
        ),
        (
            json!({"kind": "budget_change", "title": "More", "body": "", "payload": {}}),
            "payload.agent_slug",
        ),
        (json!({"kind": "party", "title": "x", "body": ""}), "kind"),
        (json!({"kind": "other", "title": "x"}), "body"),
        (
            json!({"kind": "other", "title": "x", "body": "", "subject_type": "issue"}),
            "subject_id",
        ),
        (
            json!({"kind": "other", "title": "x", "body": "", "payload": [1]}),
            "payload",
        ),
        (
            json!({"kind": "other", "title": "x", "body": "", "extra": 1}),
            "extra",
        ),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/approvals",
                Some(&engineer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            code(&r),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{body}: {}",
            r.json
        );
        assert_eq!(r.json["error"]["field"], field, "{body}: {}", r.json);
    }
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            "/api/v1/approvals",
            Some(&engineer),
            Some(
                json!({"kind": "destructive_action", "title": "Drop the cache table",
                         "body": "it is stale", "subject_type": "issue", "subject_id": "MESA-1"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["approver"], "qa", "the engineer's reviewer decides");
    assert_eq!(r.json["requested_by"], "founding-engineer");
    assert!(r.json["expires_at"].is_string());
    let id = r.json["id"].as_str().unwrap().to_owned();

    let r = app
        .call(
            Method::POST,
            "/api/v1/approvals",
            Some(&engineer),
            Some(
                json!({"kind": "agent_hire", "title": "Hire a tester", "body": "",
                         "payload": {"name": "Tess", "slug": "tess", "archetype": "qa"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["approver"], "board");
    assert_eq!(r.json["payload"]["slug"], "tess");
    let hire = r.json["id"].as_str().unwrap().to_owned();

    let r = app
        .call(
            Method::GET,
            "/api/v1/approvals?approver=me",
            Some(&qa),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    let r = app
        .call(
            Method::GET,
            "/api/v1/approvals?approver=me&status=pending",
            b,
            None,
        )
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["items"][0]["id"], hire.as_str());
    let r = app
        .call(Method::GET, "/api/v1/approvals?limit=1", b, None)
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert!(r.json["next_cursor"].is_string(), "{}", r.json);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/approvals/{id}"),
            Some(&designer),
            None,
        )
        .await;
    assert_eq!(r.json["title"], "Drop the cache table");

    let before = app.activity_rows().await;
    for (method, uri, token, body, want) in [
        (
            Method::GET,
            "/api/v1/approvals?status=maybe".to_owned(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            "/api/v1/approvals?approver=nobody".to_owned(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            "/api/v1/approvals/0190b1a2-0000-7000-8000-000000000000".to_owned(),
            b,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/approvals/xyz".to_owned(),
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/api/v1/approvals/{id}/resolve"),
            Some(designer.as_str()),
            Some(json!({"decision": "approve"})),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            format!("/api/v1/approvals/{id}/resolve"),
            Some(qa.as_str()),
            Some(json!({"decision": "maybe"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/api/v1/approvals/{id}/resolve"),
            Some(qa.as_str()),
            Some(json!({"status": "pending"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/api/v1/approvals/{id}/resolve"),
            Some(qa.as_str()),
            Some(json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("/api/v1/approvals/{hire}/resolve"),
            Some(qa.as_str()),
            Some(json!({"decision": "approve"})),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let r = app.call(method.clone(), &uri, token, body.clone()).await;
        assert_eq!(r.status, want, "{method} {uri} {body:?}: {}", r.json);
    }
    assert_eq!(app.activity_rows().await, before, "refusals write nothing");

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{id}/resolve"),
            Some(&qa),
            Some(json!({"status": "approved"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(r.json["decided_by"], "qa");
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{id}/resolve"),
            Some(&qa),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("conflict")));
    assert_eq!(app.activity_rows().await, before);

    // The board approves the hire: the agent exists.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/approvals/{hire}/resolve"),
            b,
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(app.mesa.find_agent("tess").await.is_ok());
}

#[tokio::test]
async fn archetypes_edit_rollback_and_patches() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let engineer = app.agent_key("founding-engineer").await;

    let r = app
        .call(Method::GET, "/api/v1/archetypes", Some(&engineer), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json["items"].as_array().unwrap().len() >= 20,
        "{}",
        r.json
    );
    let r = app
        .call(Method::GET, "/api/v1/archetypes/qa", Some(&engineer), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["versions"][0]["source"], "builtin");
    let original = r.json["body"].as_str().unwrap().to_owned();

    let before = app.activity_rows().await;
    for (method, uri, token, body, want, field) in [
        (
            Method::GET,
            "/api/v1/archetypes/nope",
            b,
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/archetypes/qa",
            Some(engineer.as_str()),
            Some(json!({"body": "be nicer"})),
            StatusCode::FORBIDDEN,
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/archetypes/qa",
            b,
            Some(json!({"body": "  "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("body"),
        ),
        (
            Method::PATCH,
            "/api/v1/archetypes/qa",
            b,
            Some(json!({"body": "x", "version": 7})),
            StatusCode::PRECONDITION_FAILED,
            None,
        ),
        (
            Method::POST,
            "/api/v1/archetypes/qa/rollback",
            Some(engineer.as_str()),
            Some(json!({"version": 1})),
            StatusCode::FORBIDDEN,
            None,
        ),
        (
            Method::POST,
            "/api/v1/archetypes/qa/rollback",
            b,
            Some(json!({"version": 9})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::POST,
            "/api/v1/archetypes/qa/rollback",
            b,
            Some(json!({"version": "one"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("version"),
        ),
        (
            Method::POST,
            "/api/v1/archetype-patches",
            Some(engineer.as_str()),
            Some(json!({"archetype_slug": "nope", "proposed_body": "x", "rationale": "y"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("archetype_slug"),
        ),
        (
            Method::POST,
            "/api/v1/archetype-patches",
            Some(engineer.as_str()),
            Some(json!({"archetype_slug": "qa", "proposed_body": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("proposed_body"),
        ),
        (
            Method::GET,
            "/api/v1/archetype-patches?status=open",
            b,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("status"),
        ),
    ] {
        let r = app.call(method.clone(), uri, token, body.clone()).await;
        assert_eq!(r.status, want, "{method} {uri} {body:?}: {}", r.json);
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f, "{}", r.json);
        }
    }
    assert_eq!(app.activity_rows().await, before, "refusals write nothing");

    let r = app
        .call(
            Method::PATCH,
            "/api/v1/archetypes/qa",
            b,
            Some(json!({"body": "Test everything.", "title": "QA lead"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["title"], "QA lead");
    assert_eq!(r.json["versions"][0]["source"], "board");
    let r = app
        .call(
            Method::POST,
            "/api/v1/archetypes/qa/rollback",
            b,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 3);
    assert_eq!(r.json["body"], original.as_str());
    assert_eq!(r.json["versions"][0]["source"], "rollback:1");

    // A patch with the seed API's field names; approving it creates version 2.
    let r = app
        .call(
            Method::POST,
            "/api/v1/archetype-patches",
            Some(&engineer),
            Some(
                json!({"agent_slug": "designer", "proposed_content": "Design with care.",
                         "rationale": "reviews found sloppy mocks"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "pending");
    assert_eq!(r.json["base_version"], 1);
    assert_eq!(r.json["proposed_by_slug"], "founding-engineer");
    let patch = r.json["id"].as_str().unwrap().to_owned();
    let approval = r.json["approval_id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/approvals/{approval}"),
            b,
            None,
        )
        .await;
    assert_eq!(r.json["kind"], "archetype_patch");
    assert_eq!(r.json["approver"], "board");
    assert_eq!(r.json["subject_type"], "archetype_patch");
    assert_eq!(r.json["subject_id"], patch.as_str());
    let r = app
        .call(
            Method::GET,
            "/api/v1/archetype-patches?status=pending",
            b,
            None,
        )
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);

    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/archetype-patches/{patch}/approve"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::FORBIDDEN, Some("forbidden")));
    let r = app
        .call(
            Method::POST,
            "/api/v1/archetype-patches/0190b1a2-0000-7000-8000-000000000000/approve",
            b,
            None,
        )
        .await;
    assert_eq!(code(&r), (StatusCode::NOT_FOUND, Some("not_found")));
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/archetype-patches/{patch}/approve"),
            b,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "approved");
    let r = app
        .call(Method::GET, "/api/v1/archetypes/designer", b, None)
        .await;
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["body"], "Design with care.");
    assert_eq!(r.json["versions"][0]["source"], format!("patch:{patch}"));
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/approvals/{approval}"),
            b,
            None,
        )
        .await;
    assert_eq!(r.json["status"], "approved");

    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/archetype-patches/{patch}/reject"),
            b,
            Some(json!({"comment": "too late"})),
        )
        .await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("conflict")));
    assert_eq!(app.activity_rows().await, before);

    // Rejecting another patch leaves the archetype alone.
    let r = app
        .call(
            Method::POST,
            "/api/v1/archetype-patches",
            b,
            Some(json!({"archetype_slug": "designer", "proposed_body": "Worse."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let second = r.json["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/archetype-patches/{second}/reject"),
            b,
            Some(json!({"comment": "no"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "rejected");
    let r = app
        .call(Method::GET, "/api/v1/archetypes/designer", b, None)
        .await;
    assert_eq!(r.json["version"], 2);
}

#[tokio::test]
async fn inbox_lists_assigned_work_and_reviews_in_order() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let engineer = app.agent_key("founding-engineer").await;
    let qa = app.agent_key("qa").await;
    let ceo = app.agent_key("ceo").await;

    let low = new_issue(
        &app,
        json!({"title": "Low", "priority": 1, "assignee_slug": "founding-engineer"}),
    )
    .await;
    let high_old = new_issue(
        &app,
        json!({"title": "High old", "priority": 3, "assignee_slug": "founding-engineer"}),
    )
    .await;
    let high_new = new_issue(
        &app,
        json!({"title": "High new", "priority": 3, "assignee_slug": "founding-engineer"}),
    )
    .await;
    let review = new_issue(
        &app,
        json!({"title": "To review", "priority": 2, "assignee_slug": "founding-engineer"}),
    )
    .await;
    let done = new_issue(
        &app,
        json!({"title": "Gone", "assignee_slug": "founding-engineer"}),
    )
    .await;
    new_issue(
        &app,
        json!({"title": "Someone else's", "assignee_slug": "designer"}),
    )
    .await;
    let ceo_issue = new_issue(&app, json!({"title": "CEO work", "assignee_slug": "ceo"})).await;

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/issues/{done}"),
            b,
            Some(json!({"status": "cancelled", "cancellation_reason": "not needed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    for (token, key) in [(&engineer, &review), (&ceo, &ceo_issue)] {
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/issues/{key}/checkout"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/issues/{key}"),
                Some(token),
                Some(json!({"status": "in_review", "comment": "done, tests pass"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }

    let keys = |r: &Reply| -> Vec<String> {
        r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&engineer), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        keys(&r),
        vec![
            high_new.clone(),
            high_old.clone(),
            review.clone(),
            low.clone()
        ]
    );
    assert_eq!(r.json["next_cursor"], Value::Null);

    let r = app
        .call(Method::GET, "/api/v1/inbox?limit=3", Some(&engineer), None)
        .await;
    assert_eq!(keys(&r), vec![high_new, high_old, review.clone()]);
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/inbox?limit=3&cursor={cursor}"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(keys(&r), vec![low]);
    assert_eq!(r.json["next_cursor"], Value::Null);

    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&qa), None)
        .await;
    assert_eq!(
        keys(&r),
        vec![review.clone()],
        "QA reviews the engineer's work"
    );
    let r = app
        .call(Method::GET, &format!("/api/v1/issues/{review}"), b, None)
        .await;
    assert_eq!(
        r.json["issue"]["submitted_by"],
        r.json["issue"]["assignee_id"]
    );
    assert!(r.json["issue"]["submitted_by"].is_string());

    // The org chart changes during the review: the review moves to the new reviewer's inbox.
    let designer = app.agent_key("designer").await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agents/founding-engineer",
            b,
            Some(json!({"reviewer": "designer", "reason": "design review"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&designer), None)
        .await;
    assert!(keys(&r).contains(&review), "re-routed to the designer");
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&qa), None)
        .await;
    assert!(keys(&r).is_empty(), "QA no longer reviews it");
    let r = app
        .call(Method::GET, &format!("/api/v1/issues/{review}"), b, None)
        .await;
    let designer_id = app
        .mesa
        .find_agent("designer")
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(r.json["issue"]["reviewer_id"], designer_id.as_str());

    let r = app.call(Method::GET, "/api/v1/inbox", b, None).await;
    assert_eq!(
        keys(&r),
        vec![ceo_issue],
        "the CEO's work goes to the board"
    );

    let r = app.call(Method::GET, "/api/v1/inbox", None, None).await;
    assert_eq!(
        code(&r),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let r = app
        .call(Method::GET, "/api/v1/inbox?cursor=zz", Some(&qa), None)
        .await;
    assert_eq!(r.json["error"]["field"], "cursor");
    let r = app
        .call(Method::GET, "/api/v1/inbox?page=2", Some(&qa), None)
        .await;
    assert_eq!(r.json["error"]["field"], "page");
}

#[tokio::test]
async fn the_openapi_document_lists_these_routes() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = &r.json["paths"];
    for path in [
        "/api/v1/inbox",
        "/api/v1/work-blocks",
        "/api/v1/work-blocks/{id}",
        "/api/v1/work-blocks/{id}/issues",
        "/api/v1/work-blocks/{id}/issues/{key}",
        "/api/v1/apex-blocks",
        "/api/v1/apex-blocks/{id}",
        "/api/v1/strategy",
        "/api/v1/approvals",
        "/api/v1/approvals/{id}",
        "/api/v1/approvals/{id}/resolve",
        "/api/v1/archetypes",
        "/api/v1/archetypes/{slug}",
        "/api/v1/archetypes/{slug}/rollback",
        "/api/v1/archetype-patches",
        "/api/v1/archetype-patches/{id}/approve",
        "/api/v1/archetype-patches/{id}/reject",
    ] {
        assert!(
            paths.get(path).is_some(),
            "{path} is missing from the document"
        );
    }
    let schemas = &r.json["components"]["schemas"];
    for name in [
        "WorkBlockDto",
        "ApprovalDto",
        "PatchDto",
        "StrategyDto",
        "ResolveApprovalBody",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name} is missing");
    }
}
