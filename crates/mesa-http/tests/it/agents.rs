//! `/agents`, `/keys`, `/tokens`, `/labels`, `/budget`, `/usage`: success paths, every error
//! code, and that refused requests write nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mesa_core::domain::entity::BudgetScope;
use mesa_core::domain::{IssueKey, RunId, RunMode, RunTrigger, RunnerKind};
use mesa_core::store::NewRunRecord;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

fn code(r: &Reply) -> &str {
    r.json["error"]["code"].as_str().unwrap_or_default()
}

fn field(r: &Reply) -> &str {
    r.json["error"]["field"].as_str().unwrap_or_default()
}

#[track_caller]
fn expect(r: &Reply, status: StatusCode, code_: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(code(r), code_, "{}", r.json);
}

#[track_caller]
fn expect_invalid(r: &Reply, field_: &str) {
    expect(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field(r), field_, "{}", r.json);
}

fn workspace(app: &TestApp) -> String {
    app.mesa.config().workspace.as_str().to_owned()
}

fn new_agent(app: &TestApp, slug: &str) -> Value {
    json!({
        "slug": slug, "name": "Bo Backend", "archetype": "backend", "runner": "dry_run",
        "working_dir": workspace(app), "reports_to": "ceo", "max_turns": 20,
    })
}

/// Sends a request with extra headers.
async fn call_with(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.send(req.body(Body::from(body.to_string())).unwrap())
        .await
}

