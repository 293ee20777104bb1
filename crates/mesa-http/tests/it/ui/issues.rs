//! Issues pages: `/issues` (list, filters, board, bulk), `/issues/new` and `POST /issues`,
//! `/issues/{key}` (detail, edit, comments, the board's §2 actions).

use axum::http::StatusCode;
use mesa_core::domain::{
    Actor, CommentKind, IssueKey, IssueStatus, IssueType, Markdown, Priority, Timestamp,
};
use mesa_core::store::{IssueFilter, PageRequest};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::{FakeClock, IssueView, NewIssue};

use super::login;
use super::main_of;
use crate::support::TestApp;

/// 2026-01-01T00:00:00Z.
const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn board() -> Actor {
    Actor::board("test")
}

macro_rules! snapshot_main {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "[time]"),
            (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
            (r#"">[0-9a-f]{8}</a>"#, r#"">[run]</a>"#),
        ]}, {
            insta::assert_snapshot!($name, main_of($html));
        });
    };
}

async fn issue(app: &TestApp, title: &str) -> IssueView {
    app.mesa
        .create_issue(&board(), NewIssue::titled(title).unwrap())
        .await
        .unwrap()
}

async fn issue_with(
    app: &TestApp,
    title: &str,
    issue_type: IssueType,
    priority: i64,
    description: &str,
) -> IssueView {
    let mut new = NewIssue::titled(title).unwrap();
    new.issue_type = issue_type;
    new.priority = Priority::new(priority).unwrap();
    new.description = Markdown::parse(description).unwrap();
    app.mesa.create_issue(&board(), new).await.unwrap()
}

async fn status_of(app: &TestApp, key: &IssueKey) -> IssueStatus {
    app.mesa.issue(key).await.unwrap().issue.status
}

async fn command(app: &TestApp, key: &IssueKey, c: IssueCommand) {
    app.mesa
        .issue_command(&board(), key, c, None)
        .await
        .unwrap();
}

