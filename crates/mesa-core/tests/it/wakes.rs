//! Wake-ups (SPEC §6.1): the workflow's effects carried out after the commit, deduplication,
//! the comment debounce, board notifications, queue clean-up, and run output.

use mesa_core::domain::entity::Run;
use mesa_core::domain::{
    CommentKind, DomainEvent, IssueKey, ReviewDecision, RunMode, RunStatus, RunTrigger,
};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::{COMMENT_DEBOUNCE, ErrorKind, NewIssue};

use crate::support::TestMesa;

/// Every run of `key`, newest first.
async fn runs_of(t: &TestMesa, key: &IssueKey) -> Vec<Run> {
    t.mesa
        .runs(
            &RunFilter {
                issue: Some(key.clone()),
                ..RunFilter::default()
            },
            &PageRequest::new(Some(100), None),
        )
        .await
        .unwrap()
        .items
}

async fn issue_for(t: &TestMesa, title: &str, assignee: &str) -> IssueKey {
    let mut new = NewIssue::titled(title).unwrap();
    new.assignee = Some(assignee.into());
    t.mesa.create_issue(&t.board, new).await.unwrap().issue.key
}

#[tokio::test]
async fn a_submit_queues_exactly_one_review_run_for_the_reviewer_and_wakes_merge() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let qa = t.agent("qa").await;
    let key = issue_for(&t, "Add login", "founding-engineer").await;

    // Assigned on creation: one task run for the assignee.
    let runs = runs_of(&t, &key).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].mode, RunMode::Task);
    assert_eq!(runs[0].triggers, vec![RunTrigger::Assigned]);
    assert_eq!(runs[0].status, RunStatus::Queued);

    t.mesa
        .checkout_issue(&engineer, &key, None, None)
        .await
        .unwrap();
    let mut events = t.mesa.subscribe();
    t.mesa
        .issue_command(
            &engineer,
            &key,
            IssueCommand::Submit {
                comment: Some("done, tests pass".into()),
            },
            None,
        )
        .await
        .unwrap();

    let reviews: Vec<Run> = runs_of(&t, &key)
        .await
        .into_iter()
        .filter(|r| r.mode == RunMode::Review)
        .collect();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    let review = &reviews[0];
    assert_eq!(review.agent_id, qa.id, "the engineer's reviewer is QA");
    assert_eq!(review.triggers, vec![RunTrigger::ReviewRequested]);
    assert_eq!(review.status, RunStatus::Queued);
    // The submitter is never woken by its own submit.
    let engineer_id = engineer.agent_id().unwrap();
    assert!(
        runs_of(&t, &key)
            .await
            .iter()
            .all(|r| r.agent_id != engineer_id || r.mode == RunMode::Task),
    );
    // `run_queued` was published after the commit.
    let mut queued = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let DomainEvent::RunQueued(r) = &*e {
            queued.push(r.id);
        }
    }
    assert_eq!(queued, vec![review.id]);

    // A second wake-up for the same (agent, issue) merges into the queued run.
    let again = t.mesa.wake_agent(&t.board, "qa", Some(&key)).await.unwrap();
    assert!(again.merged);
    assert_eq!(again.run.id, review.id);
    assert_eq!(
        again.run.triggers,
        vec![RunTrigger::ReviewRequested, RunTrigger::Manual]
    );
    let queued_for_qa = runs_of(&t, &key)
        .await
        .into_iter()
        .filter(|r| r.agent_id == qa.id && r.status == RunStatus::Queued)
        .count();
    assert_eq!(queued_for_qa, 1);

    // Approval finishes the issue: its queued runs are cancelled.
    let qa_actor = t.actor("qa").await;
    t.mesa
        .issue_command(
            &qa_actor,
            &key,
            IssueCommand::Review {
                decision: ReviewDecision::Approve,
                comment: Some("fine".into()),
            },
            None,
        )
        .await
        .unwrap();
    let runs = runs_of(&t, &key).await;
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Cancelled),
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r.finished_at.is_some()));
}

