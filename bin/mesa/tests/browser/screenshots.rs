//! Screenshots of every dashboard page at 1280 px and 390 px (issue 5), for `cargo xtask
//! screenshots`, which runs this ignored test with `MESA_SCREENSHOTS_DIR` set:
//!
//! ```text
//! cargo test -p mesa --test browser -- --ignored --exact screenshots::screenshots --nocapture
//! ```
//!
//! The server gets a little data first (issues, and a `command` run so a run detail exists).
//! The pages are the palette's "Go to" list (the `PAGES` of mesa-http's palette), plus
//! `/login` and one issue, agent and run detail. A page that does not answer 200 yet is skipped
//! with a notice. Files: `<dir>/<page>-<width>.png`; full-page height, capped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{self, Browser, Driver, Server, TOKEN};

const WIDTHS: [(u32, u32); 2] = [(1280, 900), (390, 844)];
/// The tallest screenshot, in CSS pixels.
const MAX_HEIGHT: u32 = 6000;

fn out_dir() -> PathBuf {
    std::env::var_os("MESA_SCREENSHOTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    )
}

/// Issues, and an agent switched to the `command` runner with one assigned issue, so that a
/// run exists. Returns (an issue key, an agent slug, a run id), each when found.
async fn seed(server: &Server) -> (Option<String>, Option<String>, Option<String>) {
    let mut key = None;
    for title in [
        "Write the onboarding guide",
        "Fix the flaky login redirect",
        "Add CSV export to the costs page",
        "Document the backup procedure",
    ] {
        let issue = server.create_issue(title).await;
        key = key.or_else(|| issue["key"].as_str().map(str::to_owned));
    }
    let agents = server.api("GET", "/agents", None).await;
    let list = agents["items"].as_array().or(agents.as_array()).cloned();
    let slug = list
        .unwrap_or_default()
        .iter()
        .find_map(|a| a["slug"].as_str().map(str::to_owned));
    let mut run = None;
    if let Some(slug) = &slug {
        server
            .api(
                "PATCH",
                &format!("/agents/{slug}"),
                Some(json!({
                    "runner": "command",
                    "command": ["sh", "-c", "echo 'reading the issue'; echo 'writing the guide'; echo done"],
                    "timeout_sec": 60,
                })),
            )
            .await;
        let issue = server
            .api(
                "POST",
                "/issues",
                Some(json!({ "title": "Draft the release notes", "assignee_slug": slug })),
            )
            .await;
        let issue_key = issue["key"].as_str().unwrap_or_default().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while run.is_none() && Instant::now() < deadline {
            let runs = server
                .api("GET", &format!("/runs?issue={issue_key}"), None)
                .await;
            run = runs["items"]
                .as_array()
                .and_then(|items| items.first())
                .and_then(|r| r["id"].as_str())
                .map(str::to_owned);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let it finish, so its log is complete (a guard only; a running run is fine too).
        if let Some(id) = &run {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let r = server.api("GET", &format!("/runs/{id}"), None).await;
                if !matches!(r["status"].as_str(), Some("queued" | "running")) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    (key, slug, run)
}

/// The HTTP status of `path` for this browser (its session cookie included).
async fn status(b: &Browser, path: &str) -> u64 {
    let script = format!(
        "const done = arguments[arguments.length - 1];\
         fetch({}, {{ credentials: 'same-origin', redirect: 'manual' }})\
         .then(r => done(r.status)).catch(() => done(0));",
        json!(path)
    );
    b.client
        .execute_async(&script, Vec::new())
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// The page's full height in CSS pixels: the document's, or that of the scrolling container
/// around `<main>` (the layout scrolls its main column, not the document, on wide screens).
const FULL_HEIGHT: &str = "
    let h = document.documentElement.scrollHeight;
    for (let el = document.getElementById('main'); el && el !== document.documentElement; el = el.parentElement) {
        const o = getComputedStyle(el).overflowY;
        if ((o === 'auto' || o === 'scroll') && el.scrollHeight > el.clientHeight) {
            h = Math.max(h, el.getBoundingClientRect().top + el.scrollHeight
                + (document.documentElement.clientHeight - el.getBoundingClientRect().bottom));
        }
    }
    return Math.ceil(h);";

/// Sets the viewport (not the window, which is taller by the browser's own frame) to
/// `width`×`height` CSS pixels: sets the window, reads the viewport, corrects once.
async fn set_viewport(b: &Browser, width: u32, height: u32) {
    b.client.set_window_size(width, height).await.unwrap();
    let inner = b
        .js("return window.innerHeight;")
        .await
        .as_i64()
        .unwrap_or(i64::from(height));
    let window = i64::from(height) + (i64::from(height) - inner);
    if let Ok(window) = u32::try_from(window)
        && window != height
    {
        b.client.set_window_size(width, window).await.unwrap();
    }
}

/// Waits two animation frames, so the layout at a new size is painted.
async fn painted(b: &Browser) {
    let _ = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            Vec::new(),
        )
        .await;
}

/// Loads `path` at `width`, grows the viewport to the page's height, and saves a PNG.
async fn shoot(b: &Browser, path: &str, name: &str, width: u32, height: u32) -> PathBuf {
    set_viewport(b, width, height).await;
    b.goto(path).await;
    b.wait_js("the page to load", "document.readyState === 'complete'")
        .await;
    painted(b).await;
    let full = b
        .js(FULL_HEIGHT)
        .await
        .as_u64()
        .and_then(|h| u32::try_from(h).ok())
        .unwrap_or(height);
    let tall = full.clamp(height, MAX_HEIGHT);
    if tall != height {
        set_viewport(b, width, tall).await;
        painted(b).await;
    }
    let png = b.screenshot().await;
    let file = out_dir().join(format!("{name}-{width}.png"));
    std::fs::write(&file, png).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes screenshots: run by `cargo xtask screenshots`"]
async fn screenshots() {
    // Asked for on purpose: a missing browser is an error here, CI or not.
    let tools = harness::tools().expect(
        "screenshots need chromium and chromedriver (apt-get install -y chromium chromium-driver)",
    );
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let server = Server::start();
    let (issue, agent, run) = seed(&server).await;
    let driver = Driver::start(&tools);
    let b = Browser::open(&tools, &driver, &server).await;

    let mut written = Vec::new();
    let mut skipped = Vec::new();
    // Signed out first: the login page.
    for (width, height) in WIDTHS {
        written.push(shoot(&b, "/login", "login", width, height).await);
    }
    set_viewport(&b, 1280, 900).await;
    b.login(TOKEN).await;

    // The palette lists every page it can jump to (mesa-http's `PAGES`).
    b.goto("/palette?q=").await;
    let pages = b
        .js("return [...document.querySelectorAll('a.palette-item')]\
             .map(a => [a.getAttribute('href'), a.firstChild.textContent.trim()]);")
        .await;
    let mut targets: Vec<(String, String)> = pages
        .as_array()
        .expect("the palette's pages")
        .iter()
        .filter_map(|p| {
            let path = p[0].as_str()?.to_owned();
            let name = p[1].as_str()?.to_lowercase().replace(' ', "-");
            Some((name, path))
        })
        .collect();
    assert!(
        targets.iter().any(|(_, p)| p == "/"),
        "the palette lists the dashboard: {pages}"
    );
    let details = [
        ("issue-detail", issue.map(|k| format!("/issues/{k}"))),
        ("agent-detail", agent.map(|s| format!("/agents/{s}"))),
        ("run-detail", run.map(|id| format!("/runs/{id}"))),
    ];
    for (name, path) in details {
        match path {
            Some(path) => targets.push((name.to_owned(), path)),
            None => skipped.push(format!("{name}: no such record in the seeded data")),
        }
    }

    for (name, path) in &targets {
        let code = status(&b, path).await;
        if code != 200 {
            eprintln!("NOTICE: skipping {name} ({path}): HTTP {code} (not built yet?)");
            skipped.push(format!("{name} ({path}): HTTP {code}"));
            continue;
        }
        for (width, height) in WIDTHS {
            written.push(shoot(&b, path, name, width, height).await);
        }
    }
    b.close().await;

    eprintln!("screenshots in {}:", dir.display());
    for file in &written {
        eprintln!(
            "  {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    if !skipped.is_empty() {
        eprintln!("skipped:");
        for s in &skipped {
            eprintln!("  {s}");
        }
    }
    assert!(written.len() >= 4, "too few screenshots: {written:?}");
}
