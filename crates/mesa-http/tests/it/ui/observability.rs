//! Run evaluation in the dashboard: the Observability page (per archetype, a window of days,
//! the flag's state) and the evaluation section of a run's page.

use axum::http::StatusCode;
use mesa_core::domain::Actor;
use mesa_core::store::RunEvaluation;
use serde_json::json;

use super::login;
use super::main_of;
use crate::support::TestApp;

/// A manual run of `slug` with a stored evaluation.
async fn evaluated(app: &TestApp, slug: &str, signature: serde_json::Value) -> String {
    let run = app
        .mesa
        .wake_agent(&Actor::board("test"), slug, None)
        .await
        .unwrap()
        .run;
    let agent = app.mesa.find_agent(slug).await.unwrap();
    app.mesa
        .store()
        .put_run_evaluation(RunEvaluation {
            run_id: run.id,
            agent_id: agent.id,
            archetype: agent.config.archetype.clone(),
            signature,
            rubric: None,
            created_at: app.mesa.now(),
        })
        .await
        .unwrap();
    run.id.to_string()
}

#[tokio::test]
async fn the_observability_page_rolls_evaluations_up_per_archetype() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let empty = b.get("/observability").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    let main = main_of(&empty.body);
    assert!(main.contains("No evaluated runs in this window"), "{main}");
    assert!(main.contains("Run evaluation is off"), "{main}");

    evaluated(
        &app,
        "founding-engineer",
        json!({"tool_calls": 4, "tools": ["Edit", "Read"], "reads_before_first_write": 3,
               "tool_errors": 1, "time_to_first_edit_ms": 90000}),
    )
    .await;
    evaluated(
        &app,
        "qa",
        json!({"tool_calls": 2, "tools": ["Bash"], "reads_before_first_write": 2,
               "tool_errors": 0, "time_to_first_edit_ms": null}),
    )
    .await;
    app.mesa
        .put_settings(
            &Actor::board("test"),
            &[("feature_run_evaluation".to_owned(), "true".to_owned())],
        )
        .await
        .unwrap();
    let page = b.get("/observability?days=30").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let main = main_of(&page.body);
    assert!(!main.contains("Run evaluation is off"), "{main}");
    assert!(main.contains("last 30 days"), "{main}");
    assert!(
        main.contains(r#"href="/governance/archetypes/fullstack""#),
        "{main}"
    );
    assert!(
        main.contains(r#"href="/governance/archetypes/qa""#),
        "{main}"
    );
    assert!(
        main.contains("1 min 30 s"),
        "time to the first edit: {main}"
    );
    assert!(
        page.body
            .contains(r#"href="/observability" aria-current="page""#),
        "the nav marks the page"
    );

    // A window outside 1..=365 days is refused, naming the field.
    let bad = b.get("/observability?days=0").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("days"), "{}", bad.body);
}

#[tokio::test]
async fn a_run_page_shows_its_evaluation() {
    let app = TestApp::new().await;
    let run = evaluated(
        &app,
        "founding-engineer",
        json!({"tool_calls": 3, "tools": ["Bash", "Edit", "Read"], "reads_before_first_write": 1,
               "tool_errors": 1, "time_to_first_edit_ms": 2500}),
    )
    .await;
    let b = login(&app).await;
    let page = b.get(&format!("/runs/{run}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let main = main_of(&page.body);
    assert!(main.contains("Evaluation"), "{main}");
    assert!(main.contains("3 (Bash, Edit, Read)"), "{main}");
    assert!(main.contains("2.5 s"), "time to the first edit: {main}");
    assert!(main.contains("Reads before the first write"), "{main}");
    assert!(main.contains("not judged"), "{main}");
    // A run without an evaluation has no such section.
    let other = app
        .mesa
        .wake_agent(&Actor::board("test"), "qa", None)
        .await
        .unwrap()
        .run
        .id;
    let plain = b.get(&format!("/runs/{other}")).await;
    assert!(!main_of(&plain.body).contains("h-evaluation"));
}

#[tokio::test]
async fn a_judged_run_shows_its_grade_and_a_failed_judge_says_why() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let judged = evaluated(
        &app,
        "founding-engineer",
        json!({"tool_calls": 1, "tools": ["Edit"], "reads_before_first_write": 0,
               "tool_errors": 0, "time_to_first_edit_ms": 40}),
    )
    .await;
    let failed = evaluated(
        &app,
        "qa",
        json!({"tool_calls": 0, "tools": [], "reads_before_first_write": 0,
               "tool_errors": 0, "time_to_first_edit_ms": null}),
    )
    .await;
    for (run, rubric) in [
        (
            &judged,
            json!({"fidelity": 0.9, "scope_drift": "low", "confidence": 0.7,
                   "missed_criteria": ["no <b>test</b>"], "unrequested_changes": []}),
        ),
        (
            &failed,
            json!({"error": "the judge endpoint failed: timed out"}),
        ),
    ] {
        let id = mesa_core::domain::RunId::parse(run).unwrap();
        let mut e = app.mesa.run_evaluation(id).await.unwrap().unwrap();
        e.rubric = Some(rubric);
        app.mesa.store().put_run_evaluation(e).await.unwrap();
    }
    let main = main_of(&b.get(&format!("/runs/{judged}")).await.body);
    assert!(
        main.contains("fidelity 0.9 · scope drift low · confidence 0.7"),
        "{main}"
    );
    assert!(main.contains("Missed criteria"), "{main}");
    assert!(
        main.contains("no &lt;b&gt;test&lt;/b&gt;"),
        "escaped: {main}"
    );
    assert!(!main.contains("Unrequested changes"), "{main}");
    let main = main_of(&b.get(&format!("/runs/{failed}")).await.body);
    assert!(
        main.contains("no grade: the judge endpoint failed: timed out"),
        "{main}"
    );
}
