//! Approvals and governance pages: `/approvals`, `/approvals/{id}`, `/governance` and its tabs,
//! archetype versions, patches and directives, with their forms.

use axum::http::StatusCode;
use mesa_core::domain::{Actor, ApprovalKind, ApprovalStatus, Markdown, PatchStatus, Slug, Title};
use mesa_core::{FakeClock, NewApproval};

use super::blocks::snapshot_main;
use super::login;
use super::main_of;
use crate::support::TestApp;

fn board() -> Actor {
    Actor::board("test")
}

async fn agent(app: &TestApp, slug: &str) -> Actor {
    let a = app.mesa.resolve_agent("agent", slug).await.unwrap();
    Actor::Agent {
        id: a.id,
        slug: a.slug.clone(),
    }
}

async fn hire_request(app: &TestApp, title: &str) -> mesa_core::domain::entity::Approval {
    let ceo = agent(app, "ceo").await;
    app.mesa
        .request_approval(
            &ceo,
            NewApproval {
                kind: ApprovalKind::Other,
                title: Title::parse(title).unwrap(),
                body: Markdown::parse("We need **more** hands.").unwrap(),
                subject: None,
                payload: serde_json::json!({}),
            },
        )
        .await
        .unwrap()
}

/// A patch of the `qa` archetype proposed by the CEO: its first line replaced.
async fn qa_patch(app: &TestApp) -> mesa_core::ProposedPatch {
    let slug = Slug::parse("qa").unwrap();
    let current = app.mesa.archetype(&slug).await.unwrap();
    let mut lines: Vec<&str> = current.body.as_str().lines().collect();
    lines[0] = "# QA, the gatekeeper";
    let proposed = lines.join("\n") + "\nAlways attach the failing command.\n";
    app.mesa
        .propose_archetype_patch(
            &agent(app, "ceo").await,
            &slug,
            Markdown::parse(&proposed).unwrap(),
            Markdown::parse("Reviews bounce without evidence.").unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_approvals_page_lists_pending_first_with_decide_forms() {
    let clock = FakeClock::new(mesa_core::domain::Timestamp::from_millis(1_767_225_600_000));
    let app = TestApp::with_clock(clock).await;
    let done = hire_request(&app, "Hire a designer").await;
    app.mesa
        .resolve_approval(
            &board(),
            done.id,
            mesa_core::domain::ApprovalDecision::Reject,
            None,
        )
        .await
        .unwrap();
    let open = hire_request(&app, "Hire a second engineer").await;
    let browser = login(&app).await;
    let page = browser.get("/approvals").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let pending_at = page.body.find("Hire a second engineer").unwrap();
    let resolved_at = page.body.find("Hire a designer").unwrap();
    assert!(pending_at < resolved_at, "pending first");
    assert!(
        page.body
            .contains(&format!("/approvals/{}/resolve", open.id))
    );
    assert!(
        !page
            .body
            .contains(&format!("/approvals/{}/resolve", done.id))
    );
    assert!(
        page.body.contains("<strong>more</strong>"),
        "body as markdown"
    );
    assert!(page.body.contains("/agents/ceo"), "requester");
    snapshot_main!("approvals_list", &page.body);
    let only = browser.get("/approvals?status=rejected").await;
    assert!(only.body.contains("Hire a designer") && !only.body.contains("Hire a second"));
    let fragment = browser.get_htmx("/approvals").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"approvals-list\""));
}

