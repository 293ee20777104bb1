//! `GET /metrics` in the Prometheus text format (SPEC §9.3, unauthenticated) and the middleware
//! that counts and times every request.
//!
//! Requests are labelled by the matched route *template* (`/api/v1/issues/{key}`), never the raw
//! path, so the number of series stays bounded; requests that match no route share the label
//! `unmatched`. The figures are in-process (one node's requests since it started):
//!
//! - `mesa_http_requests_total{route,method,status}` (counter),
//! - `mesa_http_request_duration_seconds{route}` (histogram, until the response head; a stream
//!   such as the event stream counts until it starts),
//! - `mesa_runs{status}` (gauge, runs in each status, from the database),
//! - `mesa_queue_depth` (gauge, queued runs).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mesa_core::Mesa;
use mesa_core::domain::RunStatus;

use crate::AppState;

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Request counters and timings, per route template.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, RouteStats>>,
}

#[derive(Debug, Default)]
struct RouteStats {
    /// Requests by (method, status).
    requests: HashMap<(String, u16), u64>,
    /// Observations at or below each bucket bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Records one request.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats
            .requests
            .entry((method.to_owned(), status))
            .or_insert(0) += 1;
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            stats.buckets[i] += 1;
        }
        stats.sum += seconds;
        stats.count += 1;
    }

    /// The request metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        out.push_str(
            "# HELP mesa_http_requests_total HTTP requests by route template, method and status.\n",
        );
        out.push_str("# TYPE mesa_http_requests_total counter\n");
        for route in &names {
            let mut lines: Vec<_> = routes[*route].requests.iter().collect();
            lines.sort();
            for ((method, status), n) in lines {
                let _ = writeln!(
                    out,
                    "mesa_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method),
                );
            }
        }
        out.push_str("# HELP mesa_http_request_duration_seconds Time to the response head by route template.\n");
        out.push_str("# TYPE mesa_http_request_duration_seconds histogram\n");
        for route in &names {
            let stats = &routes[*route];
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "mesa_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mesa_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "mesa_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum
            );
            let _ = writeln!(
                out,
                "mesa_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                stats.count
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Adds `GET /metrics` to `app` and counts every request of it (call last, so the count sees
/// the responses of the other middleware too, and `/metrics` is behind none of them).
pub(crate) fn instrument(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    app.route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            track,
        ))
}

/// The middleware: times the request and counts it under its route template.
async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let response = next.run(req).await;
    metrics.record(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
async fn metrics(State(mesa): State<Mesa>, State(metrics): State<Arc<Metrics>>) -> Response {
    let mut out = String::with_capacity(4096);
    metrics.render(&mut out);
    match mesa.run_counts().await {
        Ok(counts) => {
            out.push_str("# HELP mesa_runs Runs by status.\n# TYPE mesa_runs gauge\n");
            for (status, n) in &counts {
                let _ = writeln!(out, "mesa_runs{{status=\"{}\"}} {n}", status.as_str());
            }
            let queued = counts
                .iter()
                .find(|(s, _)| *s == RunStatus::Queued)
                .map_or(0, |(_, n)| *n);
            out.push_str("# HELP mesa_queue_depth Queued runs.\n# TYPE mesa_queue_depth gauge\n");
            let _ = writeln!(out, "mesa_queue_depth {queued}");
        }
        Err(e) => {
            // The request figures are still worth serving when the database is down.
            tracing::warn!(error = %e, "metrics: cannot count runs");
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("/api/v1/issues/{key}", "GET", 200, 0.003);
        m.record("/api/v1/issues/{key}", "GET", 200, 0.2);
        m.record("/api/v1/issues/{key}", "GET", 404, 20.0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "mesa_http_requests_total{route=\"/api/v1/issues/{key}\",method=\"GET\",status=\"200\"} 2\n"
        ));
        assert!(out.contains(
            "mesa_http_requests_total{route=\"/api/v1/issues/{key}\",method=\"GET\",status=\"404\"} 1\n"
        ));
        assert!(out.contains(
            "mesa_http_request_duration_seconds_bucket{route=\"/api/v1/issues/{key}\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "mesa_http_request_duration_seconds_bucket{route=\"/api/v1/issues/{key}\",le=\"0.25\"} 2\n"
        ));
        assert!(out.contains(
            "mesa_http_request_duration_seconds_bucket{route=\"/api/v1/issues/{key}\",le=\"+Inf\"} 3\n"
        ));
        assert!(out.contains(
            "mesa_http_request_duration_seconds_count{route=\"/api/v1/issues/{key}\"} 3\n"
        ));
    }
}
