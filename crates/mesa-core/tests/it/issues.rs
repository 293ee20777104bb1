//! Issues through the core: creation rules, the §2 lifecycle, stages, bad input.

use mesa_core::domain::{
    CommentKind, IssueKey, IssueStatus, ReviewDecision, StageStatus, Stages, Version,
};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::{ErrorKind, IssuePatch, NewIssue};

use crate::support::TestMesa;

fn titled(title: &str) -> NewIssue {
    NewIssue::titled(title).unwrap()
}

#[tokio::test]
async fn new_issues_go_to_the_ceo_and_titles_are_unique_among_open_issues() {
    let t = TestMesa::new().await;
    let a = t
        .mesa
        .create_issue(&t.board, titled("Build the landing page"))
        .await
        .unwrap();
    assert_eq!(a.issue.key.as_str(), "MESA-1");
    assert_eq!(a.assignee_slug.as_ref().map(|s| s.as_str()), Some("ceo"));
    assert_eq!(a.issue.status, IssueStatus::Todo);
    let dup = t
        .mesa
        .create_issue(&t.board, titled("  build THE landing   page "))
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Conflict);
    assert_eq!(dup.existing_key().map(IssueKey::as_str), Some("MESA-1"));

    let mut assigned = titled("Write docs");
    assigned.assignee = Some("product".into());
    let b = t.mesa.create_issue(&t.board, assigned).await.unwrap();
    assert_eq!(
        b.assignee_slug.as_ref().map(|s| s.as_str()),
        Some("product")
    );

    let mut unknown = titled("Nobody");
    unknown.assignee = Some("ghost".into());
    assert_eq!(
        t.mesa
            .create_issue(&t.board, unknown)
            .await
            .unwrap_err()
            .field(),
        Some("assignee_slug")
    );
    let mut orphan = titled("Orphan");
    orphan.parent_key = Some(IssueKey::parse("MESA-99").unwrap());
    assert_eq!(
        t.mesa
            .create_issue(&t.board, orphan)
            .await
            .unwrap_err()
            .field(),
        Some("parent_key")
    );
}

#[tokio::test]
async fn work_goes_through_review_by_the_reviewer_never_the_author() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let qa = t.actor("qa").await;
    let mut new = titled("Add login");
    new.assignee = Some("founding-engineer".into());
    let key = t.mesa.create_issue(&t.board, new).await.unwrap().issue.key;

    let started = t
        .mesa
        .checkout_issue(&engineer, &key, None, None)
        .await
        .unwrap();
    assert_eq!(started.issue.status, IssueStatus::InProgress);
    assert!(started.issue.started_at.is_some());
    // Idempotent for the holder.
    t.mesa
        .checkout_issue(&engineer, &key, None, None)
        .await
        .unwrap();
    // Another agent loses.
    let lost = t
        .mesa
        .checkout_issue(&qa, &key, None, None)
        .await
        .unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::Conflict);

    let missing = t
        .mesa
        .issue_command(
            &engineer,
            &key,
            IssueCommand::Submit { comment: None },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (missing.kind(), missing.field()),
        (ErrorKind::Invalid, Some("comment"))
    );

    t.mesa
        .add_comment(&engineer, &key, "tests pass: 12/12", CommentKind::Evidence)
        .await
        .unwrap();
    let in_review = t
        .mesa
        .issue_command(
            &engineer,
            &key,
            IssueCommand::Submit { comment: None },
            None,
        )
        .await
        .unwrap();
    assert_eq!(in_review.issue.status, IssueStatus::InReview);

    let approve = || IssueCommand::Review {
        decision: ReviewDecision::Approve,
        comment: Some("looks good".into()),
    };
    let own = t
        .mesa
        .issue_command(&engineer, &key, approve(), None)
        .await
        .unwrap_err();
    assert_eq!(own.kind(), ErrorKind::Forbidden, "no self-review");
    let ceo = t.actor("ceo").await;
    let not_reviewer = t
        .mesa
        .issue_command(&ceo, &key, approve(), None)
        .await
        .unwrap_err();
    assert_eq!(
        not_reviewer.kind(),
        ErrorKind::Forbidden,
        "the reviewer is qa, not the ceo"
    );

    let done = t
        .mesa
        .issue_command(&qa, &key, approve(), None)
        .await
        .unwrap();
    assert_eq!(done.issue.status, IssueStatus::Done);
    assert!(done.issue.completed_at.is_some());
    let detail = t.mesa.issue_detail(&key).await.unwrap();
    assert!(
        detail
            .comments
            .iter()
            .any(|c| c.kind == CommentKind::Review && c.body == "Approved: looks good")
    );

    let again = t
        .mesa
        .issue_command(&qa, &key, approve(), None)
        .await
        .unwrap_err();
    assert_eq!(
        again.kind(),
        ErrorKind::Conflict,
        "illegal transition from done"
    );
    let reopened = t
        .mesa
        .issue_command(&t.board, &key, IssueCommand::Reopen { comment: None }, None)
        .await
        .unwrap();
    assert_eq!(reopened.issue.status, IssueStatus::Todo);
    assert!(reopened.issue.completed_at.is_none());
    assert!(t.mesa.verify_activity().await.unwrap().is_ok());
}

