//! The runs pages: the filtered list, one run with its log and diff, and cancelling.

use axum::http::StatusCode;
use mesa_core::domain::entity::TokenUsage;
use mesa_core::domain::{Actor, CostEventId, CostSource, MicroUsd, RunId, RunStatus};
use mesa_core::store::FinishRunRecord;

use super::agents::filters;
use super::login;
use super::main_of;
use crate::support::TestApp;

const LOG: &str = concat!(
    r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Fixing <b>it</b>."},{"type":"tool_use","name":"Edit","input":{"file_path":"src/a.rs"}}]}}"#,
    "\n",
    r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"ok","is_error":false}]}}"#,
    "\n<script>alert(1)</script>\n",
);

const DIFF: &str = "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1 +1 @@\n-let x = 1;\n+let x = \"<img>\"; // new\n";

/// A queued run of `slug` (a manual wake).
async fn queued(app: &TestApp, slug: &str) -> RunId {
    app.mesa
        .wake_agent(&Actor::board("test"), slug, None)
        .await
        .unwrap()
        .run
        .id
}

/// A finished run with output, a diff and a cost.
async fn finished(app: &TestApp) -> RunId {
    let id = queued(app, "founding-engineer").await;
    app.mesa.append_run_output(id, LOG).await.unwrap();
    app.mesa
        .finish_run(FinishRunRecord {
            run_id: id,
            status: RunStatus::Failed,
            exit_code: Some(1),
            failure_reason: Some("tests failed".to_owned()),
            stdout: None,
            diff: Some(DIFF.to_owned()),
            diff_stat: Some(" src/a.rs | 2 +-".to_owned()),
            usage: TokenUsage {
                input_tokens: 1200,
                output_tokens: 300,
                ..TokenUsage::default()
            },
            cost_usd: MicroUsd(120_000),
            cost_source: CostSource::Parsed,
            num_turns: Some(3),
            finished_at: app.mesa.now(),
            cost_event_id: CostEventId::parse("01900000-0000-7000-8000-000000000001").unwrap(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn the_runs_list_filters_and_refreshes() {
    let app = TestApp::new().await;
    let done = finished(&app).await;
    let waiting = queued(&app, "qa").await;
    let b = login(&app).await;
    let page = b.get("/runs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&format!("/runs/{done}")));
    assert!(page.body.contains(&format!("/runs/{waiting}")));
    assert!(
        page.body
            .contains("hx-trigger=\"sse:runs throttle:1s, sse:resync\"")
    );
    let main = main_of(&page.body);
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });

    let page = b.get("/runs?status=queued").await;
    assert!(!page.body.contains(&format!("/runs/{done}")));
    assert!(page.body.contains(&format!("/runs/{waiting}")));
    let page = b.get("/runs?agent=founding-engineer").await;
    assert!(page.body.contains(&format!("/runs/{done}")));
    assert!(!page.body.contains(&format!("/runs/{waiting}")));
    let page = b.get("/runs?issue=MESA-999").await;
    assert!(!page.body.contains(&format!("/runs/{done}")));
    assert_eq!(
        b.get("/runs?status=bogus").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let fragment = b.get_htmx("/runs?status=queued").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"runs-list\""));
}

#[tokio::test]
async fn the_run_page_shows_figures_diff_and_an_escaped_log() {
    let app = TestApp::new().await;
    let id = finished(&app).await;
    let b = login(&app).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let main = main_of(&page.body);
    assert!(main.contains("tests failed"));
    assert!(main.contains("(parsed)"), "the cost source");
    assert!(main.contains("<span class=\"diff-file\">src/a.rs</span>"));
    assert!(main.contains("<span class=\"diff-add\"><span class=\"tok-k\">let</span> x = <span class=\"tok-s\">&quot;&lt;img&gt;&quot;</span>; <span class=\"tok-c\">// new</span></span>"));
    assert!(main.contains("<summary>Edit</summary><pre>file_path: src/a.rs</pre>"));
    assert!(main.contains("Fixing &lt;b&gt;it&lt;/b&gt;."));
    assert!(main.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!main.contains("<script>"));
    assert!(
        !main.contains("Cancel run"),
        "a finished run has nothing to cancel"
    );
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });

    let raw = b.get(&format!("/runs/{id}?log=raw")).await;
    let main = main_of(&raw.body);
    assert!(main.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(main.contains("{&quot;type&quot;:&quot;assistant&quot;"));
    assert!(!main.contains("<script>"));
    assert!(
        !main.contains("sse-swap"),
        "a finished run's log does not grow"
    );
    assert_eq!(b.get("/runs/not-a-run").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_live_run_listens_for_its_output_and_status() {
    let app = TestApp::new().await;
    let id = queued(&app, "qa").await;
    app.mesa.append_run_output(id, "starting\n").await.unwrap();
    let b = login(&app).await;
    let page = b.get(&format!("/runs/{id}?log=raw")).await;
    // The stored log, fetched again when the live channel opens, and below it the live part
    // the channel appends to, which is never replaced.
    assert!(
        page.body
            .contains(r#"id="run-log" tabindex="0" data-autoscroll>starting"#)
    );
    assert!(page.body.contains(&format!(
        "id=\"run-log-live\" tabindex=\"0\" data-autoscroll sse-swap=\"run-output-{id}\" hx-swap=\"beforeend\""
    )));
    assert!(page.body.contains("hx-trigger=\"htmx:sseOpen from:body\""));
    assert!(
        page.body
            .contains(&format!("hx-trigger=\"sse:run-{id} throttle:1s\""))
    );
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains(&format!("sse-swap=\"run-output-{id}\"")));
    let fragment = b.get_htmx(&format!("/runs/{id}")).await;
    assert!(fragment.body.contains("id=\"run-status\""));
}

#[tokio::test]
async fn cancelling_a_queued_run_cancels_it_and_a_finished_one_is_refused() {
    let app = TestApp::new().await;
    let id = queued(&app, "qa").await;
    let b = login(&app).await;
    assert!(
        b.get(&format!("/runs/{id}"))
            .await
            .body
            .contains("Cancel run")
    );
    let r = b.post(&format!("/runs/{id}/cancel"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let run = app.mesa.run_log(&Actor::board("test"), id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let r = b.post(&format!("/runs/{id}/cancel"), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_runs_list_pages_with_a_cursor_that_keeps_the_filters() {
    let app = TestApp::new().await;
    let board = Actor::board("test");
    let mut ids = Vec::new();
    for _ in 0..55 {
        let id = queued(&app, "qa").await;
        app.mesa.cancel_run(&board, id).await.unwrap();
        ids.push(id);
    }
    let b = login(&app).await;
    let first = b.get("/runs?agent=qa").await;
    assert_eq!(first.status, StatusCode::OK);
    let at = first.body.find("rel=\"next\"").expect("a next page");
    let href_at = first.body[..at].rfind("href=\"").unwrap() + 6;
    let next = first.body[href_at..href_at + first.body[href_at..].find('"').unwrap()]
        .replace("&amp;", "&");
    assert!(next.starts_with("/runs?agent=qa&cursor="), "{next}");
    let second = b.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    // Newest first: the newest 50 on the first page, the oldest 5 on the second.
    for id in &ids[..5] {
        assert!(second.body.contains(&format!("/runs/{id}")));
        assert!(!first.body.contains(&format!("/runs/{id}")));
    }
    assert!(first.body.contains(&format!("/runs/{}", ids[54])));
    assert!(!second.body.contains("rel=\"next\""));

    let tab = b.get("/agents/qa?tab=runs").await;
    assert!(
        tab.body.contains("rel=\"next\""),
        "the agent's runs tab pages too"
    );
}

#[expect(
    clippy::disallowed_methods,
    reason = "the runner gets the test's PATH, as the binary passes its own"
)]
fn engine_config() -> mesa_core::EngineConfig {
    let mut c = mesa_core::EngineConfig::new("http://127.0.0.1:9");
    c.server_env = vec![("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())];
    c
}

#[tokio::test]
async fn a_real_command_run_shows_its_output_while_running_and_after() {
    let app = TestApp::new().await;
    let board = Actor::board("test");
    let qa = app.mesa.find_agent("qa").await.unwrap();
    let config = mesa_core::domain::entity::AgentConfig {
        runner: mesa_core::domain::RunnerKind::Command,
        command: vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo '<script>x</script> started'; sleep 2; echo finished".to_owned(),
        ],
        timeout_sec: 60,
        ..qa.config.clone()
    };
    app.mesa
        .update_agent_config(&board, "qa", config, None, "test runner")
        .await
        .unwrap();
    let id = queued(&app, "qa").await;
    let mut s = app.mesa.scheduler(engine_config());
    let report = s.step().await.unwrap();
    assert_eq!(report.started, vec![id], "{report:?}");
    let b = login(&app).await;
    // While it runs, the stored output shows (escaped) and the log listens for more.
    let mut page = b.get(&format!("/runs/{id}?log=raw")).await;
    for _ in 0..100 {
        if page.body.contains("started") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = b.get(&format!("/runs/{id}?log=raw")).await;
    }
    let main = main_of(&page.body);
    assert!(
        main.contains("&lt;script&gt;x&lt;/script&gt; started"),
        "{main}"
    );
    assert!(main.contains(&format!("sse-swap=\"run-output-{id}\"")));
    assert!(main.contains("Running"));
    assert!(page.body.contains("Cancel run"));
    s.settle().await;
    let page = b.get(&format!("/runs/{id}?log=raw")).await;
    let main = main_of(&page.body);
    assert!(main.contains("Succeeded"), "{main}");
    assert!(main.contains("finished"));
    assert!(!main.contains("sse-swap"));
    assert!(!main.contains("<script>"));
}
