//! The mechanisms behind the API's hot paths: the data version that read caches are keyed by
//! (it must move with every commit, from any connection or process), and the group-committed
//! checkout (a batch must answer exactly as its requests would one after the other).

use std::collections::HashMap;
use std::sync::Arc;

use mesa_domain::entity::Issue;
use mesa_domain::{AgentId, IssueKey, IssueStatus, RunId, Timestamp};
use mesa_store::conformance::{BASE, activity, new_issue};
use mesa_store::{
    Changes, CheckoutOutcome, CheckoutRequest, InboxOwner, IssueStore, PageRequest, StoreError,
    SystemStore,
};
use mesa_store_sqlite::SqliteStore;

use crate::support::{TestDb, raw_pool};

fn version(store: &SqliteStore) -> Vec<u8> {
    SystemStore::data_version(store).expect("a WAL database has a readable version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_version_moves_with_every_commit_from_anywhere() {
    let db = TestDb::new().await;
    let store = &db.store;
    let issue = store
        .create_issue(new_issue("Versioned", BASE))
        .await
        .expect("create");
    let v1 = version(store);

    // Reads change nothing.
    store.issue(&issue.key).await.expect("read");
    store
        .list_activity(
            &mesa_store::ActivityFilter::default(),
            &PageRequest::first(),
        )
        .await
        .expect("list");
    assert_eq!(version(store), v1, "reads leave the version alone");

    // A write through the store.
    store
        .append_activity(vec![activity("test.write", "test", "1", BASE)])
        .await
        .expect("append");
    let v2 = version(store);
    assert_ne!(v2, v1, "a commit through the store moves the version");

    // A write by another connection, as another process (the `mesa token` CLI) would make.
    let pool = raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET priority = 3 WHERE key = ?")
        .bind(issue.key.as_str())
        .execute(&pool)
        .await
        .expect("outside write");
    let v3 = version(store);
    assert_ne!(v3, v2, "a commit by another connection moves the version");

    // A second store on the same file (another `mesa` process).
    let other = SqliteStore::open_path(db.path())
        .await
        .expect("second store");
    other
        .append_activity(vec![activity("test.write", "test", "2", BASE)])
        .await
        .expect("append elsewhere");
    assert_ne!(version(store), v3, "another store's commit moves it too");
    assert_eq!(version(store), version(&other), "one database, one version");
    other.close().await;

    // A transaction that commits nothing leaves it alone; so does a rolled-back one.
    let v4 = version(store);
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("UPDATE issues SET priority = 4 WHERE key = ?")
        .bind(issue.key.as_str())
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.rollback().await.expect("rollback");
    assert_eq!(version(store), v4, "a rollback is no change");
    pool.close().await;
}

/// Agents, each with the pool of issues in its own order, claim as fast as the store takes
/// them, so batches hold several requests for one issue, some by the same agent (idempotent),
/// some with a run to bind. Whatever the batches were, the answers are those of some order of
/// single claims: one winner per issue, its own repeats unchanged, everyone else refused with
/// the winner's name, one audit row per claim, and an intact chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_checkouts_answer_as_single_claims_would() {
    const TASKS: usize = 64;
    const ISSUES: usize = 120;
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let mut keys = Vec::with_capacity(ISSUES);
    for i in 0..ISSUES {
        let issue = store
            .create_issue(new_issue(&format!("Batch claim {i}"), BASE))
            .await
            .expect("create");
        keys.push(issue.key);
    }
    // A deleted issue and an unknown key are refused as not found, batch or not.
    let gone = store
        .create_issue(new_issue("Deleted before the race", BASE))
        .await
        .expect("create");
    let pool = raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET deleted = 1 WHERE key = ?")
        .bind(gone.key.as_str())
        .execute(&pool)
        .await
        .expect("delete");
    pool.close().await;
    let chain_before = store.verify_activity_chain().await.expect("verify").checked;

    let mut handles = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        // Pairs of tasks share an agent, so an agent's second request often sits in the
        // batch of its first.
        let agent = db.agents[t / 2];
        let store = Arc::clone(&store);
        let mut order = keys.clone();
        order.rotate_left((t / 2 * 7) % ISSUES);
        order.push(gone.key.clone());
        order.push(IssueKey::parse("MESA-999999").expect("key"));
        handles.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(order.len());
            for key in order {
                let run = (t % 3 == 0).then(|| RunId::from_uuid(uuid::Uuid::now_v7()));
                let answer = store.checkout_issue(claim(&key, agent, run)).await;
                answers.push((key, answer));
            }
            (agent, answers)
        }));
    }
    let mut winners: HashMap<IssueKey, Vec<AgentId>> = HashMap::new();
    let mut repeats: HashMap<IssueKey, Vec<AgentId>> = HashMap::new();
    let mut refusals: HashMap<IssueKey, Vec<(AgentId, AgentId)>> = HashMap::new();
    for handle in handles {
        let (agent, answers) = handle.await.expect("claimer");
        for (key, answer) in answers {
            match answer {
                Ok(CheckoutOutcome { issue, changed }) => {
                    assert_eq!(issue.assignee_id, Some(agent), "{key}");
                    assert_eq!(issue.status, IssueStatus::InProgress, "{key}");
                    let bucket = if changed { &mut winners } else { &mut repeats };
                    bucket.entry(key).or_default().push(agent);
                }
                Err(StoreError::CheckoutConflict {
                    key: k,
                    status,
                    assignee,
                }) => {
                    assert_eq!(k, key);
                    assert_eq!(status, IssueStatus::InProgress);
                    let holder = assignee.expect("a conflict names the holder");
                    refusals.entry(key).or_default().push((agent, holder));
                }
                Err(StoreError::NotFound { .. }) => {
                    assert!(key == gone.key || key.as_str() == "MESA-999999", "{key}");
                }
                Err(other) => panic!("{key}: unexpected {other:?}"),
            }
        }
    }
    for key in &keys {
        let won = winners.get(key).cloned().unwrap_or_default();
        assert_eq!(won.len(), 1, "{key} is claimed exactly once: {won:?}");
        let winner = won[0];
        let same = repeats.get(key).cloned().unwrap_or_default();
        assert_eq!(same, vec![winner], "{key}: the winner's twin repeats it");
        let lost = refusals.get(key).cloned().unwrap_or_default();
        assert_eq!(lost.len(), TASKS - 2, "{key}: everyone else is refused");
        assert!(
            lost.iter()
                .all(|(agent, holder)| *holder == winner && *agent != winner),
            "{key}: every refusal names the winner"
        );
        let stored: Issue = store.issue(key).await.expect("read");
        assert_eq!(stored.assignee_id, Some(winner));
        assert_eq!(stored.version.0, 2, "{key}: one claim, one version step");
    }
    assert!(!winners.contains_key(&gone.key));
    let report = store.verify_activity_chain().await.expect("verify");
    assert_eq!(report.first_bad, None, "the chain is intact");
    assert_eq!(
        report.checked - chain_before,
        ISSUES as u64,
        "one audit row per claim, none for repeats or refusals"
    );
}

