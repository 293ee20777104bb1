//! The dashboard's main flows end to end (issue 5's acceptance): each test sets the scene
//! through the REST API, does the board's part in the browser, and checks the outcome through
//! the API again.
//!
//! - creating an issue from the command palette;
//! - approving a work block's activation that an agent requested;
//! - rolling an agent back to its first revision;
//! - watching a `command` run's log grow live, without a reload.

use std::time::{Duration, Instant};

use fantoccini::key::Key;
use serde_json::{Value, json};

use crate::harness::{Browser, Harness, Server, TOKEN, WAIT};

/// A call to the REST API with `token` (an agent key, say): the status and the JSON body
/// (the text when it is not JSON). Unlike [`Server::api`] it does not insist on success.
async fn api_as(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = reqwest::Client::new()
        .request(method.clone(), server.url(&format!("/api/v1{path}")))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    (status, body)
}

/// The agents of the roster (`GET /agents`).
async fn agents(server: &Server) -> Vec<Value> {
    let page = server.api("GET", "/agents", None).await;
    page["items"].as_array().cloned().expect("a page of agents")
}

/// An agent's revisions, newest first (`GET /agents/{slug}/revisions`).
async fn revisions(server: &Server, slug: &str) -> Vec<Value> {
    let page = server
        .api("GET", &format!("/agents/{slug}/revisions"), None)
        .await;
    page["items"]
        .as_array()
        .cloned()
        .expect("a page of revisions")
}

/// Waits for app.js to have run (it reveals the script-only controls).
async fn wait_app_js(b: &Browser) {
    b.wait_js(
        "app.js to be ready",
        "!document.querySelector('[data-palette-open]').hidden",
    )
    .await;
}

