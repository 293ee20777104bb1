//! The Mesa API as a simulated agent calls it: bearer auth with the run key, JSON in and out,
//! every answer other than 2xx an error carrying the method, path, status and body.

use serde_json::Value;

/// Why a simulated run could not go on.
#[derive(Debug, thiserror::Error)]
pub(super) enum SimError {
    /// The API answered with an error status.
    #[error("{method} {path} returned {status}: {body}")]
    Http {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    /// The request did not get an answer.
    #[error("{method} {path} failed: {message}")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected reply from {path}: {what}")]
    Reply { path: String, what: &'static str },
    /// The environment lacks something.
    #[error("{0}")]
    Env(&'static str),
    /// Writing or committing the work failed.
    #[error("could not commit the work: {0}")]
    Git(String),
}

impl SimError {
    /// The HTTP status, when the API answered with an error.
    pub(super) fn status(&self) -> Option<u16> {
        match self {
            SimError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A detail of the error body (`{"error": {<field>: ...}}`), when there is one.
    pub(super) fn detail(&self, field: &str) -> Option<String> {
        let SimError::Http { body, .. } = self else {
            return None;
        };
        let v: Value = serde_json::from_str(body).ok()?;
        v["error"][field].as_str().map(str::to_owned)
    }
}

/// The Mesa API, as the run's agent.
pub(super) struct Api {
    /// The HTTP client of the run.
    pub(super) client: reqwest::Client,
    /// `MESA_API_URL` without a trailing slash.
    pub(super) base: String,
    /// The run key.
    pub(super) key: String,
}

impl Api {
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SimError> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = self.client.request(m, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: reqwest::Error| SimError::Transport {
            method,
            path: path.to_owned(),
            message: error_chain(&e),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(SimError::Http {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                body: text,
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| SimError::Reply {
            path: path.to_owned(),
            what: "the body is not JSON",
        })
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, SimError> {
        self.call("GET", path, None).await
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, SimError> {
        self.call("POST", path, Some(body)).await
    }

    pub(super) async fn patch(&self, path: &str, body: &Value) -> Result<Value, SimError> {
        self.call("PATCH", path, Some(body)).await
    }
}

/// An error and its causes, joined with `: ` (reqwest hides "connection refused" in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The statuses after which an issue needs no more work from its assignee.
pub(super) fn is_settled(status: &str) -> bool {
    matches!(
        status,
        "done" | "wont_do" | "cancelled" | "in_review" | "board_review"
    )
}

pub(super) fn is_terminal(status: &str) -> bool {
    matches!(status, "done" | "wont_do" | "cancelled")
}

pub(super) fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

pub(super) fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}
