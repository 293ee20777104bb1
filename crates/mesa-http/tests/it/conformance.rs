//! The API against its own OpenAPI document, over a real listener on port 0.
//!
//! The test fetches `/api/openapi.json` over HTTP and runs [`cases`], a table of requests in
//! order (later rows use ids that earlier rows saved), plus two generic requests per operation
//! (no token, an unknown token) and a malformed body for every operation that takes one. Every
//! response must have a status the document declares for its operation, the status the row
//! expects, and a body that validates against the schema the document declares for that status;
//! error bodies must also carry the row's `code` (SPEC §9.2).
//!
//! Coverage is checked against the document, not against the table: every operation must have
//! a successful row, and every error status it declares must be provoked by some row unless
//! [`NOT_PROVOKED`] says why it cannot be. A route added without rows here fails the test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use mesa_core::NewIssue;
use mesa_core::domain::{Actor, RunId, RunMode, RunTrigger, RunnerKind};
use mesa_core::store::NewRunRecord;
use mesa_http::api::rights::{Access, access_of};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::events::Server;
use crate::support::TestApp;

/// Operations the table does not cover, each with the reason.
const EXCLUDED: &[(&str, &str, &str)] = &[
    // The event stream never ends; tests/it/events.rs covers it over a real listener.
    ("GET", "/api/v1/events", "endless stream"),
];

/// Declared error statuses no request can provoke in this setup, each with the reason.
const NOT_PROVOKED: &[(&str, &str, u16, &str)] = &[];

/// A valid UUID that names nothing.
const NO_ID: &str = "0190b1a2-0000-7000-8000-000000000000";

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// No `Authorization` header.
    Nobody,
    /// A well-formed board token that was never issued.
    Forged,
    /// The board.
    Board,
    /// The CEO's agent key.
    Ceo,
    /// The founding engineer's agent key.
    Engineer,
    /// The key of a queued run of the founding engineer.
    Run,
}

