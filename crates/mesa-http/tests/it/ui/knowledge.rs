//! Wiki and activity pages: list, search, create, edit with a version check, revisions with a
//! diff, delete; the audit log with filters and hash-chain verification.

use axum::http::StatusCode;
use mesa_core::FakeClock;
use mesa_core::domain::{Actor, Markdown, Timestamp, Title, Version, WikiSlug};
use mesa_core::store::PageRequest;

use super::login;
use super::main_of;
use crate::support::TestApp;

/// 2026-03-02T10:00:00Z.
const START_MS: i64 = 1_772_445_600_000;

macro_rules! snapshot {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "[time]"),
            (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
            (r"cursor=[A-Za-z0-9%_=-]+", "cursor=[cursor]"),
            (r"mesa_(brd|agt|run)_[A-Za-z0-9]+", "[key]"),
        ]}, {
            insta::assert_snapshot!($name, main_of($html));
        });
    };
}

async fn app() -> TestApp {
    TestApp::with_clock(FakeClock::new(Timestamp::from_millis(START_MS))).await
}

fn board() -> Actor {
    Actor::board("test")
}

async fn page(app: &TestApp, title: &str, content: &str) -> String {
    app.mesa
        .create_wiki_page(
            &board(),
            None,
            Title::parse(title).unwrap(),
            Markdown::parse(content).unwrap(),
        )
        .await
        .unwrap()
        .slug
        .to_string()
}

#[tokio::test]
async fn the_wiki_lists_searches_and_shows_pages() {
    let app = app().await;
    page(
        &app,
        "Deploy runbook",
        "Run `make deploy` after **review**.",
    )
    .await;
    page(&app, "Coding style", "Small functions, doc comments.").await;
    let browser = login(&app).await;

    let list = browser.get("/wiki").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("href=\"/wiki/deploy-runbook\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("Coding style"));
    snapshot!("wiki_list", &list.body);

    let found = browser.get("/wiki?q=deploy").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("<mark>"), "highlighted: {}", found.body);
    assert!(!found.body.contains("Coding style</a>"), "only the hit");

    let shown = browser.get("/wiki/deploy-runbook").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.body.contains("<strong>review</strong>"),
        "markdown rendered"
    );
    assert!(shown.body.contains("/wiki/deploy-runbook/revisions"));
    assert!(shown.body.contains("/wiki/deploy-runbook/edit"));
    snapshot!("wiki_page", &shown.body);

    assert_eq!(
        browser.get("/wiki/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        browser.get("/wiki/..%2Fetc").await.status,
        StatusCode::NOT_FOUND
    );
    let fragment = browser.get_htmx("/wiki?q=style").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("wiki-list"));
}

#[tokio::test]
async fn search_snippets_and_pages_escape_markup() {
    let app = app().await;
    page(
        &app,
        "Scripts",
        "hello <script>alert(1)</script> world <b>bold</b>",
    )
    .await;
    let browser = login(&app).await;
    let shown = browser.get("/wiki/scripts").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(!shown.body.contains("<script>alert"), "{}", shown.body);
    assert!(!main_of(&shown.body).contains("<script"), "{}", shown.body);
    let found = browser.get("/wiki?q=hello").await;
    assert!(!found.body.contains("<script>alert"), "{}", found.body);
    assert!(!found.body.contains("<b>bold"), "{}", found.body);
    assert!(
        found.body.contains("&lt;script&gt;") || found.body.contains("&amp;lt;script"),
        "{}",
        found.body
    );
}

