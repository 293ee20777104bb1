//! `GET /metrics` over a real listener: unauthenticated, request counts by route template, the
//! duration histogram, and the runs and queue gauges.

use mesa_core::domain::{IssueKey, RunId, RunMode, RunTrigger, RunnerKind};
use mesa_core::store::NewRunRecord;
use serde_json::{Value, json};

use crate::events::{Server, request};
use crate::support::TestApp;

async fn metrics(server: &Server) -> String {
    let (status, body) = request(server.addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn line_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_runs_by_status() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let (status, body) = request(
        server.addr,
        "POST",
        "/api/v1/issues",
        Some(&app.board),
        Some(&json!({ "title": "Count me" })),
    )
    .await;
    assert_eq!(status, 201);
    let issue: Value = serde_json::from_str(&body).unwrap();
    let key = issue["key"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, _) = request(
            server.addr,
            "GET",
            &format!("/api/v1/issues/{key}"),
            Some(&app.board),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = request(
        server.addr,
        "GET",
        "/api/v1/issues/NOPE-9",
        Some(&app.board),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = request(server.addr, "GET", "/api/v1/issues", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = request(server.addr, "GET", "/no/such/route", None, None).await;
    assert_eq!(status, 404);

    // Two queued runs and nothing else.
    let agent = app.mesa.find_agent("ceo").await.unwrap();
    for (n, mode) in [(1, RunMode::Task), (2, RunMode::Heartbeat)] {
        app.mesa
            .store()
            .enqueue_run(NewRunRecord {
                id: RunId::parse(&format!("01900000-0000-7000-8000-{n:012x}")).unwrap(),
                agent_id: agent.id,
                issue_key: (mode == RunMode::Task).then(|| IssueKey::parse(&key).unwrap()),
                mode,
                trigger: RunTrigger::Assigned,
                runner: RunnerKind::Noop,
                model: String::new(),
                priority: 0,
                not_before: None,
                queued_at: app.mesa.now(),
                activity: Vec::new(),
            })
            .await
            .unwrap();
    }

    let text = metrics(&server).await;
    let count = |route: &str, method: &str, status: u16| {
        line_value(
            &text,
            &format!(
                "mesa_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(
        count("/api/v1/issues/{key}", "GET", 200),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count("/api/v1/issues/{key}", "GET", 404),
        Some(1.0),
        "{text}"
    );
    assert_eq!(count("/api/v1/issues", "POST", 201), Some(1.0), "{text}");
    assert_eq!(count("/api/v1/issues", "GET", 401), Some(1.0), "{text}");
    assert_eq!(count("unmatched", "GET", 404), Some(1.0), "{text}");
    // Templates, never raw paths.
    assert!(!text.contains(&key), "{text}");
    assert!(!text.contains("NOPE-9"), "{text}");
    assert!(!text.contains("/no/such/route"), "{text}");
    // The histogram has every bucket and agrees with the counters.
    let hist = "mesa_http_request_duration_seconds";
    assert!(text.contains(&format!("# TYPE {hist} histogram")));
    assert_eq!(
        line_value(
            &text,
            &format!("{hist}_count{{route=\"/api/v1/issues/{{key}}\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            &format!("{hist}_bucket{{route=\"/api/v1/issues/{{key}}\",le=\"+Inf\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    // Runs by status and the queue.
    assert_eq!(
        line_value(&text, "mesa_runs{status=\"queued\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        line_value(&text, "mesa_runs{status=\"running\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        line_value(&text, "mesa_runs{status=\"succeeded\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(line_value(&text, "mesa_queue_depth"), Some(2.0), "{text}");

    // /metrics counts itself on the next scrape.
    let text = metrics(&server).await;
    assert_eq!(
        line_value(
            &text,
            "mesa_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
}
