//! Incoming webhooks (SPEC §11.3, issue 7 acceptance) over a real listener: signed GitHub and
//! generic deliveries create issues and comments once; bad signatures, oversized, non-JSON and
//! schema-violating payloads are refused, create nothing, and (once authenticated) are
//! recorded; the rate limit answers only after authentication.

use mesa_core::domain::entity::WebhookDelivery;
use mesa_core::domain::{Actor, IssueKey, WebhookStatus};
use mesa_core::store::{IssueFilter, PageRequest};
use mesa_http::integrations::incoming::sign;
use serde_json::{Value, json};

use crate::events::Server;
use crate::support::TestApp;

const SECRET: &str = "gh-webhook-secret";

struct Hook {
    app: TestApp,
    server: Server,
    http: reqwest::Client,
}

/// One answer: status, `Retry-After`, JSON body (Null when not JSON).
struct Answer {
    status: u16,
    retry_after: Option<String>,
    json: Value,
}

impl Hook {
    /// A server whose source `gh` has a secret, with `settings` on top.
    async fn new(settings: &[(&str, &str)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app = TestApp::new().await;
        let mut values = vec![("webhook_secret_gh".to_owned(), SECRET.to_owned())];
        values.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        app.mesa
            .put_settings(&Actor::board("test"), &values)
            .await
            .unwrap();
        let server = Server::start(&app).await;
        Hook {
            app,
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Answer {
        let mut req = self
            .http
            .post(format!("http://{}{path}", self.server.addr))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        Answer {
            status,
            retry_after,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// A GitHub delivery of `event` signed with the source's secret.
    async fn github(&self, event: &str, delivery: &str, payload: &Value) -> Answer {
        let body = serde_json::to_vec(payload).unwrap();
        let headers = [
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", delivery.to_owned()),
            ("x-hub-signature-256", sign(SECRET.as_bytes(), &body)),
        ];
        self.post("/api/v1/webhooks/gh/issues", body, &headers)
            .await
    }

    /// A generic delivery to `/webhooks/gh/{route}`, signed.
    async fn generic(&self, route: &str, delivery: &str, body: Vec<u8>) -> Answer {
        let headers = [
            ("x-mesa-delivery", delivery.to_owned()),
            ("x-mesa-signature-256", sign(SECRET.as_bytes(), &body)),
        ];
        self.post(&format!("/api/v1/webhooks/gh/{route}"), body, &headers)
            .await
    }

    async fn issue_count(&self) -> usize {
        self.app
            .mesa
            .issues(&IssueFilter::default(), &PageRequest::new(Some(500), None))
            .await
            .unwrap()
            .items
            .len()
    }

    async fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.app.mesa.incoming_deliveries(100).await.unwrap()
    }

    async fn comments_of(&self, key: &str) -> Vec<String> {
        let key = IssueKey::parse(key).unwrap();
        self.app
            .mesa
            .issue_detail(&key)
            .await
            .unwrap()
            .comments
            .into_iter()
            .map(|c| c.body)
            .collect()
    }
}

fn opened(number: u32, title: &str) -> Value {
    json!({
        "action": "opened",
        "issue": {
            "number": number,
            "html_url": format!("https://github.com/acme/app/issues/{number}"),
            "title": title,
            "body": "Steps to reproduce: open the app.",
            "user": {"login": "octocat"},
            "labels": [{"name": "bug"}]
        },
        "repository": {"full_name": "acme/app"},
        "sender": {"login": "octocat"}
    })
}

#[tokio::test]
async fn a_github_issue_creates_one_issue_and_its_comments_land_on_it() {
    let hook = Hook::new(&[]).await;
    let before = hook.issue_count().await;

    let ping = hook
        .github("ping", "d-ping", &json!({"zen": "Design for failure."}))
        .await;
    assert_eq!(ping.status, 200, "{}", ping.json);
    assert_eq!(ping.json["result"], "ping");

    let first = hook
        .github("issues", "d-1", &opened(7, "Login page crashes"))
        .await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(first.json["result"], "created");
    let key = first.json["issue_key"].as_str().unwrap().to_owned();
    assert_eq!(hook.issue_count().await, before + 1);
    let issue = hook
        .app
        .mesa
        .issue(&IssueKey::parse(&key).unwrap())
        .await
        .unwrap();
    assert_eq!(issue.issue.title.as_str(), "Login page crashes");
    assert_eq!(issue.issue.created_by, "webhook:gh");
    assert_eq!(issue.assignee_slug.as_ref().unwrap().as_str(), "ceo");
    assert!(
        issue
            .issue
            .description
            .as_str()
            .ends_with("Opened on GitHub by @octocat: https://github.com/acme/app/issues/7"),
        "{}",
        issue.issue.description.as_str()
    );

    // GitHub redelivers with the same id: acknowledged, nothing created.
    let again = hook
        .github("issues", "d-1", &opened(7, "Login page crashes"))
        .await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(again.json["duplicate"], true);
    assert_eq!(hook.issue_count().await, before + 1);

    // Other actions are acknowledged and recorded, nothing else.
    let closed =
        json!({"action": "closed", "issue": {"html_url": "https://github.com/acme/app/issues/7"}});
    let ignored = hook.github("issues", "d-2", &closed).await;
    assert_eq!(ignored.status, 202, "{}", ignored.json);
    assert_eq!(hook.issue_count().await, before + 1);

    let comment = json!({
        "action": "created",
        "issue": {"html_url": "https://github.com/acme/app/issues/7"},
        "comment": {"body": "Happens on Firefox too.", "user": {"login": "hubot"},
                    "html_url": "https://github.com/acme/app/issues/7#issuecomment-1"}
    });
    let posted = hook.github("issue_comment", "d-3", &comment).await;
    assert_eq!(posted.status, 201, "{}", posted.json);
    assert_eq!(posted.json["issue_key"], key.as_str());
    let bodies = hook.comments_of(&key).await;
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("@hubot") && b.ends_with("Happens on Firefox too.")),
        "{bodies:?}"
    );

    // A comment on a GitHub issue Mesa never saw changes nothing.
    let stray = json!({
        "action": "created",
        "issue": {"html_url": "https://github.com/acme/app/issues/99"},
        "comment": {"body": "Hello", "user": {"login": "hubot"}}
    });
    let stray = hook.github("issue_comment", "d-4", &stray).await;
    assert_eq!(stray.status, 202, "{}", stray.json);

    let log = hook.deliveries().await;
    let status_of = |id: &str| {
        log.iter()
            .find(|d| d.delivery_id == id)
            .map(|d| (d.status, d.note.clone().unwrap_or_default()))
            .unwrap()
    };
    assert_eq!(
        status_of("d-1"),
        (WebhookStatus::Processed, format!("created {key}"))
    );
    assert_eq!(status_of("d-2").0, WebhookStatus::Processed);
    assert!(status_of("d-2").1.starts_with("ignored"));
    assert_eq!(
        status_of("d-3"),
        (WebhookStatus::Processed, format!("commented on {key}"))
    );
    assert_eq!(log.iter().filter(|d| d.delivery_id == "d-1").count(), 1);
    assert_eq!(
        log.iter().find(|d| d.delivery_id == "d-1").unwrap().event,
        "issues"
    );
}

#[tokio::test]
async fn generic_shapes_create_an_issue_and_a_comment() {
    let hook = Hook::new(&[]).await;
    let body = serde_json::to_vec(
        &json!({"title": "Nightly export failed", "description": "Exit 3", "type": "bug", "priority": 3}),
    )
    .unwrap();
    let created = hook.generic("issues", "g-1", body).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let key = created.json["issue_key"].as_str().unwrap().to_owned();
    let issue = hook
        .app
        .mesa
        .issue(&IssueKey::parse(&key).unwrap())
        .await
        .unwrap()
        .issue;
    assert_eq!(issue.priority.get(), 3);
    assert_eq!(issue.issue_type.as_str(), "bug");

    let body = serde_json::to_vec(
        &json!({"issue_key": key, "author": "cron", "body": "Retried: still failing"}),
    )
    .unwrap();
    let commented = hook.generic("comments", "g-2", body).await;
    assert_eq!(commented.status, 201, "{}", commented.json);
    let bodies = hook.comments_of(&key).await;
    assert!(
        bodies.contains(&"_cron wrote:_\n\nRetried: still failing".to_owned()),
        "{bodies:?}"
    );

    // A comment on an issue that does not exist: 404, recorded as failed.
    let body = serde_json::to_vec(&json!({"issue_key": "MESA-9999", "body": "Hi"})).unwrap();
    let missing = hook.generic("comments", "g-3", body).await;
    assert_eq!(missing.status, 404, "{}", missing.json);
    let log = hook.deliveries().await;
    let g3 = log.iter().find(|d| d.delivery_id == "g-3").unwrap();
    assert_eq!(g3.status, WebhookStatus::Failed);
}

#[tokio::test]
async fn a_bad_signature_is_refused_before_anything_is_parsed_or_stored() {
    let hook = Hook::new(&[]).await;
    let before = hook.issue_count().await;
    // Not JSON, and badly signed: 401 (not 400), so the body was never parsed.
    let garbage = b"this is { not json".to_vec();
    let wrong = [
        ("x-github-event", "issues".to_owned()),
        ("x-github-delivery", "b-1".to_owned()),
        ("x-hub-signature-256", sign(b"another secret", &garbage)),
    ];
    let a = hook
        .post("/api/v1/webhooks/gh/issues", garbage.clone(), &wrong)
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json["error"]["code"], "bad_signature");
    // No signature at all.
    let unsigned = [("x-github-delivery", "b-2".to_owned())];
    let b = hook
        .post("/api/v1/webhooks/gh/issues", garbage.clone(), &unsigned)
        .await;
    assert_eq!(b.status, 401);
    assert_eq!(b.json["error"]["code"], "bad_signature");
    // A valid signature of another body.
    let valid_body = serde_json::to_vec(&opened(1, "Signed for another body")).unwrap();
    let replayed = [
        ("x-github-event", "issues".to_owned()),
        ("x-github-delivery", "b-3".to_owned()),
        ("x-hub-signature-256", sign(SECRET.as_bytes(), &valid_body)),
    ];
    let mut tampered = valid_body.clone();
    tampered[20] ^= 1;
    let c = hook
        .post("/api/v1/webhooks/gh/issues", tampered, &replayed)
        .await;
    assert_eq!(c.status, 401);
    // A bearer token does not stand in for the signature.
    let board = [
        ("authorization", format!("Bearer {}", hook.app.board)),
        ("x-mesa-delivery", "b-4".to_owned()),
    ];
    let d = hook
        .post("/api/v1/webhooks/gh/issues", valid_body, &board)
        .await;
    assert_eq!(d.status, 401);
    // A source without a secret has no endpoint.
    let e = hook
        .post("/api/v1/webhooks/nosuch/issues", garbage, &unsigned)
        .await;
    assert_eq!(e.status, 404);

    assert_eq!(hook.issue_count().await, before);
    assert!(
        hook.deliveries().await.is_empty(),
        "nothing unauthenticated is stored"
    );
    // The source's secret is write-only, like every secret setting.
    let settings = hook
        .app
        .call(
            axum::http::Method::GET,
            "/api/v1/settings",
            Some(&hook.app.board),
            None,
        )
        .await;
    let row = settings.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "webhook_secret_gh")
        .unwrap()
        .clone();
    assert_eq!(row["secret"], true);
    assert_eq!(row["value"], Value::Null);
}

