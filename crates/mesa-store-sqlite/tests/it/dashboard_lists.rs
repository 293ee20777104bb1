//! The dashboard's run list and spend alignment on a real SQLite file: the list with several
//! statuses is one branch per status merged newest first (migration 0009 and
//! `push_run_page`), and spend alignment walks only runs that cost something.

use mesa_domain::{MicroUsd, RunId, RunMode, RunStatus, RunTrigger, RunnerKind, Timestamp};
use mesa_store::conformance::{BASE, new_issue};
use mesa_store::{IssueStore, NewRunRecord, PageRequest, RunFilter, RunStore, StatsStore};

use crate::support::{TestDb, raw_pool};

/// A queued run of agent `agent` on a new issue, queued at `BASE + at` ms.
async fn run(db: &TestDb, agent: usize, title: &str, at: i64) -> RunId {
    let issue = db.store.create_issue(new_issue(title, BASE)).await.unwrap();
    db.store
        .enqueue_run(NewRunRecord {
            id: RunId::from_uuid(uuid::Uuid::now_v7()),
            agent_id: db.agents[agent],
            issue_key: Some(issue.key),
            mode: RunMode::Task,
            trigger: RunTrigger::Manual,
            runner: RunnerKind::Noop,
            model: String::new(),
            priority: 0,
            not_before: None,
            queued_at: Timestamp::from_millis(BASE.as_millis() + at),
            activity: Vec::new(),
        })
        .await
        .unwrap()
        .run
        .id
}

/// Every page of `filter`, two runs a page, as `(id, status)`.
async fn walk(db: &TestDb, filter: &RunFilter) -> Vec<(RunId, RunStatus)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store
            .list_runs(filter, &PageRequest::new(Some(2), cursor))
            .await
            .unwrap();
        out.extend(page.items.iter().map(|r| (r.id, r.status)));
        cursor = page.next_cursor;
        if cursor.is_none() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_of_several_statuses_are_merged_newest_first_across_pages() {
    let db = TestDb::new().await;
    let pool = raw_pool(&db.path()).await;
    // Seven runs at distinct times, two of them at the same millisecond (the id breaks the tie).
    let mut runs = Vec::new();
    for (n, (at, status)) in [
        (10, "queued"),
        (20, "succeeded"),
        (30, "failed"),
        (30, "queued"),
        (40, "succeeded"),
        (50, "queued"),
        (60, "running"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = run(&db, n % 2, &format!("Issue {n}"), at).await;
        sqlx::query("UPDATE runs SET status = ? WHERE id = ?")
            .bind(status)
            .bind(id.to_string())
            .execute(&pool)
            .await
            .unwrap();
        runs.push((id, at, RunStatus::parse(status).unwrap(), n % 2));
    }
    // Newest first: by time, then by id, both descending.
    let mut expected = runs.clone();
    expected.sort_by_key(|r| std::cmp::Reverse((r.1, r.0.to_string())));

    let all = walk(&db, &RunFilter::default()).await;
    let want: Vec<_> = expected.iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(all, want, "without a filter: every run, newest first");

    let wanted = [RunStatus::Queued, RunStatus::Succeeded, RunStatus::Queued];
    let filter = RunFilter {
        statuses: wanted.to_vec(),
        ..RunFilter::default()
    };
    let want: Vec<_> = expected
        .iter()
        .filter(|r| wanted.contains(&r.2))
        .map(|r| (r.0, r.2))
        .collect();
    assert_eq!(
        walk(&db, &filter).await,
        want,
        "two statuses (one named twice): merged in order, each run once, across pages"
    );

    let filter = RunFilter {
        statuses: vec![RunStatus::Queued, RunStatus::Failed],
        agent: Some(db.agents[1]),
        ..RunFilter::default()
    };
    let want: Vec<_> = expected
        .iter()
        .filter(|r| r.3 == 1 && matches!(r.2, RunStatus::Queued | RunStatus::Failed))
        .map(|r| (r.0, r.2))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        walk(&db, &filter).await,
        want,
        "statuses and an agent together"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spend_alignment_counts_every_run_that_cost_something_and_only_those() {
    let db = TestDb::new().await;
    let pool = raw_pool(&db.path()).await;
    let since = Timestamp::from_millis(BASE.as_millis() + 1_000);
    // A finished run with a cost, a queued run to which usage was already reported (the
    // partial index must hold it as soon as its cost moves), and free queued wake-ups.
    let finished = run(&db, 0, "Finished", 2_000).await;
    let reported = run(&db, 1, "Reported", 3_000).await;
    for n in 0..5 {
        run(&db, n % 2, &format!("Free {n}"), 4_000 + n as i64).await;
    }
    sqlx::query(
        "UPDATE runs SET status = 'succeeded', cost_usd = 700000, finished_at = ? WHERE id = ?",
    )
    .bind(BASE.as_millis() + 2_500)
    .bind(finished.to_string())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE runs SET cost_usd = 300000 WHERE id = ?")
        .bind(reported.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let (total, aligned) = db.store.spend_alignment(since).await.unwrap();
    assert_eq!(total, MicroUsd(1_000_000), "both runs that cost something");
    assert_eq!(aligned, MicroUsd(0), "no block serves an active apex block");
}
