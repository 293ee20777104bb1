//! `AuditStore` on a real SQLite file: the figures of a window, what an agent proposed in a
//! window, and the guarded writes of an audit record.

use mesa_domain::entity::{Audit, NewActivity};
use mesa_domain::{AuditId, AuditStatus, IssueKey, MicroUsd, PatchStatus, RunId, Timestamp};
use mesa_store::{AuditStore, Created, GovernanceStore, SystemStore, TimeWindow};
use sqlx::SqlitePool;

use crate::support::{TestDb, raw_pool};

const SINCE: i64 = 10_000_000;
const UNTIL: i64 = 20_000_000;

fn window() -> TimeWindow {
    TimeWindow {
        since: Timestamp::from_millis(SINCE),
        until: Timestamp::from_millis(UNTIL),
    }
}

/// Inserts a run row directly (this checks the aggregate, not the run lifecycle).
#[expect(clippy::too_many_arguments, reason = "the columns the figures read")]
async fn run(
    raw: &SqlitePool,
    agent: &str,
    issue: Option<&str>,
    mode: &str,
    status: &str,
    reason: Option<&str>,
    cost: i64,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO runs (id, agent_id, issue_key, mode, status, triggers, runner, \
         input_tokens, output_tokens, cache_read_tokens, cost_usd, failure_reason, queued_at) \
         VALUES (?, ?, ?, ?, ?, '[\"manual\"]', 'noop', 100, 10, 5, ?, ?, ?)",
    )
    .bind(RunId::from_uuid(uuid::Uuid::now_v7()).to_string())
    .bind(agent)
    .bind(issue)
    .bind(mode)
    .bind(status)
    .bind(cost)
    .bind(reason)
    .bind(at)
    .execute(raw)
    .await
    .unwrap();
}

