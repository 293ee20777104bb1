//! `/api/v1/issues` over the router: success paths, error codes, and bad input that writes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn create_read_list_and_patch_an_issue() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            b,
            Some(json!({"title": "Fix login", "type": "api", "priority": 3})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["key"], "MESA-1");
    assert_eq!(r.json["assignee_slug"], "ceo");
    assert_eq!(r.json["status"], "todo");
    assert_eq!(r.headers["etag"], "\"1\"");
    assert!(
        r.json["warnings"].as_array().is_some_and(|w| !w.is_empty()),
        "api issues without AC warn"
    );

    let r = app
        .call(Method::GET, "/api/v1/issues/MESA-1", b, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["issue"]["title"], "Fix login");
    assert_eq!(r.json["comments"], json!([]));
    assert_eq!(r.json["children"], json!([]));

    let r = app
        .call(Method::GET, "/api/v1/issues?status=todo&limit=10", b, None)
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["next_cursor"], serde_json::Value::Null);

    let req = Request::builder()
        .method(Method::PATCH)
        .uri("/api/v1/issues/MESA-1")
        .header("authorization", format!("Bearer {}", app.board))
        .header("content-type", "application/json")
        .header("if-match", "\"9\"")
        .body(Body::from(json!({"title": "Fix the login"}).to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.json["error"]["code"], "version_conflict");

    let r = app
        .call(
            Method::PATCH,
            "/api/v1/issues/MESA-1",
            b,
            Some(json!({"title": "Fix the login", "version": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["version"], 2);
}

#[tokio::test]
async fn authentication_errors() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/v1/issues", None, None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    for bad in [
        "nonsense",
        "mesa_brd_0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = app
            .call(Method::GET, "/api/v1/issues", Some(bad), None)
            .await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
}

#[tokio::test]
async fn checkout_submit_review_over_http() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    let engineer = app.agent_key("founding-engineer").await;
    let qa = app.agent_key("qa").await;
    let designer = app.agent_key("designer").await;
    app.call(
        Method::POST,
        "/api/v1/issues",
        b,
        Some(json!({"title": "Ship it", "assignee_slug": "founding-engineer"})),
    )
    .await;

    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/checkout",
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "in_progress");
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/checkout",
            Some(&designer),
            Some(json!({"expectedStatuses": ["todo"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_conflict"))
    );
    assert_eq!(r.json["error"]["status"], "in_progress");

    let r = app
        .call(
            Method::PATCH,
            "/api/v1/issues/MESA-1",
            Some(&engineer),
            Some(json!({"status": "in_review"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("comment"))
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/comments",
            Some(&engineer),
            Some(json!({"body": "all green", "kind": "evidence"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/issues/MESA-1",
            Some(&engineer),
            Some(json!({"status": "in_review"})),
        )
        .await;
    assert_eq!(r.json["status"], "in_review", "{}", r.json);

    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/review",
            Some(&engineer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/review",
            Some(&qa),
            Some(json!({"decision": "approve", "comment": "ok"})),
        )
        .await;
    assert_eq!(r.json["status"], "done", "{}", r.json);
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues/MESA-1/review",
            Some(&qa),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );
    assert_eq!(r.json["error"]["from"], "done");

    let r = app
        .call(Method::GET, "/api/v1/issues/MESA-1/comments", b, None)
        .await;
    let kinds: Vec<_> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"evidence".to_owned()) && kinds.contains(&"review".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn bad_input_gets_its_code_and_writes_nothing() {
    let app = TestApp::new().await;
    let b = Some(app.board.as_str());
    app.call(
        Method::POST,
        "/api/v1/issues",
        b,
        Some(json!({"title": "Existing"})),
    )
    .await;
    let before = app.activity_rows().await;

    let cases: Vec<(serde_json::Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({"titel": "typo"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("titel"),
        ),
        (
            json!({"title": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("title"),
        ),
        (
            json!({"title": "x".repeat(201)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("title"),
        ),
        (
            json!({"title": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("title"),
        ),
        (
            json!({"title": "ok", "priority": 99999999999999999_i64}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("priority"),
        ),
        (
            json!({"title": "ok", "type": "epic"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("type"),
        ),
        (
            json!({"title": "ok", "parent_key": "../etc"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("parent_key"),
        ),
        (
            json!({"title": "ok", "assignee_slug": "ghost"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("assignee_slug"),
        ),
        (
            json!({"title": "existing"}),
            StatusCode::CONFLICT,
            "duplicate",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let r = app
            .call(Method::POST, "/api/v1/issues", b, Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body} -> {}", r.json);
        assert_eq!(r.json["error"]["code"], code, "{body}");
        if let Some(field) = field {
            assert_eq!(r.json["error"]["field"], field, "{body}");
        }
    }
    let dup = app
        .call(
            Method::POST,
            "/api/v1/issues",
            b,
            Some(json!({"title": "existing"})),
        )
        .await;
    assert_eq!(dup.json["error"]["existing_key"], "MESA-1");

    let raw = |body: Vec<u8>| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/issues")
            .header("authorization", format!("Bearer {}", app.board))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let r = app.send(raw(b"{\"title\": ".to_vec())).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let r = app.send(raw(b"{\"title\": \"\xff\xfe\"}".to_vec())).await;
    assert!(
        r.status.is_client_error(),
        "invalid UTF-8 is refused: {}",
        r.status
    );
    let mut big = b"{\"title\": \"big\", \"description\": \"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    big.extend(b"\"}");
    let r = app.send(raw(big)).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let r = app
        .call(Method::GET, "/api/v1/issues/..%2Fetc", b, None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(Method::GET, "/api/v1/issues?bogus=1", b, None)
        .await;
    assert_eq!(
        (r.status, r.json["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bogus"))
    );

    assert_eq!(
        app.activity_rows().await,
        before,
        "refused requests wrote nothing"
    );
    let list = app.call(Method::GET, "/api/v1/issues", b, None).await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/issues",
        "/api/v1/issues/{key}",
        "/api/v1/issues/{key}/checkout",
        "/api/v1/issues/{key}/comments",
    ] {
        assert!(r.json["paths"].get(path).is_some(), "{path} missing");
    }
}
