//! Every scenario of `mesa_store::conformance`, one test each, against a fresh database.

use mesa_store::conformance as suite;

use crate::support::TestDb;

macro_rules! scenario {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = TestDb::new().await;
            suite::$name(db.store.clone()).await;
        }
    };
    ($name:ident, agents) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = TestDb::new().await;
            suite::$name(db.store.clone(), &db.agents).await;
        }
    };
}

scenario!(checkout_is_exclusive, agents);
scenario!(issue_keys_are_dense);
scenario!(stale_update_writes_nothing);
scenario!(duplicate_open_title);
scenario!(checkout_rules, agents);
scenario!(issue_queries, agents);
scenario!(inbox_order_and_paging, agents);
scenario!(budget_agent_limit, agents);
scenario!(budget_org_limit, agents);
scenario!(budget_tokens_and_policies, agents);
scenario!(run_dedup_merges_triggers, agents);
scenario!(creation_queues_its_wake_up, agents);
scenario!(run_lifecycle, agents);
scenario!(run_output_and_queued_cancel, agents);
scenario!(keys, agents);
scenario!(sessions);
scenario!(dashboard_stats, agents);
scenario!(settings_and_maintenance);
scenario!(activity_chain_survives_concurrency);
scenario!(delivery_log_and_external_links);
scenario!(one_active_work_block);
scenario!(due_items_come_by_channel_prefix_in_due_order);
scenario!(an_attempt_moves_the_item_and_is_logged_in_one_go);
scenario!(the_log_pages_newest_first_and_filters);
scenario!(subscriptions_are_stored_with_their_audit_rows);