async fn issue(
    raw: &SqlitePool,
    n: i64,
    status: &str,
    assignee: Option<&str>,
    created_by: &str,
    at: i64,
) -> String {
    let key = format!("MESA-{n}");
    let title = format!("Issue {n}");
    sqlx::query(
        "INSERT INTO issues (id, key, number, title, title_norm, type, status, open, \
         assignee_id, created_by, status_changed_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, 'task', ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&key)
    .bind(n)
    .bind(&title)
    .bind(title.to_lowercase())
    .bind(status)
    .bind(i64::from(!matches!(
        status,
        "done" | "cancelled" | "wont_do"
    )))
    .bind(assignee)
    .bind(created_by)
    .bind(at)
    .bind(at)
    .bind(at)
    .execute(raw)
    .await
    .unwrap();
    key
}

fn changes_requested(key: &str, at: i64) -> NewActivity {
    NewActivity {
        at: Timestamp::from_millis(at),
        actor: "qa".to_owned(),
        action: "issue.request_changes".to_owned(),
        entity_type: "issue".to_owned(),
        entity_id: key.to_owned(),
        summary: "changes requested".to_owned(),
        data: serde_json::json!({}),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn window_figures_aggregate_runs_rejections_and_blocked_issues() {
    let db = TestDb::new().await;
    let raw = raw_pool(&db.path()).await;
    let (a, b, c) = (
        db.agents[0].to_string(),
        db.agents[1].to_string(),
        db.agents[2].to_string(),
    );
    let one = issue(&raw, 1, "todo", Some(&a), "board", SINCE).await;
    let two = issue(&raw, 2, "blocked", Some(&a), "board", SINCE + 5).await;
    let three = issue(&raw, 3, "blocked", Some(&c), "board", SINCE + 1).await;
    // Agent a: three task runs on two issues (one retry), one failed twice for the same
    // reason (past the compared prefix, the reasons differ), one timed out without one.
    let long = "x".repeat(130);
    let (r1, r2) = (format!("{long}1"), format!("{long}2"));
    run(
        &raw,
        &a,
        Some(&one),
        "task",
        "succeeded",
        None,
        1_000,
        SINCE,
    )
    .await;
    run(
        &raw,
        &a,
        Some(&one),
        "task",
        "failed",
        Some(&r1),
        2_000,
        SINCE + 1,
    )
    .await;
    run(
        &raw,
        &a,
        Some(&two),
        "task",
        "failed",
        Some(&r2),
        3_000,
        SINCE + 2,
    )
    .await;
    run(&raw, &a, None, "heartbeat", "timed_out", None, 0, SINCE + 3).await;
    run(&raw, &a, None, "heartbeat", "queued", None, 0, SINCE + 4).await;
    // Outside the window on both sides: not counted.
    run(
        &raw,
        &a,
        Some(&one),
        "task",
        "failed",
        Some("old"),
        9_000,
        SINCE - 1,
    )
    .await;
    run(
        &raw,
        &a,
        Some(&one),
        "task",
        "failed",
        Some("new"),
        9_000,
        UNTIL,
    )
    .await;
    // Agent b: one review run, cancelled.
    run(
        &raw,
        &b,
        Some(&one),
        "review",
        "cancelled",
        None,
        500,
        SINCE + 10,
    )
    .await;
    // Two rejections of a's issue in the window, one before it; c has a rejection only.
    db.store
        .append_activity(vec![
            changes_requested(&one, SINCE - 5),
            changes_requested(&one, SINCE + 20),
            changes_requested(&two, SINCE + 30),
            changes_requested(&three, SINCE + 40),
        ])
        .await
        .unwrap();

    let figures = db.store.window_figures(window(), 1).await.unwrap();
    assert_eq!(figures.agents.len(), 3, "{figures:#?}");
    let of = |id: &str| {
        figures
            .agents
            .iter()
            .find(|f| f.agent_id.unwrap().to_string() == id)
            .unwrap()
            .clone()
    };
    let fa = of(&a);
    assert_eq!(
        (
            fa.runs,
            fa.succeeded,
            fa.failed,
            fa.cancelled,
            fa.unfinished
        ),
        (5, 1, 3, 0, 1)
    );
    assert_eq!(fa.cost, MicroUsd(6_000));
    assert_eq!(fa.tokens, 5 * 115);
    assert_eq!((fa.issue_runs, fa.issues), (3, 2));
    assert_eq!(fa.changes_requested, 2);
    assert_eq!(
        fa.failure_reasons,
        vec![("x".repeat(120), 2), ("timed_out".to_owned(), 1)]
    );
    let fb = of(&b);
    assert_eq!((fb.runs, fb.cancelled, fb.cost), (1, 1, MicroUsd(500)));
    assert_eq!((fb.issue_runs, fb.issues, fb.changes_requested), (0, 0, 0));
    let fc = of(&c);
    assert_eq!((fc.runs, fc.changes_requested), (0, 1));
    // Two blocked issues; the limit lists the longest-blocked one.
    assert_eq!(figures.blocked_total, 2);
    assert_eq!(figures.blocked.len(), 1);
    assert_eq!(figures.blocked[0].key, IssueKey::parse(&three).unwrap());
    assert_eq!(figures.blocked[0].assignee_id, Some(db.agents[2]));

    let empty = db
        .store
        .window_figures(
            TimeWindow {
                since: Timestamp::from_millis(UNTIL + 1),
                until: Timestamp::from_millis(UNTIL + 2),
            },
            10,
        )
        .await
        .unwrap();
    assert!(empty.agents.is_empty());
    assert_eq!(empty.blocked.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn proposed_in_window_lists_what_the_agent_created_then() {
    let db = TestDb::new().await;
    let raw = raw_pool(&db.path()).await;
    let (a, b) = (db.agents[0].to_string(), db.agents[1].to_string());
    sqlx::query(
        "INSERT INTO archetypes (slug, title, body, version, created_at, updated_at) \
         VALUES ('qa', 'QA', 'v1', 1, 0, 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    for (n, by, at) in [(1, &a, SINCE + 1), (2, &b, SINCE + 2), (3, &a, UNTIL)] {
        sqlx::query(
            "INSERT INTO archetype_patches (id, archetype_slug, base_version, proposed_body, \
             proposed_by, status, created_at, updated_at) \
             VALUES (?, 'qa', 1, ?, ?, 'pending', ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(format!("v{n}"))
        .bind(by)
        .bind(at)
        .bind(at)
        .execute(&raw)
        .await
        .unwrap();
    }
    for (slug, by, at) in [
        ("tdd", "agent-0", SINCE + 3),
        ("other", "agent-1", SINCE + 3),
    ] {
        sqlx::query(
            "INSERT INTO skills (id, slug, title, body, source, promoted_by, created_at, \
             updated_at) VALUES (?, ?, ?, 'body', 'agent', ?, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(slug)
        .bind(format!("Skill {slug}"))
        .bind(by)
        .bind(at)
        .bind(at)
        .execute(&raw)
        .await
        .unwrap();
    }
    let mine = issue(&raw, 1, "todo", None, &a, SINCE + 4).await;
    issue(&raw, 2, "todo", None, &b, SINCE + 4).await;
    issue(&raw, 3, "todo", None, &a, SINCE - 1).await;

    let got = db
        .store
        .proposed_in_window(db.agents[0], "agent-0", window())
        .await
        .unwrap();
    assert_eq!(got.patches.len(), 1, "{got:#?}");
    assert_eq!(got.patches[0].archetype_slug.as_str(), "qa");
    assert_eq!(got.patches[0].base_version, 1);
    assert_eq!(got.patches[0].status, PatchStatus::Pending);
    assert_eq!(got.skills.len(), 1);
    assert_eq!(got.skills[0].0.as_str(), "tdd");
    assert_eq!(got.skills[0].1, "Skill tdd");
    assert_eq!(
        got.issues,
        vec![(IssueKey::parse(&mine).unwrap(), "Issue 1".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_audit_advances_only_from_the_statuses_given() {
    let db = TestDb::new().await;
    let raw = raw_pool(&db.path()).await;
    let agent = db.agents[0].to_string();
    run(&raw, &agent, None, "audit", "running", None, 0, SINCE).await;
    let (run_id,): (String,) = sqlx::query_as("SELECT id FROM runs")
        .fetch_one(&raw)
        .await
        .unwrap();
    let run_id = RunId::parse(&run_id).unwrap();
    let audit = db
        .store
        .create_audit(Created::new(
            Audit {
                id: AuditId::from_uuid(uuid::Uuid::now_v7()),
                run_id: Some(run_id),
                focus: None,
                status: AuditStatus::Queued,
                findings: None,
                figures: None,
                window_days: 7,
                patches_proposed: 0,
                issues_created: 0,
                created_at: Timestamp::from_millis(SINCE),
                finished_at: None,
            },
            vec![],
        ))
        .await
        .unwrap();
    assert_eq!(
        db.store.audit_of_run(run_id).await.unwrap().as_ref(),
        Some(&audit)
    );
    let other = RunId::from_uuid(uuid::Uuid::now_v7());
    assert_eq!(db.store.audit_of_run(other).await.unwrap(), None);

    let running = Audit {
        status: AuditStatus::Running,
        figures: Some("| agent | runs |".to_owned()),
        ..audit.clone()
    };
    let started = db
        .store
        .advance_audit(running.clone(), &[AuditStatus::Queued], vec![])
        .await
        .unwrap();
    assert_eq!(started.as_ref(), Some(&running));
    // A second start finds it running: nothing is written.
    let again = db
        .store
        .advance_audit(
            Audit {
                figures: Some("other".to_owned()),
                ..running.clone()
            },
            &[AuditStatus::Queued],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    let finished = Audit {
        status: AuditStatus::Finished,
        findings: Some("All good.".to_owned()),
        patches_proposed: 1,
        finished_at: Some(Timestamp::from_millis(SINCE + 9)),
        ..running.clone()
    };
    let log = NewActivity {
        at: Timestamp::from_millis(SINCE + 9),
        actor: "system".to_owned(),
        action: "audit.finished".to_owned(),
        entity_type: "audit".to_owned(),
        entity_id: audit.id.to_string(),
        summary: "audit finished".to_owned(),
        data: serde_json::json!({}),
    };
    db.store
        .advance_audit(
            finished.clone(),
            &[AuditStatus::Queued, AuditStatus::Running],
            vec![log],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.store.list_audits().await.unwrap(), vec![finished]);
    let (logged,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM activity WHERE action = 'audit.finished'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(logged, 1);
    let missing = Audit {
        id: AuditId::from_uuid(uuid::Uuid::now_v7()),
        ..audit
    };
    assert!(matches!(
        db.store
            .advance_audit(missing, &[AuditStatus::Queued], vec![])
            .await,
        Err(mesa_store::StoreError::NotFound { .. })
    ));
}