#[tokio::test]
async fn roster_and_one_agent() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/v1/agents", None, None).await;
    expect(&r, StatusCode::UNAUTHORIZED, "unauthenticated");

    let agent = app.agent_key("founding-engineer").await;
    let r = app
        .call(Method::GET, "/api/v1/agents", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert!(r.json["next_cursor"].is_null());
    let fe = items
        .iter()
        .find(|a| a["slug"] == "founding-engineer")
        .unwrap();
    assert_eq!(fe["reports_to"], "ceo");
    assert_eq!(fe["reviewer"], "qa");
    assert_eq!(fe["active"], true);
    assert_eq!(fe["status"], "active");
    for key in ["name", "archetype", "runner", "model"] {
        assert!(fe.get(key).is_some(), "{key} missing: {fe}");
    }

    let r = app
        .call(Method::GET, "/api/v1/agents/qa", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["slug"], "qa");
    assert_eq!(r.json["budget"]["daily_token_limit"], 0);
    assert_eq!(r.json["budget"]["spent_today_usd"], 0.0);
    assert!(r.json["budget"]["paused_until"].is_null());
    assert_eq!(
        r.headers["etag"].to_str().unwrap(),
        format!("\"{}\"", r.json["version"])
    );
    // By id as well.
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/agents/{id}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(r.json["slug"], "qa");

    let r = app
        .call(Method::GET, "/api/v1/agents/nobody", Some(&agent), None)
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(Method::GET, "/api/v1/agents/Not_A_Slug", Some(&agent), None)
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn openapi_lists_these_routes() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = &r.json["paths"];
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/me",
        "/api/v1/agents/{slug}",
        "/api/v1/agents/{slug}/revisions",
        "/api/v1/agents/{slug}/rollback",
        "/api/v1/agents/{slug}/keys",
        "/api/v1/agents/{slug}/budget",
        "/api/v1/keys/{id}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/labels",
        "/api/v1/labels/{id}",
        "/api/v1/budget",
        "/api/v1/usage",
        "/api/v1/usage/report",
    ] {
        assert!(
            paths.get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn agents_me() {
    let app = TestApp::new().await;
    let agent = app.agent_key("founding-engineer").await;
    let r = app
        .call(Method::GET, "/api/v1/agents/me", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["slug"], "founding-engineer");
    assert_eq!(r.json["reports_to"], "ceo");
    assert_eq!(r.json["reviewer"], "qa");
    let budget = &r.json["budget"];
    for key in [
        "daily_token_limit",
        "daily_cost_limit_usd",
        "tokens_today",
        "spent_today_usd",
        "reserved_usd",
        "paused_until",
    ] {
        assert!(budget.get(key).is_some(), "{key} missing: {budget}");
    }

    let r = app
        .call(Method::GET, "/api/v1/agents/me", Some(&app.board), None)
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("board")
    );
}

#[tokio::test]
async fn create_agent() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let before = app.activity_rows().await;

    let r = app
        .call(
            Method::POST,
            "/api/v1/agents",
            None,
            Some(new_agent(&app, "bo")),
        )
        .await;
    expect(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&agent),
            Some(new_agent(&app, "bo")),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");

    let mut body = new_agent(&app, "bo");
    body["workdir"] = json!("/tmp");
    let r = app
        .call(Method::POST, "/api/v1/agents", Some(&app.board), Some(body))
        .await;
    expect_invalid(&r, "workdir");

    let mut body = new_agent(&app, "bo");
    body["working_dir"] = json!("/definitely/not/here");
    let r = app
        .call(Method::POST, "/api/v1/agents", Some(&app.board), Some(body))
        .await;
    expect_invalid(&r, "working_dir");

    let mut body = new_agent(&app, "bo");
    body["working_dir"] = json!("relative/dir");
    let r = app
        .call(Method::POST, "/api/v1/agents", Some(&app.board), Some(body))
        .await;
    expect_invalid(&r, "working_dir");

    for (key, value, field_) in [
        ("slug", json!("Bad Slug"), "slug"),
        ("runner", json!("vim"), "runner"),
        ("archetype", json!("astronaut"), "archetype"),
        ("reports_to", json!("nobody"), "reports_to"),
        ("reviewer", json!("nobody"), "reviewer"),
        ("max_turns", json!(-1), "max_turns"),
        ("max_turns", json!(0), "max_turns"),
    ] {
        let mut body = new_agent(&app, "bo");
        body[key] = value;
        let r = app
            .call(Method::POST, "/api/v1/agents", Some(&app.board), Some(body))
            .await;
        expect_invalid(&r, field_);
    }
    let mut body = new_agent(&app, "bo");
    body.as_object_mut().unwrap().remove("name");
    let r = app
        .call(Method::POST, "/api/v1/agents", Some(&app.board), Some(body))
        .await;
    expect_invalid(&r, "name");
    assert_eq!(app.activity_rows().await, before, "refusals write nothing");

    let r = app
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&app.board),
            Some(new_agent(&app, "bo")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["slug"], "bo");
    assert_eq!(r.json["reports_to"], "ceo");
    assert_eq!(r.json["max_turns"], 20);
    assert_eq!(r.json["timeout_sec"], 1800);
    assert_eq!(r.json["version"], 1);
    assert!(app.mesa.find_agent("bo").await.is_ok());

    let after = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&app.board),
            Some(new_agent(&app, "bo")),
        )
        .await;
    expect(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(app.activity_rows().await, after);
}

