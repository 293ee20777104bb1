//! What only the SQLite backend has: WAL and foreign keys, `BEGIN IMMEDIATE` writers under
//! contention, the append-only trigger on the audit log, and `VACUUM INTO` backups.

use std::collections::BTreeSet;
use std::sync::Arc;

use mesa_domain::{CommentId, CommentKind, IssueStatus};
use mesa_store::conformance::{BASE, new_issue};
use mesa_store::{IssueFilter, IssueStore, NewComment, PageRequest, StoreError, SystemStore};
use mesa_store_sqlite::SqliteStore;

use crate::support::{TestDb, raw_pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_and_foreign_keys_are_on() {
    let db = TestDb::new().await;
    let issue = db
        .store
        .create_issue(new_issue("Pragmas", BASE))
        .await
        .expect("create");

    // WAL is a property of the file: any connection sees it, and the log file exists.
    let pool = raw_pool(&db.path()).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    assert!(
        db.dir().join("mesa.db-wal").exists(),
        "the write-ahead log exists"
    );
    pool.close().await;

    // Foreign keys are per connection: the store's writer enforces them. A comment by an
    // agent that does not exist is refused by the database (the store checks nothing there).
    let err = db
        .store
        .add_comment(
            NewComment {
                id: CommentId::from_uuid(uuid::Uuid::now_v7()),
                issue_key: issue.key.clone(),
                author_agent_id: Some(mesa_domain::AgentId::from_uuid(uuid::Uuid::now_v7())),
                author: "ghost".to_owned(),
                kind: CommentKind::Comment,
                body: "boo".to_owned(),
                created_at: BASE,
            },
            Vec::new(),
        )
        .await
        .expect_err("a dangling reference");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

/// Two stores on one file are two writers competing for SQLite's lock, as two processes
/// would. Every write transaction starts with `BEGIN IMMEDIATE`, so none fails with "database
/// is locked" (a deferred transaction that reads then writes would), and the key counter stays
/// exact across both. Readers keep reading meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn begin_immediate_writers_never_see_locked() {
    let db = TestDb::new().await;
    let second = Arc::new(
        SqliteStore::open_path(db.path())
            .await
            .expect("second store"),
    );
    let stores = [db.store.clone(), second.clone()];
    let mut handles = Vec::new();
    for t in 0..16_i64 {
        let store = stores[usize::try_from(t % 2).expect("small")].clone();
        handles.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            for i in 0..40_i64 {
                let when = mesa_domain::Timestamp::from_millis(BASE.as_millis() + t * 1000 + i);
                let issue = store
                    .create_issue(new_issue(&format!("Contended {t}/{i}"), when))
                    .await
                    .unwrap_or_else(|e| panic!("write {t}/{i} failed: {e:?}"));
                keys.push(issue.key.to_string());
                if i % 10 == 0 {
                    store
                        .list_issues(&IssueFilter::default(), &PageRequest::first())
                        .await
                        .expect("a reader is never blocked by the writer");
                }
            }
            keys
        }));
    }
    let mut keys = BTreeSet::new();
    for handle in handles {
        for key in handle.await.expect("writer task panicked") {
            assert!(keys.insert(key), "a key was allocated twice");
        }
    }
    let expected: BTreeSet<String> = (1..=640).map(|n| format!("MESA-{n}")).collect();
    assert_eq!(keys, expected);
    assert!(
        db.store
            .verify_activity_chain()
            .await
            .expect("verify")
            .is_ok()
    );
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_rows_cannot_be_changed() {
    let db = TestDb::new().await;
    for i in 0..3 {
        db.store
            .create_issue(new_issue(&format!("Audited {i}"), BASE))
            .await
            .expect("create");
    }
    let pool = raw_pool(&db.path()).await;
    for sql in [
        "UPDATE activity SET summary = 'forged' WHERE id = 2",
        "DELETE FROM activity WHERE id = 3",
        "DELETE FROM activity",
    ] {
        let err = sqlx::query(sql)
            .execute(&pool)
            .await
            .expect_err("the log is append-only");
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let report = db.store.verify_activity_chain().await.expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.checked, 3);

    // Someone who drops the trigger can forge a row, but the chain shows where.
    sqlx::query("DROP TRIGGER activity_no_update")
        .execute(&pool)
        .await
        .expect("drop trigger");
    sqlx::query("UPDATE activity SET summary = 'forged' WHERE id = 2")
        .execute(&pool)
        .await
        .expect("forge");
    pool.close().await;
    let report = db.store.verify_activity_chain().await.expect("verify");
    assert_eq!(report.first_bad, Some(mesa_domain::ActivityId(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_is_a_working_copy() {
    let db = TestDb::new().await;
    for i in 0..50 {
        db.store
            .create_issue(new_issue(&format!("Backed up {i}"), BASE))
            .await
            .expect("create");
    }
    // Writers carry on while the backup runs.
    let writer = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                store
                    .create_issue(new_issue(&format!("During backup {i}"), BASE))
                    .await
                    .expect("create during backup");
            }
        })
    };
    let target = db.dir().join("backup.db");
    db.store.backup_to(&target).await.expect("backup");
    writer.await.expect("writer panicked");

    let err = db
        .store
        .backup_to(&target)
        .await
        .expect_err("an existing file is never overwritten");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    let copy = SqliteStore::open_path(&target)
        .await
        .expect("open the backup");
    let copied = copy
        .count_issues(&IssueFilter::default())
        .await
        .expect("count");
    assert!(
        (50..=100).contains(&copied),
        "the copy has the rows: {copied}"
    );
    let first = copy
        .issue(&mesa_domain::IssueKey::parse("MESA-1").expect("key"))
        .await
        .expect("read from the copy");
    assert_eq!(first.status, IssueStatus::Todo);
    assert_eq!(copy.integrity_check().await.expect("check"), ["ok"]);
    let report = copy.verify_activity_chain().await.expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.checked, copied, "one audit row per copied issue");
    assert!(copy.health().await.expect("health").is_ready());
    copy.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_database_is_healthy() {
    let db = TestDb::new().await;
    let health = db.store.health().await.expect("health");
    assert!(health.is_ready());
    assert_eq!(health.migrations_applied, health.migrations_known);
    assert_eq!(db.store.integrity_check().await.expect("check"), ["ok"]);
    // Reopening applies nothing new and keeps the data.
    db.store.close().await;
    let again = SqliteStore::open_path(db.path()).await.expect("reopen");
    assert!(again.health().await.expect("health").is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_are_numbered_and_survive_reopening() {
    let db = TestDb::new().await;
    assert_eq!(db.store.record_boot(BASE).await.expect("boot"), 1);
    assert_eq!(db.store.record_boot(BASE).await.expect("boot"), 2);
    db.store.close().await;
    let reopened = SqliteStore::open_path(&db.path()).await.expect("reopen");
    assert_eq!(
        reopened.record_boot(BASE).await.expect("boot"),
        3,
        "a boot number is never reused"
    );
}

/// SQLite plans with the value of a bound `LIMIT`, so a statement with `LIMIT ?` is compiled
/// again on every execution (sqlx binds anew each time): measured at 5-8× the cost of the query
/// itself for the inbox. `LIMIT (SELECT ?)` keeps the prepared statement. This keeps every
/// statement of the crate to that form.
#[test]
fn no_statement_binds_a_bare_limit() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        for (n, line) in text.lines().enumerate() {
            for bad in ["LIMIT ?", "LIMIT $", "LIMIT \")"] {
                if line.contains(bad) {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
            if line.trim_end().ends_with("LIMIT \"") || line.contains("LIMIT \")\n") {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use LIMIT (SELECT ?):\n{}",
        offenders.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_checkpoints_start_once_and_stop_with_the_store() {
    let db = TestDb::new().await;
    db.store.start_checkpoints().await.expect("start");
    db.store.start_checkpoints().await.expect("idempotent");
    for i in 0..50 {
        db.store
            .create_issue(new_issue(&format!("Checkpointed {i}"), BASE))
            .await
            .expect("create");
        if i % 10 == 0 {
            tokio::time::sleep(mesa_store_sqlite::CHECKPOINT_EVERY).await;
        }
    }
    // Closing stops the task (no hang) and leaves every acknowledged write in the file.
    db.store.close().await;
    let reopened = SqliteStore::open_path(&db.path()).await.expect("reopen");
    let n = reopened
        .count_issues(&IssueFilter::default())
        .await
        .expect("count");
    assert_eq!(n, 50, "nothing lost");
    let check = reopened.integrity_check().await.expect("integrity");
    assert_eq!(check, vec!["ok".to_owned()]);
}