#[tokio::test]
async fn creating_a_page_through_the_form() {
    let app = app().await;
    let browser = login(&app).await;
    let form = browser.get("/wiki/new").await;
    assert_eq!(form.status, StatusCode::OK);
    snapshot!("wiki_new", &form.body);

    let made = browser
        .post(
            "/wiki",
            &[
                ("title", "On-call"),
                ("slug", ""),
                ("content", "Page the **CEO**."),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    assert_eq!(made.location(), "/wiki/on-call");
    let page = app
        .mesa
        .wiki_page(&WikiSlug::parse("on-call").unwrap())
        .await
        .unwrap();
    assert_eq!(page.content, "Page the **CEO**.");
    assert_eq!(page.created_by, "board:test");

    let before = app
        .mesa
        .wiki_pages(&PageRequest::new(None, None))
        .await
        .unwrap();
    let bad = browser
        .post(
            "/wiki",
            &[("title", ""), ("slug", "Bad Slug!"), ("content", "x")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("field-error"), "{}", bad.body);
    assert!(bad.body.contains("value=\"Bad Slug!\""), "input kept");
    let taken = browser
        .post(
            "/wiki",
            &[("title", "Again"), ("slug", "on-call"), ("content", "x")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let after = app
        .mesa
        .wiki_pages(&PageRequest::new(None, None))
        .await
        .unwrap();
    assert_eq!(before.items.len(), after.items.len(), "nothing written");
}

#[tokio::test]
async fn a_stale_edit_shows_the_conflict_and_keeps_both_texts() {
    let app = app().await;
    let slug = page(&app, "Roadmap", "first text").await;
    let browser = login(&app).await;
    let form = browser.get(&format!("/wiki/{slug}/edit")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("name=\"version\" value=\"1\""),
        "{}",
        form.body
    );

    // Someone else saves version 2 meanwhile.
    app.mesa
        .update_wiki_page(
            &Actor::board("other"),
            &WikiSlug::parse(&slug).unwrap(),
            None,
            Some(Markdown::parse("their text").unwrap()),
            Some(Version(1)),
        )
        .await
        .unwrap();
    let stale = browser
        .post(
            &format!("/wiki/{slug}"),
            &[
                ("title", "Roadmap"),
                ("content", "my text"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("my text"), "mine kept");
    assert!(stale.body.contains("their text"), "theirs shown");
    assert!(stale.body.contains("board:other"));
    assert!(stale.body.contains("name=\"version\" value=\"2\""));
    snapshot!("wiki_conflict", &stale.body);
    let current = app
        .mesa
        .wiki_page(&WikiSlug::parse(&slug).unwrap())
        .await
        .unwrap();
    assert_eq!(current.content, "their text", "nothing overwritten");

    let saved = browser
        .post(
            &format!("/wiki/{slug}"),
            &[
                ("title", "Roadmap 2"),
                ("content", "my text"),
                ("version", "2"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let current = app
        .mesa
        .wiki_page(&WikiSlug::parse(&slug).unwrap())
        .await
        .unwrap();
    assert_eq!(current.content, "my text");
    assert_eq!(current.title.as_str(), "Roadmap 2");

    let bad = browser
        .post(
            &format!("/wiki/{slug}"),
            &[("title", " "), ("content", "x"), ("version", "3")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let current = app
        .mesa
        .wiki_page(&WikiSlug::parse(&slug).unwrap())
        .await
        .unwrap();
    assert_eq!(current.version.0, 3);
}

#[tokio::test]
async fn revisions_show_a_line_diff_and_delete_removes_the_page() {
    let app = app().await;
    let slug = page(&app, "Notes", "one\ntwo\nthree").await;
    app.mesa
        .update_wiki_page(
            &board(),
            &WikiSlug::parse(&slug).unwrap(),
            None,
            Some(Markdown::parse("one\nTWO\nthree").unwrap()),
            None,
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let revs = browser.get(&format!("/wiki/{slug}/revisions")).await;
    assert_eq!(revs.status, StatusCode::OK);
    assert!(
        revs.body.contains(
            "<span class=\"diff-del\"><span class=\"sr-only\">removed: </span>two</span>"
        ),
        "{}",
        revs.body
    );
    assert!(
        revs.body
            .contains("<span class=\"diff-add\"><span class=\"sr-only\">added: </span>TWO</span>")
    );
    snapshot!("wiki_revisions", &revs.body);
    let first = browser.get(&format!("/wiki/{slug}/revisions?v=1")).await;
    assert!(first.body.contains("(first version)"), "{}", first.body);

    let gone = browser.post(&format!("/wiki/{slug}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/wiki");
    assert!(
        app.mesa
            .wiki_page(&WikiSlug::parse(&slug).unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_activity_log_filters_rows_and_links_entities() {
    let app = app().await;
    page(&app, "Audit me", "x").await;
    app.mesa
        .create_issue(
            &Actor::board("alice"),
            mesa_core::NewIssue::titled("Fix the build").unwrap(),
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let all = browser.get("/activity").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("wiki.created"));
    assert!(all.body.contains("Fix the build"));
    assert!(all.body.contains("href=\"/issues/MESA-1\""), "issue link");
    assert!(all.body.contains("href=\"/wiki/audit-me\""), "entity link");
    assert!(all.body.contains("sse:activity"), "live on the first page");
    assert!(all.body.contains("Not verified yet"));
    snapshot!("activity", &all.body);

    let alice = browser.get("/activity?actor=board%3Aalice").await;
    assert!(alice.body.contains("Fix the build"));
    assert!(!alice.body.contains("wiki.created"), "narrowed by actor");
    let wiki = browser
        .get("/activity?entity_type=wiki&entity_id=audit-me")
        .await;
    assert!(wiki.body.contains("wiki.created"));
    assert!(!wiki.body.contains("Fix the build"), "narrowed by entity");

    let by_action = browser.get("/activity?action=wiki.").await;
    assert_eq!(by_action.status, StatusCode::OK);
    assert!(by_action.body.contains("wiki.created"));
    assert!(
        !by_action.body.contains("Fix the build"),
        "narrowed by action"
    );
    assert!(by_action.body.contains("value=\"wiki.\""), "filter kept");
    let fragment = browser.get_htmx("/activity?actor=board").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"activity-list\""));
}

#[tokio::test]
async fn verify_now_shows_the_chain_status() {
    let app = app().await;
    let browser = login(&app).await;
    let done = browser.post("/activity/verify", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/activity");
    let report = app.mesa.verify_activity().await.unwrap();
    let shown = browser.get("/activity").await;
    assert!(shown.body.contains("Chain OK"), "{}", shown.body);
    assert!(
        shown
            .body
            .contains(&format!("{} rows checked", report.checked)),
        "{}",
        shown.body
    );
}
