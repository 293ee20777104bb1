//! `StatsStore::block_issue_counts`, `block_spend` and their batch forms on a real SQLite file.

use mesa_domain::entity::WorkBlock;
use mesa_domain::{IssueStatus, Markdown, Timestamp, Title, Version, WorkBlockId, WorkBlockStatus};
use mesa_domain::{RunId, RunMode, RunTrigger, RunnerKind};
use mesa_store::conformance::{BASE, new_issue};
use mesa_store::{BlockStore, Created, IssueStore, NewRunRecord, RunStore, StatsStore};

use crate::support::TestDb;

fn block(name: &str) -> WorkBlock {
    WorkBlock {
        id: WorkBlockId::from_uuid(uuid::Uuid::now_v7()),
        title: Title::parse(name).unwrap(),
        goal: Markdown::parse("").unwrap(),
        acceptance_criteria: Markdown::parse("").unwrap(),
        status: WorkBlockStatus::Proposed,
        north_star_metric: None,
        north_star_target: None,
        north_star_current: None,
        apex_block_id: None,
        activated_at: None,
        ready_at: None,
        shipped_at: None,
        cancelled_at: None,
        created_by: "board".to_owned(),
        created_at: BASE,
        updated_at: BASE,
        version: Version::FIRST,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn member_issues_are_counted_per_status_of_one_block_only() {
    let db = TestDb::new().await;
    let mine = db
        .store
        .create_work_block(Created::new(block("Mine"), Vec::new()))
        .await
        .unwrap();
    let other = db
        .store
        .create_work_block(Created::new(block("Other"), Vec::new()))
        .await
        .unwrap();
    let when = Timestamp::from_millis(BASE.as_millis() + 1_000);
    let mut keys = Vec::new();
    for i in 0..4 {
        let issue = db
            .store
            .create_issue(new_issue(&format!("Issue {i}"), when))
            .await
            .unwrap();
        keys.push(issue.key);
    }
    for key in &keys[..3] {
        db.store
            .set_issue_block(key, Some(mine.id), Vec::new())
            .await
            .unwrap();
    }
    db.store
        .set_issue_block(&keys[3], Some(other.id), Vec::new())
        .await
        .unwrap();
    let pool = crate::support::raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET status = 'done' WHERE key = ?")
        .bind(keys[0].to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE issues SET deleted = 1 WHERE key = ?")
        .bind(keys[2].to_string())
        .execute(&pool)
        .await
        .unwrap();
    let got = db.store.block_issue_counts(mine.id).await.unwrap();
    assert_eq!(got, vec![(IssueStatus::Done, 1), (IssueStatus::Todo, 1)]);
    let none = db
        .store
        .block_issue_counts(WorkBlockId::from_uuid(uuid::Uuid::now_v7()))
        .await
        .unwrap();
    assert!(none.is_empty());
    let (cost, tokens, runs) = db.store.block_spend(mine.id).await.unwrap();
    assert_eq!((cost.0, tokens, runs), (0, 0, 0), "no runs yet");
    for key in [&keys[0], &keys[3]] {
        let run = db
            .store
            .enqueue_run(NewRunRecord {
                id: RunId::from_uuid(uuid::Uuid::now_v7()),
                agent_id: db.agents[0],
                issue_key: Some(key.clone()),
                mode: RunMode::Task,
                trigger: RunTrigger::Manual,
                runner: RunnerKind::Noop,
                model: String::new(),
                priority: 0,
                not_before: None,
                queued_at: when,
                activity: Vec::new(),
            })
            .await
            .unwrap();
        sqlx::query(
            "UPDATE runs SET status = 'succeeded', cost_usd = 1500000, input_tokens = 10, \
             output_tokens = 5 WHERE id = ?",
        )
        .bind(run.run.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    }
    let (cost, tokens, runs) = db.store.block_spend(mine.id).await.unwrap();
    assert_eq!(
        (cost.0, tokens, runs),
        (1_500_000, 15, 1),
        "only the runs of its members"
    );
    // A run that used nothing (a queued wake-up) counts as a run and adds nothing.
    db.store
        .enqueue_run(NewRunRecord {
            id: RunId::from_uuid(uuid::Uuid::now_v7()),
            agent_id: db.agents[0],
            issue_key: Some(keys[1].clone()),
            mode: RunMode::Task,
            trigger: RunTrigger::Manual,
            runner: RunnerKind::Noop,
            model: String::new(),
            priority: 0,
            not_before: None,
            queued_at: when,
            activity: Vec::new(),
        })
        .await
        .unwrap();
    let (cost, tokens, runs) = db.store.block_spend(mine.id).await.unwrap();
    assert_eq!((cost.0, tokens, runs), (1_500_000, 15, 2));
    // The list's batch forms agree with the one-block ones, several blocks at once; a block
    // with neither members nor runs is absent.
    let empty = WorkBlockId::from_uuid(uuid::Uuid::now_v7());
    let by_block = |id: WorkBlockId| (id != mine.id, id.to_string());
    let mut counts = db
        .store
        .blocks_issue_counts(&[mine.id, other.id, empty])
        .await
        .unwrap();
    counts.sort_by_key(|(b, s, _)| (by_block(*b), s.as_str()));
    assert_eq!(
        counts,
        vec![
            (mine.id, IssueStatus::Done, 1),
            (mine.id, IssueStatus::Todo, 1),
            (other.id, IssueStatus::Todo, 1),
        ]
    );
    let mut spend: Vec<_> = db
        .store
        .blocks_spend(&[mine.id, other.id, empty])
        .await
        .unwrap()
        .into_iter()
        .map(|(b, cost, tokens, runs)| (b, cost.0, tokens, runs))
        .collect();
    spend.sort_by_key(|(b, ..)| by_block(*b));
    assert_eq!(
        spend,
        vec![(mine.id, 1_500_000, 15, 2), (other.id, 1_500_000, 15, 1)]
    );
    let times = db.store.block_member_times(mine.id).await.unwrap();
    assert_eq!(times.len(), 2, "the deleted member is left out");
    assert!(times.iter().all(|(created, _)| *created == when));
    let done: Vec<_> = times.iter().filter_map(|(_, d)| *d).collect();
    assert_eq!(done.len(), 1, "only the done member has a completion time");
}

#[tokio::test(flavor = "multi_thread")]
async fn alignment_counts_open_work_and_recent_spend_that_rolls_up_to_an_active_apex() {
    use mesa_domain::entity::ApexBlock;
    use mesa_domain::{ApexBlockId, ApexStatus, MicroUsd};

    let db = TestDb::new().await;
    let apex = db
        .store
        .create_apex_block(Created::new(
            ApexBlock {
                id: ApexBlockId::from_uuid(uuid::Uuid::now_v7()),
                title: Title::parse("Grow").unwrap(),
                goal: Markdown::parse("").unwrap(),
                status: ApexStatus::Active,
                created_at: BASE,
                updated_at: BASE,
                version: Version::FIRST,
            },
            Vec::new(),
        ))
        .await
        .unwrap();
    let mut linked = block("Linked");
    linked.apex_block_id = Some(apex.id);
    let linked = db
        .store
        .create_work_block(Created::new(linked, Vec::new()))
        .await
        .unwrap();
    let when = Timestamp::from_millis(BASE.as_millis() + 1_000);
    let in_block = db
        .store
        .create_issue(new_issue("In the block", when))
        .await
        .unwrap();
    db.store
        .set_issue_block(&in_block.key, Some(linked.id), Vec::new())
        .await
        .unwrap();
    let mut child = new_issue("Child of it", when);
    child.parent_key = Some(in_block.key.clone());
    let child = db.store.create_issue(child).await.unwrap();
    let free = db
        .store
        .create_issue(new_issue("Drifting", when))
        .await
        .unwrap();
    let closed = db
        .store
        .create_issue(new_issue("Closed", when))
        .await
        .unwrap();
    let pool = crate::support::raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET status = 'done', open = 0 WHERE key = ?")
        .bind(closed.key.to_string())
        .execute(&pool)
        .await
        .unwrap();

    let (open, aligned, drift) = db.store.work_alignment(10).await.unwrap();
    assert_eq!(
        (open, aligned),
        (3, 2),
        "the child rolls up through its parent"
    );
    assert_eq!(drift, vec![free.key.clone()]);
    let (_, _, none) = db.store.work_alignment(0).await.unwrap();
    assert!(none.is_empty(), "the limit holds");

    // Runs: 2 dollars on the child (aligned), 1 on the drifting issue, 5 long before.
    let since = Timestamp::from_millis(BASE.as_millis() + 10 * 86_400_000);
    for (key, cost, at) in [
        (&child.key, 2_000_000, since.as_millis() + 5),
        (&free.key, 1_000_000, since.as_millis() + 6),
        (&free.key, 5_000_000, since.as_millis() - 3 * 86_400_000),
    ] {
        let run = db
            .store
            .enqueue_run(NewRunRecord {
                id: RunId::from_uuid(uuid::Uuid::now_v7()),
                agent_id: db.agents[0],
                issue_key: Some(key.clone()),
                mode: RunMode::Task,
                trigger: RunTrigger::Manual,
                runner: RunnerKind::Noop,
                model: String::new(),
                priority: 0,
                not_before: None,
                queued_at: Timestamp::from_millis(at),
                activity: Vec::new(),
            })
            .await
            .unwrap();
        sqlx::query(
            "UPDATE runs SET status = 'succeeded', cost_usd = ?, finished_at = ? WHERE id = ?",
        )
        .bind(cost)
        .bind(at + 1)
        .bind(run.run.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    }
    let (total, aligned) = db.store.spend_alignment(since).await.unwrap();
    assert_eq!((total, aligned), (MicroUsd(3_000_000), MicroUsd(2_000_000)));
}
