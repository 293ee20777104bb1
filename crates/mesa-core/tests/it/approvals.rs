//! Work blocks and approvals through the core.

use std::time::Duration;

use mesa_core::domain::entity::Subject;
use mesa_core::domain::{
    ApprovalDecision, ApprovalKind, ApprovalStatus, Markdown, Title, WorkBlockStatus,
};
use mesa_core::workflow::work_block::BlockCommand;
use mesa_core::{ErrorKind, NewApproval, NewWorkBlock};

use crate::support::TestMesa;

fn block(title: &str) -> NewWorkBlock {
    NewWorkBlock {
        title: Title::parse(title).unwrap(),
        goal: Markdown::parse("goal").unwrap(),
        acceptance_criteria: Markdown::parse("").unwrap(),
        north_star_metric: None,
        north_star_target: None,
        apex_block_id: None,
    }
}

#[tokio::test]
async fn an_agent_asks_the_board_approves_and_only_one_block_is_active() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let first = t
        .mesa
        .create_work_block(&ceo, block("Onboarding"))
        .await
        .unwrap();
    let second = t
        .mesa
        .create_work_block(&ceo, block("Billing"))
        .await
        .unwrap();

    let asked = t
        .mesa
        .work_block_command(&ceo, first.id, BlockCommand::Activate, None)
        .await
        .unwrap();
    assert_eq!(
        asked.block.status,
        WorkBlockStatus::Proposed,
        "agents cannot activate directly"
    );
    let approval = asked.approval.expect("an activation approval");
    assert_eq!(approval.kind, ApprovalKind::WorkBlockActivation);

    let self_resolve = t
        .mesa
        .resolve_approval(&ceo, approval.id, ApprovalDecision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(self_resolve.kind(), ErrorKind::Forbidden);
    let resolved = t
        .mesa
        .resolve_approval(
            &t.board,
            approval.id,
            ApprovalDecision::Approve,
            Some("go".into()),
        )
        .await
        .unwrap();
    assert_eq!(resolved.status, ApprovalStatus::Approved);
    assert_eq!(resolved.decided_by.as_deref(), Some("board:test"));
    assert_eq!(
        t.mesa.work_block(first.id).await.unwrap().status,
        WorkBlockStatus::Active
    );

    let twice = t
        .mesa
        .resolve_approval(&t.board, approval.id, ApprovalDecision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(
        twice.kind(),
        ErrorKind::Conflict,
        "resolving twice is a 409"
    );

    let second_active = t
        .mesa
        .work_block_command(&t.board, second.id, BlockCommand::Activate, None)
        .await
        .unwrap_err();
    assert_eq!(second_active.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_block_becomes_ready_when_its_issues_are_done() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let qa = t.actor("qa").await;
    let b = t
        .mesa
        .create_work_block(&t.board, block("Sprint"))
        .await
        .unwrap();
    t.mesa
        .work_block_command(&t.board, b.id, BlockCommand::Activate, None)
        .await
        .unwrap();
    let mut new = mesa_core::NewIssue::titled("Only task").unwrap();
    new.assignee = Some("founding-engineer".into());
    new.work_block_id = Some(b.id);
    let key = t.mesa.create_issue(&t.board, new).await.unwrap().issue.key;
    t.mesa
        .checkout_issue(&engineer, &key, None, None)
        .await
        .unwrap();
    t.mesa
        .issue_command(
            &engineer,
            &key,
            mesa_core::workflow::issue::IssueCommand::Submit {
                comment: Some("done".into()),
            },
            None,
        )
        .await
        .unwrap();
    t.mesa
        .issue_command(
            &qa,
            &key,
            mesa_core::workflow::issue::IssueCommand::Review {
                decision: mesa_core::domain::ReviewDecision::Approve,
                comment: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        t.mesa.work_block(b.id).await.unwrap().status,
        WorkBlockStatus::Ready
    );
    let pending = t
        .mesa
        .approvals(Some(ApprovalStatus::Pending), &Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        pending
            .iter()
            .any(|a| a.kind == ApprovalKind::WorkBlockShip),
        "a ship approval awaits the board"
    );
}

#[tokio::test]
async fn approvals_expire_on_time() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let new = NewApproval {
        kind: ApprovalKind::Other,
        title: Title::parse("Use a new vendor").unwrap(),
        body: Markdown::parse("").unwrap(),
        subject: Some(Subject {
            entity_type: "issue".into(),
            entity_id: "MESA-1".into(),
        }),
        payload: serde_json::json!({}),
    };
    let a = t.mesa.request_approval(&ceo, new).await.unwrap();
    assert_eq!(
        a.approver,
        mesa_core::domain::entity::Approver::Board,
        "the CEO's chain ends at the board"
    );
    t.clock.advance(Duration::from_secs(71 * 3600));
    assert_eq!(t.mesa.expire_approvals().await.unwrap(), 0);
    t.clock.advance(Duration::from_secs(3600));
    assert_eq!(t.mesa.expire_approvals().await.unwrap(), 1);
    assert_eq!(
        t.mesa.approval(a.id).await.unwrap().status,
        ApprovalStatus::Expired
    );
    let late = t
        .mesa
        .resolve_approval(&t.board, a.id, ApprovalDecision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn hire_payload_is_required_and_applied() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let mut new = NewApproval {
        kind: ApprovalKind::AgentHire,
        title: Title::parse("Hire a backend engineer").unwrap(),
        body: Markdown::parse("").unwrap(),
        subject: None,
        payload: serde_json::json!({ "name": "Bea" }),
    };
    let err = t
        .mesa
        .request_approval(&ceo, new.clone())
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("payload.slug"));
    new.payload = serde_json::json!({ "name": "Bea", "slug": "bea", "archetype": "backend", "reports_to": "ceo" });
    let a = t.mesa.request_approval(&ceo, new).await.unwrap();
    t.mesa
        .resolve_approval(&t.board, a.id, ApprovalDecision::Approve, None)
        .await
        .unwrap();
    let bea = t
        .mesa
        .agent_views()
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.agent.slug.as_str() == "bea")
        .unwrap();
    assert_eq!(bea.reports_to.as_ref().map(|s| s.as_str()), Some("ceo"));
}

#[tokio::test]
async fn shipping_withdraws_the_pending_ship_approval() {
    let t = TestMesa::new().await;
    let b = t
        .mesa
        .create_work_block(&t.board, block("Ship me"))
        .await
        .unwrap();
    t.mesa
        .work_block_command(&t.board, b.id, BlockCommand::Activate, None)
        .await
        .unwrap();
    let ready = t
        .mesa
        .work_block_command(&t.board, b.id, BlockCommand::MarkReady, None)
        .await
        .unwrap();
    let ship = ready
        .approval
        .expect("entering ready requests a ship approval");
    t.mesa
        .work_block_command(&t.board, b.id, BlockCommand::Ship, None)
        .await
        .unwrap();
    assert_eq!(
        t.mesa.approval(ship.id).await.unwrap().status,
        ApprovalStatus::Cancelled
    );
}

#[tokio::test]
async fn a_patch_against_an_old_version_is_superseded_and_its_approval_cancelled() {
    let t = TestMesa::new().await;
    let auditor_like = t.actor("ceo").await;
    let slug = mesa_core::domain::Slug::parse("qa").unwrap();
    let proposed = t
        .mesa
        .propose_archetype_patch(
            &auditor_like,
            &slug,
            Markdown::parse("Better QA").unwrap(),
            Markdown::parse("why").unwrap(),
        )
        .await
        .unwrap();
    // The board edits the archetype first: the patch's base version is now stale.
    t.mesa
        .edit_archetype(
            &t.board,
            &slug,
            None,
            Markdown::parse("Board QA").unwrap(),
            None,
        )
        .await
        .unwrap();
    let err = t
        .mesa
        .resolve_approval(
            &t.board,
            proposed.approval.id,
            ApprovalDecision::Approve,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        t.mesa.approval(proposed.approval.id).await.unwrap().status,
        ApprovalStatus::Cancelled
    );
    assert_eq!(
        t.mesa
            .archetype_patch(proposed.patch.id)
            .await
            .unwrap()
            .status,
        mesa_core::domain::PatchStatus::Superseded
    );
    assert_eq!(
        t.mesa.archetype(&slug).await.unwrap().version,
        2,
        "only the board's edit applied"
    );
}

#[tokio::test]
async fn asking_twice_for_an_activation_gives_one_approval_and_approving_it_settles_all() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let b = t
        .mesa
        .create_work_block(&ceo, block("Onboarding"))
        .await
        .unwrap();
    let first = t
        .mesa
        .work_block_command(&ceo, b.id, BlockCommand::Activate, None)
        .await
        .unwrap()
        .approval
        .expect("an activation approval");
    let again = t
        .mesa
        .work_block_command(&ceo, b.id, BlockCommand::Activate, None)
        .await
        .unwrap()
        .approval
        .expect("the pending approval");
    assert_eq!(again.id, first.id, "a second request joins the pending one");
    let resolved = t
        .mesa
        .resolve_approval(&t.board, first.id, ApprovalDecision::Approve, None)
        .await
        .unwrap();
    assert_eq!(resolved.status, ApprovalStatus::Approved);
    assert_eq!(
        t.mesa.work_block(b.id).await.unwrap().status,
        WorkBlockStatus::Active
    );
    let pending = t
        .mesa
        .approvals(
            Some(ApprovalStatus::Pending),
            &mesa_core::store::PageRequest::all(),
        )
        .await
        .unwrap()
        .items;
    assert!(pending.is_empty(), "{pending:#?}");

    // Requests racing each other may each find nothing pending and ask; approving any one
    // activates the block and withdraws the others.
    t.mesa
        .work_block_command(&t.board, b.id, BlockCommand::Cancel, None)
        .await
        .unwrap();
    let c = t
        .mesa
        .create_work_block(&ceo, block("Billing"))
        .await
        .unwrap();
    let asks = (0..8).map(|_| {
        let (mesa, ceo) = (t.mesa.clone(), ceo.clone());
        tokio::spawn(async move {
            mesa.work_block_command(&ceo, c.id, BlockCommand::Activate, None)
                .await
                .unwrap()
                .approval
                .unwrap()
        })
    });
    let mut asked = Vec::new();
    for ask in asks {
        asked.push(ask.await.unwrap());
    }
    t.mesa
        .resolve_approval(&t.board, asked[7].id, ApprovalDecision::Approve, None)
        .await
        .unwrap();
    assert_eq!(
        t.mesa.work_block(c.id).await.unwrap().status,
        WorkBlockStatus::Active
    );
    let pending = t
        .mesa
        .approvals(
            Some(ApprovalStatus::Pending),
            &mesa_core::store::PageRequest::all(),
        )
        .await
        .unwrap()
        .items;
    assert!(pending.is_empty(), "{pending:#?}");
}

