//! Text search over issues on a real SQLite file: a word that matches thousands of issues is
//! served by walking the issues newest first, a rare one from its matches; either way the
//! pages hold the same issues in the same order.

use mesa_domain::{IssueKey, IssueStatus, Timestamp};
use mesa_store::conformance::{BASE, new_issue};
use mesa_store::{IssueFilter, IssueStore, PageRequest};
use tokio::task::JoinSet;

use crate::support::TestDb;

/// More than the count from which the store walks the issues instead (2,000).
const COMMON: usize = 2_050;
const RARE: usize = 7;

/// Every key of a text search, page by page, newest first.
async fn search(db: &TestDb, text: &str, statuses: Vec<IssueStatus>) -> Vec<IssueKey> {
    let filter = IssueFilter {
        text: Some(text.to_owned()),
        statuses,
        ..IssueFilter::default()
    };
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store
            .list_issues(&filter, &PageRequest::new(Some(500), cursor))
            .await
            .unwrap();
        keys.extend(page.items.into_iter().map(|i| i.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return keys,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_and_rare_words_list_their_matches_newest_first() {
    let db = TestDb::new().await;
    // Concurrent creations share group commits: thousands of issues in a few transactions.
    let mut creations = JoinSet::new();
    for i in 0..COMMON + RARE {
        let store = db.store.clone();
        let (title, offset) = if i < COMMON {
            (format!("Billing fix {i}"), i)
        } else {
            (format!("Rare quirk {i}"), i)
        };
        let when = Timestamp::from_millis(BASE.as_millis() + i64::try_from(offset).unwrap());
        creations.spawn(async move {
            let issue = store.create_issue(new_issue(&title, when)).await.unwrap();
            (when, issue.key)
        });
    }
    let mut created = creations.join_all().await;
    created.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
    let newest_first = |prefix: usize, len: usize| -> Vec<IssueKey> {
        created
            .iter()
            .filter(|(when, _)| {
                let i = usize::try_from(when.as_millis() - BASE.as_millis()).unwrap();
                (prefix..prefix + len).contains(&i)
            })
            .map(|(_, key)| key.clone())
            .collect()
    };

    let common = search(&db, "billing", Vec::new()).await;
    assert_eq!(common.len(), COMMON);
    assert_eq!(common, newest_first(0, COMMON), "walked newest first");
    // With a status filter the store keeps the planner's choice: the same answer.
    assert_eq!(
        search(&db, "billing", vec![IssueStatus::Todo]).await,
        common
    );
    assert_eq!(
        search(&db, "rare", Vec::new()).await,
        newest_first(COMMON, RARE)
    );
    assert!(search(&db, "nowhere", Vec::new()).await.is_empty());
}
