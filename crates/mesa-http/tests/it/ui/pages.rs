//! Every page renders with data in it (and fragments render for htmx).

use axum::http::StatusCode;
use mesa_core::NewIssue;
use mesa_core::domain::Actor;

use super::login;
use crate::support::TestApp;

#[tokio::test]
async fn the_dashboard_shows_counts_agents_and_activity() {
    let app = TestApp::new().await;
    app.mesa
        .create_issue(
            &Actor::board("test"),
            NewIssue::titled("Ship the login page").unwrap(),
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Dashboard"));
    // The test org was bootstrapped without any agent CLI on PATH: the §4.4 banner shows.
    assert!(home.body.contains("No agent CLI"), "the banner shows");
    assert!(
        home.body.contains("@ceo") || home.body.contains("/agents/ceo"),
        "agents listed"
    );
    assert!(
        home.body.contains("issue.created") || home.body.contains("Ship the login page"),
        "activity listed"
    );
}

#[tokio::test]
async fn the_palette_finds_pages_issues_and_agents() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let pages = browser.get_htmx("/palette?q=gov").await;
    assert_eq!(pages.status, StatusCode::OK);
    assert!(
        pages.body.contains("href=\"/governance\""),
        "{}",
        pages.body
    );
    let agents = browser.get_htmx("/palette?q=ceo").await;
    assert!(
        agents.body.contains("href=\"/agents/ceo\""),
        "{}",
        agents.body
    );
    assert!(agents.body.contains("Create issue"), "{}", agents.body);
}