#[tokio::test]
async fn comments_by_others_wake_the_assignee_debounced_and_own_comments_do_not() {
    let t = TestMesa::new().await;
    let designer = t.actor("designer").await;
    let key = issue_for(&t, "Draw the logo", "designer").await;
    let first = runs_of(&t, &key).await;
    assert_eq!(first.len(), 1);
    // The queued `assigned` run absorbs the comment (deduplication).
    t.mesa
        .add_comment(&t.board, &key, "make it blue", CommentKind::Comment)
        .await
        .unwrap();
    let runs = runs_of(&t, &key).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].triggers,
        vec![RunTrigger::Assigned, RunTrigger::Comment]
    );

    // Once that run is gone, a comment queues a run that waits 30 s for more comments.
    t.mesa.cancel_run(&t.board, first[0].id).await.unwrap();
    t.mesa
        .add_comment(&designer, &key, "on it", CommentKind::Comment)
        .await
        .unwrap();
    assert!(
        runs_of(&t, &key)
            .await
            .iter()
            .all(|r| r.status != RunStatus::Queued),
        "an agent's own comment never wakes it"
    );
    let at = t.mesa.now();
    t.mesa
        .add_comment(&t.board, &key, "and round", CommentKind::Comment)
        .await
        .unwrap();
    t.mesa
        .add_comment(&t.board, &key, "and small", CommentKind::Comment)
        .await
        .unwrap();
    let queued: Vec<Run> = runs_of(&t, &key)
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Queued)
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].triggers, vec![RunTrigger::Comment]);
    assert_eq!(queued[0].not_before, Some(at + COMMENT_DEBOUNCE));
}

#[tokio::test]
async fn board_review_notifies_the_board_and_reassignment_wakes_the_new_assignee() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    // Unassigned issues go to the CEO, who has no reviewer: its submit goes to the board.
    let key = t
        .mesa
        .create_issue(&t.board, NewIssue::titled("Set the roadmap").unwrap())
        .await
        .unwrap()
        .issue
        .key;
    let runs = runs_of(&t, &key).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].triggers, vec![RunTrigger::IssueCreated]);
    t.mesa.checkout_issue(&ceo, &key, None, None).await.unwrap();
    let mut events = t.mesa.subscribe();
    t.mesa
        .issue_command(
            &ceo,
            &key,
            IssueCommand::Submit {
                comment: Some("roadmap written".into()),
            },
            None,
        )
        .await
        .unwrap();
    let mut notified = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let DomainEvent::BoardNotification { message, issue_key } = &*e {
            notified.push((message.clone(), issue_key.clone()));
        }
    }
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(notified[0].1.as_ref(), Some(&key));
    assert!(notified[0].0.contains(key.as_str()));

    // PATCH assignee wakes the new assignee with `assigned`.
    let other = issue_for(&t, "Write the pitch", "product").await;
    let patch = mesa_core::IssuePatch {
        assignee: Some(Some("designer".into())),
        ..mesa_core::IssuePatch::default()
    };
    t.mesa.update_issue(&t.board, &other, patch).await.unwrap();
    let designer = t.agent("designer").await;
    let runs = runs_of(&t, &other).await;
    let woken: Vec<&Run> = runs.iter().filter(|r| r.agent_id == designer.id).collect();
    assert_eq!(woken.len(), 1, "{runs:?}");
    assert_eq!(woken[0].triggers, vec![RunTrigger::Assigned]);
}

