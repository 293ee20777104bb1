//! `GET /inbox` and bearer authentication are served from mesa-core's read cache while nothing
//! changes; these tests write through the API and through the core between two requests and
//! expect the second answer to be exactly what an uncached server would give.

use axum::http::{Method, StatusCode};
use mesa_core::domain::Actor;
use mesa_core::store::PageRequest;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn inbox(app: &TestApp, token: &str) -> Value {
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.headers["content-type"], "application/json");
    r.json
}

/// The keys and titles the core's (uncached) inbox gives now.
async fn core_inbox(app: &TestApp, slug: &str) -> Vec<(String, String)> {
    let agent = app.mesa.find_agent(slug).await.unwrap();
    let me = Actor::Agent {
        id: agent.id,
        slug: agent.slug,
    };
    let list = app.mesa.inbox(&me, &PageRequest::first()).await.unwrap();
    list.items
        .iter()
        .map(|v| (v.issue.key.to_string(), v.issue.title.to_string()))
        .collect()
}

fn pairs(page: &Value) -> Vec<(String, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_owned(),
                i["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_inbox_follows_every_write_and_a_revoked_key_is_refused_at_once() {
    let app = TestApp::new().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/agents/founding-engineer/keys",
            Some(&app.board),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let key_id = r.json["id"].as_str().unwrap().to_owned();

    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            Some(&app.board),
            Some(json!({"title": "Cached", "assignee_slug": "founding-engineer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let issue = r.json["key"].as_str().unwrap().to_owned();

    let first = inbox(&app, &key).await;
    assert_eq!(inbox(&app, &key).await, first, "a repeat is the same page");
    assert_eq!(pairs(&first), core_inbox(&app, "founding-engineer").await);

    // A write through the API.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/issues/{issue}"),
            Some(&app.board),
            Some(json!({"title": "Cached, renamed", "priority": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let second = inbox(&app, &key).await;
    assert_eq!(second["items"][0]["title"], "Cached, renamed");
    assert_eq!(second["items"][0]["priority"], 2);
    assert_eq!(pairs(&second), core_inbox(&app, "founding-engineer").await);

    // The caller's own checkout changes its inbox item.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/issues/{issue}/checkout"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let third = inbox(&app, &key).await;
    assert_eq!(third["items"][0]["status"], "in_progress");
    assert_eq!(third["items"][0]["version"], r.json["version"]);

    // A write through the core, not the API.
    let mut new = mesa_core::NewIssue::titled("Made by the core").unwrap();
    new.assignee = Some("founding-engineer".to_owned());
    app.mesa
        .create_issue(&Actor::board("core"), new)
        .await
        .unwrap();
    let fourth = inbox(&app, &key).await;
    assert_eq!(pairs(&fourth), core_inbox(&app, "founding-engineer").await);
    assert_eq!(fourth["items"].as_array().unwrap().len(), 2);

    // Revoked through the API: the very next request is refused.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{key_id}"),
            Some(&app.board),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.json);
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], "invalid_token");
}