/// Clicks the button `css` names, whose form asks `window.confirm` first (`data-confirm`), and
/// accepts the question, checking that it contains `expected`.
async fn click_and_confirm(b: &Browser, css: &str, expected: &str) {
    b.wait_for(css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    let started = Instant::now();
    let text = loop {
        if let Ok(text) = b.client.get_alert_text().await {
            break text;
        }
        assert!(
            started.elapsed() < WAIT,
            "no confirmation was asked within {WAIT:?} after clicking {css}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        text.contains(expected),
        "the confirmation {text:?} does not say {expected:?}"
    );
    b.client
        .accept_alert()
        .await
        .expect("accept the confirmation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_palette_creates_an_issue_and_opens_it() {
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let b = &h.browser;
    wait_app_js(b).await;
    b.chord(Key::Control, 'k').await;
    b.wait_js(
        "the palette to open",
        "document.getElementById('palette').open \
         && document.activeElement && document.activeElement.id === 'palette-q'",
    )
    .await;
    let title = "Publish the pricing page";
    let input = b.wait_for("#palette-q").await;
    input.send_keys(title).await.expect("type the title");
    // The results of the whole title: their first item is the "Create issue" action.
    let action = serde_json::to_string(&format!("Create issue \u{201c}{title}\u{201d}"))
        .expect("a JSON string");
    b.wait_js(
        "the \"Create issue\" action for the whole title",
        &format!(
            "(() => {{ const first = document.querySelector('#palette-results a, \
             #palette-results button'); return !!first && first.tagName === 'BUTTON' \
             && first.closest('form').getAttribute('action') === '/issues' \
             && first.textContent.trim() === {action}; }})()"
        ),
    )
    .await;
    // Choose it with the keyboard: ↓ selects the first item, Enter presses it.
    input
        .send_keys(&Key::Down.to_string())
        .await
        .expect("press ↓");
    b.wait_js(
        "the action to be selected",
        "!!document.querySelector('#palette-results button.active')",
    )
    .await;
    input
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("press Enter");
    b.wait_js(
        "the new issue's page",
        "/^\\/issues\\/[A-Z][A-Z0-9]*-[0-9]+$/.test(location.pathname) \
         && document.readyState === 'complete'",
    )
    .await;
    let shown = b.wait_for("#issue-title h2.issue-title").await;
    assert_eq!(shown.text().await.unwrap().trim(), title);
    let path = b
        .client
        .current_url()
        .await
        .expect("the URL")
        .path()
        .to_owned();
    let key = path.trim_start_matches("/issues/");
    assert!(key.starts_with("MESA-"), "the issue's key {key:?}");

    let issue = h.server.api("GET", &format!("/issues/{key}"), None).await;
    assert_eq!(issue["issue"]["key"], json!(key), "{issue}");
    assert_eq!(issue["issue"]["title"], json!(title), "{issue}");
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_approves_an_activation_an_agent_requested() {
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let server = &h.server;
    let block = server
        .api(
            "POST",
            "/work-blocks",
            Some(json!({
                "title": "Card payments",
                "goal": "Let customers pay by card.",
            })),
        )
        .await;
    let block_id = block["id"].as_str().expect("the block's id").to_owned();
    assert_eq!(block["status"], json!("proposed"), "{block}");

    // The CEO asks to activate it, with a key of its own: that is an approval for the board.
    let ceo = agents(server)
        .await
        .into_iter()
        .find(|a| a["archetype"] == json!("ceo"))
        .expect("a CEO in the bootstrapped roster");
    let ceo = ceo["slug"].as_str().expect("the CEO's slug").to_owned();
    let minted = server
        .api("POST", &format!("/agents/{ceo}/keys"), Some(json!({})))
        .await;
    let key = minted["key"].as_str().expect("the raw agent key");
    let (status, requested) = api_as(
        server,
        key,
        "PATCH",
        &format!("/work-blocks/{block_id}"),
        Some(json!({ "status": "active" })),
    )
    .await;
    assert_eq!(status, 202, "the CEO's activation request: {requested}");
    let approval = &requested["approval"];
    assert_eq!(
        approval["kind"],
        json!("work_block_activation"),
        "{approval}"
    );
    assert_eq!(approval["status"], json!("pending"), "{approval}");
    let approval_id = approval["id"]
        .as_str()
        .expect("the approval's id")
        .to_owned();

    let b = &h.browser;
    b.goto("/approvals").await;
    b.wait_for(&format!("#ap-{approval_id}")).await;
    b.wait_for(&format!(
        "form[action='/approvals/{approval_id}/resolve'] button[name=decision][value=approve]"
    ))
    .await
    .click()
    .await
    .expect("press Approve");
    // Deciding from the list lands on the approval's page, now approved.
    b.wait_path(&format!("/approvals/{approval_id}")).await;
    b.wait_js(
        "the approval page without decision forms",
        &format!("!document.querySelector(\"form[action='/approvals/{approval_id}/resolve']\")"),
    )
    .await;

    let shown = server
        .api("GET", &format!("/work-blocks/{block_id}"), None)
        .await;
    assert_eq!(
        shown["work_block"]["status"],
        json!("active"),
        "the block after the approval: {shown}"
    );
    let decided = server
        .api("GET", &format!("/approvals/{approval_id}"), None)
        .await;
    assert_eq!(decided["status"], json!("approved"), "{decided}");
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_an_agent_back_restores_its_first_revision() {
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let server = &h.server;
    let agent = agents(server)
        .await
        .into_iter()
        .find(|a| a["archetype"] != json!("ceo"))
        .expect("an agent besides the CEO");
    let slug = agent["slug"].as_str().expect("a slug").to_owned();
    let first = revisions(server, &slug)
        .await
        .into_iter()
        .find(|r| r["number"] == json!(1))
        .expect("revision 1 of a bootstrapped agent");
    let original = first["config"].clone();

    // A second revision with another model and turn limit.
    server
        .api(
            "PATCH",
            &format!("/agents/{slug}"),
            Some(json!({
                "model": "a-smaller-model",
                "max_turns": 7,
                "reason": "trying a smaller model",
            })),
        )
        .await;
    let changed = revisions(server, &slug).await;
    let newest = changed.first().expect("the newest revision");
    assert!(newest["number"].as_i64() >= Some(2), "{newest}");
    assert_eq!(newest["config"]["model"], json!("a-smaller-model"));
    assert_ne!(newest["config"], original);

    let b = &h.browser;
    b.goto(&format!("/agents/{slug}")).await;
    wait_app_js(b).await;
    b.wait_for("nav.tabs a[href$='?tab=revisions']")
        .await
        .click()
        .await
        .expect("open the Revisions tab");
    b.wait_path(&format!("/agents/{slug}?tab=revisions")).await;
    b.wait_for("nav.tabs a[aria-current=page][href$='?tab=revisions']")
        .await;
    let rollback = "form[action$='/rollback']:has(input[name=revision][value='1']) \
                    button[type=submit]";
    let label = b.wait_for(rollback).await.text().await.unwrap();
    assert_eq!(label.trim(), "Roll back to 1");
    click_and_confirm(b, rollback, "Restore revision 1").await;
    b.wait_path(&format!("/agents/{slug}?tab=revisions&done=rolled_back"))
        .await;
    b.wait_for("[role=status].alert-success").await;

    let after = revisions(server, &slug).await;
    let newest = after.first().expect("the newest revision");
    assert_eq!(
        newest["number"].as_i64(),
        Some(i64::try_from(changed.len()).unwrap() + 1),
        "the rollback is a new revision: {newest}"
    );
    assert_eq!(
        newest["config"], original,
        "the configuration after the rollback is revision 1's"
    );
    let now = server.api("GET", &format!("/agents/{slug}"), None).await;
    assert_eq!(now["model"], original["model"], "{now}");
    assert_eq!(now["max_turns"], original["max_turns"], "{now}");
    h.close().await;
}

/// Run output is not journaled; `/ui/events` takes it from the event bus itself and sends it
/// as `run-output-<id>`, which the run page appends to its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_runs_log_grows_live_without_a_reload() {
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let server = &h.server;
    // An agent whose `command` prints a line a second for a few seconds.
    let archetype = agents(server)
        .await
        .into_iter()
        .find(|a| a["archetype"] != json!("ceo"))
        .and_then(|a| a["archetype"].as_str().map(str::to_owned))
        .expect("an archetype besides the CEO's");
    let script = "for i in 1 2 3 4 5 6 7 8; do echo \"narration line $i\"; sleep 1; done; \
                  echo 'the narration is over'";
    server
        .api(
            "POST",
            "/agents",
            Some(json!({
                "slug": "narrator",
                "name": "Narrator",
                "archetype": archetype,
                "runner": "command",
                "command": ["sh", "-c", script],
                "timeout_sec": 120,
            })),
        )
        .await;
    let issue = server.create_issue("Narrate the release").await;
    let key = issue["key"].as_str().expect("the issue's key");
    let run = server
        .api(
            "POST",
            "/agents/narrator/wake",
            Some(json!({ "issue_key": key })),
        )
        .await;
    let run_id = run["id"].as_str().expect("the run's id").to_owned();

    let b = &h.browser;
    b.goto(&format!("/runs/{run_id}")).await;
    b.wait_for("section[aria-labelledby=h-log]").await;
    b.wait_live().await;
    let marker = "set before the later lines, gone if the page reloads";
    b.js(&format!("window.__mesaNoReload = {};", json!(marker)))
        .await;
    let last = "the narration is over";
    let log_text = "document.querySelector('section[aria-labelledby=h-log]').textContent";
    let early = b.js(&format!("return {log_text};")).await;
    let early = early.as_str().unwrap_or_default().to_owned();
    assert!(
        !early.contains(last),
        "the run finished before the page was watching it, so nothing proves the log grows \
         live; the log was: {early:?}"
    );
    let status = server.api("GET", &format!("/runs/{run_id}"), None).await;
    assert!(
        matches!(status["status"].as_str(), Some("queued" | "running")),
        "the run is not in flight any more: {status}"
    );

    // Poll until the last line shows. The script takes about nine seconds; the guards: a
    // minute in all, or five seconds after the run has finished (its output is all out then).
    let condition = format!("{log_text}.includes({})", json!(last));
    let started = Instant::now();
    let mut finished_at: Option<Instant> = None;
    let mut checked = Instant::now();
    while b.js(&format!("return !!({condition});")).await != json!(true) {
        if finished_at.is_none() && checked.elapsed() > Duration::from_millis(500) {
            checked = Instant::now();
            let run = server.api("GET", &format!("/runs/{run_id}"), None).await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                finished_at = Some(Instant::now());
            }
        }
        let late = finished_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5));
        if late || started.elapsed() > Duration::from_secs(60) {
            let shown = b.js(&format!("return {log_text};")).await;
            let run = server.api("GET", &format!("/runs/{run_id}"), None).await;
            let (_, stored) =
                api_as(server, TOKEN, "GET", &format!("/runs/{run_id}/log"), None).await;
            panic!(
                "the run's page did not show its output live: {last:?} is not in the page's \
                 log (run status {status}, stored log {stored}); no `run-output-{run_id}` \
                 event reached the page over /ui/events\npage's log section: {shown}",
                status = run["status"],
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        b.js("return window.__mesaNoReload;").await,
        json!(marker),
        "the page was reloaded"
    );
    let shown = b.js(&format!("return {log_text};")).await;
    let shown = shown.as_str().unwrap_or_default();
    for i in 1..=8 {
        let line = format!("narration line {i}");
        assert!(shown.contains(&line), "{line:?} is missing from {shown:?}");
    }
    // The status card follows the run's end live as well.
    b.wait_js_for(
        "the run's status to show it succeeded",
        "document.querySelector('#run-status h2').textContent.toLowerCase().includes('succeeded')",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        b.js("return window.__mesaNoReload;").await,
        json!(marker),
        "the page was reloaded"
    );
    let finished = server.api("GET", &format!("/runs/{run_id}"), None).await;
    assert_eq!(finished["status"], json!("succeeded"), "{finished}");
    h.close().await;
}
