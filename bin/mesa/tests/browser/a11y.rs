//! axe-core (npm `axe-core`, its `axe.min.js` named by `MESA_AXE_JS`) in the browser: no
//! violation of impact serious or critical on any main page, in both themes.
//!
//! - [`axe_finds_no_serious_violation_on_the_login_page_and_the_dashboard`]: the login page
//!   (with an error too), the dashboard and the open palette, at desktop and phone widths;
//! - [`axe_finds_no_serious_violation_on_the_main_pages`]: every main page and its tabs on
//!   data seeded through the REST API ([`seed`]) at 1280 px, forms refused with their field
//!   errors ([`check_refused_forms`]), a toast and the shortcuts dialog, and at 390 px the
//!   dashboard, the issues and the menu drawer ([`check_phone`]): in one browser session on
//!   one server, in the light and the dark theme.
//!
//! Every violation is reported with its rule, impact, help link, the page's URL and the CSS
//! selectors of the offending nodes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{self, Browser, Harness, Server};

/// Injects axe-core into the current page (once per page load).
async fn inject(b: &Browser, axe: &str) {
    let loaded = b
        .js(&format!(
            "if (!window.axe) {{\n{axe}\n;}}\nreturn typeof window.axe === 'object' \
             && typeof window.axe.run === 'function';"
        ))
        .await;
    assert_eq!(
        loaded,
        Value::Bool(true),
        "axe-core did not load into the page"
    );
}

/// Waits until no animation that ends is running: colours are measured mid-fade otherwise (a
/// toast fading in, a row flashing after a live update), which is not what anyone reads.
/// Endless ones (the pulsing dot of a running agent) only move decorative dots.
async fn settled(b: &Browser) {
    b.wait_js(
        "the page's animations to finish",
        "document.getAnimations().every(a => a.playState !== 'running' \
         || a.effect.getComputedTiming().iterations === Infinity)",
    )
    .await;
}

/// The most offending nodes printed per violation (their count is always printed).
const MAX_NODES: usize = 12;

/// Runs `axe.run()` on the whole document and returns the serious and critical violations,
/// one readable entry each: rule, impact, help, and the offending nodes' selectors and markup.
async fn serious_violations(b: &Browser, axe: &str) -> Vec<String> {
    settled(b).await;
    inject(b, axe).await;
    let script = r"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] })
          .then(r => done(JSON.stringify(r.violations)))
          .catch(e => done(JSON.stringify({ error: String(e) })));
    ";
    let out = b
        .client
        .execute_async(script, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("axe.run failed: {e}"));
    let text = out.as_str().expect("axe.run's result as JSON text");
    let violations: Value = serde_json::from_str(text).expect("axe.run's JSON");
    if let Some(error) = violations.get("error") {
        panic!("axe.run failed in the page: {error}");
    }
    violations
        .as_array()
        .expect("a list of violations")
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(describe)
        .collect()
}