#[tokio::test]
async fn open_sub_issues_block_approval() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let qa = t.actor("qa").await;
    let mut parent = titled("Parent");
    parent.assignee = Some("founding-engineer".into());
    let parent = t
        .mesa
        .create_issue(&t.board, parent)
        .await
        .unwrap()
        .issue
        .key;
    let mut child = titled("Child");
    child.parent_key = Some(parent.clone());
    let child = t
        .mesa
        .create_issue(&t.board, child)
        .await
        .unwrap()
        .issue
        .key;
    t.mesa
        .checkout_issue(&engineer, &parent, None, None)
        .await
        .unwrap();
    t.mesa
        .issue_command(
            &engineer,
            &parent,
            IssueCommand::Submit {
                comment: Some("done".into()),
            },
            None,
        )
        .await
        .unwrap();
    let err = t
        .mesa
        .issue_command(
            &qa,
            &parent,
            IssueCommand::Review {
                decision: ReviewDecision::Approve,
                comment: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains(child.as_str()), "{err}");
}

#[tokio::test]
async fn a_stale_version_writes_nothing() {
    let t = TestMesa::new().await;
    let view = t
        .mesa
        .create_issue(&t.board, titled("Versioned"))
        .await
        .unwrap();
    let before = t.activity_count().await;
    let patch = IssuePatch {
        title: Some(mesa_core::domain::Title::parse("Renamed").unwrap()),
        expected: Some(Version(view.issue.version.0 + 5)),
        ..IssuePatch::default()
    };
    let err = t
        .mesa
        .update_issue(&t.board, &view.issue.key, patch)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleVersion);
    assert_eq!(t.activity_count().await, before);
    assert_eq!(
        t.mesa
            .issue(&view.issue.key)
            .await
            .unwrap()
            .issue
            .title
            .as_str(),
        "Versioned"
    );
}

#[tokio::test]
async fn patch_status_names_map_to_commands() {
    let t = TestMesa::new().await;
    let key = t
        .mesa
        .create_issue(&t.board, titled("Patch me"))
        .await
        .unwrap()
        .issue
        .key;
    let to = |s: &str| IssuePatch {
        status: Some(s.into()),
        ..IssuePatch::default()
    };
    let blocked = t
        .mesa
        .update_issue(&t.board, &key, to("blocked"))
        .await
        .unwrap_err();
    assert_eq!(blocked.field(), Some("comment"), "block needs a reason");
    let mut with_reason = to("blocked");
    with_reason.comment = Some("waiting on design".into());
    assert_eq!(
        t.mesa
            .update_issue(&t.board, &key, with_reason)
            .await
            .unwrap()
            .issue
            .status,
        IssueStatus::Blocked
    );
    let bad = t
        .mesa
        .update_issue(&t.board, &key, to("finished"))
        .await
        .unwrap_err();
    assert_eq!(bad.field(), Some("status"));
    let illegal = t
        .mesa
        .update_issue(&t.board, &key, to("done"))
        .await
        .unwrap_err();
    assert_eq!(illegal.kind(), ErrorKind::Conflict);
    let mut cancel = to("cancelled");
    cancel.cancellation_reason = Some("not needed".into());
    let cancelled = t.mesa.update_issue(&t.board, &key, cancel).await.unwrap();
    assert_eq!(
        cancelled.issue.cancellation_reason.as_deref(),
        Some("not needed")
    );
}