/// One request of the table and what must come back.
#[derive(Debug)]
struct Case {
    who: Who,
    method: &'static str,
    /// The path, with `$name` standing for a value saved by an earlier row.
    path: String,
    body: Option<Body>,
    if_match: Option<&'static str>,
    status: u16,
    /// The `error.code` of an error response.
    code: Option<&'static str>,
    /// Values to save from the response body: (name, JSON pointer).
    save: Vec<(&'static str, &'static str)>,
    /// Extra request headers.
    headers: Vec<(&'static str, String)>,
    /// Sign the body with this secret (`X-Mesa-Signature-256`, incoming webhooks).
    sign_with: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Raw(&'static str),
}

/// A row: `line` is `"METHOD /path"`.
fn req(who: Who, line: &str) -> Case {
    let (method, path) = line.split_once(' ').expect("METHOD /path");
    Case {
        who,
        method: method_name(method),
        path: path.to_owned(),
        body: None,
        if_match: None,
        status: 0,
        code: None,
        save: Vec::new(),
        headers: Vec::new(),
        sign_with: None,
    }
}

impl Case {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(Body::Json(body));
        self
    }

    fn raw(mut self, text: &'static str) -> Self {
        self.body = Some(Body::Raw(text));
        self
    }

    fn if_match(mut self, version: &'static str) -> Self {
        self.if_match = Some(version);
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Signs the body (as sent, after `$name` substitution) with `secret`.
    fn signed(mut self, secret: &'static str) -> Self {
        self.sign_with = Some(secret);
        self
    }

    fn save(mut self, name: &'static str, pointer: &'static str) -> Self {
        self.save.push((name, pointer));
        self
    }

    /// Expects a success status.
    fn ok(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Expects an error status with `code`.
    fn fails(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = Some(code);
        self
    }
}

/// The table, in the order it runs.
fn cases() -> Vec<Case> {
    use Who::{Board, Ceo, Engineer, Run};
    let title = |t: &str| json!({ "title": t });
    vec![
        // Issues.
        req(Board, "POST /api/v1/issues")
            .json(json!({"title": "Conformance one", "assignee_slug": "founding-engineer"}))
            .save("issue", "/key")
            .ok(201),
        req(Board, "POST /api/v1/issues")
            .json(json!({"title": "Conformance two", "assignee_slug": "founding-engineer"}))
            .save("issue2", "/key")
            .ok(201),
        req(Board, "POST /api/v1/issues")
            .json(title("Conformance three"))
            .save("issue3", "/key")
            .ok(201),
        req(Engineer, "POST /api/v1/issues")
            .json(title("Conformance one"))
            .fails(409, "duplicate"),
        req(Board, "POST /api/v1/issues")
            .json(title(""))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/issues?status=todo,in_progress").ok(200),
        req(Board, "GET /api/v1/issues?status=bogus").fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/issues/similar")
            .json(title("Conformance"))
            .ok(200),
        req(Engineer, "POST /api/v1/issues/similar")
            .json(json!({}))
            .fails(422, "validation_failed"),
        req(Board, "POST /api/v1/issues")
            .json(json!({"title": "Conformance child", "parent_key": "$issue"}))
            .ok(201),
        req(Engineer, "GET /api/v1/issues/$issue").ok(200),
        req(Engineer, "GET /api/v1/issues/$run_issue").ok(200),
        req(Engineer, "GET /api/v1/issues/MESA-9999").fails(404, "not_found"),
        req(Engineer, "GET /api/v1/issues/nope").fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/issues/$issue")
            .json(json!({"priority": 2}))
            .if_match("1")
            .ok(200),
        req(Board, "PATCH /api/v1/issues/$issue")
            .json(json!({"priority": 3}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/issues/$issue")
            .json(json!({"priority": 99}))
            .fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/issues/MESA-9999")
            .json(json!({"priority": 1}))
            .fails(404, "not_found"),
        req(Board, "PATCH /api/v1/issues/$issue")
            .json(json!({"status": "done"}))
            .fails(409, "illegal_transition"),
        req(Engineer, "POST /api/v1/issues/$issue/checkout").ok(200),
        req(Ceo, "POST /api/v1/issues/$issue/checkout").fails(409, "checkout_conflict"),
        req(Board, "POST /api/v1/issues/$issue/checkout").fails(403, "forbidden"),
        req(Engineer, "POST /api/v1/issues/MESA-9999/checkout").fails(404, "not_found"),
        req(Engineer, "POST /api/v1/issues/$issue/checkout")
            .json(json!({"expected_statuses": ["bogus"]}))
            .fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/issues/$issue/comments")
            .json(json!({"body": "All green.", "kind": "evidence"}))
            .ok(201),
        req(Engineer, "POST /api/v1/issues/$issue/comments")
            .json(json!({"body": "x", "kind": "system"}))
            .fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/issues/MESA-9999/comments")
            .json(json!({"body": "x"}))
            .fails(404, "not_found"),
        req(Engineer, "GET /api/v1/issues/$issue/comments").ok(200),
        req(Engineer, "GET /api/v1/issues/MESA-9999/comments").fails(404, "not_found"),
        req(Engineer, "GET /api/v1/issues/nope/comments").fails(422, "validation_failed"),
        req(Ceo, "POST /api/v1/issues/$issue/release").fails(403, "forbidden"),
        req(Engineer, "POST /api/v1/issues/$issue/release").ok(200),
        req(Engineer, "POST /api/v1/issues/$issue/release").fails(409, "illegal_transition"),
        req(Engineer, "POST /api/v1/issues/MESA-9999/release").fails(404, "not_found"),
        req(Engineer, "POST /api/v1/issues/nope/release").fails(422, "validation_failed"),
        // Through review.
        req(Engineer, "POST /api/v1/issues/$issue2/checkout").ok(200),
        req(Ceo, "PATCH /api/v1/issues/$issue2")
            .json(json!({"status": "in_review", "comment": "Not mine to submit."}))
            .fails(403, "forbidden"),
        req(Engineer, "POST /api/v1/issues/$issue2/review")
            .json(json!({"decision": "approve", "comment": "x"}))
            .fails(409, "illegal_transition"),
        req(Engineer, "PATCH /api/v1/issues/$issue2")
            .json(json!({"status": "in_review", "comment": "Done, tests pass."}))
            .ok(200),
        req(Engineer, "POST /api/v1/issues/$issue2/review")
            .json(json!({"decision": "approve", "comment": "mine"}))
            .fails(403, "forbidden"),
        req(Ceo, "POST /api/v1/issues/$issue2/review")
            .json(json!({"decision": "maybe", "comment": "x"}))
            .fails(422, "validation_failed"),
        req(Ceo, "POST /api/v1/issues/MESA-9999/review")
            .json(json!({"decision": "approve", "comment": "x"}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/issues/$issue2/review")
            .json(json!({"decision": "approve", "comment": "Good."}))
            .ok(200),
        req(Engineer, "POST /api/v1/issues/$issue2/comments")
            .json(json!({"body": "late"}))
            .fails(409, "conflict"),
        req(Engineer, "DELETE /api/v1/issues/$issue3").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/issues/$issue3?purge=maybe").fails(422, "validation_failed"),
        req(Board, "DELETE /api/v1/issues/$issue3").ok(204),
        req(Board, "DELETE /api/v1/issues/MESA-9999").fails(404, "not_found"),
        req(Engineer, "GET /api/v1/inbox").ok(200),
        req(Engineer, "GET /api/v1/inbox?bogus=1").fails(422, "validation_failed"),
        // Agents, keys and tokens.
        req(Engineer, "GET /api/v1/agents").ok(200),
        req(Engineer, "GET /api/v1/agents/me").ok(200),
        req(Board, "GET /api/v1/agents/me").fails(403, "forbidden"),
        req(Engineer, "GET /api/v1/agents/ceo").ok(200),
        req(Engineer, "GET /api/v1/agents/nobody").fails(404, "not_found"),
        req(Board, "POST /api/v1/agents")
            .json(new_agent("conformance-bot"))
            .ok(201),
        req(Board, "POST /api/v1/agents")
            .json(new_agent("conformance-bot"))
            .fails(409, "conflict"),
        req(Engineer, "POST /api/v1/agents")
            .json(new_agent("rogue"))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/agents")
            .json(new_agent("Bad Slug"))
            .fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/agents/conformance-bot")
            .json(json!({"max_turns": 30}))
            .ok(200),
        req(Board, "PATCH /api/v1/agents/conformance-bot")
            .json(json!({"max_turns": 31}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/agents/conformance-bot")
            .json(json!({"max_turns": 0}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/agents/conformance-bot")
            .json(json!({"max_turns": 32}))
            .fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/agents/nobody")
            .json(json!({"max_turns": 32}))
            .fails(404, "not_found"),
        req(Board, "PUT /api/v1/agents/conformance-bot/budget")
            .json(json!({"daily_token_limit": 1000, "daily_cost_limit_usd": 5.0}))
            .ok(200),
        req(Engineer, "PUT /api/v1/agents/conformance-bot/budget")
            .json(json!({"daily_token_limit": 1000, "daily_cost_limit_usd": 5.0}))
            .fails(403, "forbidden"),
        req(Board, "PUT /api/v1/agents/nobody/budget")
            .json(json!({"daily_token_limit": 1000, "daily_cost_limit_usd": 5.0}))
            .fails(404, "not_found"),
        req(Board, "PUT /api/v1/agents/conformance-bot/budget")
            .json(json!({"daily_token_limit": -1, "daily_cost_limit_usd": 5.0}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/agents/conformance-bot/revisions").ok(200),
        req(Engineer, "GET /api/v1/agents/conformance-bot/revisions").fails(403, "forbidden"),
        req(Board, "GET /api/v1/agents/nobody/revisions").fails(404, "not_found"),
        req(Board, "POST /api/v1/agents/conformance-bot/rollback")
            .json(json!({"revision": 1}))
            .ok(200),
        req(Engineer, "POST /api/v1/agents/conformance-bot/rollback")
            .json(json!({"revision": 1}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/agents/nobody/rollback")
            .json(json!({"revision": 1}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/agents/conformance-bot/rollback")
            .json(json!({"revision": "first"}))
            .fails(422, "validation_failed"),
        req(Board, "POST /api/v1/agents/conformance-bot/keys")
            .json(json!({}))
            .save("key", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/agents/conformance-bot/keys")
            .json(json!({}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/agents/nobody/keys")
            .json(json!({}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/agents/conformance-bot/keys")
            .json(json!({"expires_at": "yesterday"}))
            .fails(422, "validation_failed"),
        req(Engineer, "DELETE /api/v1/keys/$key").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/keys/$key").ok(204),
        req(Board, &format!("DELETE /api/v1/keys/{NO_ID}")).fails(404, "not_found"),
        req(Board, "DELETE /api/v1/agents/conformance-bot").ok(200),
        req(Engineer, "DELETE /api/v1/agents/ceo").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/agents/nobody").fails(404, "not_found"),
        req(Board, "GET /api/v1/tokens").ok(200),
        req(Engineer, "GET /api/v1/tokens").fails(403, "forbidden"),
        req(Board, "POST /api/v1/tokens")
            .json(json!({"name": "ci"}))
            .save("token", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/tokens")
            .json(json!({"name": "mine"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/tokens")
            .json(json!({"name": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "DELETE /api/v1/tokens/$token").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/tokens/$token").ok(204),
        req(Board, &format!("DELETE /api/v1/tokens/{NO_ID}")).fails(404, "not_found"),
        // Labels.
        req(Engineer, "GET /api/v1/labels").ok(200),
        req(Board, "POST /api/v1/labels")
            .json(json!({"name": "conformance", "color": "#123456"}))
            .save("label", "/id")
            .ok(201),
        req(Board, "POST /api/v1/labels")
            .json(json!({"name": "conformance-2", "color": "#123456"}))
            .save("label2", "/id")
            .ok(201),
        req(Board, "POST /api/v1/labels")
            .json(json!({"name": "conformance", "color": "#123456"}))
            .fails(409, "conflict"),
        req(Engineer, "POST /api/v1/labels")
            .json(json!({"name": "mine", "color": "#123456"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/labels")
            .json(json!({"name": "red", "color": "red"}))
            .fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/labels/$label")
            .json(json!({"color": "#654321"}))
            .ok(200),
        req(Board, "PATCH /api/v1/labels/$label")
            .json(json!({"name": "conformance-2"}))
            .fails(409, "conflict"),
        req(Board, "PATCH /api/v1/labels/$label")
            .json(json!({"color": "#000000"}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/labels/$label")
            .json(json!({"color": "black"}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/labels/$label")
            .json(json!({"color": "#000000"}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/labels/{NO_ID}"))
            .json(json!({"color": "#000000"}))
            .fails(404, "not_found"),
        req(Engineer, "DELETE /api/v1/labels/$label2").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/labels/$label2").ok(204),
        req(Board, "DELETE /api/v1/labels/$label2").fails(404, "not_found"),
        // Budgets and usage.
        req(Board, "GET /api/v1/budget").ok(200),
        req(Engineer, "GET /api/v1/budget").fails(403, "forbidden"),
        req(Board, "PUT /api/v1/budget")
            .json(json!({"daily_token_limit": 0, "daily_cost_limit_usd": 0}))
            .ok(200),
        req(Engineer, "PUT /api/v1/budget")
            .json(json!({"daily_token_limit": 0, "daily_cost_limit_usd": 0}))
            .fails(403, "forbidden"),
        req(Board, "PUT /api/v1/budget")
            .json(json!({"daily_token_limit": 0, "daily_cost_limit_usd": -1}))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/usage").ok(200),
        req(Run, "POST /api/v1/usage/report")
            .json(json!({"input_tokens": 10, "output_tokens": 5}))
            .ok(201),
        req(Board, "POST /api/v1/usage/report")
            .json(json!({"input_tokens": 10, "output_tokens": 5}))
            .fails(403, "forbidden"),
        req(Run, "POST /api/v1/usage/report")
            .json(json!({"input_tokens": -1, "output_tokens": 5}))
            .fails(422, "validation_failed"),
        // Approvals.
        req(Engineer, "POST /api/v1/approvals")
            .json(json!({"kind": "other", "title": "Conformance", "body": "Please."}))
            .save("approval", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/approvals")
            .json(json!({"kind": "party", "title": "x", "body": ""}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/approvals?status=pending").ok(200),
        req(Board, "GET /api/v1/approvals?status=bogus").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/approvals/$approval").ok(200),
        req(Board, &format!("GET /api/v1/approvals/{NO_ID}")).fails(404, "not_found"),
        req(Board, "GET /api/v1/approvals/xyz").fails(422, "validation_failed"),
        req(Ceo, "POST /api/v1/approvals/$approval/resolve")
            .json(json!({"decision": "approve"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/approvals/$approval/resolve")
            .json(json!({"decision": "maybe"}))
            .fails(422, "validation_failed"),
        req(Board, "POST /api/v1/approvals/$approval/resolve")
            .json(json!({"decision": "approve", "comment": "Go."}))
            .ok(200),
        req(Board, "POST /api/v1/approvals/$approval/resolve")
            .json(json!({"decision": "reject"}))
            .fails(409, "conflict"),
        req(Board, &format!("POST /api/v1/approvals/{NO_ID}/resolve"))
            .json(json!({"decision": "approve"}))
            .fails(404, "not_found"),
        // Work blocks, apex blocks, strategy.
        req(Board, "POST /api/v1/apex-blocks")
            .json(json!({"title": "Conformance apex", "goal": "Be right"}))
            .save("apex", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/apex-blocks")
            .json(title("Mine"))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/apex-blocks")
            .json(title(""))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/apex-blocks").ok(200),
        req(Engineer, "GET /api/v1/apex-blocks/$apex").ok(200),
        req(Engineer, &format!("GET /api/v1/apex-blocks/{NO_ID}")).fails(404, "not_found"),
        req(Engineer, "GET /api/v1/apex-blocks/xyz").fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/apex-blocks/$apex")
            .json(json!({"goal": "Be very right"}))
            .ok(200),
        req(Board, "PATCH /api/v1/apex-blocks/$apex")
            .json(json!({"goal": "x"}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/apex-blocks/$apex")
            .json(json!({"status": "bogus"}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/apex-blocks/$apex")
            .json(json!({"goal": "x"}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/apex-blocks/{NO_ID}"))
            .json(json!({"goal": "x"}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/work-blocks")
            .json(json!({"title": "Conformance block", "apex_block_id": "$apex"}))
            .save("block", "/id")
            .ok(201),
        req(Board, "POST /api/v1/work-blocks")
            .json(title("Conformance block two"))
            .save("block2", "/id")
            .ok(201),
        req(Board, "POST /api/v1/work-blocks")
            .json(title(""))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/work-blocks?status=proposed").ok(200),
        req(Engineer, "GET /api/v1/work-blocks?status=bogus").fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/work-blocks/$block").ok(200),
        req(Engineer, &format!("GET /api/v1/work-blocks/{NO_ID}")).fails(404, "not_found"),
        req(Engineer, "GET /api/v1/work-blocks/xyz").fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"goal": "Ship"}))
            .ok(200),
        req(Board, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"goal": "x"}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/work-blocks/$block")
            .json(json!({}))
            .fails(422, "validation_failed"),
        req(Board, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"status": "shipped"}))
            .fails(409, "illegal_transition"),
        req(Engineer, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"goal": "x"}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/work-blocks/{NO_ID}"))
            .json(json!({"goal": "x"}))
            .fails(404, "not_found"),
        req(Board, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"status": "active"}))
            .ok(200),
        req(Engineer, "POST /api/v1/work-blocks/$block/issues")
            .json(json!({"issue_key": "$issue"}))
            .ok(200),
        req(Engineer, "POST /api/v1/work-blocks/$block2/issues")
            .json(json!({"issue_key": "$issue"}))
            .fails(409, "conflict"),
        req(Engineer, "POST /api/v1/work-blocks/$block/issues")
            .json(json!({"issue_key": "nope"}))
            .fails(422, "validation_failed"),
        req(
            Engineer,
            &format!("POST /api/v1/work-blocks/{NO_ID}/issues"),
        )
        .json(json!({"issue_key": "$issue"}))
        .fails(404, "not_found"),
        req(Engineer, "DELETE /api/v1/work-blocks/$block/issues/$issue").ok(200),
        req(Engineer, "DELETE /api/v1/work-blocks/$block/issues/$issue").fails(409, "conflict"),
        req(Engineer, "DELETE /api/v1/work-blocks/$block/issues/nope")
            .fails(422, "validation_failed"),
        req(
            Engineer,
            "DELETE /api/v1/work-blocks/$block/issues/MESA-9999",
        )
        .fails(404, "not_found"),
        req(Ceo, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"status": "ready"}))
            .ok(200),
        req(Ceo, "PATCH /api/v1/work-blocks/$block")
            .json(json!({"status": "shipped"}))
            .ok(202),
        req(Engineer, "GET /api/v1/strategy").ok(200),
        // Archetypes and patches.
        req(Engineer, "GET /api/v1/archetypes").ok(200),
        req(Engineer, "GET /api/v1/archetypes/qa").ok(200),
        req(Engineer, "GET /api/v1/archetypes/nope").fails(404, "not_found"),
        req(Board, "PATCH /api/v1/archetypes/qa")
            .json(json!({"body": "Test everything twice."}))
            .ok(200),
        req(Board, "PATCH /api/v1/archetypes/qa")
            .json(json!({"body": "x"}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/archetypes/qa")
            .json(json!({"body": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/archetypes/qa")
            .json(json!({"body": "x"}))
            .fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/archetypes/nope")
            .json(json!({"body": "x"}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/archetypes/qa/rollback")
            .json(json!({"version": 1}))
            .ok(200),
        req(Engineer, "POST /api/v1/archetypes/qa/rollback")
            .json(json!({"version": 1}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/archetypes/nope/rollback")
            .json(json!({"version": 1}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/archetypes/qa/rollback")
            .json(json!({"version": "first"}))
            .fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/archetype-patches")
            .json(json!({"archetype_slug": "qa", "proposed_body": "Better.", "rationale": "r"}))
            .save("patch", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/archetype-patches")
            .json(json!({"archetype_slug": "qa", "proposed_body": "Worse.", "rationale": "r"}))
            .save("patch2", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/archetype-patches")
            .json(json!({"archetype_slug": "qa", "proposed_body": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/archetype-patches?status=pending").ok(200),
        req(Engineer, "GET /api/v1/archetype-patches?status=bogus").fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/archetype-patches/$patch2/reject")
            .json(json!({}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/archetype-patches/$patch2/reject")
            .json(json!({"comment": "No."}))
            .ok(200),
        req(Board, "POST /api/v1/archetype-patches/$patch2/reject")
            .json(json!({}))
            .fails(409, "conflict"),
        req(
            Board,
            &format!("POST /api/v1/archetype-patches/{NO_ID}/reject"),
        )
        .json(json!({}))
        .fails(404, "not_found"),
        req(Board, "POST /api/v1/archetype-patches/xyz/reject")
            .json(json!({}))
            .fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/archetype-patches/$patch/approve")
            .json(json!({}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/archetype-patches/$patch/approve")
            .json(json!({"comment": "Yes."}))
            .ok(200),
        req(Board, "POST /api/v1/archetype-patches/$patch/approve")
            .json(json!({}))
            .fails(409, "conflict"),
        req(
            Board,
            &format!("POST /api/v1/archetype-patches/{NO_ID}/approve"),
        )
        .json(json!({}))
        .fails(404, "not_found"),
        req(Board, "POST /api/v1/archetype-patches/xyz/approve")
            .json(json!({}))
            .fails(422, "validation_failed"),
        // Wiki.
        req(Engineer, "POST /api/v1/wiki")
            .json(json!({"title": "Conformance page", "content": "Hello wiki."}))
            .save("page", "/slug")
            .ok(201),
        req(Engineer, "POST /api/v1/wiki")
            .json(json!({"slug": "$page", "title": "Conformance page", "content": "again"}))
            .fails(409, "conflict"),
        req(Engineer, "POST /api/v1/wiki")
            .json(json!({"title": "", "content": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/wiki").ok(200),
        req(Engineer, "GET /api/v1/wiki?bogus=1").fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/wiki/search?q=hello").ok(200),
        req(Engineer, "GET /api/v1/wiki/search").fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/wiki/$page").ok(200),
        req(Engineer, "GET /api/v1/wiki/nope").fails(404, "not_found"),
        req(Ceo, "PATCH /api/v1/wiki/$page")
            .json(json!({"content": "Hello again."}))
            .ok(200),
        req(Ceo, "PATCH /api/v1/wiki/$page")
            .json(json!({"content": "x"}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Ceo, "PATCH /api/v1/wiki/$page")
            .json(json!({"title": ""}))
            .fails(422, "validation_failed"),
        req(Ceo, "PATCH /api/v1/wiki/nope")
            .json(json!({"content": "x"}))
            .fails(404, "not_found"),
        req(Engineer, "GET /api/v1/wiki/$page/revisions").ok(200),
        req(Engineer, "GET /api/v1/wiki/nope/revisions").fails(404, "not_found"),
        req(Ceo, "DELETE /api/v1/wiki/$page").fails(403, "forbidden"),
        req(Engineer, "DELETE /api/v1/wiki/$page").ok(204),
        req(Engineer, "DELETE /api/v1/wiki/$page").fails(404, "not_found"),
        // Learning.
        req(Run, "POST /api/v1/reflections")
            .json(json!({"body": "Write the test first."}))
            .ok(201),
        req(Board, "POST /api/v1/reflections")
            .json(json!({"body": "Not an agent."}))
            .fails(403, "forbidden"),
        req(Run, "POST /api/v1/reflections")
            .json(json!({"body": " "}))
            .fails(422, "validation_failed"),
        req(Ceo, "POST /api/v1/skills")
            .json(json!({"slug": "conformance", "title": "C", "body": "Check.", "tags": []}))
            .ok(201),
        req(Ceo, "POST /api/v1/skills")
            .json(json!({"slug": "conformance", "title": "C", "body": "Again.", "tags": []}))
            .fails(409, "conflict"),
        req(Engineer, "POST /api/v1/skills")
            .json(json!({"slug": "mine", "title": "M", "body": "x", "tags": []}))
            .fails(403, "forbidden"),
        req(Ceo, "POST /api/v1/skills")
            .json(json!({"slug": "x", "title": "X", "body": "x"}))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/skills?q=check").ok(200),
        req(Engineer, "GET /api/v1/skills?bogus=1").fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/skills/conformance").ok(200),
        req(Engineer, "GET /api/v1/skills/nope").fails(404, "not_found"),
        req(Engineer, "GET /api/v1/skills/Bad%20Slug").fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/memory")
            .json(json!({"content": "Staging is on port 5433.", "tags": ["staging"]}))
            .ok(201),
        req(Engineer, "POST /api/v1/memory")
            .json(json!({"content": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/memory/recall?q=staging").ok(200),
        req(Engineer, "GET /api/v1/memory/recall").fails(422, "validation_failed"),
        // Operations.
        req(Board, "GET /api/v1/activity?actor=board").ok(200),
        req(Board, "GET /api/v1/activity?entity=bogus").fails(422, "validation_failed"),
        req(Engineer, "GET /api/v1/runs").ok(200),
        req(Engineer, "GET /api/v1/runs?status=done").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/runs/$run").ok(200),
        req(Board, &format!("GET /api/v1/runs/{NO_ID}")).fails(404, "not_found"),
        req(Board, "GET /api/v1/runs/xyz").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/settings").ok(200),
        req(Engineer, "GET /api/v1/settings").fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/settings")
            .json(json!({"instance_name": "Conformance"}))
            .ok(200),
        req(Engineer, "PATCH /api/v1/settings")
            .json(json!({"instance_name": "Mine"}))
            .fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/settings")
            .json(json!({"scheduler_paused": true}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/scheduler").ok(200),
        req(Engineer, "GET /api/v1/scheduler").fails(403, "forbidden"),
        req(Board, "POST /api/v1/scheduler/pause").ok(200),
        req(Engineer, "POST /api/v1/scheduler/pause").fails(403, "forbidden"),
        req(Board, "POST /api/v1/scheduler/resume").ok(200),
        req(Engineer, "POST /api/v1/scheduler/resume").fails(403, "forbidden"),
        req(Board, "POST /api/v1/crons")
            .json(json!({"agent": "ceo", "schedule": "0 9 * * *", "task": "Stand-up."}))
            .save("cron", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/crons")
            .json(json!({"agent": "ceo", "schedule": "0 9 * * *", "task": "x"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/crons")
            .json(json!({"agent": "ceo", "schedule": "whenever", "task": "x"}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/crons").ok(200),
        req(Engineer, "GET /api/v1/crons").fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/crons/$cron")
            .json(json!({"active": false}))
            .ok(200),
        req(Board, "PATCH /api/v1/crons/$cron")
            .json(json!({"active": true}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/crons/$cron")
            .json(json!({"schedule": "whenever"}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/crons/$cron")
            .json(json!({"active": true}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/crons/{NO_ID}"))
            .json(json!({"active": true}))
            .fails(404, "not_found"),
        req(Engineer, "DELETE /api/v1/crons/$cron").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/crons/$cron").ok(204),
        req(Board, "DELETE /api/v1/crons/$cron").fails(404, "not_found"),
        req(Board, "POST /api/v1/directives")
            .json(json!({"text": "Keep answers short."}))
            .save("directive", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/directives")
            .json(json!({"text": "x"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/directives")
            .json(json!({"text": ""}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/directives").ok(200),
        req(Engineer, "GET /api/v1/directives").fails(403, "forbidden"),
        req(Board, "PATCH /api/v1/directives/$directive")
            .json(json!({"active": false}))
            .ok(200),
        req(Board, "PATCH /api/v1/directives/$directive")
            .json(json!({"active": true}))
            .if_match("999")
            .fails(412, "version_conflict"),
        req(Board, "PATCH /api/v1/directives/$directive")
            .json(json!({"text": ""}))
            .fails(422, "validation_failed"),
        req(Engineer, "PATCH /api/v1/directives/$directive")
            .json(json!({"active": true}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/directives/{NO_ID}"))
            .json(json!({"active": true}))
            .fails(404, "not_found"),
        req(Engineer, "DELETE /api/v1/directives/$directive").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/directives/$directive").ok(204),
        req(Board, "DELETE /api/v1/directives/$directive").fails(404, "not_found"),
        req(Board, "GET /api/v1/audits").ok(200),
        req(Engineer, "GET /api/v1/audits").fails(403, "forbidden"),
        // Runs: waking, logs, cancelling, audits.
        req(Board, "POST /api/v1/agents/qa/wake")
            .json(json!({}))
            .save("woken", "/id")
            .ok(202),
        req(Board, "POST /api/v1/agents/ceo/wake")
            .json(json!({"issue_key": "$issue2"}))
            .fails(409, "issue_finished"),
        req(Board, "POST /api/v1/agents/conformance-bot/wake")
            .json(json!({}))
            .fails(409, "agent_inactive"),
        req(Engineer, "POST /api/v1/agents/qa/wake")
            .json(json!({}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/agents/nobody/wake")
            .json(json!({}))
            .fails(404, "not_found"),
        req(Board, "POST /api/v1/agents/qa/wake")
            .json(json!({"issue_key": "nope"}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/runs/$run/evaluation").ok(200),
        req(Board, &format!("GET /api/v1/runs/{NO_ID}/evaluation")).fails(404, "not_found"),
        req(Board, "GET /api/v1/runs/xyz/evaluation").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/observability?days=30").ok(200),
        req(Engineer, "GET /api/v1/observability").ok(200),
        req(Board, "GET /api/v1/observability?days=0").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/runs/$run/log").ok(200),
        req(Run, "GET /api/v1/runs/$run/log").ok(200),
        req(Ceo, "GET /api/v1/runs/$run/log").fails(403, "forbidden"),
        req(Board, &format!("GET /api/v1/runs/{NO_ID}/log")).fails(404, "not_found"),
        req(Board, "GET /api/v1/runs/$run/log?follow=maybe").fails(422, "validation_failed"),
        req(Engineer, "POST /api/v1/runs/$woken/cancel").fails(403, "forbidden"),
        req(Board, "POST /api/v1/runs/$woken/cancel").ok(200),
        req(Board, "POST /api/v1/runs/$woken/cancel").fails(409, "run_finished"),
        req(Board, &format!("POST /api/v1/runs/{NO_ID}/cancel")).fails(404, "not_found"),
        req(Board, "POST /api/v1/runs/xyz/cancel").fails(422, "validation_failed"),
        req(Board, "POST /api/v1/audits")
            .json(json!({}))
            .fails(409, "no_auditor"),
        req(Board, "POST /api/v1/agents")
            .json(
                json!({"slug": "auditor", "name": "Auditor", "archetype": "auditor",
                         "runner": "noop"}),
            )
            .ok(201),
        req(Engineer, "POST /api/v1/audits")
            .json(json!({}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/audits")
            .json(json!({"focus": "x".repeat(2001)}))
            .fails(422, "validation_failed"),
        req(Board, "POST /api/v1/audits")
            .json(json!({"focus": "Review rejections."}))
            .ok(201),
        // Outgoing webhooks and the delivery log (SPEC §11.2).
        req(Board, "POST /api/v1/outgoing-webhooks")
            .json(json!({"url": "http://127.0.0.1:9/hook", "secret": "s3cret",
                         "events": ["issue_created"]}))
            .save("hook", "/id")
            .ok(201),
        req(Engineer, "POST /api/v1/outgoing-webhooks")
            .json(json!({"url": "http://127.0.0.1:9/hook", "secret": "s"}))
            .fails(403, "forbidden"),
        req(Board, "POST /api/v1/outgoing-webhooks")
            .json(json!({"url": "ftp://nowhere", "secret": "s"}))
            .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/outgoing-webhooks").ok(200),
        req(Engineer, "GET /api/v1/outgoing-webhooks").fails(403, "forbidden"),
        req(Board, "GET /api/v1/outgoing-webhooks/$hook").ok(200),
        req(Engineer, "GET /api/v1/outgoing-webhooks/$hook").fails(403, "forbidden"),
        req(Board, &format!("GET /api/v1/outgoing-webhooks/{NO_ID}")).fails(404, "not_found"),
        req(Board, "PATCH /api/v1/outgoing-webhooks/$hook")
            .json(json!({"active": false}))
            .ok(200),
        req(Engineer, "PATCH /api/v1/outgoing-webhooks/$hook")
            .json(json!({"active": true}))
            .fails(403, "forbidden"),
        req(Board, &format!("PATCH /api/v1/outgoing-webhooks/{NO_ID}"))
            .json(json!({"active": true}))
            .fails(404, "not_found"),
        req(Board, "PATCH /api/v1/outgoing-webhooks/$hook")
            .json(json!({"events": ["run_output"]}))
            .fails(422, "validation_failed"),
        req(Board, "POST /api/v1/outgoing-webhooks/$hook/test")
            .save("delivery", "/id")
            .ok(202),
        req(Engineer, "POST /api/v1/outgoing-webhooks/$hook/test").fails(403, "forbidden"),
        req(
            Board,
            &format!("POST /api/v1/outgoing-webhooks/{NO_ID}/test"),
        )
        .fails(404, "not_found"),
        req(Board, "GET /api/v1/outgoing-webhooks/$hook/deliveries").ok(200),
        req(Engineer, "GET /api/v1/outgoing-webhooks/$hook/deliveries").fails(403, "forbidden"),
        req(
            Board,
            &format!("GET /api/v1/outgoing-webhooks/{NO_ID}/deliveries"),
        )
        .fails(404, "not_found"),
        req(
            Board,
            "GET /api/v1/outgoing-webhooks/$hook/deliveries?status=lost",
        )
        .fails(422, "validation_failed"),
        req(Board, "GET /api/v1/outbox?channel=discord&status=pending").ok(200),
        req(Engineer, "GET /api/v1/outbox").fails(403, "forbidden"),
        req(Board, "GET /api/v1/outbox?status=lost").fails(422, "validation_failed"),
        req(Board, "GET /api/v1/outbox/$delivery").ok(200),
        req(Engineer, "GET /api/v1/outbox/$delivery").fails(403, "forbidden"),
        req(Board, &format!("GET /api/v1/outbox/{NO_ID}")).fails(404, "not_found"),
        req(Engineer, "DELETE /api/v1/outgoing-webhooks/$hook").fails(403, "forbidden"),
        req(Board, "DELETE /api/v1/outgoing-webhooks/$hook").ok(204),
        req(Board, "DELETE /api/v1/outgoing-webhooks/$hook").fails(404, "not_found"),
    ]
}

/// Incoming webhooks (SPEC §11.3): signed with the source's secret instead of a bearer token.
fn incoming_webhook_cases() -> Vec<Case> {
    use Who::{Board, Nobody};
    const SECRET: &str = "conformance-secret";
    const ISSUES: &str = "POST /api/v1/webhooks/conf/issues";
    const COMMENTS: &str = "POST /api/v1/webhooks/conf/comments";
    let big = json!({"title": "x".repeat(1024 * 1024)});
    let ignored = json!({"action": "closed", "issue": {}});
    let mut rows = Vec::new();
    rows.push(
        req(Board, "PATCH /api/v1/settings")
            .json(json!({"webhook_secret_conf": SECRET, "webhook_rate_limit_per_minute": "1000"}))
            .ok(200),
    );
    for (route, ok) in [(ISSUES, "issue"), (COMMENTS, "comment")] {
        let unknown = route.replace("/conf/", "/nosuch/");
        let d = |n: u32| format!("{ok}-{n}");
        let good = if ok == "issue" {
            json!({"title": "Conformance webhook issue"})
        } else {
            json!({"issue_key": "$hooked", "body": "From the sender"})
        };
        let invalid = if ok == "issue" {
            json!({"titel": "typo"})
        } else {
            json!({"issue_key": "$hooked"})
        };
        rows.extend([
            req(Nobody, &unknown)
                .json(good.clone())
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(0))
                .fails(404, "not_found"),
            req(Nobody, route)
                .json(good.clone())
                .header("X-Mesa-Delivery", &d(0))
                .fails(401, "bad_signature"),
            req(Nobody, route)
                .json(good.clone())
                .signed("not-the-secret")
                .header("X-Mesa-Delivery", &d(0))
                .fails(401, "bad_signature"),
            req(Nobody, route)
                .json(good.clone())
                .signed(SECRET)
                .fails(400, "missing_header"),
            req(Nobody, route)
                .json(good.clone())
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(1))
                .save("hooked", "/issue_key")
                .ok(201),
            req(Nobody, route)
                .json(good.clone())
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(1))
                .ok(200),
            req(Nobody, route)
                .raw("{oops")
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(2))
                .fails(400, "malformed_json"),
            req(Nobody, route)
                .json(invalid)
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(3))
                .fails(422, "validation_failed"),
            req(Nobody, route)
                .json(big.clone())
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(4))
                .fails(413, "payload_too_large"),
            req(Nobody, route)
                .json(ignored.clone())
                .signed(SECRET)
                .header("X-Mesa-Delivery", &d(5))
                .header("X-GitHub-Event", "issues")
                .ok(202),
        ]);
    }
    rows.extend([
        // The same title as an open issue.
        req(Nobody, ISSUES)
            .json(json!({"title": "Conformance webhook issue"}))
            .signed(SECRET)
            .header("X-Mesa-Delivery", "issue-6")
            .fails(409, "duplicate"),
        req(Nobody, COMMENTS)
            .json(json!({"issue_key": "MESA-99999", "body": "Nobody home"}))
            .signed(SECRET)
            .header("X-Mesa-Delivery", "comment-6")
            .fails(404, "not_found"),
        // One delivery a minute: the bucket holds one; the next is limited.
        req(Board, "PATCH /api/v1/settings")
            .json(json!({"webhook_rate_limit_per_minute": "1"}))
            .ok(200),
        req(Nobody, ISSUES)
            .json(json!({"title": "Conformance webhook issue"}))
            .signed(SECRET)
            .header("X-Mesa-Delivery", "issue-1")
            .ok(200),
        req(Nobody, ISSUES)
            .json(json!({"title": "Conformance webhook issue"}))
            .signed(SECRET)
            .header("X-Mesa-Delivery", "issue-1")
            .fails(429, "rate_limited"),
        req(Nobody, COMMENTS)
            .json(json!({"issue_key": "$hooked", "body": "From the sender"}))
            .signed(SECRET)
            .header("X-Mesa-Delivery", "comment-1")
            .fails(429, "rate_limited"),
    ]);
    rows
}

/// A `POST /agents` body.
fn new_agent(slug: &str) -> Value {
    json!({
        "slug": slug, "name": "Conformance Bot", "archetype": "backend", "runner": "dry_run",
        "reports_to": "ceo",
    })
}

/// The OpenAPI document and a validator per declared response schema.
struct Document {
    doc: Value,
    validators: HashMap<(String, String, u16), jsonschema::Validator>,
}

impl Document {
    fn new(doc: Value) -> Self {
        Document {
            doc,
            validators: HashMap::new(),
        }
    }

    /// Every operation: (METHOD, template).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        &self.doc["paths"][template][method.to_lowercase()]
    }

    /// The statuses `method template` declares.
    fn statuses(&self, method: &str, template: &str) -> BTreeSet<u16> {
        self.operation(method, template)["responses"]
            .as_object()
            .map(|r| r.keys().filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The template of the operation `path` (without its query) is answered by: literal
    /// segments win over parameters (`/agents/me` over `/agents/{slug}`).
    fn template_of(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        self.operations()
            .into_iter()
            .filter(|(m, _)| m == method)
            .filter_map(|(_, template)| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (p, s) in parts.iter().zip(&segments) {
                    if p.starts_with('{') {
                        continue;
                    }
                    if p != s {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, template))
            })
            .max()
            .map(|(_, t)| t)
    }

    /// Checks one response against the document; returns what is wrong.
    fn check(&mut self, method: &str, template: &str, reply: &Reply) -> Vec<String> {
        let mut wrong = Vec::new();
        let response = &self.operation(method, template)["responses"][reply.status.to_string()];
        if response.is_null() {
            wrong.push(format!("status {} is not declared", reply.status));
            return wrong;
        }
        let Some(content) = response["content"].as_object().filter(|c| !c.is_empty()) else {
            if !reply.body.is_empty() {
                wrong.push(format!("no body is declared, got {:?}", reply.body));
            }
            return wrong;
        };
        let media_type = reply.content_type.split(';').next().unwrap_or("").trim();
        if !content.contains_key(media_type) {
            let declared: Vec<&String> = content.keys().collect();
            wrong.push(format!(
                "content type {media_type:?}, declared {declared:?}"
            ));
            return wrong;
        }
        if media_type != "application/json" {
            return wrong;
        }
        let Some(schema) = content[media_type]["schema"].as_object().cloned() else {
            wrong.push("no schema is declared for the JSON body".to_owned());
            return wrong;
        };
        let Ok(body) = serde_json::from_str::<Value>(&reply.body) else {
            wrong.push(format!("the body is not JSON: {:?}", reply.body));
            return wrong;
        };
        let key = (method.to_owned(), template.to_owned(), reply.status);
        if !self.validators.contains_key(&key) {
            // The schema's `$ref`s point into the document's components: carry them along,
            // closed, so a field the document does not describe is an error too.
            let mut root = Value::Object(schema);
            close_objects(&mut root, &BTreeSet::new());
            let mut components = self.doc["components"].clone();
            let parts = composed(&components);
            close_objects(&mut components, &parts);
            root["components"] = components;
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema of {method} {template} {}: {e}", reply.status));
            self.validators.insert(key.clone(), validator);
        }
        for e in self.validators[&key].iter_errors(&body) {
            wrong.push(format!("at {:?}: {e}", e.instance_path().to_string()));
        }
        wrong
    }
}

/// The component schemas that are parts of an `allOf` (`#/components/schemas/<name>` refs).
fn composed(components: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                for part in o
                    .get("allOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(r) = part.get("$ref").and_then(Value::as_str) {
                        out.insert(r.to_owned());
                    }
                }
                o.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(components, &mut out);
    out
}

/// Forbids properties an object schema does not list: `additionalProperties: false` on plain
/// objects, `unevaluatedProperties: false` on `allOf` compositions (whose parts stay open, as
/// do the components in `open`, which are such parts).
fn close_objects(v: &mut Value, open: &BTreeSet<String>) {
    fn walk(v: &mut Value, is_part: bool) {
        match v {
            Value::Object(o) => {
                if o.contains_key("allOf") {
                    o.entry("unevaluatedProperties")
                        .or_insert(Value::Bool(false));
                } else if o.contains_key("properties") && !is_part {
                    o.entry("additionalProperties")
                        .or_insert(Value::Bool(false));
                }
                for (k, x) in o.iter_mut() {
                    if k == "allOf" {
                        for part in x.as_array_mut().into_iter().flatten() {
                            walk(part, true);
                        }
                    } else {
                        walk(x, false);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, false)),
            _ => {}
        }
    }
    if let Some(schemas) = v.get_mut("schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            let is_part = open.contains(&format!("#/components/schemas/{name}"));
            walk(schema, is_part);
        }
    } else {
        walk(v, false);
    }
}

/// A response off the wire.
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// One HTTP/1.1 request with `Connection: close`.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let mut rest = raw[end + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    if header("transfer-encoding:") == "chunked" {
        rest = dechunk(&rest);
    }
    Reply {
        status,
        content_type: header("content-type:"),
        body: String::from_utf8(rest).expect("a UTF-8 body"),
    }
}

/// The payload of a complete chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
    out
}

/// Replaces every `$name` in `text` with its saved value.
fn fill(text: &str, saved: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    // Longest names first, so `$issue2` is not read as `$issue` followed by `2`.
    let mut names: Vec<&String> = saved.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(&format!("${name}"), &saved[name]);
    }
    assert!(!out.contains('$'), "unknown variable in {text:?}");
    out
}

fn fill_json(v: &Value, saved: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, saved)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, saved)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_json(x, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A path for `template` whose parameters name nothing (for requests refused before lookup).
fn placeholder_path(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{key}" => "MESA-9999",
            "{id}" => NO_ID,
            "{slug}" => "nobody",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Enqueues a run of the founding engineer on a new issue and mints its key: (run id, issue
/// key, run key).
async fn queued_run(app: &TestApp) -> (String, String, String) {
    let board = Actor::board("test");
    let issue = app
        .mesa
        .create_issue(&board, NewIssue::titled("Conformance run").unwrap())
        .await
        .unwrap();
    let agent = app.mesa.find_agent("founding-engineer").await.unwrap();
    let run_id = RunId::parse("0193a3b4-0000-7000-8000-0000000c0f0e").unwrap();
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
    // Evaluated as the engine does with `feature_run_evaluation` on.
    app.mesa
        .store()
        .put_run_evaluation(mesa_core::store::RunEvaluation {
            run_id,
            agent_id: agent.id,
            archetype: agent.config.archetype.clone(),
            signature: json!({"tool_calls": 2, "tools": ["Edit", "Read"],
                              "reads_before_first_write": 1, "tool_errors": 0,
                              "time_to_first_edit_ms": 1200}),
            rubric: None,
            created_at: app.mesa.now(),
        })
        .await
        .unwrap();
    let key = app.mesa.mint_run_key(&agent, run_id).await.unwrap().raw;
    (run_id.to_string(), issue.issue.key.to_string(), key)
}

/// The test run: every response checked, then coverage.
struct Harness {
    addr: SocketAddr,
    doc: Document,
    tokens: HashMap<Who, String>,
    saved: BTreeMap<String, String>,
    /// Statuses seen per operation.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    failures: Vec<String>,
}

impl Harness {
    async fn call(&mut self, case: &Case) {
        let path = fill(&case.path, &self.saved);
        let line = format!("{:?} {} {path}", case.who, case.method);
        let Some(template) = self.doc.template_of(case.method, &path) else {
            self.failures
                .push(format!("{line}: no operation in the document"));
            return;
        };
        let mut headers = Vec::new();
        if let Some(token) = self.tokens.get(&case.who) {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        if let Some(v) = case.if_match {
            headers.push(("If-Match", format!("\"{v}\"")));
        }
        headers.extend(case.headers.iter().cloned());
        let body = case.body.as_ref().map(|b| match b {
            Body::Json(v) => fill_json(v, &self.saved).to_string(),
            Body::Raw(text) => (*text).to_owned(),
        });
        if let Some(secret) = case.sign_with {
            let signed = body.as_deref().unwrap_or_default().as_bytes();
            headers.push((
                "X-Mesa-Signature-256",
                mesa_http::integrations::incoming::sign(secret.as_bytes(), signed),
            ));
        }
        let reply = send(self.addr, case.method, &path, &headers, body.as_deref()).await;
        self.seen
            .entry((case.method.to_owned(), template.clone()))
            .or_default()
            .insert(reply.status);
        let mut wrong = self.doc.check(case.method, &template, &reply);
        if reply.status != case.status {
            wrong.push(format!(
                "expected status {}, got {}",
                case.status, reply.status
            ));
        }
        let json: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        if let Some(code) = case.code
            && json["error"]["code"] != code
        {
            wrong.push(format!("expected error code {code:?}"));
        }
        for (name, pointer) in &case.save {
            match json.pointer(pointer) {
                Some(Value::String(s)) => {
                    self.saved.insert((*name).to_owned(), s.clone());
                }
                Some(v) => {
                    self.saved.insert((*name).to_owned(), v.to_string());
                }
                None => wrong.push(format!("nothing at {pointer} to save as ${name}")),
            }
        }
        if !wrong.is_empty() {
            let body: String = reply.body.chars().take(400).collect();
            self.failures.push(format!(
                "{line}\n    {}\n    body: {body}",
                wrong.join("\n    ")
            ));
        }
    }

    /// Operations without a successful row, and declared error statuses never provoked.
    fn coverage(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        for (method, template) in self.doc.operations() {
            if EXCLUDED
                .iter()
                .any(|(m, t, _)| *m == method && *t == template)
            {
                continue;
            }
            let seen = self
                .seen
                .get(&(method.clone(), template.clone()))
                .cloned()
                .unwrap_or_default();
            if !seen.iter().any(|s| (200..300).contains(s)) {
                gaps.push(format!("{method} {template}: no successful row"));
            }
            for status in self.doc.statuses(&method, &template) {
                let excused = NOT_PROVOKED
                    .iter()
                    .any(|(m, t, s, _)| *m == method && *t == template && *s == status);
                if status >= 400 && !seen.contains(&status) && !excused {
                    gaps.push(format!("{method} {template}: {status} is never provoked"));
                }
            }
        }
        gaps
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_openapi_document_says() {
    let app = TestApp::new().await;
    let (run_id, run_issue, run_key) = queued_run(&app).await;
    let mut tokens = HashMap::new();
    tokens.insert(Who::Forged, format!("mesa_brd_{}", "0f".repeat(32)));
    tokens.insert(Who::Board, app.board.clone());
    tokens.insert(Who::Ceo, app.agent_key("ceo").await);
    tokens.insert(Who::Engineer, app.agent_key("founding-engineer").await);
    tokens.insert(Who::Run, run_key);
    let server = Server::start(&app).await;

    let reply = send(server.addr, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(reply.status, 200);
    let doc: Value = serde_json::from_str(&reply.body).expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    let mut document = Document::new(doc);
    // The harness checks bodies for real: a page whose items are not a list is refused.
    let bad_page = Reply {
        status: 200,
        content_type: "application/json".to_owned(),
        body: r#"{"items": 3, "next_cursor": null}"#.to_owned(),
    };
    assert!(
        !document
            .check("GET", "/api/v1/issues", &bad_page)
            .is_empty()
    );

    let mut harness = Harness {
        addr: server.addr,
        doc: document,
        tokens,
        saved: BTreeMap::from([
            ("run".to_owned(), run_id),
            ("run_issue".to_owned(), run_issue),
        ]),
        seen: BTreeMap::new(),
        failures: Vec::new(),
    };
    // Every operation refuses a missing token and an unknown one, before anything else.
    // Signed routes (incoming webhooks) take no token at all: their rows are in
    // `incoming_webhook_cases`.
    let operations: Vec<(String, String)> = harness
        .doc
        .operations()
        .into_iter()
        .filter(|(m, t)| !EXCLUDED.iter().any(|(em, et, _)| em == m && et == t))
        .filter(|(m, t)| access_of(&m.parse().unwrap(), t) != Some(Access::Signed))
        .collect();
    for (method, template) in &operations {
        let method = method_name(method);
        let path = placeholder_path(template);
        for (who, code) in [
            (Who::Nobody, "unauthenticated"),
            (Who::Forged, "invalid_token"),
        ] {
            let mut case = req(who, &format!("{method} {path}")).fails(401, code);
            if matches!(method, "POST" | "PUT" | "PATCH") {
                case = case.json(json!({}));
            }
            harness.call(&case).await;
        }
    }

    for case in cases().into_iter().chain(incoming_webhook_cases()) {
        harness.call(&case).await;
    }

    // Every operation that takes a JSON body refuses one that does not parse.
    for (method, template) in &operations {
        if harness.doc.operation(method, template)["requestBody"].is_null() {
            continue;
        }
        let method = method_name(method);
        // Agent-only routes refuse the board before reading the body.
        let who = match access_of(&method.parse().unwrap(), template) {
            Some(Access::AgentOnly) => Who::Run,
            _ => Who::Board,
        };
        let case = req(who, &format!("{method} {}", placeholder_path(template)))
            .raw("{oops")
            .fails(400, "malformed_json");
        harness.call(&case).await;
    }

    let mut problems = harness.failures.clone();
    problems.extend(harness.coverage());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The `&'static str` form of an uppercase method name.
fn method_name(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        other => panic!("unknown method {other}"),
    }
}
