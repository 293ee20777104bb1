//! `POST /api/v1/issues/similar` and `DELETE /api/v1/issues/{key}` over the router.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

async fn create(app: &TestApp, title: &str, description: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            Some(&app.board),
            Some(json!({"title": title, "description": description})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["key"].as_str().unwrap().to_owned()
}

fn keys(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn similar_finds_near_duplicate_titles_and_text_matches_best_first() {
    let app = TestApp::new().await;
    let login = create(&app, "Fix the login page", "The form does not submit.").await;
    let crash = create(&app, "Login page crashes on submit", "Seen in Firefox.").await;
    let report = create(&app, "Write the quarterly report", "Numbers for Q3.").await;
    let typo = create(&app, "Fix the logn page", "").await;

    let agent = app.agent_key("founding-engineer").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&agent),
            Some(json!({"title": "Fix the login page bug", "description": "again"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["next_cursor"], Value::Null);
    let found = keys(&r.json);
    assert_eq!(found.first(), Some(&login.as_str()), "{}", r.json);
    assert!(
        found.contains(&typo.as_str()),
        "close titles match: {}",
        r.json
    );
    assert!(
        found.contains(&crash.as_str()),
        "FTS matches count: {}",
        r.json
    );
    assert!(!found.contains(&report.as_str()), "{}", r.json);
    let first = &r.json["items"][0];
    assert_eq!(first["title"], "Fix the login page");
    assert_eq!(first["status"], "todo");
    let scores: Vec<f64> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] >= 0.7 && scores[0] < 1.0, "{scores:?}");
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    // An exact title scores 1; nothing similar gives an empty list, never null.
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&app.board),
            Some(json!({"title": "  fix the LOGIN page "})),
        )
        .await;
    assert_eq!(r.json["items"][0]["key"], login.as_str());
    assert_eq!(r.json["items"][0]["score"], 1.0);
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&app.board),
            Some(json!({"title": "Kubernetes autoscaling"})),
        )
        .await;
    assert_eq!(r.json, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn similar_returns_at_most_twenty_and_rejects_bad_input() {
    let app = TestApp::new().await;
    for n in 0..25 {
        create(&app, &format!("Migrate table {n:02}"), "").await;
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&app.board),
            Some(json!({"title": "Migrate table 1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 20);

    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&app.board),
            Some(json!({"titel": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["error"]["field"], "titel");
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            Some(&app.board),
            Some(json!({"title": "  "})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["error"]["field"], "title");
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            None,
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_board_soft_deletes_an_issue_which_leaves_lists_and_frees_its_title() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let key = create(&app, "Obsolete idea", "").await;
    let keep = create(&app, "Useful idea", "").await;

    // Agents may not delete; a refusal writes nothing.
    let agent = app.agent_key("ceo").await;
    let before = app.activity_rows().await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/issues/{key}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "forbidden");
    assert_eq!(app.activity_rows().await, before);

    let r = app
        .call(Method::DELETE, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert_eq!(r.json, Value::Null);
    assert!(
        app.activity_rows().await >= before + 2,
        "cancel and delete are audited"
    );

    // Still readable by key: cancelled, with the reason.
    let r = app
        .call(Method::GET, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["issue"]["status"], "cancelled");
    assert_eq!(
        r.json["issue"]["cancellation_reason"],
        "deleted by the board"
    );

    // Hidden from lists, even when asking for cancelled issues, and from /similar.
    for uri in [
        "/api/v1/issues",
        "/api/v1/issues?status=cancelled",
        "/api/v1/issues?q=idea",
    ] {
        let r = app.call(Method::GET, uri, b, None).await;
        let listed = keys(&r.json);
        assert!(!listed.contains(&key.as_str()), "{uri}: {}", r.json);
    }
    let r = app
        .call(Method::GET, "/api/v1/issues?q=idea", b, None)
        .await;
    assert_eq!(keys(&r.json), [keep.as_str()]);
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/similar",
            b,
            Some(json!({"title": "Obsolete idea"})),
        )
        .await;
    assert!(!keys(&r.json).contains(&key.as_str()), "{}", r.json);

    // The title is free again; deleting twice changes nothing.
    let again = create(&app, "Obsolete idea", "").await;
    assert_ne!(again, key);
    let rows = app.activity_rows().await;
    let r = app
        .call(Method::DELETE, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.activity_rows().await, rows);
}

#[tokio::test]
async fn deleting_a_finished_issue_keeps_its_status_and_hides_it() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let key = create(&app, "Already decided", "").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/issues/{key}"),
            b,
            Some(json!({"status": "cancelled", "cancellation_reason": "not needed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app
        .call(Method::DELETE, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let r = app
        .call(Method::GET, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.json["issue"]["status"], "cancelled");
    assert_eq!(r.json["issue"]["cancellation_reason"], "not needed");
    let r = app
        .call(Method::GET, "/api/v1/issues?status=cancelled", b, None)
        .await;
    assert_eq!(r.json["items"], json!([]));
}

#[tokio::test]
async fn purge_removes_an_issue_for_good() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let key = create(&app, "Leaked secret in description", "oops").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/issues/{key}/comments"),
            b,
            Some(json!({"body": "see above"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/issues/{key}?purge=true"),
            b,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let r = app
        .call(Method::GET, &format!("/api/v1/issues/{key}"), b, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/issues/{key}?purge=true"),
            b,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"]["code"], "not_found");
    // The audit chain still verifies after a purge.
    assert!(app.activity_rows().await > 0);

    // Bad input.
    let other = create(&app, "Another", "").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/issues/{other}?purge=maybe"),
            b,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    let r = app
        .call(Method::DELETE, "/api/v1/issues/not-a-key", b, None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/issues/{other}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_lists_both_routes_beside_the_other_issue_methods() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = &r.json["paths"];
    let item = &paths["/api/v1/issues/{key}"];
    for method in ["get", "patch", "delete"] {
        assert!(item[method].is_object(), "{method} /issues/{{key}}: {item}");
    }
    assert!(paths["/api/v1/issues/similar"]["post"].is_object());
}