#[tokio::test]
async fn output_is_appended_until_the_run_finishes() {
    let t = TestMesa::new().await;
    let key = issue_for(&t, "Fix the build", "devops").await;
    let run = runs_of(&t, &key).await.remove(0);
    t.mesa.append_run_output(run.id, "line 1\n").await.unwrap();
    t.mesa.append_run_output(run.id, "line 2\n").await.unwrap();
    let stored = t.mesa.run_log(&t.board, run.id).await.unwrap();
    assert_eq!(stored.stdout.as_deref(), Some("line 1\nline 2\n"));
    // Another agent may not read it; the run's own agent may.
    let other = t.actor("qa").await;
    assert_eq!(
        t.mesa.run_log(&other, run.id).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    let own = t.actor("devops").await;
    assert!(t.mesa.run_log(&own, run.id).await.is_ok());

    t.mesa.cancel_run(&t.board, run.id).await.unwrap();
    let late = t
        .mesa
        .append_run_output(run.id, "late\n")
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
    // The output stays after the run ended.
    let stored = t.mesa.run_log(&t.board, run.id).await.unwrap();
    assert_eq!(stored.status, RunStatus::Cancelled);
    assert_eq!(stored.stdout.as_deref(), Some("line 1\nline 2\n"));
}

#[tokio::test]
async fn a_long_log_keeps_its_head_and_tail() {
    let t = TestMesa::new().await;
    let key = issue_for(&t, "Chatty run", "devops").await;
    let run = runs_of(&t, &key).await.remove(0);
    let cap = usize::try_from(mesa_core::RUN_LOG_CAP).unwrap();
    let block = "x".repeat(cap / 4);
    t.mesa.append_run_output(run.id, "HEAD").await.unwrap();
    for _ in 0..6 {
        t.mesa.append_run_output(run.id, &block).await.unwrap();
    }
    t.mesa.append_run_output(run.id, "TAIL").await.unwrap();
    let log = t
        .mesa
        .run_log(&t.board, run.id)
        .await
        .unwrap()
        .stdout
        .unwrap();
    assert!(log.starts_with("HEAD"));
    assert!(log.ends_with("TAIL"));
    assert!(log.contains("output elided"));
    assert!(log.chars().count() <= cap + 100, "{}", log.len());
}

#[tokio::test]
async fn a_resolved_approval_wakes_its_requester_and_board_approvals_notify_the_board() {
    use mesa_core::NewApproval;
    use mesa_core::domain::{ApprovalDecision, ApprovalKind, Markdown, Title};
    let t = TestMesa::new().await;
    let designer = t.actor("designer").await;
    let ceo = t.actor("ceo").await;
    let ask = |title: &str| NewApproval {
        kind: ApprovalKind::Other,
        title: Title::parse(title).unwrap(),
        body: Markdown::parse("why").unwrap(),
        subject: None,
        payload: serde_json::json!({}),
    };
    // The designer's chain ends at the CEO, who decides; the designer is woken.
    let approval = t
        .mesa
        .request_approval(&designer, ask("Use a new font"))
        .await
        .unwrap();
    t.mesa
        .resolve_approval(&ceo, approval.id, ApprovalDecision::Approve, None)
        .await
        .unwrap();
    let designer_id = designer.agent_id().unwrap();
    let runs = t
        .mesa
        .runs(
            &RunFilter {
                agent: Some(designer_id),
                ..RunFilter::default()
            },
            &PageRequest::new(Some(10), None),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].triggers, vec![RunTrigger::ApprovalResolved]);
    assert_eq!(runs[0].mode, RunMode::Heartbeat);
    assert_eq!(runs[0].issue_key, None);

    // A request addressed to the board tells the board.
    let mut events = t.mesa.subscribe();
    t.mesa
        .request_approval(&t.board, ask("Buy a domain"))
        .await
        .unwrap();
    let mut notified = 0;
    while let Ok(e) = events.try_recv() {
        if let DomainEvent::BoardNotification { message, .. } = &*e {
            assert!(message.contains("Buy a domain"), "{message}");
            notified += 1;
        }
    }
    assert_eq!(notified, 1);
}

#[tokio::test]
async fn a_review_moved_by_an_org_change_moves_its_queued_run() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let key = issue_for(&t, "Add search", "founding-engineer").await;
    t.mesa
        .checkout_issue(&engineer, &key, None, None)
        .await
        .unwrap();
    t.mesa
        .issue_command(
            &engineer,
            &key,
            IssueCommand::Submit {
                comment: Some("done".into()),
            },
            None,
        )
        .await
        .unwrap();
    let qa = t.agent("qa").await;
    let designer = t.agent("designer").await;
    let reviews = |runs: Vec<Run>| -> Vec<Run> {
        runs.into_iter()
            .filter(|r| r.mode == RunMode::Review)
            .collect()
    };
    let before = reviews(runs_of(&t, &key).await);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].agent_id, qa.id);

    // The engineer is now reviewed by the designer.
    let mut config = t.agent("founding-engineer").await.config;
    config.reviewer_id = Some(designer.id);
    t.mesa
        .update_agent_config(&t.board, "founding-engineer", config, None, "design review")
        .await
        .unwrap();
    let after = reviews(runs_of(&t, &key).await);
    let by = |agent| after.iter().find(|r| r.agent_id == agent).unwrap();
    assert_eq!(by(qa.id).status, RunStatus::Cancelled);
    assert_eq!(by(designer.id).status, RunStatus::Queued);
    assert_eq!(by(designer.id).triggers, vec![RunTrigger::ReviewRequested]);
}