/// One violation as text: `rule (impact): help`, the help link, then a line per node with its
/// target selectors, the start of its markup and axe's summary of what to fix.
fn describe(v: &Value) -> String {
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let mut lines: Vec<String> = nodes
        .iter()
        .take(MAX_NODES)
        .map(|n| {
            let html: String = n["html"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(160)
                .collect();
            let summary = n["failureSummary"].as_str().unwrap_or_default();
            let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
            let summary: String = summary.chars().take(240).collect();
            format!("      {}: {html}\n        {summary}", n["target"])
        })
        .collect();
    if nodes.len() > MAX_NODES {
        lines.push(format!(
            "      … and {} more nodes",
            nodes.len() - MAX_NODES
        ));
    }
    format!(
        "  {} ({}): {} [{} node(s)]\n    {}\n{}",
        v["id"].as_str().unwrap_or("?"),
        v["impact"].as_str().unwrap_or("?"),
        v["help"].as_str().unwrap_or_default(),
        nodes.len(),
        v["helpUrl"].as_str().unwrap_or_default(),
        lines.join("\n")
    )
}

/// Checks the current page and records what failed under `label` and the page's URL.
async fn check(b: &Browser, axe: &str, label: &str, failures: &mut Vec<String>) {
    let found = serious_violations(b, axe).await;
    if !found.is_empty() {
        let url = b
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
        failures.push(format!("{label} at {url}:\n{}", found.join("\n")));
    }
}

async fn set_theme(b: &Browser, theme: &str) {
    let t = serde_json::json!(theme);
    b.js(&format!(
        "localStorage.setItem('mesa-theme', {t}); \
         document.cookie = 'mesa-theme=' + {t} + '; path=/; SameSite=Strict'; return true;"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_serious_violation_on_the_login_page_and_the_dashboard() {
    if harness::tools().is_none() {
        return;
    }
    let Some(axe) = harness::axe_source() else {
        return;
    };
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let b = &h.browser;
    let mut failures = Vec::new();
    // Some data on the dashboard, so its lists are not all empty states.
    for title in ["Write the onboarding guide", "Fix the flaky login redirect"] {
        h.server.create_issue(title).await;
    }
    for (width, height) in [(1280, 900), (390, 844)] {
        b.client.set_window_size(width, height).await.unwrap();
        for theme in ["light", "dark"] {
            set_theme(b, theme).await;
            b.goto("/").await;
            b.wait_for("#dashboard").await;
            b.wait_js(
                "the theme",
                &format!("document.documentElement.dataset.theme === '{theme}'"),
            )
            .await;
            check(
                b,
                &axe,
                &format!("dashboard, {theme}, {width} px"),
                &mut failures,
            )
            .await;
            // The palette, open with results.
            b.wait_js(
                "app.js to be ready",
                "!document.querySelector('[data-palette-open]').hidden",
            )
            .await;
            b.wait_for("[data-palette-open]").await.click().await.ok();
            b.wait_js("the palette", "document.getElementById('palette').open")
                .await;
            b.wait_for("#palette-q")
                .await
                .send_keys("on")
                .await
                .unwrap();
            b.wait_js(
                "palette results",
                "document.querySelectorAll('#palette-results a').length > 0",
            )
            .await;
            check(
                b,
                &axe,
                &format!("palette, {theme}, {width} px"),
                &mut failures,
            )
            .await;
        }
    }
    // The login page, signed out, in both themes.
    let other = Browser::open(&h.tools, &h.driver, &h.server).await;
    for theme in ["light", "dark"] {
        other.goto("/login").await;
        set_theme(&other, theme).await;
        other.goto("/login").await;
        other.wait_for("input#token").await;
        check(&other, &axe, &format!("login, {theme}"), &mut failures).await;
    }
    // And with an error shown.
    let field = other.wait_for("input#token").await;
    field.send_keys("mesa_brd_wrong").await.unwrap();
    other
        .wait_for("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    other.wait_for("[role=alert]").await;
    check(&other, &axe, "login with an error", &mut failures).await;
    other.close().await;
    h.close().await;
    assert!(
        failures.is_empty(),
        "axe-core found serious or critical violations:\n{}",
        failures.join("\n")
    );
}

/// What [`seed`] made, for the detail pages.
struct Fixture {
    /// An issue with a description, labels, stages, a child and comments.
    issue: String,
    /// The agent with a `command` runner (revisions, runs, keys and a reflection).
    agent: String,
    /// Its succeeded run, whose log is stored.
    run: String,
    /// A work block, activated by an approved approval.
    block: String,
    /// A pending approval (an archetype patch).
    approval: String,
    /// An archetype with a pending patch.
    archetype: String,
    /// A wiki page with two revisions.
    wiki: String,
}

/// Reads `field` of a JSON answer as a string.
fn text(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
        .to_owned()
}

/// A call to the REST API with an agent's key; panics on a non-2xx answer.
async fn api_with(server: &Server, key: &str, method: &str, path: &str, body: Value) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let response = reqwest::Client::new()
        .request(method.clone(), server.url(&format!("/api/v1{path}")))
        .bearer_auth(key)
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Waits until run `id` has finished (its log is then stored).
async fn finished(server: &Server, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let run = server.api("GET", &format!("/runs/{id}"), None).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id} did not finish: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Content for every main page, through the REST API: labels, issues (priorities, stages,
/// a parent and its children, comments), a work block under an apex block, a `command` agent
/// with a finished run (stdout and stderr) and a failed one, a key, a reflection and reported
/// usage, a budget, an approved activation and a pending archetype patch, a directive, a
/// skill, and a wiki page edited once.
async fn seed(server: &Server) -> Fixture {
    let block = seed_plan(server).await;
    let issue = seed_issues(server, &block).await;
    let team = seed_runs(server, &issue).await;
    seed_usage(server, &team.agent).await;
    let approval = seed_governance(server, &team, &block).await;
    let wiki = seed_wiki(server).await;
    Fixture {
        issue,
        agent: team.agent,
        run: team.run,
        block,
        approval,
        archetype: team.archetype,
        wiki,
    }
}

/// An apex block and a work block under it; returns the work block's id.
async fn seed_plan(server: &Server) -> String {
    let apex = server
        .api(
            "POST",
            "/apex-blocks",
            Some(json!({ "title": "Grow paying customers", "goal": "Double them this year." })),
        )
        .await;
    let block = server
        .api(
            "POST",
            "/work-blocks",
            Some(json!({
                "title": "Card payments",
                "goal": "Let customers pay by **card**.",
                "acceptance_criteria": "- A test payment succeeds\n- Refunds work",
                "north_star_metric": "paid orders per week",
                "north_star_target": 40.0,
                "apex_block_id": text(&apex, "id"),
            })),
        )
        .await;
    text(&block, "id")
}

/// Labels, an issue with a description, labels, stages and comments in `block`, and three
/// children with other priorities; returns the parent's key.
async fn seed_issues(server: &Server, block: &str) -> String {
    let mut labels = Vec::new();
    for (name, color) in [
        ("frontend", "#2563eb"),
        ("bug", "#dc2626"),
        ("docs", "#16a34a"),
    ] {
        let label = server
            .api(
                "POST",
                "/labels",
                Some(json!({ "name": name, "color": color })),
            )
            .await;
        labels.push(text(&label, "id"));
    }
    let parent = server
        .api(
            "POST",
            "/issues",
            Some(json!({
                "title": "Write the onboarding guide",
                "description": "## Scope\n\nCover *sign-up*, the first issue and `mesa init`.\n\n\
                                - step one\n- step two\n\n```sh\nmesa serve\n```",
                "priority": 2,
                "labels": [labels[0], labels[2]],
                "work_block_id": block,
                "stages": [
                    { "title": "Outline", "status": "done" },
                    { "title": "Draft" },
                    { "title": "Review" },
                ],
            })),
        )
        .await;
    let issue = text(&parent, "key");
    for (title, priority, label) in [
        ("Fix the flaky login redirect", 1, 1),
        ("Add CSV export to the costs page", 3, 0),
        ("Document the backup procedure", 4, 2),
    ] {
        server
            .api(
                "POST",
                "/issues",
                Some(json!({
                    "title": title,
                    "priority": priority,
                    "labels": [labels[label]],
                    "parent_key": issue,
                })),
            )
            .await;
    }
    for body in [
        "Started on the outline; see the wiki page for the structure.",
        "Please include a screenshot of the dashboard.",
    ] {
        server
            .api(
                "POST",
                &format!("/issues/{issue}/comments"),
                Some(json!({ "body": body })),
            )
            .await;
    }
    issue
}

/// Who [`seed_runs`] found and made.
struct Team {
    /// The CEO's slug.
    ceo: String,
    /// An archetype besides the CEO's (the new agent's).
    archetype: String,
    /// The `command` agent's slug.
    agent: String,
    /// Its succeeded run.
    run: String,
}

/// A `command` agent reporting to the CEO, its succeeded run on `issue`, a second revision
/// and a failed run.
async fn seed_runs(server: &Server, issue: &str) -> Team {
    let agents = server.api("GET", "/agents", None).await;
    let roster = agents["items"]
        .as_array()
        .cloned()
        .expect("a page of agents");
    let ceo = roster
        .iter()
        .find(|a| a["archetype"] == json!("ceo"))
        .map(|a| text(a, "slug"))
        .expect("a CEO in the bootstrapped roster");
    let archetype = roster
        .iter()
        .find(|a| a["archetype"] != json!("ceo"))
        .map(|a| text(a, "archetype"))
        .expect("an archetype besides the CEO's");
    // A run with stdout and stderr (the command also writes a file).
    let script = "echo 'reading the issue'; echo 'writing notes.md'; \
                  printf '# Notes\\n\\nfn main() {}\\n' > notes.md; \
                  echo 'a warning on stderr' >&2; echo done";
    let agent = "scribe";
    server
        .api(
            "POST",
            "/agents",
            Some(json!({
                "slug": agent,
                "name": "Scribe",
                "archetype": archetype,
                "runner": "command",
                "command": ["sh", "-c", script],
                "timeout_sec": 60,
                "reports_to": ceo,
            })),
        )
        .await;
    let run = server
        .api(
            "POST",
            &format!("/agents/{agent}/wake"),
            Some(json!({ "issue_key": issue })),
        )
        .await;
    let run = text(&run, "id");
    finished(server, &run).await;
    // A second revision, and a run that fails.
    server
        .api(
            "PATCH",
            &format!("/agents/{agent}"),
            Some(json!({
                "command": ["sh", "-c", "echo 'giving up' >&2; exit 3"],
                "reason": "a failing script for the failed-run styles",
            })),
        )
        .await;
    let failing = server
        .api(
            "POST",
            &format!("/agents/{agent}/wake"),
            Some(json!({ "issue_key": issue })),
        )
        .await;
    finished(server, &text(&failing, "id")).await;
    Team {
        ceo,
        archetype,
        agent: agent.to_owned(),
        run,
    }
}

/// With a key of `agent`: usage (a cost) and a reflection; and the org's budget.
async fn seed_usage(server: &Server, agent: &str) {
    let minted = server
        .api("POST", &format!("/agents/{agent}/keys"), Some(json!({})))
        .await;
    let agent_key = text(&minted, "key");
    api_with(
        server,
        &agent_key,
        "POST",
        "/usage/report",
        json!({ "input_tokens": 12000, "output_tokens": 3400, "cost_usd": 0.42 }),
    )
    .await;
    api_with(
        server,
        &agent_key,
        "POST",
        "/reflections",
        json!({ "body": "Reading the wiki first saved a round trip.", "outcome": "succeeded" }),
    )
    .await;
    server
        .api(
            "PUT",
            "/budget",
            Some(json!({ "daily_token_limit": 2_000_000, "daily_cost_limit_usd": 25.0 })),
        )
        .await;
}

/// The CEO's activation request for `block`, approved by the board; a pending archetype patch
/// (an approval too), a directive and a skill. Returns the pending approval's id.
async fn seed_governance(server: &Server, team: &Team, block: &str) -> String {
    let ceo = &team.ceo;
    let archetype = &team.archetype;
    let minted = server
        .api("POST", &format!("/agents/{ceo}/keys"), Some(json!({})))
        .await;
    let requested = api_with(
        server,
        &text(&minted, "key"),
        "PATCH",
        &format!("/work-blocks/{block}"),
        json!({ "status": "active" }),
    )
    .await;
    let activation = text(&requested["approval"], "id");
    server
        .api(
            "POST",
            &format!("/approvals/{activation}/resolve"),
            Some(json!({ "decision": "approve", "comment": "Go ahead." })),
        )
        .await;

    let patch = server
        .api(
            "POST",
            "/archetype-patches",
            Some(json!({
                "archetype_slug": archetype,
                "proposed_body": "# Role\n\nWrite clear, short documents.\n\n\
                                  Ask before large changes.",
                "rationale": "Shorter instructions.",
            })),
        )
        .await;
    let approvals = server.api("GET", "/approvals?status=pending", None).await;
    let approval = approvals["items"]
        .as_array()
        .and_then(|items| items.first())
        .map(|a| text(a, "id"))
        .unwrap_or_else(|| panic!("a pending approval for the patch {patch}"));
    server
        .api(
            "POST",
            "/directives",
            Some(json!({ "text": "Keep every page usable with the keyboard alone." })),
        )
        .await;
    server
        .api(
            "POST",
            "/skills",
            Some(json!({
                "slug": "read-the-wiki",
                "title": "Read the wiki first",
                "body": "Search the wiki before asking.",
                "tags": ["docs"],
                "source": "board",
            })),
        )
        .await;
    approval
}

/// A wiki page with a table, a quote and a link, edited once; returns its slug.
async fn seed_wiki(server: &Server) -> String {
    let page = server
        .api(
            "POST",
            "/wiki",
            Some(json!({
                "title": "Onboarding",
                "content": "# Onboarding\n\nStart with [the issues](/issues).\n\n\
                            | Step | Who |\n| --- | --- |\n| Sign up | board |\n\n\
                            > Note: keys are shown once.",
            })),
        )
        .await;
    let wiki = text(&page, "slug");
    server
        .api(
            "PATCH",
            &format!("/wiki/{wiki}"),
            Some(json!({
                "content": "# Onboarding\n\nStart with [the issues](/issues).\n\n\
                            Then read the runs.",
            })),
        )
        .await;
    wiki
}

/// The pages axe checks, as `(label, path)`: every main page and its tabs, on [`seed`]'s data.
fn pages(f: &Fixture) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = [
        ("dashboard", "/".to_owned()),
        ("issues list", "/issues".to_owned()),
        ("issues board", "/issues?view=board".to_owned()),
        (
            "issues filtered",
            "/issues?status=todo&priority=2".to_owned(),
        ),
        ("issue detail", format!("/issues/{}", f.issue)),
        ("issue edit", format!("/issues/{}/edit", f.issue)),
        ("new issue", "/issues/new".to_owned()),
        ("agents", "/agents".to_owned()),
        ("hire form", "/agents/new".to_owned()),
        ("runs", "/runs".to_owned()),
        ("run detail", format!("/runs/{}", f.run)),
        ("run raw log", format!("/runs/{}?log=raw", f.run)),
        ("work blocks", "/blocks".to_owned()),
        ("work block", format!("/blocks/{}", f.block)),
        ("strategy", "/strategy".to_owned()),
        ("approvals", "/approvals".to_owned()),
        ("approval", format!("/approvals/{}", f.approval)),
        ("wiki", "/wiki".to_owned()),
        ("wiki page", format!("/wiki/{}", f.wiki)),
        ("wiki edit", format!("/wiki/{}/edit", f.wiki)),
        ("wiki new", "/wiki/new".to_owned()),
        ("wiki revisions", format!("/wiki/{}/revisions", f.wiki)),
        ("activity", "/activity".to_owned()),
        ("costs", "/costs".to_owned()),
        ("settings", "/settings".to_owned()),
        (
            "governance archetype",
            format!("/governance/archetypes/{}", f.archetype),
        ),
    ]
    .into_iter()
    .map(|(label, path)| (label.to_owned(), path))
    .collect();
    for tab in [
        "overview",
        "config",
        "revisions",
        "runs",
        "reflections",
        "keys",
    ] {
        pages.push((
            format!("agent {tab}"),
            format!("/agents/{}?tab={tab}", f.agent),
        ));
    }
    pages.push(("governance archetypes".to_owned(), "/governance".to_owned()));
    for tab in ["patches", "directives", "audits", "skills"] {
        pages.push((
            format!("governance {tab}"),
            format!("/governance?tab={tab}"),
        ));
    }
    pages
}

/// The sidebar's links that [`pages`] does not list (a page added later is checked too).
async fn sidebar_pages(b: &Browser, listed: &[(String, String)]) -> Vec<(String, String)> {
    let links = b
        .js(
            "return [...document.querySelectorAll('nav#sidebar a.nav-link')]\
             .map(a => [a.textContent.trim(), a.getAttribute('href')]);",
        )
        .await;
    links
        .as_array()
        .expect("the sidebar's links")
        .iter()
        .filter_map(|l| Some((l[0].as_str()?.to_owned(), l[1].as_str()?.to_owned())))
        .filter(|(_, href)| !listed.iter().any(|(_, path)| path == href))
        .collect()
}

/// The forms [`check_refused_forms`] submits blank, as `(label, page, form selector)`: each
/// answer shows its field errors or an alert.
fn forms(f: &Fixture) -> Vec<(&'static str, String, String)> {
    let issue = &f.issue;
    let agent = &f.agent;
    vec![
        (
            "hire form refused",
            "/agents/new".to_owned(),
            "form[action='/agents']".to_owned(),
        ),
        (
            "new issue refused",
            "/issues/new".to_owned(),
            "form[action='/issues']".to_owned(),
        ),
        (
            "empty comment refused",
            format!("/issues/{issue}"),
            format!("form[action='/issues/{issue}/comments']"),
        ),
        (
            "agent config refused",
            format!("/agents/{agent}?tab=config"),
            format!("form[action='/agents/{agent}/config']"),
        ),
        (
            "new wiki page refused",
            "/wiki/new".to_owned(),
            "form[action='/wiki']".to_owned(),
        ),
        (
            "new block refused",
            "/blocks".to_owned(),
            "form[action='/blocks']".to_owned(),
        ),
        (
            "new apex refused",
            "/strategy".to_owned(),
            "form[action='/strategy/apex']".to_owned(),
        ),
        (
            "new directive refused",
            "/governance?tab=directives".to_owned(),
            "form[action='/governance/directives']".to_owned(),
        ),
    ]
}

/// Waits until app.js has run on the current page in `theme` (it adds attributes axe looks
/// at, and applies the theme).
async fn ready(b: &Browser, what: &str, theme: &str) {
    b.wait_js(
        &format!("{what} loaded in the {theme} theme, app.js ready"),
        &format!(
            "!window.__mesaA11yOld && document.readyState === 'complete' \
             && document.documentElement.dataset.theme === '{theme}' \
             && !document.querySelector('[data-palette-open]').hidden"
        ),
    )
    .await;
}

/// Loads `path` in `theme`.
async fn load(b: &Browser, path: &str, theme: &str) {
    b.goto(path).await;
    ready(b, path, theme).await;
}

/// Submits each form of [`forms`] with its text fields emptied (and numbers negative),
/// bypassing the browser's own validation so the server answers with its errors, and checks
/// the answer.
async fn check_refused_forms(
    b: &Browser,
    axe: &str,
    fixture: &Fixture,
    theme: &str,
    failures: &mut Vec<String>,
) -> usize {
    let mut checked = 0;
    for (label, path, form) in forms(fixture) {
        load(b, &path, theme).await;
        let submitted = b
            .js(&format!(
                "const f = document.querySelector({});\
                 if (!f) return false;\
                 f.noValidate = true;\
                 f.querySelectorAll('input:not([type=hidden]):not([type=checkbox])\
                   :not([type=radio]), textarea')\
                  .forEach(i => {{ i.value = i.type === 'number' ? '-1' : ''; }});\
                 window.__mesaA11yOld = true;\
                 f.requestSubmit();\
                 return true;",
                json!(form)
            ))
            .await;
        assert_eq!(submitted, json!(true), "no form {form} on {path}");
        ready(b, &format!("the answer to {form}"), theme).await;
        b.wait_js(
            &format!("an error shown after submitting {form} blank"),
            "document.querySelectorAll('.field-error, [role=alert]').length > 0",
        )
        .await;
        check(b, axe, &format!("{label}, {theme}"), failures).await;
        checked += 1;
    }
    checked
}

/// What only shows after an action: a toast (an issue created through the API while the
/// dashboard is open) and the keyboard-shortcuts dialog.
async fn check_overlays(
    b: &Browser,
    server: &Server,
    axe: &str,
    theme: &str,
    failures: &mut Vec<String>,
) {
    load(b, "/", theme).await;
    b.wait_live().await;
    let issue = server
        .create_issue(&format!("Announced in the {theme} theme"))
        .await;
    let key = text(&issue, "key");
    b.wait_js(
        "the toast of the new issue",
        &format!(
            "[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes({}) \
             && t.querySelector('[data-dismiss]'))",
            json!(key)
        ),
    )
    .await;
    check(
        b,
        axe,
        &format!("dashboard with a toast, {theme}"),
        failures,
    )
    .await;
    b.wait_for("[data-shortcuts-open]")
        .await
        .click()
        .await
        .expect("open the shortcuts");
    b.wait_js(
        "the shortcuts dialog",
        "document.getElementById('shortcuts').open",
    )
    .await;
    check(b, axe, &format!("shortcuts dialog, {theme}"), failures).await;
}

/// At phone width: the dashboard and the issues (list, board, detail), and the menu drawer.
async fn check_phone(
    b: &Browser,
    axe: &str,
    fixture: &Fixture,
    theme: &str,
    failures: &mut Vec<String>,
) -> usize {
    b.client.set_window_size(390, 844).await.unwrap();
    let issue = format!("/issues/{}", fixture.issue);
    let mut checked = 0;
    for (label, path) in [
        ("dashboard", "/"),
        ("issues list", "/issues"),
        ("issues board", "/issues?view=board"),
        ("issue detail", issue.as_str()),
    ] {
        load(b, path, theme).await;
        check(b, axe, &format!("{label}, {theme}, 390 px"), failures).await;
        checked += 1;
    }
    load(b, "/", theme).await;
    b.wait_for("[data-nav-toggle]")
        .await
        .click()
        .await
        .expect("open the menu");
    b.wait_js(
        "the menu drawer",
        "document.documentElement.classList.contains('nav-open')",
    )
    .await;
    check(b, axe, &format!("menu drawer, {theme}, 390 px"), failures).await;
    b.client.set_window_size(1280, 900).await.unwrap();
    checked + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_serious_violation_on_the_main_pages() {
    if harness::tools().is_none() {
        return;
    }
    let Some(axe) = harness::axe_source() else {
        return;
    };
    let Some(h) = Harness::signed_in().await else {
        return;
    };
    let fixture = seed(&h.server).await;
    let b = &h.browser;
    let mut pages = pages(&fixture);
    let extra = sidebar_pages(b, &pages).await;
    pages.extend(extra);
    let mut failures = Vec::new();
    let mut checked = 0;
    for theme in ["light", "dark"] {
        set_theme(b, theme).await;
        for (label, path) in &pages {
            load(b, path, theme).await;
            check(b, &axe, &format!("{label}, {theme}"), &mut failures).await;
            checked += 1;
        }
        checked += check_refused_forms(b, &axe, &fixture, theme, &mut failures).await;
        check_overlays(b, &h.server, &axe, theme, &mut failures).await;
        checked += 2;
        checked += check_phone(b, &axe, &fixture, theme, &mut failures).await;
    }
    h.close().await;
    eprintln!("axe-core checked {checked} page views");
    assert!(
        failures.is_empty(),
        "axe-core found serious or critical violations in {} of {checked} page views:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
