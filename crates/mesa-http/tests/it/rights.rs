//! Who may call what (SPEC §9.1), the rate limit and `Idempotency-Key` (SPEC §9.2).
//!
//! The authorization matrix reads `/api/openapi.json` at test time and calls every route with
//! every kind of caller; the expected answer comes from the `RIGHTS` table, and a second test
//! checks that the table and the document list exactly the same routes.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mesa_core::FakeClock;
use mesa_core::domain::{Actor, Timestamp};
use mesa_http::api::rights::{Access, RIGHTS, access_of};
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// The agent whose things the fixtures are (a non-CEO agent).
const OWNER: &str = "founding-engineer";
/// Another non-CEO agent.
const OTHER: &str = "designer";
/// The agent the board administers in `/agents/{slug}` routes (so no caller loses its key).
const VICTIM: &str = "devops";
/// Reports to [`OWNER`] so that its approvals are addressed to the owner.
const REPORT: &str = "qa";

/// The kinds of caller of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No Authorization header.
    Missing,
    /// Malformed, unknown, revoked, expired, or the key of a finished run.
    Invalid,
    /// Another non-CEO agent's key.
    Other,
    /// The owner's agent key.
    Agent,
    /// The owner's key for a running run.
    Run,
    /// The CEO's agent key.
    Ceo,
    /// A board token.
    Board,
}

struct Caller {
    label: &'static str,
    kind: Kind,
    /// The whole Authorization header value.
    header: Option<String>,
}

fn bearer(t: &str) -> Option<String> {
    Some(format!("Bearer {t}"))
}