#[tokio::test]
async fn bad_payloads_are_refused_recorded_and_create_nothing() {
    let hook = Hook::new(&[]).await;
    let before = hook.issue_count().await;

    let big = serde_json::to_vec(&json!({"title": "Big", "description": "x".repeat(1024 * 1024)}))
        .unwrap();
    let oversized = hook.generic("issues", "p-1", big).await;
    assert_eq!(oversized.status, 413, "{}", oversized.json);
    assert_eq!(oversized.json["error"]["code"], "payload_too_large");

    let not_json = hook
        .generic("issues", "p-2", b"<issue>xml</issue>".to_vec())
        .await;
    assert_eq!(not_json.status, 400, "{}", not_json.json);
    assert_eq!(not_json.json["error"]["code"], "malformed_json");

    let schema = hook
        .generic("issues", "p-3", br#"{"titel": "typo"}"#.to_vec())
        .await;
    assert_eq!(schema.status, 422, "{}", schema.json);
    assert_eq!(schema.json["error"]["field"], "titel");

    let no_title =
        json!({"action": "opened", "issue": {"html_url": "https://github.com/acme/app/issues/3"}});
    let github = hook.github("issues", "p-4", &no_title).await;
    assert_eq!(github.status, 422, "{}", github.json);
    assert_eq!(github.json["error"]["field"], "issue.title");

    let body = br#"{"title": "No delivery id"}"#.to_vec();
    let headers = [("x-mesa-signature-256", sign(SECRET.as_bytes(), &body))];
    let no_id = hook
        .post("/api/v1/webhooks/gh/issues", body, &headers)
        .await;
    assert_eq!(no_id.status, 400, "{}", no_id.json);
    assert_eq!(no_id.json["error"]["code"], "missing_header");

    assert_eq!(hook.issue_count().await, before, "nothing was created");
    let log = hook.deliveries().await;
    for id in ["p-2", "p-3", "p-4"] {
        let d = log.iter().find(|d| d.delivery_id == id).unwrap();
        assert_eq!(d.status, WebhookStatus::Failed, "{id}");
        assert!(
            d.note.as_deref().unwrap_or("").starts_with("4"),
            "{id}: {:?}",
            d.note
        );
    }
    // Refused before its signature was checked (too large to read): not recorded.
    assert!(log.iter().all(|d| d.delivery_id != "p-1"));
}

#[tokio::test]
async fn the_rate_limit_answers_only_after_authentication() {
    let hook = Hook::new(&[("webhook_rate_limit_per_minute", "2")]).await;
    let body = |n: u32| serde_json::to_vec(&json!({"title": format!("Rate limited {n}")})).unwrap();
    // Unsigned requests do not use up the source's allowance.
    for n in 0..5 {
        let headers = [("x-mesa-delivery", format!("u-{n}"))];
        let a = hook
            .post("/api/v1/webhooks/gh/issues", body(n), &headers)
            .await;
        assert_eq!(a.status, 401);
    }
    assert_eq!(hook.generic("issues", "r-1", body(1)).await.status, 201);
    assert_eq!(hook.generic("issues", "r-2", body(2)).await.status, 201);
    let limited = hook.generic("issues", "r-3", body(3)).await;
    assert_eq!(limited.status, 429, "{}", limited.json);
    assert_eq!(limited.json["error"]["code"], "rate_limited");
    assert!(limited.retry_after.is_some());
    // A bad signature is still a 401 while the source is limited.
    let headers = [("x-mesa-delivery", "u-9".to_owned())];
    let unsigned = hook
        .post("/api/v1/webhooks/gh/issues", body(9), &headers)
        .await;
    assert_eq!(unsigned.status, 401);
    assert!(
        hook.deliveries()
            .await
            .iter()
            .all(|d| d.delivery_id != "r-3"),
        "a rate-limited delivery is not recorded"
    );
}