fn claim(key: &IssueKey, agent: AgentId, run: Option<RunId>) -> CheckoutRequest {
    let now = Timestamp::from_millis(BASE.as_millis() + 60_000);
    CheckoutRequest {
        key: key.clone(),
        agent_id: agent,
        run_id: run,
        expected: vec![IssueStatus::Todo, IssueStatus::Blocked],
        now,
        activity: vec![activity("issue.checkout", "issue", key.as_str(), now)],
    }
}

/// Checkouts and issue creations record what they changed, so read caches can keep what they
/// did not touch; a commit by anything else — an untracked write of the same store, another
/// connection, another store on the file — leaves a gap the store refuses to vouch across.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_writes_say_what_they_changed_and_any_other_commit_is_a_gap() {
    let db = TestDb::new().await;
    let store = &db.store;
    let (a, b) = (db.agents[0], db.agents[1]);
    let first = store
        .create_issue(new_issue("Tracked one", BASE))
        .await
        .expect("create");
    let second = store
        .create_issue(new_issue("Tracked two", BASE))
        .await
        .expect("create");

    let v0 = version(store);
    assert_eq!(store.changes_between(&v0, &v0), Some(Changes::default()));
    store
        .checkout_issue(claim(&first.key, a, None))
        .await
        .expect("claim");
    let v1 = version(store);
    let claimed = store
        .changes_between(&v0, &v1)
        .expect("a checkout records what it changed");
    assert!(
        claimed.touches_inbox(InboxOwner::Agent(a)),
        "the claimer's inbox"
    );
    assert!(
        !claimed.touches_inbox(InboxOwner::Agent(b)),
        "not another agent's"
    );
    assert!(
        !claimed.touches_key(None) && !claimed.runs,
        "no key, no run"
    );
    assert!(
        store.changes_between(&v1, &v0).is_none(),
        "links only go forward"
    );

    let mut for_b = new_issue("Created for b", BASE);
    for_b.assignee_id = Some(b);
    store.create_issue(for_b).await.expect("create");
    let v2 = version(store);
    let both = store
        .changes_between(&v0, &v2)
        .expect("two tracked writes in a row");
    assert!(both.touches_inbox(InboxOwner::Agent(a)) && both.touches_inbox(InboxOwner::Agent(b)));
    assert!(both.runs, "a creation may queue its assignee's wake-up");

    // An untracked write of this very store.
    store
        .append_activity(vec![activity("test.write", "test", "1", BASE)])
        .await
        .expect("append");
    let v3 = version(store);
    assert!(store.changes_between(&v2, &v3).is_none());
    assert!(
        store.changes_between(&v0, &v3).is_none(),
        "no walk across a gap"
    );

    // Tracked again: known from there on, still not across the gap.
    store
        .checkout_issue(claim(&second.key, b, None))
        .await
        .expect("claim");
    let v4 = version(store);
    assert!(store.changes_between(&v3, &v4).is_some());
    assert!(store.changes_between(&v2, &v4).is_none());

    // Another connection, as another process would write.
    let pool = raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET priority = 3 WHERE key = ?")
        .bind(second.key.as_str())
        .execute(&pool)
        .await
        .expect("outside write");
    pool.close().await;
    let v5 = version(store);
    assert_ne!(v5, v4);
    assert!(store.changes_between(&v4, &v5).is_none());

    // Another store on the same file doing a tracked write of its own: this store did not
    // record it, so it cannot vouch for it.
    let other = SqliteStore::open_path(db.path())
        .await
        .expect("second store");
    let third = other
        .create_issue(new_issue("Tracked elsewhere", BASE))
        .await
        .expect("create");
    other.close().await;
    let v6 = version(store);
    assert!(store.changes_between(&v5, &v6).is_none());
    assert!(store.issue(&third.key).await.is_ok());
}
