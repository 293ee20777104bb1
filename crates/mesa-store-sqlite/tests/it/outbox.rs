//! `OutboxStore` on a real SQLite file, beyond the conformance scenarios (`conformance.rs`):
//! queued deliveries survive closing and reopening the database file.

use mesa_store::OutboxStore;
use mesa_store::conformance::outbox_item;
use mesa_store_sqlite::SqliteStore;

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_items_survive_reopening_the_file() {
    let db = TestDb::new().await;
    let item = outbox_item("webhook:x", 0);
    db.store.enqueue_outbox(vec![item.clone()]).await.unwrap();
    db.store.close().await;
    let reopened = SqliteStore::open_path(&db.path()).await.unwrap();
    assert_eq!(reopened.outbox_item(item.id).await.unwrap(), Some(item));
    assert_eq!(
        reopened
            .due_outbox("webhook:", mesa_domain::Timestamp::from_millis(1), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    reopened.close().await;
}
