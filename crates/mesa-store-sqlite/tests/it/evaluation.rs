//! `EvaluationStore` on a real SQLite file: an evaluation is stored, replaced and read back,
//! bad JSON never gets in, and the roll-up per archetype matches hand-computed figures.

use mesa_domain::{RunId, Slug, Timestamp};
use mesa_store::{EvaluationStore, RunEvaluation};
use serde_json::json;
use sqlx::SqlitePool;

use crate::support::{TestDb, raw_pool};

async fn run(raw: &SqlitePool, agent: &str, status: &str) -> RunId {
    let id = RunId::from_uuid(uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO runs (id, agent_id, mode, status, triggers, runner, queued_at) \
         VALUES (?, ?, 'task', ?, '[\"manual\"]', 'noop', 1)",
    )
    .bind(id.to_string())
    .bind(agent)
    .bind(status)
    .execute(raw)
    .await
    .unwrap();
    id
}

fn evaluation(
    run: RunId,
    db: &TestDb,
    archetype: &str,
    signature: serde_json::Value,
    at: i64,
) -> RunEvaluation {
    RunEvaluation {
        run_id: run,
        agent_id: db.agents[0],
        archetype: Slug::parse(archetype).unwrap(),
        signature,
        rubric: None,
        created_at: Timestamp::from_millis(at),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn evaluations_are_stored_replaced_and_rolled_up_per_archetype() {
    let db = TestDb::new().await;
    let raw = raw_pool(&db.path()).await;
    let agent = db.agents[0].to_string();
    let a = run(&raw, &agent, "succeeded").await;
    let b = run(&raw, &agent, "failed").await;
    let c = run(&raw, &agent, "succeeded").await;
    let old = run(&raw, &agent, "succeeded").await;

    assert_eq!(db.store.run_evaluation(a).await.unwrap(), None);
    let first = evaluation(
        a,
        &db,
        "fullstack",
        json!({"tool_calls": 1, "tools": ["Read"]}),
        1_000,
    );
    db.store.put_run_evaluation(first).await.unwrap();
    // Replaced: the run's evaluation is the latest one.
    let mut sig_a = evaluation(
        a,
        &db,
        "fullstack",
        json!({"tool_calls": 6, "tools": ["Read", "Edit", "Bash"], "reads_before_first_write": 2,
               "tool_errors": 1, "time_to_first_edit_ms": 1000}),
        1_000,
    );
    sig_a.rubric = Some(json!({"fidelity": 0.8, "scope_drift": "low"}));
    db.store.put_run_evaluation(sig_a.clone()).await.unwrap();
    assert_eq!(db.store.run_evaluation(a).await.unwrap(), Some(sig_a));
    db.store
        .put_run_evaluation(evaluation(
            b,
            &db,
            "fullstack",
            json!({"tool_calls": 2, "tools": ["Read"], "reads_before_first_write": 2,
                   "tool_errors": 2, "time_to_first_edit_ms": null}),
            1_500,
        ))
        .await
        .unwrap();
    db.store
        .put_run_evaluation(evaluation(
            c,
            &db,
            "qa",
            json!({"tool_calls": 0, "tools": [], "reads_before_first_write": 0, "tool_errors": 0}),
            2_000,
        ))
        .await
        .unwrap();
    db.store
        .put_run_evaluation(evaluation(old, &db, "qa", json!({"tool_calls": 99}), 10))
        .await
        .unwrap();

    let rollup = db
        .store
        .evaluation_rollup(Timestamp::from_millis(500))
        .await
        .unwrap();
    assert_eq!(rollup.len(), 2, "{rollup:#?}");
    let fullstack = &rollup[0];
    assert_eq!(fullstack.archetype, "fullstack");
    assert_eq!((fullstack.runs, fullstack.succeeded), (2, 1));
    assert!((fullstack.avg_tool_calls - 4.0).abs() < 1e-9);
    assert!((fullstack.avg_distinct_tools - 2.0).abs() < 1e-9);
    assert!((fullstack.avg_reads_before_first_write - 2.0).abs() < 1e-9);
    assert_eq!(fullstack.tool_errors, 3);
    assert_eq!(fullstack.runs_with_edit, 1);
    assert_eq!(fullstack.avg_time_to_first_edit_ms, Some(1000.0));
    assert_eq!(fullstack.avg_fidelity, Some(0.8));
    let qa = &rollup[1];
    assert_eq!(
        (qa.archetype.as_str(), qa.runs),
        ("qa", 1),
        "the old one is outside"
    );
    assert_eq!(qa.avg_time_to_first_edit_ms, None);
    assert_eq!(qa.avg_fidelity, None);

    // Not JSON never gets in.
    let fresh = run(&raw, &agent, "succeeded").await;
    let bad = sqlx::query(
        "INSERT INTO run_evaluations (run_id, agent_id, archetype, signature, created_at) \
         VALUES (?, ?, 'qa', 'not json', 1)",
    )
    .bind(fresh.to_string())
    .bind(&agent)
    .execute(&raw)
    .await;
    let err = bad.unwrap_err().to_string();
    assert!(err.contains("CHECK"), "{err}");
    assert_eq!(db.store.run_evaluation(fresh).await.unwrap(), None);
}