/// A number for fixture ids, unique in this process.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A run of `agent`, queued (and started when `start`); returns its id.
async fn run_of(app: &TestApp, agent: &str, start: bool) -> mesa_core::domain::RunId {
    use mesa_core::domain::{MicroUsd, RunId, RunMode, RunTrigger};
    use mesa_core::store::{NewRunRecord, StartRunRequest};
    let store = app.mesa.store();
    let agent = app.mesa.find_agent(agent).await.unwrap();
    let now = app.mesa.now();
    let run = store
        .enqueue_run(NewRunRecord {
            id: RunId::parse(&format!("0190b1a2-0000-7000-8000-{:012}", next_id())).unwrap(),
            agent_id: agent.id,
            issue_key: None,
            mode: RunMode::Heartbeat,
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
    if start {
        store
            .start_run(StartRunRequest {
                run_id: run.id,
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
    run.id
}

/// Finishes a started run.
async fn finish(app: &TestApp, run: mesa_core::domain::RunId) {
    use mesa_core::domain::entity::TokenUsage;
    use mesa_core::domain::{CostEventId, CostSource, MicroUsd, RunStatus};
    use mesa_core::store::FinishRunRecord;
    app.mesa
        .store()
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
            cost_source: CostSource::Reported,
            num_turns: None,
            finished_at: app.mesa.now(),
            cost_event_id: CostEventId::parse(&format!(
                "0190b1a2-0000-7000-9000-{:012}",
                next_id()
            ))
            .unwrap(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
}

/// Checks that `token` works, so that its later 401 is due to what the test did to it.
async fn assert_live(app: &TestApp, token: &str) {
    let r = app
        .call(Method::GET, "/api/v1/agents", Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

/// The app on a fake clock, and every kind of caller.
async fn matrix_app() -> (TestApp, Vec<Caller>) {
    let clock = FakeClock::new(Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    ));
    let app = TestApp::with_clock(clock.clone()).await;
    let board = Actor::board("setup");
    // The report's approvals go to the owner.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/agents/{REPORT}"),
            Some(&app.board),
            Some(json!({"reports_to": OWNER})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let revoked = app
        .mesa
        .create_agent_key(&board, OWNER, None, None)
        .await
        .unwrap();
    assert_live(&app, &revoked.raw).await;
    app.mesa.revoke_key(&board, revoked.key.id).await.unwrap();
    let soon = app.mesa.now() + Duration::from_secs(60);
    let expired = app
        .mesa
        .create_agent_key(&board, OWNER, None, Some(soon))
        .await
        .unwrap()
        .raw;
    let expired_board = app
        .mesa
        .create_board_token(
            &board,
            mesa_core::domain::Name::parse("short").unwrap(),
            Some(soon),
        )
        .await
        .unwrap()
        .raw;
    let owner = app.mesa.find_agent(OWNER).await.unwrap();
    let done_run = run_of(&app, OWNER, true).await;
    let done_key = app.mesa.mint_run_key(&owner, done_run).await.unwrap().raw;
    assert_live(&app, &done_key).await;
    finish(&app, done_run).await;
    let live_run = run_of(&app, OWNER, true).await;
    let run_key = app.mesa.mint_run_key(&owner, live_run).await.unwrap().raw;
    assert_live(&app, &expired).await;
    assert_live(&app, &expired_board).await;
    // Expire the short-lived keys; the long-lived ones stay valid.
    clock.advance(Duration::from_secs(120));

    let agent = app.agent_key(OWNER).await;
    let other = app.agent_key(OTHER).await;
    let ceo = app.agent_key("ceo").await;
    let unknown = format!("mesa_agt_{}", "0".repeat(64));
    let c = |label, kind, header| Caller {
        label,
        kind,
        header,
    };
    let callers = vec![
        c("no token", Kind::Missing, None),
        c("empty bearer", Kind::Missing, Some("Bearer ".into())),
        c("malformed", Kind::Invalid, bearer("not-a-mesa-key")),
        c("not bearer", Kind::Invalid, Some(format!("Basic {agent}"))),
        c("unknown", Kind::Invalid, bearer(&unknown)),
        c(
            "wrong prefix",
            Kind::Invalid,
            bearer(&agent.replacen("mesa_agt_", "mesa_brd_", 1)),
        ),
        c("revoked", Kind::Invalid, bearer(&revoked.raw)),
        c("expired", Kind::Invalid, bearer(&expired)),
        c("expired board", Kind::Invalid, bearer(&expired_board)),
        c("finished run", Kind::Invalid, bearer(&done_key)),
        c("other agent", Kind::Other, bearer(&other)),
        c("agent", Kind::Agent, bearer(&agent)),
        c("run key", Kind::Run, bearer(&run_key)),
        c("ceo", Kind::Ceo, bearer(&ceo)),
        c("board", Kind::Board, bearer(&app.board)),
    ];
    (app, callers)
}

/// What a caller of `kind` must get on a route with `access`: `Some((status, code))` for a
/// refusal by the rights layer or the handler, `None` for "the handler's own answer" (anything
/// but 401 and 403).
fn expected(access: Access, kind: Kind) -> Option<(StatusCode, &'static str)> {
    let forbidden = Some((StatusCode::FORBIDDEN, "forbidden"));
    match (kind, access) {
        (_, Access::Public) => None,
        // HMAC-signed routes: no bearer token (not even the board's) replaces the signature.
        (_, Access::Signed) => Some((StatusCode::UNAUTHORIZED, "bad_signature")),
        (Kind::Missing, _) => Some((StatusCode::UNAUTHORIZED, "unauthenticated")),
        (Kind::Invalid, _) => Some((StatusCode::UNAUTHORIZED, "invalid_token")),
        (Kind::Board, Access::AgentOnly) => forbidden,
        (Kind::Board, _) => None,
        (_, Access::BoardOnly) => forbidden,
        (Kind::Other, Access::Own | Access::CeoOrBoard) => forbidden,
        (Kind::Other | Kind::Ceo, Access::OwnStrict) => forbidden,
        (Kind::Agent | Kind::Run, Access::CeoOrBoard) => forbidden,
        _ => None,
    }
}

/// Makes fixtures for route templates: every path parameter becomes a real id or key, new for
/// each route, belonging to [`OWNER`] where the route is about an agent's own things.
struct Fixtures<'a> {
    app: &'a TestApp,
    n: u32,
}

impl Fixtures<'_> {
    async fn board(&self, method: Method, uri: &str, body: Value) -> Value {
        let r = self
            .app
            .call(method, uri, Some(&self.app.board), Some(body))
            .await;
        assert!(
            r.status.is_success(),
            "fixture {uri}: {} {}",
            r.status,
            r.json
        );
        r.json
    }

    async fn as_key(&self, key: &str, uri: &str, body: Value) -> Value {
        let r = self
            .app
            .call(Method::POST, uri, Some(key), Some(body))
            .await;
        assert!(
            r.status.is_success(),
            "fixture {uri}: {} {}",
            r.status,
            r.json
        );
        r.json
    }

    /// An issue assigned to `assignee`.
    async fn issue(&mut self, assignee: &str) -> String {
        let j = self
            .board(
                Method::POST,
                "/api/v1/issues",
                json!({"title": format!("Matrix issue {}", self.n), "assignee_slug": assignee}),
            )
            .await;
        j["key"].as_str().unwrap().to_owned()
    }

    /// The issue for a route: checked out by the owner for `release`, awaiting the owner's
    /// review for `review`, else assigned to the owner.
    async fn issue_for(&mut self, template: &str) -> String {
        if template.ends_with("/review") {
            // The report's work is reviewed by its manager, the owner.
            let key = self.issue(REPORT).await;
            let report = self.app.agent_key(REPORT).await;
            self.as_key(
                &report,
                &format!("/api/v1/issues/{key}/checkout"),
                json!({}),
            )
            .await;
            let r = self
                .app
                .call(
                    Method::PATCH,
                    &format!("/api/v1/issues/{key}"),
                    Some(&report),
                    Some(json!({"status": "in_review", "comment": "done, tests pass"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            return key;
        }
        let key = self.issue(OWNER).await;
        if template.ends_with("/release") {
            let owner = self.app.agent_key(OWNER).await;
            self.as_key(&owner, &format!("/api/v1/issues/{key}/checkout"), json!({}))
                .await;
        }
        key
    }

    /// Substitutes the parameters of `template`.
    async fn fill(&mut self, template: &str) -> String {
        self.n += 1;
        let n = self.n;
        let owner_key = self.app.agent_key(OWNER).await;
        let segments: Vec<&str> = template.split('/').collect();
        let mut out = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            if !seg.starts_with('{') {
                out.push((*seg).to_owned());
                continue;
            }
            let parent = segments[i - 1];
            let value = match (parent, *seg) {
                ("issues", "{key}") => self.issue_for(template).await,
                ("agents", "{slug}") => VICTIM.to_owned(),
                ("archetypes", "{slug}") => "designer".to_owned(),
                ("wiki", "{slug}") => {
                    let slug = format!("matrix-page-{n}");
                    self.as_key(
                        &owner_key,
                        "/api/v1/wiki",
                        json!({"slug": slug, "title": format!("Matrix page {n}"), "content": "x"}),
                    )
                    .await;
                    slug
                }
                ("skills", "{slug}") => {
                    let slug = format!("matrix-skill-{n}");
                    self.board(
                        Method::POST,
                        "/api/v1/skills",
                        json!({"slug": slug, "title": "Skill", "body": "x", "tags": []}),
                    )
                    .await;
                    slug
                }
                ("approvals", "{id}") => {
                    let report = self.app.agent_key(REPORT).await;
                    let j = self
                        .as_key(
                            &report,
                            "/api/v1/approvals",
                            json!({"kind": "other", "title": format!("Matrix {n}"), "body": "b"}),
                        )
                        .await;
                    assert_eq!(j["approver"], OWNER, "{j}");
                    j["id"].as_str().unwrap().to_owned()
                }
                ("work-blocks", "{id}") => {
                    let j = self
                        .as_key(
                            &owner_key,
                            "/api/v1/work-blocks",
                            json!({"title": format!("Matrix block {n}")}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("apex-blocks", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/apex-blocks",
                            json!({"title": format!("Matrix apex {n}")}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("archetype-patches", "{id}") => {
                    let j = self
                        .as_key(
                            &owner_key,
                            "/api/v1/archetype-patches",
                            json!({"archetype_slug": "designer",
                                   "proposed_body": format!("Design with care, take {n}."),
                                   "rationale": "clearer"}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("keys", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            &format!("/api/v1/agents/{VICTIM}/keys"),
                            json!({}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("tokens", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/tokens",
                            json!({"name": format!("spare-{n}")}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("labels", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/labels",
                            json!({"name": format!("matrix-{n}"), "color": "#00ff00"}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("crons", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/crons",
                            json!({"agent": REPORT, "task": format!("t{n}"), "schedule": "1h"}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("directives", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/directives",
                            json!({"text": format!("Directive {n}.")}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("runs", "{id}") => run_of(self.app, OWNER, false).await.to_string(),
                ("outgoing-webhooks", "{id}") => {
                    let j = self
                        .board(
                            Method::POST,
                            "/api/v1/outgoing-webhooks",
                            json!({"url": "http://127.0.0.1:9/matrix", "secret": format!("s{n}")}),
                        )
                        .await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("outbox", "{id}") => {
                    let hook = self
                        .board(
                            Method::POST,
                            "/api/v1/outgoing-webhooks",
                            json!({"url": "http://127.0.0.1:9/matrix", "secret": format!("s{n}")}),
                        )
                        .await;
                    let path = format!(
                        "/api/v1/outgoing-webhooks/{}/test",
                        hook["id"].as_str().unwrap()
                    );
                    let j = self.board(Method::POST, &path, json!({})).await;
                    j["id"].as_str().unwrap().to_owned()
                }
                ("webhooks", "{source}") => {
                    // A configured source: only a valid signature gets past 401.
                    self.board(
                        Method::PATCH,
                        "/api/v1/settings",
                        json!({"webhook_secret_matrix": "matrix-secret"}),
                    )
                    .await;
                    "matrix".to_owned()
                }
                (p, s) => panic!(
                    "no fixture for {s} after /{p}/ in {template}: add one to the rights test"
                ),
            };
            out.push(value);
        }
        // DELETE /work-blocks/{id}/issues/{key}: put the issue into the block first.
        if template == "/api/v1/work-blocks/{id}/issues/{key}" {
            let (block, key) = (&out[4], &out[6]);
            self.board(
                Method::POST,
                &format!("/api/v1/work-blocks/{block}/issues"),
                json!({"issue_key": key}),
            )
            .await;
        }
        out.join("/")
    }
}

/// A valid body for each write, so allowed callers reach the handler's real checks.
fn body_for(method: &Method, template: &str, n: u32) -> Option<Value> {
    let b = match (method.as_str(), template) {
        ("POST", "/api/v1/issues") => json!({"title": format!("Matrix created {n}")}),
        ("POST", "/api/v1/issues/similar") => json!({"title": "Matrix"}),
        ("PATCH", "/api/v1/issues/{key}") => json!({"priority": 2}),
        ("POST", "/api/v1/issues/{key}/checkout") => json!({}),
        ("POST", "/api/v1/issues/{key}/release") => json!({}),
        ("POST", "/api/v1/issues/{key}/review") => {
            json!({"decision": "approve", "comment": "fine"})
        }
        ("POST", "/api/v1/issues/{key}/comments") => json!({"body": "a comment"}),
        ("POST", "/api/v1/agents") => {
            json!({"slug": format!("hire-{n}"), "name": format!("Hire {n}"), "archetype": "qa",
                   "runner": "noop"})
        }
        ("PATCH", "/api/v1/agents/{slug}") => json!({"name": format!("Devops {n}")}),
        ("POST", "/api/v1/agents/{slug}/rollback") => json!({"revision": 1}),
        ("POST", "/api/v1/agents/{slug}/keys") => json!({}),
        ("PUT", "/api/v1/agents/{slug}/budget" | "/api/v1/budget") => {
            json!({"daily_token_limit": 0, "daily_cost_limit_usd": 0.0})
        }
        ("POST", "/api/v1/tokens") => json!({"name": format!("matrix-token-{n}")}),
        ("POST", "/api/v1/usage/report") => json!({"input_tokens": 1, "output_tokens": 1}),
        ("POST", "/api/v1/approvals") => {
            json!({"kind": "other", "title": format!("Matrix ask {n}"), "body": "b"})
        }
        ("POST", "/api/v1/approvals/{id}/resolve") => json!({"decision": "approve"}),
        ("POST", "/api/v1/work-blocks") => json!({"title": format!("Matrix new block {n}")}),
        ("PATCH", "/api/v1/work-blocks/{id}") => json!({"north_star_current": 5.0}),
        ("POST", "/api/v1/work-blocks/{id}/issues") => json!({"issue_key": "MESA-1"}),
        ("POST", "/api/v1/apex-blocks") => json!({"title": format!("Matrix new apex {n}")}),
        ("PATCH", "/api/v1/apex-blocks/{id}") => json!({"goal": "grow"}),
        ("PATCH", "/api/v1/archetypes/{slug}") => json!({"body": format!("Design well {n}.")}),
        ("POST", "/api/v1/archetypes/{slug}/rollback") => json!({"version": 1}),
        ("POST", "/api/v1/archetype-patches") => json!({"archetype_slug": "qa",
            "proposed_body": format!("Test first {n}."), "rationale": "r"}),
        (
            "POST",
            "/api/v1/archetype-patches/{id}/approve" | "/api/v1/archetype-patches/{id}/reject",
        ) => {
            json!({})
        }
        ("POST", "/api/v1/labels") => json!({"name": format!("new-{n}"), "color": "#0000ff"}),
        ("PATCH", "/api/v1/labels/{id}") => json!({"color": "#ff0000"}),
        ("POST", "/api/v1/wiki") => {
            json!({"title": format!("Matrix new page {n}"), "content": "x"})
        }
        ("PATCH", "/api/v1/wiki/{slug}") => json!({"content": "changed"}),
        ("POST", "/api/v1/reflections") => json!({"body": "Smaller commits."}),
        ("POST", "/api/v1/skills") => json!({"slug": format!("new-skill-{n}"), "title": "S",
            "body": "x", "tags": []}),
        ("POST", "/api/v1/memory") => json!({"content": "remember this"}),
        ("PATCH", "/api/v1/settings") => json!({"instance_name": "Matrix"}),
        ("POST", "/api/v1/crons") => {
            json!({"agent": REPORT, "task": format!("new {n}"), "schedule": "2h"})
        }
        ("PATCH", "/api/v1/crons/{id}") => json!({"active": false}),
        ("POST", "/api/v1/directives") => json!({"text": format!("New directive {n}.")}),
        ("PATCH", "/api/v1/directives/{id}") => json!({"active": false}),
        ("POST" | "PATCH" | "PUT", _) => json!({}),
        _ => return None,
    };
    Some(b)
}

/// Query strings some GET routes require.
fn query_for(template: &str) -> &'static str {
    match template {
        "/api/v1/wiki/search" | "/api/v1/memory/recall" => "?q=matrix",
        _ => "",
    }
}

/// The (method, route) pairs of the OpenAPI document.
async fn documented(app: &TestApp) -> Vec<(Method, String)> {
    let doc = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let mut out = Vec::new();
    for (path, ops) in doc.json["paths"].as_object().unwrap() {
        for op in ops.as_object().unwrap().keys() {
            if let Ok(m) = Method::from_bytes(op.to_ascii_uppercase().as_bytes()) {
                out.push((m, path.clone()));
            }
        }
    }
    out.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
    out
}

/// Sends a request; an event stream's body is not read (it never ends), only its status.
async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(h) = auth {
        req = req.header("authorization", h);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let streaming = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let json = if streaming {
        Value::Null
    } else {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        json,
    }
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_rights_table_says() {
    let (app, callers) = matrix_app().await;
    let routes = documented(&app).await;
    assert!(
        routes.len() > 50,
        "the document lists {} routes",
        routes.len()
    );
    let mut fixtures = Fixtures { app: &app, n: 0 };
    let mut failures = Vec::new();
    let mut checked = 0;
    for (method, template) in &routes {
        let access = access_of(method, template)
            .unwrap_or_else(|| panic!("{method} {template} has no entry in RIGHTS"));
        let uri = format!("{}{}", fixtures.fill(template).await, query_for(template));
        let body = body_for(method, template, fixtures.n);
        for caller in &callers {
            let r = send(
                &app,
                method.clone(),
                &uri,
                caller.header.as_deref(),
                body.as_ref(),
            )
            .await;
            checked += 1;
            let got = (r.status, r.json["error"]["code"].as_str().unwrap_or(""));
            let ok = match expected(access, caller.kind) {
                Some((status, code)) => got == (status, code),
                None => {
                    r.status != StatusCode::UNAUTHORIZED
                        && r.status != StatusCode::FORBIDDEN
                        && !r.status.is_server_error()
                }
            };
            if !ok {
                failures.push(format!(
                    "{method} {template} ({access:?}) as {}: expected {:?}, got {} {}",
                    caller.label,
                    expected(access, caller.kind)
                        .map_or("not 401/403".to_owned(), |e| format!("{} {}", e.0, e.1)),
                    r.status,
                    r.json
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} calls answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_rights_table_lists_exactly_the_documented_routes() {
    let app = TestApp::new().await;
    let documented: BTreeSet<(String, String)> = documented(&app)
        .await
        .into_iter()
        .map(|(m, p)| (m.to_string(), p))
        .collect();
    let table: Vec<(String, String)> = RIGHTS
        .iter()
        .map(|(m, p, _)| (m.to_string(), (*p).to_owned()))
        .collect();
    let table_set: BTreeSet<_> = table.iter().cloned().collect();
    assert_eq!(table.len(), table_set.len(), "RIGHTS lists a route twice");
    let missing: Vec<_> = documented.difference(&table_set).collect();
    let extra: Vec<_> = table_set.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes without a RIGHTS entry: {missing:?}; RIGHTS entries without a route: {extra:?}"
    );
}

async fn set_rate_limit(app: &TestApp, per_minute: u32) {
    app.mesa
        .put_settings(
            &Actor::board("setup"),
            &[("rate_limit_per_minute".to_owned(), per_minute.to_string())],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn agent_tokens_are_rate_limited_per_key_and_the_board_never() {
    let app = TestApp::new().await;
    let agent = app.agent_key(OWNER).await;
    let second = app.agent_key(OWNER).await;
    let owner = app.mesa.find_agent(OWNER).await.unwrap();
    let run = run_of(&app, OWNER, true).await;
    let run_key = app.mesa.mint_run_key(&owner, run).await.unwrap().raw;
    // The default (6,000 a minute) does not get in the way of normal work.
    for _ in 0..20 {
        let r = app
            .call(Method::GET, "/api/v1/inbox", Some(&agent), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
    set_rate_limit(&app, 5).await;
    for token in [&agent, &run_key] {
        for i in 0..5 {
            let r = app
                .call(Method::GET, "/api/v1/inbox", Some(token), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.json);
        }
        // Writes and refused calls count too, and the limit answers before anything else.
        let r = app
            .call(
                Method::POST,
                "/api/v1/issues",
                Some(token),
                Some(json!({"title": "Should not exist"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
        assert_eq!(r.json["error"]["code"], "rate_limited", "{}", r.json);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        let r = app
            .call(Method::GET, "/api/v1/settings", Some(token), None)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    }
    let issues = app
        .call(
            Method::GET,
            "/api/v1/issues?q=Should",
            Some(&app.board),
            None,
        )
        .await;
    assert_eq!(
        issues.json["items"],
        json!([]),
        "the limited write wrote nothing"
    );
    // Per key: another key of the same agent has its own allowance.
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some(&second), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // Bad tokens are still 401, not 429.
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some("mesa_agt_nope"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Never the board.
    for _ in 0..30 {
        let r = app
            .call(Method::GET, "/api/v1/inbox", Some(&app.board), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
    // 0 turns the limit off.
    set_rate_limit(&app, 0).await;
    for _ in 0..30 {
        let r = app
            .call(Method::GET, "/api/v1/inbox", Some(&agent), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
}

/// A POST with an `Idempotency-Key`.
async fn post_with_key(app: &TestApp, token: &str, uri: &str, key: &str, body: &Value) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(req).await
}

async fn issue_count(app: &TestApp, title: &str) -> usize {
    let r = app
        .call(
            Method::GET,
            "/api/v1/issues?limit=500",
            Some(&app.board),
            None,
        )
        .await;
    r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == title)
        .count()
}

#[tokio::test]
async fn a_retried_write_with_the_same_idempotency_key_returns_the_first_result() {
    let app = TestApp::new().await;
    let agent = app.agent_key(OWNER).await;
    let body = json!({"title": "Ship the login page", "priority": 2});
    let first = post_with_key(&app, &agent, "/api/v1/issues", "create-login-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    let rows = app.activity_rows().await;
    let again = post_with_key(&app, &agent, "/api/v1/issues", "create-login-1", &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.json);
    assert_eq!(again.json, first.json, "the same body, the same key");
    assert_eq!(again.headers.get("etag"), first.headers.get("etag"));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(issue_count(&app, "Ship the login page").await, 1);
    assert_eq!(app.activity_rows().await, rows, "a replay writes nothing");

    // The same key on the same route with another body is refused, and writes nothing.
    let changed = post_with_key(
        &app,
        &agent,
        "/api/v1/issues",
        "create-login-1",
        &json!({"title": "Ship the signup page", "priority": 2}),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        changed.json
    );
    assert_eq!(changed.json["error"]["field"], "Idempotency-Key");
    assert_eq!(issue_count(&app, "Ship the signup page").await, 0);
    assert_eq!(app.activity_rows().await, rows);

    // The same key for another request is refused, naming the header.
    let other = post_with_key(
        &app,
        &agent,
        &format!(
            "/api/v1/issues/{}/comments",
            first.json["key"].as_str().unwrap()
        ),
        "create-login-1",
        &json!({"body": "hello"}),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.json
    );
    assert_eq!(other.json["error"]["code"], "validation_failed");
    assert_eq!(other.json["error"]["field"], "Idempotency-Key");

    // Keys are per credential: the board's same key is a new request.
    let board = post_with_key(
        &app,
        &app.board,
        "/api/v1/issues",
        "create-login-1",
        &json!({"title": "Write the docs"}),
    )
    .await;
    assert_eq!(board.status, StatusCode::CREATED, "{}", board.json);
    assert_ne!(board.json["key"], first.json["key"]);

    // A failure is not remembered: after fixing the body the same key goes through.
    let bad = post_with_key(&app, &agent, "/api/v1/issues", "k2", &json!({"title": ""})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.json);
    let good = post_with_key(
        &app,
        &agent,
        "/api/v1/issues",
        "k2",
        &json!({"title": "Fixed"}),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.json);

    // A malformed key is 422 and nothing is written.
    let r = post_with_key(
        &app,
        &agent,
        "/api/v1/issues",
        "has space",
        &json!({"title": "Nope"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(r.json["error"]["field"], "Idempotency-Key");
    assert_eq!(issue_count(&app, "Nope").await, 0);

    // Without a key, a retry is a new request (here: a duplicate title).
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            Some(&agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "duplicate");
    // Reads ignore the header.
    let req = Request::builder()
        .uri("/api/v1/inbox")
        .header("authorization", format!("Bearer {agent}"))
        .header("idempotency-key", "create-login-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_rights_layer_refuses_before_the_handler_and_stores_nothing() {
    let app = TestApp::new().await;
    let agent = app.agent_key(OWNER).await;
    let rows = app.activity_rows().await;
    // Board-only write by an agent: 403 from the table, with the route in the message.
    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&agent),
            Some(json!({"name": "ui", "color": "#00ff00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "forbidden");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/labels")
    );
    // Even an invalid body is refused as forbidden first: the handler never runs.
    let r = app
        .call(
            Method::POST,
            "/api/v1/labels",
            Some(&agent),
            Some(json!({"bogus": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    // Agent-only route with the board.
    let r = app
        .call(Method::GET, "/api/v1/agents/me", Some(&app.board), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    // 401 comes before a malformed body (no token, no information).
    let r = app
        .call(
            Method::POST,
            "/api/v1/issues",
            None,
            Some(json!({"titel": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], "unauthenticated");
    assert_eq!(r.headers["www-authenticate"], r#"Bearer realm="mesa""#);
    assert_eq!(app.activity_rows().await, rows);
    let r = app
        .call(Method::GET, "/api/v1/inbox", Some("mesa_agt_nope"), None)
        .await;
    assert_eq!(r.json["error"]["code"], "invalid_token");
    assert_eq!(
        r.headers["www-authenticate"],
        r#"Bearer realm="mesa", error="invalid_token""#
    );
    // Unknown routes stay 404 for an authenticated caller; the OpenAPI document is public.
    let r = app
        .call(Method::GET, "/api/v1/nope", Some(&agent), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}