#[tokio::test]
async fn stage_comments_update_the_checklist_or_store_nothing() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let mut new = titled("Staged");
    new.assignee = Some("founding-engineer".into());
    new.stages = Stages::from_titles(["Design", "Build", "Test"]).unwrap();
    let key = t.mesa.create_issue(&t.board, new).await.unwrap().issue.key;
    t.mesa
        .add_comment(
            &engineer,
            &key,
            "Stage 2: built it - Complete",
            CommentKind::Comment,
        )
        .await
        .unwrap();
    let issue = t.mesa.issue(&key).await.unwrap().issue;
    assert_eq!(issue.current_stage, Some(3));
    assert_eq!(issue.stages.as_slice()[1].status, StageStatus::Done);
    let comments = t.mesa.issue_detail(&key).await.unwrap().comments;
    assert!(
        comments
            .iter()
            .any(|c| c.kind == CommentKind::System && c.body.contains("66")),
        "{comments:?}"
    );

    let count = comments.len();
    let err = t
        .mesa
        .add_comment(
            &engineer,
            &key,
            "Stage 9: nope - Complete",
            CommentKind::Comment,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(
        t.mesa.issue_detail(&key).await.unwrap().comments.len(),
        count,
        "nothing stored"
    );

    t.mesa
        .add_comment(
            &engineer,
            &key,
            "Stages: [Plan], [Do]",
            CommentKind::Comment,
        )
        .await
        .unwrap();
    assert_eq!(t.mesa.issue(&key).await.unwrap().issue.stages.len(), 2);
}