async fn count_issues(app: &TestApp) -> usize {
    app.mesa
        .issues(&IssueFilter::default(), &PageRequest::new(Some(500), None))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn the_list_shows_issues_and_its_snapshot_is_stable() {
    let app = TestApp::with_clock(FakeClock::new(START)).await;
    issue_with(
        &app,
        "Ship the login page",
        IssueType::Feature,
        2,
        "Login **now**",
    )
    .await;
    let bug = issue_with(&app, "Fix the crash on save", IssueType::Bug, 1, "").await;
    command(
        &app,
        &bug.issue.key,
        IssueCommand::Block {
            comment: Some("waiting on infra".into()),
        },
    )
    .await;
    let browser = login(&app).await;
    let page = browser.get("/issues").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Ship the login page"));
    assert!(page.body.contains("Fix the crash on save"));
    assert!(page.body.contains("name=\"keys\""), "bulk checkboxes");
    assert!(page.body.contains("sse:issues"), "live region");
    snapshot_main!("issues_list", &page.body);
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = TestApp::new().await;
    let login_page = issue_with(&app, "Ship the login page", IssueType::Feature, 2, "").await;
    let crash = issue_with(&app, "Fix the crash on save", IssueType::Bug, 1, "").await;
    let docs = issue_with(&app, "Write the backup docs", IssueType::Chore, 4, "").await;
    command(
        &app,
        &crash.issue.key,
        IssueCommand::Block {
            comment: Some("waiting".into()),
        },
    )
    .await;
    let browser = login(&app).await;
    let has =
        |body: &str, v: &IssueView| body.contains(&format!("href=\"/issues/{}\"", v.issue.key));

    let blocked = browser.get("/issues?status=blocked").await;
    assert_eq!(blocked.status, StatusCode::OK);
    assert!(
        has(&blocked.body, &crash)
            && !has(&blocked.body, &login_page)
            && !has(&blocked.body, &docs)
    );

    let several = browser.get("/issues?status=blocked&status=todo").await;
    assert!(
        has(&several.body, &crash) && has(&several.body, &login_page) && has(&several.body, &docs)
    );

    let text = browser.get("/issues?q=backup").await;
    assert!(has(&text.body, &docs) && !has(&text.body, &crash) && !has(&text.body, &login_page));

    let typed = browser.get("/issues?type=bug").await;
    assert!(has(&typed.body, &crash) && !has(&typed.body, &docs));

    let prio = browser.get("/issues?priority=4").await;
    assert!(has(&prio.body, &docs) && !has(&prio.body, &crash) && !has(&prio.body, &login_page));

    let mine = browser.get("/issues?assignee=ceo").await;
    assert!(has(&mine.body, &docs), "new issues go to the CEO");
    let nobody = browser.get("/issues?assignee=nobody-here").await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert!(nobody.body.contains("Ignored filter"), "{}", nobody.body);
}

#[tokio::test]
async fn the_board_view_has_columns_cards_and_quick_actions() {
    let app = TestApp::with_clock(FakeClock::new(START)).await;
    issue(&app, "Ship the login page").await;
    let crash = issue(&app, "Fix the crash on save").await;
    command(
        &app,
        &crash.issue.key,
        IssueCommand::Block {
            comment: Some("waiting".into()),
        },
    )
    .await;
    let browser = login(&app).await;
    let page = browser.get("/issues?view=board").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for col in [
        "col-todo",
        "col-in_progress",
        "col-blocked",
        "col-in_review",
        "col-board_review",
        "col-done",
    ] {
        assert!(page.body.contains(col), "column {col}");
    }
    assert!(
        page.body.contains("value=\"unblock\""),
        "blocked card offers unblock"
    );
    snapshot_main!("issues_board", &page.body);

    // A quick action moves the card and goes back to the board.
    let moved = browser
        .post(
            &format!("/issues/{}/action", crash.issue.key),
            &[
                ("command", "unblock"),
                ("quick", "1"),
                ("back", "/issues?view=board"),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(moved.location(), "/issues?view=board");
    assert_eq!(
        status_of(&app, &crash.issue.key).await,
        IssueStatus::InProgress
    );

    // A required reason gets a note on quick actions: block from todo.
    let todo = issue(&app, "Another one").await;
    let blocked = browser
        .post(
            &format!("/issues/{}/action", todo.issue.key),
            &[("command", "block"), ("quick", "1")],
        )
        .await;
    assert_eq!(blocked.status, StatusCode::SEE_OTHER, "{}", blocked.body);
    assert_eq!(status_of(&app, &todo.issue.key).await, IssueStatus::Blocked);

    let fragment = browser.get_htmx("/issues?view=board&status=todo").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"issues-region\""));
}

#[tokio::test]
async fn a_palette_post_with_only_a_title_creates_an_issue_for_the_ceo() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let created = browser
        .post("/issues", &[("title", "Set up the billing page")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let key = created.location().trim_start_matches("/issues/").to_owned();
    let view = app
        .mesa
        .issue(&IssueKey::parse(&key).unwrap())
        .await
        .unwrap();
    assert_eq!(view.issue.title.as_str(), "Set up the billing page");
    assert_eq!(
        view.assignee_slug
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("ceo")
    );
    assert_eq!(view.issue.issue_type, IssueType::Task);
    let detail = browser.get(created.location()).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Set up the billing page"));
}

#[tokio::test]
async fn the_new_issue_form_creates_with_every_field_and_refuses_bad_input() {
    let app = TestApp::with_clock(FakeClock::new(START)).await;
    let parent = issue(&app, "Payments").await;
    let browser = login(&app).await;
    let form = browser.get("/issues/new").await;
    assert_eq!(form.status, StatusCode::OK);
    snapshot_main!("issue_new", &form.body);

    let created = browser
        .post(
            "/issues",
            &[
                ("title", "Card form"),
                ("description", "Collect the **card**"),
                ("type", "feature"),
                ("priority", "2"),
                ("assignee", "ceo"),
                ("parent", parent.issue.key.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let key = IssueKey::parse(created.location().trim_start_matches("/issues/")).unwrap();
    let view = app.mesa.issue(&key).await.unwrap();
    assert_eq!(view.issue.priority.get(), 2);
    assert_eq!(view.issue.issue_type, IssueType::Feature);
    assert_eq!(view.issue.parent_key.as_ref(), Some(&parent.issue.key));

    let before = count_issues(&app).await;
    let empty = browser.post("/issues", &[("title", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains("field-error"),
        "{}",
        main_of(&empty.body)
    );
    let bad_parent = browser
        .post("/issues", &[("title", "Orphan"), ("parent", "MESA-999")])
        .await;
    assert_eq!(bad_parent.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_parent.body.contains("err-parent"),
        "{}",
        main_of(&bad_parent.body)
    );
    assert!(
        bad_parent.body.contains("value=\"Orphan\""),
        "the draft is kept"
    );
    assert_eq!(count_issues(&app).await, before, "nothing written");

    let dup = browser.post("/issues", &[("title", "card FORM ")]).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    assert!(
        dup.body.contains(&format!("href=\"/issues/{key}\"")),
        "links the existing issue"
    );
    assert_eq!(count_issues(&app).await, before);
}

#[tokio::test]
async fn the_detail_shows_everything_and_its_snapshot_is_stable() {
    let app = TestApp::with_clock(FakeClock::new(START)).await;
    let parent = issue_with(
        &app,
        "Payments",
        IssueType::Feature,
        2,
        "Let *customers* pay.\n\n- cards\n- invoices",
    )
    .await;
    let mut child = NewIssue::titled("Card form").unwrap();
    child.parent_key = Some(parent.issue.key.clone());
    app.mesa.create_issue(&board(), child).await.unwrap();
    app.mesa
        .add_comment(
            &board(),
            &parent.issue.key,
            "Looks **good** so far",
            CommentKind::Comment,
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let page = browser.get(&format!("/issues/{}", parent.issue.key)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<em>customers</em>"),
        "description as Markdown"
    );
    assert!(
        page.body.contains("<strong>good</strong>"),
        "comments as Markdown"
    );
    assert!(page.body.contains("Card form"), "sub-issues");
    assert!(
        page.body.contains(&format!("mesa/{}", parent.issue.key)),
        "branch"
    );
    assert!(
        page.body
            .contains(&format!("sse:issue-{}", parent.issue.key)),
        "live"
    );
    assert!(page.body.contains("value=\"block\"") && page.body.contains("value=\"cancel\""));
    snapshot_main!("issue_detail", &page.body);

    let missing = browser.get("/issues/MESA-9999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nonsense = browser.get("/issues/not-a-key").await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_board_transition_from_the_detail_changes_status_and_writes_activity() {
    let app = TestApp::new().await;
    let v = issue(&app, "Ship the login page").await;
    let key = v.issue.key.clone();
    let browser = login(&app).await;
    let rows = app.activity_rows().await;

    // A reason is required to block: refused, nothing written.
    let refused = browser
        .post(
            &format!("/issues/{key}/action"),
            &[("command", "block"), ("comment", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("needs a comment"),
        "{}",
        main_of(&refused.body)
    );
    // Not a board action from todo.
    let illegal = browser
        .post(&format!("/issues/{key}/action"), &[("command", "approve")])
        .await;
    assert_eq!(illegal.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status_of(&app, &key).await, IssueStatus::Todo);
    assert_eq!(app.activity_rows().await, rows);

    let version = v.issue.version.0.to_string();
    let blocked = browser
        .post(
            &format!("/issues/{key}/action"),
            &[
                ("command", "block"),
                ("comment", "Waiting on the design"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(blocked.status, StatusCode::SEE_OTHER, "{}", blocked.body);
    assert_eq!(blocked.location(), format!("/issues/{key}"));
    assert_eq!(status_of(&app, &key).await, IssueStatus::Blocked);
    assert!(
        app.activity_rows().await > rows,
        "the transition is in the audit log"
    );

    // The stale version is refused.
    let stale = browser
        .post(
            &format!("/issues/{key}/action"),
            &[("command", "unblock"), ("version", &version)],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::CONFLICT,
        "{}",
        main_of(&stale.body)
    );
    assert_eq!(status_of(&app, &key).await, IssueStatus::Blocked);

    let cancelled = browser
        .post(
            &format!("/issues/{key}/action"),
            &[("command", "cancel"), ("comment", "Not needed")],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    let after = app.mesa.issue(&key).await.unwrap().issue;
    assert_eq!(after.status, IssueStatus::Cancelled);
    assert_eq!(after.cancellation_reason.as_deref(), Some("Not needed"));
    let reopened = browser
        .post(&format!("/issues/{key}/action"), &[("command", "reopen")])
        .await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, &key).await, IssueStatus::Todo);
}

#[tokio::test]
async fn editing_in_place_saves_with_a_version_check() {
    let app = TestApp::new().await;
    let v = issue(&app, "Ship the login page").await;
    let key = v.issue.key.clone();
    let browser = login(&app).await;

    let fragment = browser.get_htmx(&format!("/issues/{key}/edit")).await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"issue-edit\"") && !fragment.body.contains("<main"));
    let full = browser.get(&format!("/issues/{key}/edit")).await;
    assert_eq!(full.status, StatusCode::OK);
    assert!(full.body.contains("id=\"issue-edit\"") && full.body.contains("<main"));

    let version = v.issue.version.0.to_string();
    let saved = browser
        .post(
            &format!("/issues/{key}"),
            &[
                ("title", "Ship the new login page"),
                ("description", "With **2FA**"),
                ("priority", "1"),
                ("assignee", "ceo"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{}",
        main_of(&saved.body)
    );
    let after = app.mesa.issue(&key).await.unwrap().issue;
    assert_eq!(after.title.as_str(), "Ship the new login page");
    assert_eq!(after.description.as_str(), "With **2FA**");
    assert_eq!(after.priority.get(), 1);

    // The old version again: a conflict, shown on the form, nothing changed.
    let stale = browser
        .post(
            &format!("/issues/{key}"),
            &[
                ("title", "Something else"),
                ("priority", "1"),
                ("assignee", "ceo"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(
        stale.body.contains("Someone changed this issue"),
        "{}",
        main_of(&stale.body)
    );
    assert!(
        stale.body.contains("value=\"Something else\""),
        "the draft is kept"
    );
    assert_eq!(
        app.mesa.issue(&key).await.unwrap().issue.title.as_str(),
        "Ship the new login page"
    );

    let fresh = after.version.0.to_string();
    let empty = browser
        .post(
            &format!("/issues/{key}"),
            &[("title", ""), ("priority", "1"), ("version", &fresh)],
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.mesa.issue(&key).await.unwrap().issue.version,
        after.version
    );
}

#[tokio::test]
async fn comments_are_posted_and_empty_ones_refused() {
    let app = TestApp::new().await;
    let key = issue(&app, "Ship the login page").await.issue.key;
    let browser = login(&app).await;
    let posted = browser
        .post(
            &format!("/issues/{key}/comments"),
            &[("body", "Please add **tests**")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    let comments = app
        .mesa
        .comments(&key, &PageRequest::new(Some(50), None))
        .await
        .unwrap()
        .items;
    assert!(comments.iter().any(|c| c.body == "Please add **tests**"));

    let empty = browser
        .post(&format!("/issues/{key}/comments"), &[("body", "  ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let again = app
        .mesa
        .comments(&key, &PageRequest::new(Some(50), None))
        .await
        .unwrap()
        .items;
    assert_eq!(again.len(), comments.len(), "nothing written");
    let page = browser.get(&format!("/issues/{key}")).await;
    assert!(page.body.contains("<strong>tests</strong>"));
}

#[tokio::test]
async fn a_bulk_status_change_reports_the_issues_it_could_not_move() {
    let app = TestApp::new().await;
    let a = issue(&app, "First").await.issue.key;
    let b = issue(&app, "Second").await.issue.key;
    let c = issue(&app, "Third").await.issue.key;
    command(
        &app,
        &c,
        IssueCommand::Cancel {
            reason: Some("no".into()),
            force: false,
        },
    )
    .await;
    let browser = login(&app).await;

    let done = browser
        .post(
            "/issues/bulk",
            &[
                ("keys", a.as_str()),
                ("keys", b.as_str()),
                ("keys", c.as_str()),
                ("action", "status:blocked"),
                ("reason", "Waiting on the vendor"),
                ("back", "/issues?status=todo"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        done.location().starts_with("/issues?status=todo&bulk="),
        "{}",
        done.location()
    );
    assert_eq!(status_of(&app, &a).await, IssueStatus::Blocked);
    assert_eq!(status_of(&app, &b).await, IssueStatus::Blocked);
    assert_eq!(status_of(&app, &c).await, IssueStatus::Cancelled);
    let summary = browser.get(done.location()).await;
    assert!(
        summary.body.contains("2 of 3 updated"),
        "{}",
        main_of(&summary.body)
    );
    assert!(
        summary.body.contains(&format!("Not changed: {c}")),
        "{}",
        main_of(&summary.body)
    );

    let prio = browser
        .post(
            "/issues/bulk",
            &[("keys", a.as_str()), ("action", "priority:1")],
        )
        .await;
    assert_eq!(prio.status, StatusCode::SEE_OTHER);
    assert_eq!(app.mesa.issue(&a).await.unwrap().issue.priority.get(), 1);

    let cancel = browser
        .post(
            "/issues/bulk",
            &[("keys", b.as_str()), ("action", "cancel")],
        )
        .await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, &b).await, IssueStatus::Cancelled);
}

#[tokio::test]
async fn a_bad_bulk_form_is_refused_and_writes_nothing() {
    let app = TestApp::new().await;
    let a = issue(&app, "First").await.issue.key;
    let browser = login(&app).await;
    let rows = app.activity_rows().await;
    let no_action = browser
        .post("/issues/bulk", &[("keys", a.as_str()), ("action", "")])
        .await;
    assert_eq!(no_action.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_action.body.contains("Choose an action"));
    let no_keys = browser
        .post("/issues/bulk", &[("action", "priority:1")])
        .await;
    assert_eq!(no_keys.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_key = browser
        .post(
            "/issues/bulk",
            &[("keys", "../etc"), ("action", "priority:1")],
        )
        .await;
    assert_eq!(bad_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.activity_rows().await, rows);
    assert_eq!(app.mesa.issue(&a).await.unwrap().issue.priority.get(), 0);
}

#[tokio::test]
async fn the_board_decides_reviews_from_the_detail_page() {
    use axum::http::Method;
    use serde_json::json;

    let app = TestApp::new().await;
    let engineer = app.agent_key("founding-engineer").await;
    let mut new = NewIssue::titled("Ship it").unwrap();
    new.assignee = Some("founding-engineer".to_owned());
    let key = app
        .mesa
        .create_issue(&board(), new)
        .await
        .unwrap()
        .issue
        .key;
    let path = format!("/api/v1/issues/{key}");
    let r = app
        .call(
            Method::POST,
            &format!("{path}/checkout"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = app
        .call(
            Method::POST,
            &format!("{path}/comments"),
            Some(&engineer),
            Some(json!({"body": "all green", "kind": "evidence"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&engineer),
            Some(json!({"status": "in_review"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(status_of(&app, &key).await, IssueStatus::InReview);

    let browser = login(&app).await;
    let page = browser.get(&format!("/issues/{key}")).await;
    for command in ["approve", "request_changes", "escalate", "reject", "cancel"] {
        assert!(
            page.body.contains(&format!("value=\"{command}\"")),
            "{command} offered"
        );
    }
    assert!(page.body.contains("all green") && page.body.contains("tl-evidence"));
    let escalated = browser
        .post(&format!("/issues/{key}/action"), &[("command", "escalate")])
        .await;
    assert_eq!(
        escalated.status,
        StatusCode::SEE_OTHER,
        "{}",
        main_of(&escalated.body)
    );
    assert_eq!(status_of(&app, &key).await, IssueStatus::BoardReview);
    let page = browser.get(&format!("/issues/{key}")).await;
    assert!(
        !page.body.contains("value=\"escalate\""),
        "not from board_review"
    );
    let approved = browser
        .post(&format!("/issues/{key}/action"), &[("command", "approve")])
        .await;
    assert_eq!(
        approved.status,
        StatusCode::SEE_OTHER,
        "{}",
        main_of(&approved.body)
    );
    assert_eq!(status_of(&app, &key).await, IssueStatus::Done);
}

#[tokio::test]
async fn the_list_pages_with_a_cursor() {
    let app = TestApp::new().await;
    for n in 1..=55 {
        issue(&app, &format!("Issue number {n}")).await;
    }
    let browser = login(&app).await;
    let first = browser.get("/issues").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.matches("name=\"keys\"").count(), 50);
    let at = first.body.find("rel=\"next\"").expect("a next page");
    let href_at = first.body[..at].rfind("href=\"").unwrap() + "href=\"".len();
    let next = first.body[href_at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(next.starts_with("/issues?cursor="), "{next}");
    let second = browser.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body.matches("name=\"keys\"").count(), 5);
    assert!(second.body.contains("Issue number 1<"));
    assert!(!second.body.contains("rel=\"next\""));
}
