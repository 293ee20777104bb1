//! Near-duplicate candidates (`similar_title_candidates`, `search_issues`) on a real database
//! file: the title trigram index follows open titles through every kind of write, and at scale
//! distinctive trigrams and words are searched in full while common ones are bounded.

use mesa_domain::entity::Issue;
use mesa_domain::{IssueStatus, Timestamp, Title};
use mesa_store::conformance::{BASE, new_issue};
use mesa_store::{IssueStore, IssueTitle, IssueWrite};

use crate::support::{TestDb, raw_pool};

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(BASE.as_millis() + offset_ms)
}

fn titles(found: &[IssueTitle]) -> Vec<&str> {
    found.iter().map(|c| c.title.as_str()).collect()
}

async fn search(db: &TestDb, normalized: &str) -> Vec<IssueTitle> {
    db.store
        .similar_title_candidates(normalized, 10)
        .await
        .expect("candidates")
}

async fn write(db: &TestDb, issue: &Issue, change: impl FnOnce(&mut Issue)) -> Issue {
    let mut next = issue.clone();
    change(&mut next);
    db.store
        .update_issue(IssueWrite {
            issue: next,
            expected: issue.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("update")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn title_candidates_follow_open_titles() {
    let db = TestDb::new().await;
    let store = &db.store;
    let mut made = Vec::new();
    for (i, title) in [
        "Fix the login page",
        "Fix the logn page",
        "Fix: the LOGIN-page crash",
        "Write the quarterly report",
        "ab",
    ]
    .into_iter()
    .enumerate()
    {
        let when = at(i64::try_from(i).expect("small") * 1000);
        made.push(
            store
                .create_issue(new_issue(title, when))
                .await
                .expect("create"),
        );
    }
    let found = store
        .similar_title_candidates("fix the login page", 10)
        .await
        .expect("candidates");
    assert_eq!(
        found[0].key, made[0].key,
        "the equal title first: {found:?}"
    );
    assert_eq!(found[0].status, IssueStatus::Todo);
    for near in &made[1..3] {
        assert!(
            found.iter().any(|c| c.key == near.key),
            "{:?}",
            titles(&found)
        );
    }
    assert!(
        !found.iter().any(|c| c.key == made[4].key),
        "no shared trigram"
    );
    let one = store
        .similar_title_candidates("fix the login page", 1)
        .await
        .expect("candidates");
    assert_eq!(titles(&one), ["Fix the login page"]);
    // Too short for a trigram: only the equal title.
    let short = store
        .similar_title_candidates("ab", 10)
        .await
        .expect("candidates");
    assert_eq!(titles(&short), ["ab"]);
    assert!(
        store
            .similar_title_candidates("kubernetes autoscaling", 10)
            .await
            .expect("candidates")
            .is_empty()
    );

    let has = |found: &[IssueTitle], issue: &Issue| found.iter().any(|c| c.key == issue.key);

    // Closing leaves the index, reopening comes back; other edits do not touch it.
    let typo = write(&db, &made[1], |i| i.status = IssueStatus::Done).await;
    assert!(!has(&search(&db, "fix the login page").await, &typo));
    let typo = write(&db, &typo, |i| i.status = IssueStatus::Todo).await;
    assert!(has(&search(&db, "fix the login page").await, &typo));
    let typo = write(&db, &typo, |i| i.run_count += 1).await;
    assert!(has(&search(&db, "fix the logn page").await, &typo));

    // A new title replaces the old one.
    let typo = write(&db, &typo, |i| {
        i.title = Title::parse("Rotate the signing keys").expect("title");
    })
    .await;
    assert!(!has(&search(&db, "logn").await, &typo));
    assert_eq!(
        search(&db, "rotate the signing keys").await[0].key,
        typo.key
    );

    // Soft delete and purge remove it.
    let report = write(&db, &made[3], |i| i.deleted = true).await;
    assert!(!has(
        &search(&db, "write the quarterly report").await,
        &report
    ));
    store
        .purge_issue(&typo.key, Vec::new())
        .await
        .expect("purge");
    assert!(!has(&search(&db, "rotate the signing keys").await, &typo));

    // The index holds exactly the open, undeleted issues.
    let pool = raw_pool(&db.path()).await;
    let indexed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM issues_title_trigrams WHERE issues_title_trigrams MATCH 'the'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(indexed, 2, "the two open titles with 'the' left");
    pool.close().await;
}

/// Inserts `n` open issues titled `Seeded work item {i}` (i = 1..=n, newest last) with SQL:
/// enough rows that their shared trigrams and words count as common.
async fn seed(db: &TestDb, n: i64) {
    let pool = raw_pool(&db.path()).await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO issues (id, key, number, title, title_norm, type, status, open, created_by, \
         status_changed_at, created_at, updated_at) \
         SELECT printf('00000000-0000-7000-8000-%012d', i), 'MESA-' || (1000 + i), 1000 + i, \
         'Seeded work item ' || i, 'seeded work item ' || i, 'task', 'todo', 1, 'board', \
         ?2 + i, ?2 + i, ?2 + i FROM n",
    )
    .bind(n)
    .bind(BASE.as_millis())
    .execute(&pool)
    .await
    .expect("seed");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinctive_trigrams_are_searched_in_full_and_common_ones_bounded() {
    let db = TestDb::new().await;
    seed(&db, 9000).await;
    let store = &db.store;

    // The digits are distinctive: the equal title, then titles sharing most of them, however
    // old; every word trigram is in all 9,000 titles and only adds recent ones.
    let found = store
        .similar_title_candidates("seeded work item 4321", 50)
        .await
        .expect("candidates");
    assert_eq!(found.len(), 50);
    assert_eq!(found[0].title.as_str(), "Seeded work item 4321");
    let near: Vec<&str> = titles(&found[1..6]);
    assert!(
        near.iter().all(|t| t.contains("432") || t.contains("321")),
        "{near:?}"
    );
    let wide = store
        .similar_title_candidates("seeded work item 4321", 500)
        .await
        .expect("candidates");
    assert!(
        titles(&wide).contains(&"Seeded work item 321"),
        "an old title sharing one distinctive trigram: {:?}",
        titles(&wide)
    );

    // Only common trigrams: recent titles, and the equal one whatever its age.
    let found = store
        .similar_title_candidates("seeded work item", 20)
        .await
        .expect("candidates");
    assert_eq!(found.len(), 20);
    let found = store
        .similar_title_candidates("seeded work item 1", 20)
        .await
        .expect("candidates");
    assert_eq!(found[0].title.as_str(), "Seeded work item 1");

    // Full text: a distinctive word is ranked; all-common words give the newest with all.
    let hits = store
        .search_issues("seeded work item 4321", 10)
        .await
        .expect("search");
    assert_eq!(hits[0].title.as_str(), "Seeded work item 4321");
    let hits = store.search_issues("seeded item", 3).await.expect("search");
    let got: Vec<&str> = hits.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        got,
        [
            "Seeded work item 9000",
            "Seeded work item 8999",
            "Seeded work item 8998"
        ]
    );
    assert!(
        store
            .search_issues("seeded zebra", 3)
            .await
            .expect("search")
            .iter()
            .all(|i| i.title.as_str().starts_with("Seeded")),
        "an absent word does not empty the common-word fallback"
    );
}
