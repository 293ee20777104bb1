//! Work blocks and strategy pages: `/blocks`, `/blocks/{id}`, `/strategy`, with their forms.

use std::time::Duration;

use axum::http::StatusCode;
use mesa_core::domain::entity::WorkBlock;
use mesa_core::domain::{
    Actor, ApprovalKind, ApprovalStatus, IssueKey, Markdown, ReviewDecision, Timestamp, Title,
    WorkBlockStatus,
};
use mesa_core::store::PageRequest;
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::workflow::work_block::BlockCommand;
use mesa_core::{FakeClock, NewIssue, NewWorkBlock};

use super::login;
use super::main_of;
use crate::support::TestApp;

/// 2026-01-01T00:00:00Z.
const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn board() -> Actor {
    Actor::board("test")
}

/// Snapshots `<main>` with ids, times and the CSRF token filtered.
macro_rules! snapshot_main {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "[time]"),
            (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
        ]}, {
            insta::assert_snapshot!($name, main_of($html));
        });
    };
}
pub(crate) use snapshot_main;

async fn block(app: &TestApp, title: &str) -> WorkBlock {
    app.mesa
        .create_work_block(
            &board(),
            NewWorkBlock {
                title: Title::parse(title).unwrap(),
                goal: Markdown::parse("Let **customers** pay by card.").unwrap(),
                acceptance_criteria: Markdown::parse("- checkout works\n- receipts are sent")
                    .unwrap(),
                north_star_metric: Some("Paying customers".to_owned()),
                north_star_target: Some(50.0),
                apex_block_id: None,
            },
        )
        .await
        .unwrap()
}

async fn issue_in(app: &TestApp, b: &WorkBlock, title: &str) -> IssueKey {
    let view = app
        .mesa
        .create_issue(&board(), NewIssue::titled(title).unwrap())
        .await
        .unwrap();
    app.mesa
        .add_issue_to_block(&board(), b.id, &view.issue.key)
        .await
        .unwrap();
    view.issue.key
}

/// Takes an issue assigned to the CEO to done: started and submitted by the CEO (who has no
/// reviewer, so it goes to board review), then approved by the board.
async fn finish(app: &TestApp, key: &IssueKey) {
    let ceo = app.mesa.resolve_agent("agent", "ceo").await.unwrap();
    let ceo = Actor::Agent {
        id: ceo.id,
        slug: ceo.slug.clone(),
    };
    let steps = [
        (ceo.clone(), IssueCommand::Start),
        (
            ceo,
            IssueCommand::Submit {
                comment: Some("done, tests pass".to_owned()),
            },
        ),
        (
            board(),
            IssueCommand::Review {
                decision: ReviewDecision::Approve,
                comment: None,
            },
        ),
    ];
    for (actor, command) in steps {
        app.mesa
            .issue_command(&actor, key, command, None)
            .await
            .unwrap();
    }
    assert_eq!(
        app.mesa.issue(key).await.unwrap().issue.status.as_str(),
        "done"
    );
}

#[tokio::test]
async fn the_block_list_shows_blocks_by_status_with_progress() {
    let clock = FakeClock::new(START);
    let app = TestApp::with_clock(clock.clone()).await;
    let payments = block(&app, "Payments").await;
    issue_in(&app, &payments, "Card form").await;
    issue_in(&app, &payments, "Receipts").await;
    let search = block(&app, "Search").await;
    app.mesa
        .work_block_command(&board(), search.id, BlockCommand::Activate, None)
        .await
        .unwrap();
    let browser = login(&app).await;
    let page = browser.get("/blocks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Payments") && page.body.contains("Search"));
    assert!(
        page.body.contains("aria-valuetext=\"0 of 2\""),
        "progress of Payments"
    );
    let main = main_of(&page.body);
    let proposed_at = main.find(">Payments<").unwrap();
    let active_at = main.find(">Search<").unwrap();
    assert!(proposed_at < active_at, "proposed blocks come first");
    snapshot_main!("blocks_list", &page.body);

    let only_active = browser.get("/blocks?status=active").await;
    assert!(only_active.body.contains(">Search<") && !only_active.body.contains(">Payments<"));
    let fragment = browser.get_htmx("/blocks").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"blocks-list\""));
}

