//! A crawl of the whole dashboard as a signed-in browser: starting at `/`, every same-site link
//! found on a page is followed (GET only). No page may fail, no link may be broken, and no page,
//! stylesheet or script may reference anything outside the server (SPEC §10: nothing is loaded
//! from outside the binary).

use std::collections::{BTreeSet, VecDeque};

use axum::http::StatusCode;
use mesa_core::NewIssue;
use mesa_core::domain::Actor;
use regex::Regex;

use super::login;
use crate::support::TestApp;

/// Links a browser would fetch or follow with GET: `href`, `src`, `sse-connect`, `hx-get`.
/// Form actions are posted, not followed; they are checked to stay on the site.
fn links(html: &str) -> Vec<String> {
    let re = Regex::new(r#"(?:href|src|sse-connect|hx-get)="([^"]*)""#).unwrap();
    re.captures_iter(html)
        .map(|c| c[1].replace("&amp;", "&"))
        .collect()
}

/// References to other sites in markup, CSS or script: absolute or protocol-relative URLs in
/// attributes, `url(...)`, `@import`. The SVG namespace name is an identifier, not a fetch.
fn external_references(text: &str) -> Vec<String> {
    let re = Regex::new(
        r#"(?i)(?:(?:href|src|action|poster|srcset|data|formaction)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//[^"'\s>]*)|(?:url\(\s*["']?\s*(?:https?:)?//[^)]*\))|(?:@import[^;]*)|(?:["'`]https?://[^"'`]*["'`])"#,
    )
    .unwrap();
    re.find_iter(text)
        .map(|m| m.as_str().to_owned())
        .filter(|m| !m.contains("http://www.w3.org/"))
        .collect()
}

#[tokio::test]
async fn every_reachable_page_renders_and_references_nothing_outside() {
    let app = TestApp::new().await;
    let board = Actor::board("test");
    for title in ["Crawl target one", "Crawl target two"] {
        app.mesa
            .create_issue(&board, NewIssue::titled(title).unwrap())
            .await
            .unwrap();
    }
    let browser = login(&app).await;
    let mut queue = VecDeque::from(["/".to_owned(), "/login".to_owned()]);
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    let action = Regex::new(r#"action="([^"]*)""#).unwrap();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) || seen.len() > 400 {
            continue;
        }
        let page = browser.get(&path).await;
        let kind = page
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !(page.status.is_success() || page.status == StatusCode::SEE_OTHER) {
            problems.push(format!("{path}: {}", page.status));
            continue;
        }
        for found in external_references(&page.body) {
            problems.push(format!("{path}: external reference {found}"));
        }
        if !kind.starts_with("text/html") {
            continue;
        }
        for target in action.captures_iter(&page.body) {
            if !target[1].starts_with('/') || target[1].starts_with("//") {
                problems.push(format!("{path}: a form posts off the site: {}", &target[1]));
            }
        }
        for link in links(&page.body) {
            let local = link.starts_with('/') && !link.starts_with("//");
            let skip = link.is_empty()
                || link.starts_with('#')
                || link == "/logout"
                || link.starts_with("/ui/events");
            if local && !skip {
                let without_fragment = link.split('#').next().unwrap_or("").to_owned();
                if !seen.contains(&without_fragment) {
                    queue.push_back(without_fragment);
                }
            } else if !local && !skip && !link.starts_with("mailto:") {
                problems.push(format!("{path}: link leaves the site: {link}"));
            }
        }
    }
    assert!(seen.len() > 5, "the crawl found pages: {seen:?}");
    assert!(
        seen.iter().any(|p| p.starts_with("/static/")),
        "stylesheets and scripts were fetched too"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_detector_sees_what_it_must() {
    assert_eq!(
        external_references(r#"<script src="https://cdn.example/x.js">"#).len(),
        1
    );
    assert_eq!(
        external_references(r#"<link href="//cdn.example/a.css">"#).len(),
        1
    );
    assert_eq!(
        external_references("a{background:url(https://x.example/i.png)}").len(),
        1
    );
    assert_eq!(external_references("@import 'x.css';").len(), 1);
    assert!(external_references(r#"<a href="/issues">"#).is_empty());
    assert!(external_references(r#"<svg xmlns="http://www.w3.org/2000/svg">"#).is_empty());
}