#[tokio::test]
async fn approving_a_move_the_block_already_made_records_the_decision_and_changes_nothing() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let b = t
        .mesa
        .create_work_block(&ceo, block("Onboarding"))
        .await
        .unwrap();
    let asked = t
        .mesa
        .work_block_command(&ceo, b.id, BlockCommand::Activate, None)
        .await
        .unwrap()
        .approval
        .unwrap();
    // The board activates the block itself, and approves the request afterwards.
    let active = t
        .mesa
        .work_block_command(&t.board, b.id, BlockCommand::Activate, None)
        .await
        .unwrap()
        .block;
    assert_eq!(active.status, WorkBlockStatus::Active);
    let pending = t.mesa.approval(asked.id).await.unwrap();
    if pending.status == ApprovalStatus::Pending {
        let resolved = t
            .mesa
            .resolve_approval(&t.board, asked.id, ApprovalDecision::Approve, None)
            .await
            .unwrap();
        assert_eq!(resolved.status, ApprovalStatus::Approved);
    } else {
        assert_eq!(
            pending.status,
            ApprovalStatus::Cancelled,
            "withdrawn by the move"
        );
    }
    let after = t.mesa.work_block(b.id).await.unwrap();
    assert_eq!(after.status, WorkBlockStatus::Active);
    assert_eq!(
        after.version, active.version,
        "the block was not written again"
    );
}