#[tokio::test]
async fn the_runaway_guard_blocks_instead_of_waking_and_the_board_overrides_it() {
    use mesa_core::domain::{IssueStatus, MicroUsd, RunnerKind};
    use mesa_core::store::StartRunRequest;
    let t = TestMesa::new().await;
    t.mesa
        .put_settings(&t.board, &[("max_runs_per_issue".into(), "1".into())])
        .await
        .unwrap();
    // A runner that spends (free runners count toward no guard).
    let mut config = t.agent("founding-engineer").await.config;
    config.runner = RunnerKind::Codex;
    t.mesa
        .update_agent_config(&t.board, "founding-engineer", config, None, "real runner")
        .await
        .unwrap();
    let key = issue_for(&t, "Flaky test", "founding-engineer").await;
    let first = runs_of(&t, &key).await.remove(0);
    let now = t.mesa.now();
    t.mesa
        .store()
        .start_run(StartRunRequest {
            run_id: first.id,
            node_id: "test".into(),
            now,
            lease_expires_at: now + std::time::Duration::from_secs(600),
            reserve_usd: MicroUsd::ZERO,
            reserve_tokens: 0,
            day_start: now.day_start(0),
            prompt: None,
            activity: Vec::new(),
        })
        .await
        .unwrap();

    // One run so far: the next wake by an agent blocks the issue instead.
    let qa = t.actor("qa").await;
    let mut events = t.mesa.subscribe();
    t.mesa
        .add_comment(&qa, &key, "still failing", CommentKind::Comment)
        .await
        .unwrap();
    let issue = t.mesa.issue(&key).await.unwrap().issue;
    assert_eq!(issue.status, IssueStatus::Blocked);
    let comments = t
        .mesa
        .comments(&key, &PageRequest::new(Some(50), None))
        .await
        .unwrap()
        .items;
    assert!(
        comments
            .iter()
            .any(|c| c.kind == CommentKind::System && c.body.contains("Runaway guard")),
        "{comments:?}"
    );
    let mut notified = false;
    while let Ok(e) = events.try_recv() {
        notified |= matches!(&*e, DomainEvent::BoardNotification { .. });
    }
    assert!(notified);
    assert!(
        runs_of(&t, &key)
            .await
            .iter()
            .all(|r| r.status != RunStatus::Queued),
        "nothing was queued"
    );

    // The board unblocks it: its decision grants one more run.
    t.mesa
        .issue_command(
            &t.board,
            &key,
            IssueCommand::Unblock { comment: None },
            None,
        )
        .await
        .unwrap();
    let queued: Vec<Run> = runs_of(&t, &key)
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Queued)
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].triggers, vec![RunTrigger::Unblocked]);
}

#[tokio::test]
async fn the_last_sub_issue_to_finish_wakes_the_parents_assignee_once() {
    let t = TestMesa::new().await;
    let ceo = t.agent("ceo").await;
    let parent = issue_for(&t, "Launch the beta", "ceo").await;
    let mut children = Vec::new();
    for title in ["Build the beta", "Design the beta"] {
        let mut new = NewIssue::titled(title).unwrap();
        new.assignee = Some("founding-engineer".into());
        new.parent_key = Some(parent.clone());
        children.push(t.mesa.create_issue(&t.board, new).await.unwrap().issue.key);
    }
    let woken_for_children = |runs: &[Run]| {
        runs.iter()
            .filter(|r| r.agent_id == ceo.id && r.triggers.contains(&RunTrigger::SubIssuesFinished))
            .count()
    };
    let cancel = IssueCommand::Cancel {
        reason: Some("not needed".into()),
        force: false,
    };
    t.mesa
        .issue_command(&t.board, &children[0], cancel.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        woken_for_children(&runs_of(&t, &parent).await),
        0,
        "a sub-issue is still open"
    );
    t.mesa
        .issue_command(&t.board, &children[1], cancel, None)
        .await
        .unwrap();
    let runs = runs_of(&t, &parent).await;
    assert_eq!(woken_for_children(&runs), 1, "{runs:#?}");
    let run = runs
        .iter()
        .find(|r| r.triggers.contains(&RunTrigger::SubIssuesFinished))
        .unwrap();
    assert_eq!(run.mode, RunMode::Task, "a task run on the parent");
    assert_eq!(run.issue_key.as_ref(), Some(&parent));
}
