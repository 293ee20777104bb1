//! Helpers shared by the tests: an HTTP client and an SSE parser.

pub(crate) use mesa_testkit::agent_cli;

use serde_json::Value;

/// A plain-HTTP client. No TLS is used, but reqwest (built with `rustls-no-provider`) panics when
/// building a client without a process-wide crypto provider, so install ring's first.
pub(crate) fn client() -> reqwest::Client {
    // Err means another test installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain-http reqwest client builds")
}

/// One server-sent event: its `event:` name (if any) and its `data:` payload.
#[derive(Debug, Clone)]
pub(crate) struct Sse {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

impl Sse {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Parses a whole `text/event-stream` body.
pub(crate) fn parse_sse(body: &str) -> Vec<Sse> {
    body.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut event = None;
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(payload) = line.strip_prefix("data: ") {
                    data.push(payload);
                }
            }
            Sse {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}
