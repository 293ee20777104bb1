//! axe-core (npm `axe-core`, its `axe.min.js` named by `MESA_AXE_JS`) in the browser: no
//! violation of impact serious or critical on the login page and the dashboard, in both themes
//! and at desktop and phone widths.

use serde_json::Value;

use crate::harness::{self, Browser, Harness};

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

/// Runs `axe.run()` on the whole document and returns the serious and critical violations,
/// one readable line each (rule, impact, help, and up to five offending nodes).
async fn serious_violations(b: &Browser, axe: &str) -> Vec<String> {
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
        .map(|v| {
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .take(5)
                .map(|n| {
                    let target = n["target"].to_string();
                    let html = n["html"].as_str().unwrap_or_default();
                    let html: String = html.chars().take(160).collect();
                    format!("      {target}: {html}")
                })
                .collect();
            format!(
                "  {} ({}): {}\n    {}\n{}",
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or_default(),
                v["helpUrl"].as_str().unwrap_or_default(),
                nodes.join("\n")
            )
        })
        .collect()
}

/// Checks the current page and records what failed under `label`.
async fn check(b: &Browser, axe: &str, label: &str, failures: &mut Vec<String>) {
    let found = serious_violations(b, axe).await;
    if !found.is_empty() {
        failures.push(format!("{label}:\n{}", found.join("\n")));
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