#[tokio::test]
async fn update_deactivate_revisions_rollback() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let uri = "/api/v1/agents/founding-engineer";
    let before = app.activity_rows().await;

    let r = app
        .call(
            Method::PATCH,
            uri,
            Some(&agent),
            Some(json!({"model": "x"})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agents/nobody",
            Some(&app.board),
            Some(json!({"model": "x"})),
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(
            Method::PATCH,
            uri,
            Some(&app.board),
            Some(json!({"modle": "x"})),
        )
        .await;
    expect_invalid(&r, "modle");
    let r = app
        .call(
            Method::PATCH,
            uri,
            Some(&app.board),
            Some(json!({"reports_to": "founding-engineer"})),
        )
        .await;
    expect_invalid(&r, "reports_to");
    let r = app
        .call(
            Method::PATCH,
            uri,
            Some(&app.board),
            Some(json!({"model": "x", "version": 99})),
        )
        .await;
    expect(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    let r = call_with(
        &app,
        Method::PATCH,
        uri,
        &app.board,
        &[("if-match", "\"99\"")],
        json!({"model": "x"}),
    )
    .await;
    expect(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    assert_eq!(app.activity_rows().await, before, "refusals write nothing");

    let r = call_with(
        &app,
        Method::PATCH,
        uri,
        &app.board,
        &[("if-match", "\"1\"")],
        json!({"model": "opus", "reviewer": null, "reason": "faster"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["model"], "opus");
    assert!(r.json["reviewer"].is_null());
    assert_eq!(r.json["reports_to"], "ceo", "untouched fields are kept");
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.headers["etag"], "\"2\"");

    // env values are for the board's eyes.
    let r = app
        .call(
            Method::PATCH,
            uri,
            Some(&app.board),
            Some(json!({"env": {"API_TOKEN": "s3cret"}})),
        )
        .await;
    assert_eq!(r.json["env"]["API_TOKEN"], "s3cret");
    let r = app.call(Method::GET, uri, Some(&agent), None).await;
    assert_eq!(r.json["env"]["API_TOKEN"], "[redacted]");
    assert!(!r.json.to_string().contains("s3cret"));

    let r = app.call(Method::DELETE, uri, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.call(Method::DELETE, uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["active"], false);
    let r = app
        .call(Method::GET, "/api/v1/agents", Some(&app.board), None)
        .await;
    let fe = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "founding-engineer")
        .unwrap()
        .clone();
    assert_eq!(fe["status"], "inactive");
    // Deactivating again changes nothing.
    let rows = app.activity_rows().await;
    let r = app.call(Method::DELETE, uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 4);
    assert_eq!(app.activity_rows().await, rows);
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/agents/nobody",
            Some(&app.board),
            None,
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");

    let revs = format!("{uri}/revisions");
    let r = app.call(Method::GET, &revs, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.call(Method::GET, &revs, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{}", r.json);
    assert_eq!(items[0]["config"]["active"], false);
    assert_eq!(items[0]["reason"], "deactivated");
    assert_eq!(items[2]["reason"], "faster");

    let rb = format!("{uri}/rollback");
    let r = app
        .call(
            Method::POST,
            &rb,
            Some(&agent),
            Some(json!({"revision": 1})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::POST,
            &rb,
            Some(&app.board),
            Some(json!({"revision": 42})),
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(Method::POST, &rb, Some(&app.board), Some(json!({"rev": 1})))
        .await;
    expect_invalid(&r, "rev");
    let r = app
        .call(
            Method::POST,
            &rb,
            Some(&app.board),
            Some(json!({"revision": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["reviewer"], "qa");
    assert_eq!(r.json["model"], "");
}

#[tokio::test]
async fn agent_keys() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let uri = "/api/v1/agents/qa/keys";
    let before = app.activity_rows().await;

    let r = app.call(Method::POST, uri, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents/nobody/keys",
            Some(&app.board),
            None,
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(
            Method::POST,
            uri,
            Some(&app.board),
            Some(json!({"expires_at": "tomorrow"})),
        )
        .await;
    expect_invalid(&r, "expires_at");
    let r = app
        .call(
            Method::POST,
            uri,
            Some(&app.board),
            Some(json!({"expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    expect_invalid(&r, "expires_at");
    let r = app
        .call(
            Method::POST,
            uri,
            Some(&app.board),
            Some(json!({"nmae": "x"})),
        )
        .await;
    expect_invalid(&r, "nmae");
    assert_eq!(app.activity_rows().await, before);

    // No body at all is fine.
    let r = app.call(Method::POST, uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = app
        .call(
            Method::POST,
            uri,
            Some(&app.board),
            Some(json!({"name": "ci", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("mesa_agt_"));
    assert_eq!(r.json["prefix"], key[..12]);
    assert_eq!(r.json["expires_at"], "2099-01-01T00:00:00.000Z");
    let me = app
        .call(Method::GET, "/api/v1/agents/me", Some(&key), None)
        .await;
    assert_eq!(me.json["slug"], "qa");

    let del = format!("/api/v1/keys/{id}");
    let r = app.call(Method::DELETE, &del, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(Method::DELETE, "/api/v1/keys/nope", Some(&app.board), None)
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.call(Method::DELETE, &del, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = app
        .call(Method::GET, "/api/v1/agents/me", Some(&key), None)
        .await;
    expect(&me, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn board_tokens() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let before = app.activity_rows().await;

    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&agent),
            Some(json!({"name": "ci"})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&app.board),
            Some(json!({})),
        )
        .await;
    expect_invalid(&r, "name");
    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&app.board),
            Some(json!({"name": "ci", "scope": "all"})),
        )
        .await;
    expect_invalid(&r, "scope");
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&app.board),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("mesa_brd_"));
    assert_eq!(r.json["prefix"], token[..12]);

    let r = app
        .call(Method::GET, "/api/v1/tokens", Some(&agent), None)
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(Method::GET, "/api/v1/tokens", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let text = r.json.to_string();
    assert!(!text.contains(&token), "no raw values");
    assert!(!text.contains(&mesa_core::hash_key(&token)), "no hashes");
    let listed = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["kind"], "board");
    assert_eq!(listed["name"], "ci");
    assert!(listed.get("hash").is_none() && listed.get("token").is_none());

    let del = format!("/api/v1/tokens/{id}");
    let r = app.call(Method::DELETE, &del, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/tokens/0193a3b4-0000-7000-8000-000000000001",
            Some(&app.board),
            None,
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.call(Method::DELETE, &del, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .call(Method::GET, "/api/v1/tokens", Some(&token), None)
        .await;
    expect(&r, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn labels() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let before = app.activity_rows().await;

    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&agent),
            Some(json!({"name": "ui", "color": "#00ff00"})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&app.board),
            Some(json!({"name": "ui", "color": "green"})),
        )
        .await;
    expect_invalid(&r, "color");
    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&app.board),
            Some(json!({"name": "ui", "colour": "#00ff00"})),
        )
        .await;
    expect_invalid(&r, "colour");
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&app.board),
            Some(json!({"name": "ui", "color": "#00FF00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["color"], "#00ff00");
    let id = r.json["id"].as_str().unwrap().to_owned();
    let after = app.activity_rows().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&app.board),
            Some(json!({"name": "ui", "color": "#000000"})),
        )
        .await;
    expect(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(app.activity_rows().await, after);

    let r = app
        .call(Method::GET, "/api/v1/labels", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "ui")
    );

    let uri = format!("/api/v1/labels/{id}");
    let r = app
        .call(
            Method::PATCH,
            &uri,
            Some(&agent),
            Some(json!({"name": "frontend"})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::PATCH,
            &uri,
            Some(&app.board),
            Some(json!({"name": "frontend", "version": 7})),
        )
        .await;
    expect(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/labels/0193a3b4-0000-7000-8000-000000000001",
            Some(&app.board),
            Some(json!({"name": "frontend"})),
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(
            Method::PATCH,
            &uri,
            Some(&app.board),
            Some(json!({"color": "#12"})),
        )
        .await;
    expect_invalid(&r, "color");
    let r = app
        .call(
            Method::PATCH,
            &uri,
            Some(&app.board),
            Some(json!({"name": "frontend", "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["name"], "frontend");
    assert_eq!(r.json["color"], "#00ff00");
    assert_eq!(r.json["version"], 2);

    let r = app.call(Method::DELETE, &uri, Some(&agent), None).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(Method::DELETE, "/api/v1/labels/x", Some(&app.board), None)
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.call(Method::DELETE, &uri, Some(&app.board), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.call(Method::DELETE, &uri, Some(&app.board), None).await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn budgets() {
    let app = TestApp::new().await;
    let agent = app.agent_key("ceo").await;
    let before = app.activity_rows().await;

    let r = app
        .call(Method::GET, "/api/v1/budget", Some(&agent), None)
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(Method::GET, "/api/v1/budget", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["daily_token_limit"], 0);
    assert_eq!(r.json["daily_cost_limit_usd"], 0.0);

    let limits = json!({"daily_token_limit": 100_000, "daily_cost_limit_usd": 12.5});
    let r = app
        .call(
            Method::PUT,
            "/api/v1/budget",
            Some(&agent),
            Some(limits.clone()),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/ceo/budget",
            Some(&agent),
            Some(limits.clone()),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/nobody/budget",
            Some(&app.board),
            Some(limits.clone()),
        )
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    for (body, field_) in [
        (
            json!({"daily_token_limit": -1, "daily_cost_limit_usd": 1.0}),
            "daily_token_limit",
        ),
        (
            json!({"daily_token_limit": 1, "daily_cost_limit_usd": -1.0}),
            "daily_cost_limit_usd",
        ),
        (
            json!({"daily_token_limit": 1, "daily_cost_limit_usd": 1.0, "per_run_reserve_usd": -2}),
            "per_run_reserve_usd",
        ),
        (json!({"daily_token_limit": 1}), "daily_cost_limit_usd"),
        (
            json!({"daily_token_limit": 1, "daily_cost_limit_usd": 1.0, "weekly": 3}),
            "weekly",
        ),
    ] {
        let r = app
            .call(
                Method::PUT,
                "/api/v1/budget",
                Some(&app.board),
                Some(body.clone()),
            )
            .await;
        expect_invalid(&r, field_);
        let r = app
            .call(
                Method::PUT,
                "/api/v1/agents/ceo/budget",
                Some(&app.board),
                Some(body),
            )
            .await;
        expect_invalid(&r, field_);
    }
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::PUT,
            "/api/v1/budget",
            Some(&app.board),
            Some(limits.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["daily_cost_limit_usd"], 12.5);
    let r = app
        .call(Method::GET, "/api/v1/budget", Some(&app.board), None)
        .await;
    assert_eq!(r.json["daily_token_limit"], 100_000);
    assert_eq!(r.json["daily_cost_limit_usd"], 12.5);

    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/ceo/budget",
            Some(&app.board),
            Some(json!({"daily_token_limit": 500, "daily_cost_limit_usd": 2.25, "per_run_reserve_usd": 0.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["per_run_reserve_usd"], 0.5);
    let r = app
        .call(Method::GET, "/api/v1/agents/me", Some(&agent), None)
        .await;
    assert_eq!(r.json["budget"]["daily_token_limit"], 500);
    assert_eq!(r.json["budget"]["daily_cost_limit_usd"], 2.25);
    let ceo = app.mesa.find_agent("ceo").await.unwrap();
    let policy = app
        .mesa
        .store()
        .budget_policy(BudgetScope::Agent(ceo.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(policy.daily_cost_limit_usd.0, 2_250_000);
}

#[tokio::test]
async fn usage_and_reports() {
    let app = TestApp::new().await;
    let agent = app.agent_key("founding-engineer").await;
    let before = app.activity_rows().await;

    let report = json!({"input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.75});
    let r = app.call(Method::GET, "/api/v1/usage", None, None).await;
    expect(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = app
        .call(
            Method::POST,
            "/api/v1/usage/report",
            None,
            Some(report.clone()),
        )
        .await;
    expect(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = app
        .call(
            Method::POST,
            "/api/v1/usage/report",
            Some(&app.board),
            Some(report.clone()),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    for (body, field_) in [
        (
            json!({"input_tokens": -1, "output_tokens": 0}),
            "input_tokens",
        ),
        (
            json!({"input_tokens": 1, "output_tokens": -5}),
            "output_tokens",
        ),
        (
            json!({"input_tokens": 1, "output_tokens": 1, "cost_usd": -0.1}),
            "cost_usd",
        ),
        (
            json!({"input_tokens": 1, "output_tokens": 1, "cost": 1}),
            "cost",
        ),
        (json!({"output_tokens": 1}), "input_tokens"),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/usage/report",
                Some(&agent),
                Some(body),
            )
            .await;
        expect_invalid(&r, field_);
    }
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(
            Method::PUT,
            "/api/v1/agents/founding-engineer/budget",
            Some(&app.board),
            Some(json!({"daily_token_limit": 5000, "daily_cost_limit_usd": 2.0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = app
        .call(
            Method::POST,
            "/api/v1/usage/report",
            Some(&agent),
            Some(report.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = app
        .call(Method::GET, "/api/v1/usage", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["scope"], "agent");
    assert_eq!(r.json["agent"], "founding-engineer");
    for period in ["today", "last_7d", "total"] {
        assert_eq!(r.json[period]["tokens"], 1200, "{period}: {}", r.json);
        assert_eq!(r.json[period]["cost_usd"], 0.75, "{period}: {}", r.json);
    }
    assert_eq!(r.json["remaining"]["tokens"], 3800);
    assert_eq!(r.json["remaining"]["cost_usd"], 1.25);
    let me = app
        .call(Method::GET, "/api/v1/agents/me", Some(&agent), None)
        .await;
    assert_eq!(me.json["budget"]["tokens_today"], 1200);
    assert_eq!(me.json["budget"]["spent_today_usd"], 0.75);

    // A retry with the same Idempotency-Key records nothing more.
    let rows = app.activity_rows().await;
    for _ in 0..2 {
        let r = call_with(
            &app,
            Method::POST,
            "/api/v1/usage/report",
            &agent,
            &[("idempotency-key", "retry-1")],
            json!({"input_tokens": 100, "output_tokens": 0}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        assert_eq!(r.json["today"]["tokens"], 1300, "{}", r.json);
    }
    assert_eq!(app.activity_rows().await, rows + 1);
    let r = call_with(
        &app,
        Method::POST,
        "/api/v1/usage/report",
        &agent,
        &[("idempotency-key", "")],
        json!({"input_tokens": 100, "output_tokens": 0}),
    )
    .await;
    expect_invalid(&r, "Idempotency-Key");

    // A run key adds to its run.
    let fe = app.mesa.find_agent("founding-engineer").await.unwrap();
    let run_id = RunId::parse("0193a3b4-0000-7000-8000-00000000abcd").unwrap();
    app.mesa
        .store()
        .enqueue_run(NewRunRecord {
            id: run_id,
            agent_id: fe.id,
            issue_key: None::<IssueKey>,
            mode: RunMode::Heartbeat,
            trigger: RunTrigger::Heartbeat,
            runner: RunnerKind::DryRun,
            model: String::new(),
            priority: 0,
            not_before: None,
            queued_at: app.mesa.now(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
    let run_key = app.mesa.mint_run_key(&fe, run_id).await.unwrap().raw;
    let r = app
        .call(
            Method::POST,
            "/api/v1/usage/report",
            Some(&run_key),
            Some(json!({"input_tokens": 10, "output_tokens": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let run = app.mesa.store().run(run_id).await.unwrap();
    assert_eq!(run.usage.input_tokens, 10);
    assert_eq!(run.usage.output_tokens, 5);

    // The board sees the org.
    let r = app
        .call(Method::GET, "/api/v1/usage", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["scope"], "org");
    assert!(r.json["agent"].is_null());
    assert_eq!(r.json["total"]["tokens"], 1315);
    assert!(r.json["remaining"]["tokens"].is_null(), "unlimited org");
}