#[tokio::test]
async fn comment_rules() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let key = t
        .mesa
        .create_issue(&t.board, titled("Comment rules"))
        .await
        .unwrap()
        .issue
        .key;
    assert_eq!(
        t.mesa
            .add_comment(&ceo, &key, "x", CommentKind::System)
            .await
            .unwrap_err()
            .field(),
        Some("kind")
    );
    assert_eq!(
        t.mesa
            .add_comment(&ceo, &key, "   ", CommentKind::Comment)
            .await
            .unwrap_err()
            .field(),
        Some("body")
    );
    let mut cancel = IssuePatch {
        status: Some("cancelled".into()),
        ..IssuePatch::default()
    };
    cancel.cancellation_reason = Some("dup".into());
    t.mesa.update_issue(&t.board, &key, cancel).await.unwrap();
    assert_eq!(
        t.mesa
            .add_comment(&ceo, &key, "late", CommentKind::Comment)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    t.mesa
        .add_comment(&t.board, &key, "board may still note", CommentKind::Comment)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_submitter_cannot_approve_after_a_reassignment() {
    let t = TestMesa::new().await;
    let engineer = t.actor("founding-engineer").await;
    let engineer_id = t.agent("founding-engineer").await.id;
    // A junior reviewed by the founding engineer.
    let mut config = t.agent("designer").await.config;
    config.name = mesa_core::domain::Name::parse("Junior").unwrap();
    config.reviewer_id = Some(engineer_id);
    let junior = mesa_core::NewAgent {
        slug: mesa_core::domain::Slug::parse("junior").unwrap(),
        config,
    };
    t.mesa.create_agent(&t.board, junior).await.unwrap();

    let mut new = titled("Sneaky");
    new.assignee = Some("founding-engineer".into());
    let key = t.mesa.create_issue(&t.board, new).await.unwrap().issue.key;
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
    let reassign = IssuePatch {
        assignee: Some(Some("junior".into())),
        ..IssuePatch::default()
    };
    t.mesa.update_issue(&t.board, &key, reassign).await.unwrap();
    let approve = IssueCommand::Review {
        decision: ReviewDecision::Approve,
        comment: None,
    };
    let err = t
        .mesa
        .issue_command(&engineer, &key, approve, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Forbidden,
        "the submitter never approves its own work"
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing() {
    use mesa_core::domain::{IssueKey, Stages, Title, ValidationError};
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let key = t
        .mesa
        .create_issue(&t.board, titled("Target"))
        .await
        .unwrap()
        .issue
        .key;
    let count = || async {
        t.mesa
            .issues(&Default::default(), &Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let issues_before = count().await;
    let activity_before = t.activity_count().await;

    // Values that never become domain values: each names its field.
    let parse_errors: Vec<(ValidationError, &str)> = vec![
        (Title::parse("").unwrap_err(), "title"),
        (Title::parse(&"x".repeat(201)).unwrap_err(), "title"),
        (
            mesa_core::domain::Slug::parse("Bad Slug").unwrap_err(),
            "slug",
        ),
        (IssueKey::parse("mesa-1").unwrap_err(), "key"),
        (IssueStatus::parse("finished").unwrap_err(), "status"),
        (
            Stages::parse(vec![
                mesa_core::domain::stage::StageInput {
                    id: Some(2),
                    title: "B".into(),
                    status: StageStatus::Todo,
                },
                mesa_core::domain::stage::StageInput {
                    id: Some(1),
                    title: "A".into(),
                    status: StageStatus::Todo,
                },
            ])
            .unwrap_err(),
            "stages[0].id",
        ),
    ];
    for (err, field) in parse_errors {
        assert_eq!(err.field, field);
        assert!(
            err.message.contains(field.split('[').next().unwrap()),
            "{}",
            err.message
        );
    }

    // Commands refused by the core: nothing reaches the database.
    let mut unknown = titled("Unknown assignee");
    unknown.assignee = Some("nobody".into());
    assert_eq!(
        t.mesa
            .create_issue(&t.board, unknown)
            .await
            .unwrap_err()
            .field(),
        Some("assignee_slug")
    );
    let mut orphan = titled("Orphan");
    orphan.parent_key = Some(IssueKey::parse("MESA-404").unwrap());
    assert_eq!(
        t.mesa
            .create_issue(&t.board, orphan)
            .await
            .unwrap_err()
            .field(),
        Some("parent_key")
    );
    assert_eq!(
        t.mesa
            .create_issue(&t.board, titled("target"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    let bad_status = IssuePatch {
        status: Some("finished".into()),
        ..IssuePatch::default()
    };
    assert_eq!(
        t.mesa
            .update_issue(&t.board, &key, bad_status)
            .await
            .unwrap_err()
            .field(),
        Some("status")
    );
    let cycle = IssuePatch {
        parent_key: Some(Some(key.clone())),
        ..IssuePatch::default()
    };
    assert_eq!(
        t.mesa
            .update_issue(&t.board, &key, cycle)
            .await
            .unwrap_err()
            .field(),
        Some("parent_key")
    );
    let no_reason = IssuePatch {
        status: Some("cancelled".into()),
        ..IssuePatch::default()
    };
    assert_eq!(
        t.mesa
            .update_issue(&t.board, &key, no_reason)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    assert_eq!(
        t.mesa
            .add_comment(&ceo, &key, "Stage 3: x - Complete", CommentKind::Comment)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    let bad_setting = vec![("issue_prefix".to_owned(), "no way".to_owned())];
    assert_eq!(
        t.mesa
            .put_settings(&t.board, &bad_setting)
            .await
            .unwrap_err()
            .field(),
        Some("issue_prefix")
    );

    assert_eq!(count().await, issues_before);
    assert_eq!(
        t.activity_count().await,
        activity_before,
        "no audit row was written"
    );
    let detail = t.mesa.issue_detail(&key).await.unwrap();
    assert!(detail.comments.is_empty());
    assert_eq!(detail.issue.issue.version, Version::FIRST);
}

#[tokio::test]
async fn events_are_published_after_commit_and_never_for_refusals() {
    use mesa_core::domain::DomainEvent;
    let t = TestMesa::new().await;
    let mut events = t.mesa.subscribe();
    let view = t
        .mesa
        .create_issue(&t.board, titled("Observed"))
        .await
        .unwrap();
    let first = events.recv().await.unwrap();
    match first.as_ref() {
        DomainEvent::IssueCreated(issue) => {
            assert_eq!(issue.key, view.issue.key);
            // Published after the commit: a fresh read already sees it.
            t.mesa.issue(&issue.key).await.unwrap();
        }
        other => panic!("expected issue_created, got {}", other.name()),
    }
    // Its assignee (the CEO) is woken after the commit too.
    assert_eq!(events.recv().await.unwrap().name(), "run_queued");
    assert!(
        t.mesa
            .create_issue(&t.board, titled("observed"))
            .await
            .is_err()
    );
    assert!(
        events.try_recv().is_err(),
        "a refused command publishes nothing"
    );
}

/// Edits and comments that name no version never fail because another one landed between
/// their read and their write: they are decided again on the new state. (Before, a concurrent
/// write surfaced as a 412 `version_conflict` to a client that had asked for no precondition.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_without_a_version_survive_concurrent_writes() {
    let t = TestMesa::new().await;
    let created = t
        .mesa
        .create_issue(&t.board, titled("Contended issue"))
        .await
        .unwrap();
    let key = created.issue.key.clone();
    let writers: Vec<_> = (0..4u8)
        .map(|w| {
            let mesa = t.mesa.clone();
            let board = t.board.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for i in 0..10u8 {
                    let patch = IssuePatch {
                        priority: Some(
                            mesa_core::domain::Priority::new(i64::from((w + i) % 4)).unwrap(),
                        ),
                        ..IssuePatch::default()
                    };
                    mesa.update_issue(&board, &key, patch).await?;
                }
                Ok::<_, mesa_core::CoreError>(())
            })
        })
        .collect();
    for writer in writers {
        writer
            .await
            .unwrap()
            .expect("no edit fails for a concurrent one");
    }
    let after = t.mesa.issue(&key).await.unwrap();
    assert_eq!(
        after.issue.version,
        Version(created.issue.version.0 + 4 * 10),
        "every edit was applied once"
    );
}
