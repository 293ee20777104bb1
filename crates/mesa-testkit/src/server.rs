//! The HTTP server: one fallback handler that classifies, records, consumes a turn and renders.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::TestkitError;
use crate::record::{Endpoint, Outcome, RecordedRequest};
use crate::script::{FALLBACK_TEXT, Fault, Reply, Turn, Usage};
use crate::{anthropic, openai};

/// A fake model server on `127.0.0.1:<random port>`, playing a script of [`Turn`]s.
///
/// Dropping it stops accepting connections.
#[derive(Debug)]
pub struct FakeModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<ScriptState>,
}

#[derive(Debug, Default)]
struct ScriptState {
    /// Turns not yet played, with their index in script order.
    turns: VecDeque<(usize, Turn)>,
    /// The index the next pushed turn gets.
    next_index: usize,
    requests: Vec<RecordedRequest>,
    serial: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ScriptState> {
        // A panicking test thread must not hide the record from the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What to answer a request with.
enum Decision {
    Reply(Reply),
    Fault(Fault),
    BadRequest(String),
    Auxiliary,
}

impl FakeModelServer {
    /// Binds `127.0.0.1:0` and starts serving `turns` on the current tokio runtime.
    pub async fn start(turns: impl IntoIterator<Item = Turn>) -> Result<Self, TestkitError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(TestkitError::Bind)?;
        let addr = listener.local_addr().map_err(TestkitError::Bind)?;
        let shared = Arc::new(Shared::default());
        {
            let mut state = shared.lock();
            for turn in turns {
                let index = state.next_index;
                state.turns.push_back((index, turn));
                state.next_index += 1;
            }
        }
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the value for `ANTHROPIC_BASE_URL` (the client adds `/v1/...`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/v1`: the value for `OPENAI_BASE_URL` and a Codex provider's
    /// `base_url` (the client adds `/chat/completions` or `/responses`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The environment Claude Code needs to talk to this server and nothing else (see the crate
    /// docs). `HOME` is not included: give each run its own temporary one.
    pub fn claude_code_env(&self) -> Vec<(String, String)> {
        [
            ("ANTHROPIC_BASE_URL", self.base_url()),
            ("ANTHROPIC_API_KEY", "test".to_owned()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
            ("DISABLE_TELEMETRY", "1".to_owned()),
            ("DISABLE_ERROR_REPORTING", "1".to_owned()),
            ("CLAUDE_CODE_MAX_RETRIES", "0".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// A Codex `config.toml` that points Codex at this server over the Responses API, with
    /// retries off (fault turns are answered at once). Codex reads the key from the variable
    /// `MESA_FAKE_MODEL_KEY` (any value).
    pub fn codex_config_toml(&self, model: &str) -> String {
        format!(
            "model = \"{model}\"\nmodel_provider = \"mesa-fake\"\n\n\
             [model_providers.mesa-fake]\nname = \"mesa fake model\"\n\
             base_url = \"{}\"\nenv_key = \"MESA_FAKE_MODEL_KEY\"\nwire_api = \"responses\"\n\
             request_max_retries = 0\nstream_max_retries = 0\n",
            self.openai_base_url()
        )
    }

    /// Appends turns to the script.
    pub fn push_turns(&self, turns: impl IntoIterator<Item = Turn>) {
        let mut state = self.shared.lock();
        for turn in turns {
            let index = state.next_index;
            state.turns.push_back((index, turn));
            state.next_index += 1;
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests to model endpoints (messages, chat completions, responses), in order.
    pub fn model_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.endpoint.is_model_call())
            .cloned()
            .collect()
    }

    /// The requests that found no turn for them (script exhausted, matcher refused, bad body).
    pub fn unexpected(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Unexpected(_)))
            .cloned()
            .collect()
    }

    /// How many turns have not been played yet.
    pub fn remaining_turns(&self) -> usize {
        self.shared.lock().turns.len()
    }

    /// Stops the server and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn classify(method: &Method, path: &str) -> Endpoint {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::POST, "/v1/messages") => Endpoint::AnthropicMessages,
        (&Method::POST, "/v1/messages/count_tokens") => Endpoint::AnthropicCountTokens,
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => Endpoint::ChatCompletions,
        (&Method::POST, "/v1/responses" | "/responses") => Endpoint::Responses,
        (&Method::GET, p) if p == "/v1/models" || p.starts_with("/v1/models/") => Endpoint::Models,
        _ => Endpoint::Other,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = classify(&method, uri.path());
    let json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut request = RecordedRequest {
        seq: 0,
        endpoint,
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: json,
        outcome: Outcome::Auxiliary,
    };
    let decision = decide(&shared, &mut request);
    let body = &request.body;
    match (endpoint, decision) {
        (_, Decision::BadRequest(message)) => match endpoint {
            Endpoint::AnthropicMessages => {
                anthropic::fault(&Fault::status(400).with_message(message))
            }
            _ => openai::fault(&Fault::status(400).with_message(message)),
        },
        (Endpoint::AnthropicMessages, Decision::Fault(fault)) => anthropic::fault(&fault),
        (_, Decision::Fault(fault)) => openai::fault(&fault),
        (Endpoint::AnthropicMessages, Decision::Reply(reply)) => anthropic::respond(body, &reply),
        (Endpoint::ChatCompletions, Decision::Reply(reply)) => openai::chat(body, &reply),
        (Endpoint::Responses, Decision::Reply(reply)) => openai::responses(body, &reply),
        (_, Decision::Reply(_) | Decision::Auxiliary) => auxiliary(&request),
    }
}

/// Records `request` and decides its answer, consuming a turn for model calls.
fn decide(shared: &Shared, request: &mut RecordedRequest) -> Decision {
    let mut state = shared.lock();
    request.seq = state.requests.len();
    state.serial += 1;
    let serial = state.serial;
    let decision = if !request.endpoint.is_model_call() {
        Decision::Auxiliary
    } else if request.body.is_null() {
        request.outcome = Outcome::Unexpected("the body is not JSON".to_owned());
        Decision::BadRequest("mesa-testkit: the request body is not JSON".to_owned())
    } else {
        let refusal = match state.turns.front() {
            None => Some("the script has no turn left".to_owned()),
            Some((index, turn)) => turn
                .matcher
                .as_ref()
                .filter(|matcher| !matcher.matches(request))
                .map(|matcher| format!("turn {index} expects: {}", matcher.description())),
        };
        match refusal {
            Some(reason) => {
                request.outcome = Outcome::Unexpected(reason);
                Decision::Reply(fallback(serial))
            }
            None => {
                let (index, turn) = state.turns.pop_front().expect("front() was Some");
                request.outcome = Outcome::Turn(index);
                match turn.fault {
                    Some(fault) => Decision::Fault(fault),
                    None => Decision::Reply(Reply {
                        text: turn.text,
                        tool_calls: turn
                            .tool_calls
                            .into_iter()
                            .enumerate()
                            .map(|(i, call)| {
                                let id = call.id.unwrap_or_else(|| {
                                    let prefix = match request.endpoint {
                                        Endpoint::AnthropicMessages => "toolu",
                                        _ => "call",
                                    };
                                    format!("{prefix}_fake_{serial}_{i}")
                                });
                                (id, call.name, call.input)
                            })
                            .collect(),
                        usage: turn.usage,
                        serial,
                    }),
                }
            }
        }
    };
    state.requests.push(request.clone());
    decision
}

fn fallback(serial: u64) -> Reply {
    Reply {
        text: Some(FALLBACK_TEXT.to_owned()),
        tool_calls: Vec::new(),
        usage: Usage::new(1, 1),
        serial,
    }
}

/// Known models, for `GET /v1/models`.
const MODELS: &[&str] = &[
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-haiku-4-5",
    "gpt-5",
    "gpt-5-codex",
];

/// Start-up probes, model listing and token counting.
fn auxiliary(request: &RecordedRequest) -> Response {
    let anthropic_client = request.header("anthropic-version").is_some();
    match request.endpoint {
        Endpoint::AnthropicCountTokens => {
            // Roughly four bytes a token, like the real tokenizers on English text.
            let bytes = request.body.to_string().len() as u64;
            json_response(
                StatusCode::OK,
                &json!({ "input_tokens": bytes.div_ceil(4) }),
            )
        }
        Endpoint::Models => {
            let one = request.path.strip_prefix("/v1/models/").map(str::to_owned);
            let model = |id: &str| {
                if anthropic_client {
                    json!({"type": "model", "id": id, "display_name": id,
                           "created_at": "2025-01-01T00:00:00Z"})
                } else {
                    json!({"id": id, "object": "model", "created": openai::CREATED,
                           "owned_by": "mesa-testkit"})
                }
            };
            if let Some(id) = one {
                return json_response(StatusCode::OK, &model(&id));
            }
            let data: Vec<Value> = MODELS.iter().map(|id| model(id)).collect();
            let body = if anthropic_client {
                json!({"data": data, "has_more": false,
                       "first_id": MODELS.first(), "last_id": MODELS.last()})
            } else {
                json!({"object": "list", "data": data})
            };
            json_response(StatusCode::OK, &body)
        }
        _ if request.path == "/" && (request.method == "HEAD" || request.method == "GET") => {
            (StatusCode::OK, "mesa-testkit fake model server").into_response()
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"type": "error", "error": {"type": "not_found_error",
                    "message": format!("mesa-testkit: no route for {} {}",
                                       request.method, request.path)}}),
        ),
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `text/event-stream` response that sends `frames` one by one.
pub(crate) fn sse_response(frames: Vec<String>) -> Response {
    let stream =
        futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// An error response with `retry-after` when the fault has one.
pub(crate) fn fault_response(fault: &Fault, body: &Value) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, body);
    if let Some(retry_after) = fault.retry_after {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

/// Splits `text` into about three pieces at character boundaries, so clients must join deltas.
pub(crate) fn chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 3 {
        return vec![text.to_owned()];
    }
    chars
        .chunks(chars.len().div_ceil(3))
        .map(|piece| piece.iter().collect())
        .collect()
}
