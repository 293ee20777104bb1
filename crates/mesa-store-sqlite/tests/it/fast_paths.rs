//! The mechanisms behind the API's hot paths: the data version that read caches are keyed by
//! (it must move with every commit, from any connection or process), and the group-committed
//! checkout (a batch must answer exactly as its requests would one after the other).

use std::collections::HashMap;
use std::sync::Arc;

use mesa_domain::entity::Issue;
use mesa_domain::{AgentId, IssueKey, IssueStatus, RunId, Timestamp};
use mesa_store::conformance::{BASE, activity, new_issue};
use mesa_store::{
    CheckoutOutcome, CheckoutRequest, IssueStore, PageRequest, StoreError, SystemStore,
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