#[tokio::test]
async fn the_create_form_proposes_a_block_as_the_board() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let page = browser
        .post(
            "/blocks",
            &[
                ("title", "Onboarding"),
                ("goal", "New users succeed alone"),
                ("acceptance_criteria", "- a tour"),
                ("apex_block_id", ""),
                ("north_star_metric", "Activation rate"),
                ("north_star_target", "0.4"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let blocks = app.mesa.work_blocks(None).await.unwrap();
    assert_eq!(blocks.len(), 1);
    let b = &blocks[0];
    assert_eq!(b.title.to_string(), "Onboarding");
    assert_eq!(b.status, WorkBlockStatus::Proposed);
    assert_eq!(b.north_star_target, Some(0.4));
    assert_eq!(page.location(), format!("/blocks/{}", b.id));
}

#[tokio::test]
async fn a_bad_block_form_answers_422_with_the_error_and_writes_nothing() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let before = app.activity_rows().await;
    let page = browser
        .post(
            "/blocks",
            &[
                ("title", "   "),
                ("goal", "kept in the form"),
                ("north_star_target", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("field-error"), "{}", page.body);
    assert!(
        page.body.contains("kept in the form"),
        "the draft is echoed"
    );
    let page = browser
        .post(
            "/blocks",
            &[("title", "Fine"), ("north_star_target", "lots")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("the target must be a number"));
    assert!(app.mesa.work_blocks(None).await.unwrap().is_empty());
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn the_detail_page_shows_stats_a_burn_up_chart_and_the_issues() {
    let clock = FakeClock::new(START);
    let app = TestApp::with_clock(clock.clone()).await;
    let b = block(&app, "Payments").await;
    let card = issue_in(&app, &b, "Card form").await;
    clock.advance(Duration::from_secs(2 * 86_400));
    issue_in(&app, &b, "Receipts").await;
    clock.advance(Duration::from_secs(86_400));
    finish(&app, &card).await;
    let browser = login(&app).await;
    let page = browser.get(&format!("/blocks/{}", b.id)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<strong>customers</strong>"),
        "goal as markdown"
    );
    assert!(page.body.contains("Card form") && page.body.contains("Receipts"));
    assert!(page.body.contains("class=\"series s1\""), "a planned line");
    assert!(page.body.contains("class=\"series s2\""), "a done line");
    assert_eq!(page.body.matches("<polyline class=\"series").count(), 2);
    // Planned 1, 1, 2, 2 and done 0, 0, 0, 1 over the four days (in the chart's data table).
    assert!(
        page.body
            .contains("<th scope=\"row\">2026-01-04</th><td>2</td><td>1</td>")
    );
    assert!(
        page.body
            .contains("<th scope=\"row\">2026-01-03</th><td>2</td><td>0</td>")
    );
    assert!(page.body.contains("2026-01-01") && page.body.contains("2026-01-04"));
    assert!(
        page.body.contains("value=\"activate\""),
        "the board may activate"
    );
    snapshot_main!("block_detail", &page.body);
    let fragment = browser.get_htmx(&format!("/blocks/{}", b.id)).await;
    assert_eq!(fragment.status, StatusCode::OK);
}

#[tokio::test]
async fn lifecycle_actions_move_the_block() {
    let app = TestApp::new().await;
    let b = block(&app, "Payments").await;
    let browser = login(&app).await;
    let path = format!("/blocks/{}/command", b.id);
    let page = browser.post(&path, &[("action", "activate")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("/blocks/{}", b.id));
    let now = app.mesa.work_block(b.id).await.unwrap();
    assert_eq!(now.status, WorkBlockStatus::Active);
    // A second active block is refused, with the reason on the page.
    let other = block(&app, "Search").await;
    let page = browser
        .post(
            &format!("/blocks/{}/command", other.id),
            &[("action", "activate")],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("alert-danger"));
    assert_eq!(
        app.mesa.work_block(other.id).await.unwrap().status,
        WorkBlockStatus::Proposed
    );
    let page = browser.post(&path, &[("action", "explode")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = browser.post(&path, &[("action", "cancel")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.mesa.work_block(b.id).await.unwrap().status,
        WorkBlockStatus::Cancelled
    );
}

#[tokio::test]
async fn the_north_star_form_records_a_measurement() {
    let app = TestApp::new().await;
    let b = block(&app, "Payments").await;
    let browser = login(&app).await;
    let path = format!("/blocks/{}/north-star", b.id);
    let page = browser.post(&path, &[("value", "12.5")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let d = app.mesa.work_block_detail(b.id).await.unwrap();
    assert_eq!(d.north_star_history.len(), 1);
    assert!((d.north_star_history[0].value - 12.5).abs() < 1e-9);
    let page = browser.post(&path, &[("value", "a lot")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("the measurement must be a number"));
    let d = app.mesa.work_block_detail(b.id).await.unwrap();
    assert_eq!(d.north_star_history.len(), 1, "nothing written");
    let detail = browser.get(&format!("/blocks/{}", b.id)).await;
    assert!(detail.body.contains("<strong>12.5</strong>"));
}

#[tokio::test]
async fn approving_an_activation_request_on_the_block_page_activates_the_block() {
    let app = TestApp::new().await;
    let b = block(&app, "Payments").await;
    let ceo = app.mesa.resolve_agent("agent", "ceo").await.unwrap();
    let ceo = Actor::Agent {
        id: ceo.id,
        slug: ceo.slug.clone(),
    };
    let outcome = app
        .mesa
        .work_block_command(&ceo, b.id, BlockCommand::Activate, None)
        .await
        .unwrap();
    let approval = outcome.approval.expect("the CEO's request is an approval");
    assert_eq!(approval.kind, ApprovalKind::WorkBlockActivation);
    assert_eq!(outcome.block.status, WorkBlockStatus::Proposed);
    let browser = login(&app).await;
    let detail = browser.get(&format!("/blocks/{}", b.id)).await;
    assert!(
        detail
            .body
            .contains(&format!("/approvals/{}/resolve", approval.id))
    );
    let back = format!("/blocks/{}", b.id);
    let page = browser
        .post(
            &format!("/approvals/{}/resolve", approval.id),
            &[("decision", "approve"), ("comment", "go"), ("back", &back)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), back);
    assert_eq!(
        app.mesa.work_block(b.id).await.unwrap().status,
        WorkBlockStatus::Active
    );
    let a = app.mesa.approval(approval.id).await.unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.decision_comment.as_deref(), Some("go"));
    let pending = app
        .mesa
        .approvals(
            Some(ApprovalStatus::Pending),
            &PageRequest::new(Some(10), None),
        )
        .await
        .unwrap();
    assert!(pending.items.is_empty());
}

#[tokio::test]
async fn the_strategy_page_shows_apex_blocks_alignment_and_drift() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let page = browser
        .post(
            "/strategy/apex",
            &[("title", "Grow revenue"), ("goal", "Reach **$10k** MRR")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let apex = app.mesa.apex_blocks().await.unwrap();
    assert_eq!(apex.len(), 1);
    let drifting = app
        .mesa
        .create_issue(&board(), NewIssue::titled("Unplanned chore").unwrap())
        .await
        .unwrap();
    let page = browser.get("/strategy").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Grow revenue") && page.body.contains("<strong>$10k</strong>"));
    assert!(page.body.contains("Work alignment") && page.body.contains("Spend alignment"));
    assert!(
        page.body
            .contains(&format!("/issues/{}", drifting.issue.key)),
        "drift is linked"
    );
    assert!(page.body.contains(">0%<"), "the only open issue drifts");
    snapshot_main!("strategy", &page.body);

    // An aligned block with one issue: half the open work is aligned; the aggregate figures
    // agree with the core's reference computation.
    let aligned = app
        .mesa
        .create_work_block(
            &board(),
            NewWorkBlock {
                title: Title::parse("Pricing page").unwrap(),
                goal: Markdown::parse("").unwrap(),
                acceptance_criteria: Markdown::parse("").unwrap(),
                north_star_metric: None,
                north_star_target: None,
                apex_block_id: Some(apex[0].id),
            },
        )
        .await
        .unwrap();
    issue_in(&app, &aligned, "Price table").await;
    let (summary, drift) = app.mesa.strategy_summary(50).await.unwrap();
    let reference = app.mesa.strategy().await.unwrap();
    assert!((summary.work_alignment - 0.5).abs() < 1e-9);
    assert!((summary.work_alignment - reference.work_alignment).abs() < 1e-9);
    assert!((summary.spend_alignment - reference.spend_alignment).abs() < 1e-9);
    assert_eq!(summary.drift_issues, reference.drift_issues);
    assert_eq!(drift, 1);
    assert_eq!(summary.drift_cost, reference.drift_cost);
    let page = browser.get("/strategy").await;
    assert!(
        page.body.contains(">50%<"),
        "one of two open issues is aligned"
    );

    let path = format!("/strategy/apex/{}", apex[0].id);
    let page = browser
        .post(
            &path,
            &[
                ("title", "Grow revenue"),
                ("goal", ""),
                ("status", "archived"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let a = app.mesa.apex_block(apex[0].id).await.unwrap();
    assert_eq!(a.status.as_str(), "archived");

    let page = browser
        .post("/strategy/apex", &[("title", ""), ("goal", "x")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("field-error"));
    assert_eq!(
        app.mesa.apex_blocks().await.unwrap().len(),
        1,
        "nothing written"
    );
}
