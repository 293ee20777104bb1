//! `StatsStore::runs_per_agent_since` on a real SQLite file.

use mesa_domain::{RunId, RunMode, RunTrigger, RunnerKind, Timestamp};
use mesa_store::{NewRunRecord, RunStore, StatsStore};

use crate::support::TestDb;

fn wake(agent: mesa_domain::AgentId, at: i64, n: u128) -> NewRunRecord {
    NewRunRecord {
        id: RunId::from_uuid(uuid::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
        )),
        agent_id: agent,
        issue_key: None,
        mode: RunMode::Heartbeat,
        trigger: RunTrigger::Manual,
        runner: RunnerKind::Noop,
        model: String::new(),
        priority: 0,
        not_before: None,
        queued_at: Timestamp::from_millis(at),
        activity: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_counted_per_agent_from_the_given_time() {
    let db = TestDb::new().await;
    let (a, b) = (db.agents[0], db.agents[1]);
    let since = 1_000_000;
    // Heartbeat wakes of one agent merge while queued, so each is finished (cancelled) first.
    let raw = crate::support::raw_pool(&db.path()).await;
    for (i, (agent, at)) in [(a, since - 10), (a, since), (a, since + 5), (b, since + 7)]
        .into_iter()
        .enumerate()
    {
        let out = db
            .store
            .enqueue_run(wake(agent, at, i as u128))
            .await
            .unwrap();
        assert!(!out.merged);
        sqlx::query("UPDATE runs SET status = 'cancelled' WHERE id = ?")
            .bind(out.run.id.to_string())
            .execute(&raw)
            .await
            .unwrap();
    }
    let mut got = db
        .store
        .runs_per_agent_since(&[a, b], Timestamp::from_millis(since))
        .await
        .unwrap();
    got.sort_by_key(|(id, _)| *id == b);
    assert_eq!(got, vec![(a, 2), (b, 1)]);
    let none = db
        .store
        .runs_per_agent_since(&[a, b], Timestamp::from_millis(since + 100))
        .await
        .unwrap();
    assert!(none.is_empty());
    let only_b = db
        .store
        .runs_per_agent_since(&[b], Timestamp::from_millis(since))
        .await
        .unwrap();
    assert_eq!(only_b, vec![(b, 1)], "only the agents asked about");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_cost_limits_list_active_agent_policies_only() {
    let db = TestDb::new().await;
    let raw = crate::support::raw_pool(&db.path()).await;
    for (id, scope, agent, limit, active) in [
        (
            "p1",
            db.agents[0].to_string(),
            Some(db.agents[0].to_string()),
            5_000_000,
            1,
        ),
        (
            "p2",
            db.agents[1].to_string(),
            Some(db.agents[1].to_string()),
            7,
            0,
        ),
        ("p3", "org".to_owned(), None, 9, 1),
    ] {
        sqlx::query(
            "INSERT INTO budget_policies (id, scope, agent_id, daily_cost_limit_usd, active, \
             updated_at) VALUES (?, ?, ?, ?, ?, 0)",
        )
        .bind(id)
        .bind(scope)
        .bind(agent)
        .bind(limit)
        .bind(active)
        .execute(&raw)
        .await
        .unwrap();
    }
    let got = db.store.agent_cost_limits().await.unwrap();
    assert_eq!(got, vec![(db.agents[0], mesa_domain::MicroUsd(5_000_000))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runs_cost_source_is_its_cost_events() {
    let db = TestDb::new().await;
    let out = db
        .store
        .enqueue_run(wake(db.agents[0], 5, 99))
        .await
        .unwrap();
    let id = out.run.id;
    assert_eq!(db.store.run_cost_source(id).await.unwrap(), None);
    let raw = crate::support::raw_pool(&db.path()).await;
    sqlx::query(
        "INSERT INTO cost_events (id, run_id, agent_id, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_usd, source, created_at) \
         VALUES ('c1', ?, ?, 1, 2, 0, 0, 30, 'estimated', 10)",
    )
    .bind(id.to_string())
    .bind(db.agents[0].to_string())
    .execute(&raw)
    .await
    .unwrap();
    assert_eq!(
        db.store.run_cost_source(id).await.unwrap(),
        Some(mesa_domain::CostSource::Estimated)
    );
}