#[tokio::test]
async fn resolving_twice_shows_the_conflict_and_changes_nothing() {
    let app = TestApp::new().await;
    let a = hire_request(&app, "Hire a designer").await;
    let browser = login(&app).await;
    let path = format!("/approvals/{}/resolve", a.id);
    let page = browser
        .post(&path, &[("decision", "reject"), ("comment", "not now")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("/approvals/{}", a.id));
    let after = app.mesa.approval(a.id).await.unwrap();
    assert_eq!(after.status, ApprovalStatus::Rejected);
    let rows = app.activity_rows().await;
    let page = browser.post(&path, &[("decision", "approve")]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("alert-danger"), "{}", page.body);
    let again = app.mesa.approval(a.id).await.unwrap();
    assert_eq!(again.status, ApprovalStatus::Rejected);
    assert_eq!(again.decision_comment.as_deref(), Some("not now"));
    assert_eq!(app.activity_rows().await, rows, "nothing written");
    // A foreign `back` is not followed.
    let other = hire_request(&app, "Hire a writer").await;
    let page = browser
        .post(
            &format!("/approvals/{}/resolve", other.id),
            &[("decision", "approve"), ("back", "//evil.example/x")],
        )
        .await;
    assert_eq!(page.location(), format!("/approvals/{}", other.id));
    let page = browser
        .post(
            &format!("/approvals/{}/resolve", other.id),
            &[("decision", "maybe")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_archetype_patch_approval_shows_the_diff_and_approving_makes_a_version() {
    let clock = FakeClock::new(mesa_core::domain::Timestamp::from_millis(1_767_225_600_000));
    let app = TestApp::with_clock(clock).await;
    let proposed = qa_patch(&app).await;
    let browser = login(&app).await;
    let page = browser
        .get(&format!("/approvals/{}", proposed.approval.id))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("class=\"diff-add\""),
        "{}",
        main_of(&page.body)
    );
    assert!(page.body.contains("class=\"diff-del\""));
    assert!(page.body.contains("# QA, the gatekeeper"));
    assert!(page.body.contains("Always attach the failing command."));
    snapshot_main!("approval_patch", &page.body);

    let patches = browser.get("/governance?tab=patches").await;
    assert_eq!(patches.status, StatusCode::OK, "{}", patches.body);
    assert!(patches.body.contains("class=\"diff-add\""));
    let decide = format!("/governance/patches/{}/decide", proposed.patch.id);
    let page = browser.post(&decide, &[("decision", "approve")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let patch = app.mesa.archetype_patch(proposed.patch.id).await.unwrap();
    assert_eq!(patch.status, PatchStatus::Approved);
    let qa = app
        .mesa
        .archetype(&Slug::parse("qa").unwrap())
        .await
        .unwrap();
    assert_eq!(qa.version, proposed.patch.base_version + 1);
    let page = browser.post(&decide, &[("decision", "approve")]).await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("not pending"), "{}", page.body);
}

#[tokio::test]
async fn archetype_versions_show_diffs_and_roll_back() {
    let app = TestApp::new().await;
    let slug = Slug::parse("qa").unwrap();
    let v1 = app.mesa.archetype(&slug).await.unwrap();
    app.mesa
        .edit_archetype(
            &board(),
            &slug,
            None,
            Markdown::parse("# QA\nShort now.\n").unwrap(),
            None,
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let list = browser.get("/governance").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("href=\"/governance/archetypes/qa\""));
    let page = browser.get("/governance/archetypes/qa").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("changes from version 1"));
    assert!(page.body.contains("Short now."));
    assert!(page.body.contains("class=\"diff-del\""));
    snapshot_main!("governance_archetype", &page.body);
    let first = browser.get("/governance/archetypes/qa?v=1").await;
    assert!(first.body.contains("first version"));
    let page = browser
        .post("/governance/archetypes/qa/rollback", &[("version", "1")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let now = app.mesa.archetype(&slug).await.unwrap();
    assert_eq!(now.version, 3);
    assert_eq!(now.body, v1.body);
    let page = browser
        .post("/governance/archetypes/qa/rollback", &[("version", "x")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        browser.get("/governance/archetypes/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn directives_are_created_edited_and_deleted_from_the_tab() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let page = browser
        .post(
            "/governance/directives",
            &[("text", "Never push to main"), ("active", "on")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/governance?tab=directives");
    let tab = browser.get("/governance?tab=directives").await;
    assert_eq!(tab.status, StatusCode::OK);
    assert!(tab.body.contains("Never push to main"));
    snapshot_main!("governance_directives", &tab.body);
    let d = app.mesa.directives().await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(d[0].active);

    let page = browser
        .post(
            &format!("/governance/directives/{}", d[0].id),
            &[("text", "Never force-push")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let d = app.mesa.directives().await.unwrap();
    assert_eq!(d[0].text, "Never force-push");
    assert!(!d[0].active, "an unchecked box turns it off");

    let rows = app.activity_rows().await;
    let page = browser
        .post("/governance/directives", &[("text", "  ")])
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("field-error"));
    assert_eq!(
        app.mesa.directives().await.unwrap().len(),
        1,
        "nothing written"
    );
    assert_eq!(app.activity_rows().await, rows);

    let page = browser
        .post(&format!("/governance/directives/{}/delete", d[0].id), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(app.mesa.directives().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_audit_and_skill_tabs_render() {
    let app = TestApp::new().await;
    app.mesa
        .create_skill(
            &board(),
            mesa_core::NewSkill {
                slug: Slug::parse("write-tests-first").unwrap(),
                title: Title::parse("Write tests first").unwrap(),
                body: mesa_core::domain::Body::parse("Red, green, refactor.").unwrap(),
                tags: vec!["testing".to_owned()],
                source: None,
            },
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let skills = browser.get("/governance?tab=skills").await;
    assert_eq!(skills.status, StatusCode::OK, "{}", skills.body);
    assert!(skills.body.contains("Write tests first") && skills.body.contains("testing"));
    let audits = browser.get("/governance?tab=audits").await;
    assert_eq!(audits.status, StatusCode::OK, "{}", audits.body);
    assert!(audits.body.contains("No audits yet"));
    let fragment = browser.get_htmx("/governance?tab=skills").await;
    assert_eq!(fragment.status, StatusCode::OK);

    // A finished audit shows its findings and, folded, the figures its auditor was given.
    let now = app.mesa.now();
    app.mesa
        .store()
        .create_audit(mesa_core::store::Created::new(
            mesa_core::domain::entity::Audit {
                id: mesa_core::domain::AuditId::parse("0190b1a2-0000-7000-8000-0000000a0d17")
                    .unwrap(),
                run_id: None,
                focus: Some("Review rejections".to_owned()),
                status: mesa_core::domain::AuditStatus::Finished,
                findings: Some("QA rejects **half** of the builds.".to_owned()),
                figures: Some("| agent | runs |\n|---|---|\n| qa | 4 |".to_owned()),
                window_days: 7,
                patches_proposed: 1,
                issues_created: 0,
                created_at: now,
                finished_at: Some(now),
            },
            Vec::new(),
        ))
        .await
        .unwrap();
    let audits = browser.get("/governance?tab=audits").await;
    let main = main_of(&audits.body);
    assert!(main.contains("QA rejects <strong>half</strong>"), "{main}");
    assert!(
        main.contains("The figures the auditor was given (7 days)"),
        "{main}"
    );
    assert!(
        main.contains("<td>qa</td>"),
        "the figures render as a table: {main}"
    );
}
