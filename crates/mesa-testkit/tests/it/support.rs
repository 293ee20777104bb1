//! Helpers shared by the tests: an HTTP client and an SSE parser.

use std::path::PathBuf;

use serde_json::Value;

/// Where an agent CLI is: `$<env_var>`, else `name` on `PATH`.
/// Missing, it returns `None` with a notice outside CI, and panics when `CI` is set, so CI never
/// skips a real-CLI test silently.
#[expect(
    clippy::print_stderr,
    reason = "the skip notice must be visible in the test output"
)]
pub(crate) fn agent_cli(env_var: &str, name: &str, package: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let install = format!(
            "npm install --prefix /tmp/{name} {package} and set \
             {env_var}=/tmp/{name}/node_modules/.bin/{name}"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the `{name}` CLI is missing: {install}"
        );
        eprintln!(
            "NOTICE: skipping a real-CLI test: `{name}` is not on PATH and {env_var} is not set \
             ({install})"
        );
    }
    found
}

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
