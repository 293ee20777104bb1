//! The script: the turns a test wants the fake model to play, in order.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::record::{Endpoint, RecordedRequest};

/// Token usage a turn reports to the client.
///
/// The same figures are written in each API's own shape: Anthropic `input_tokens`,
/// `output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`; OpenAI
/// `prompt_tokens` (= input + cache read), `completion_tokens`, `prompt_tokens_details.cached_tokens`;
/// Responses `input_tokens` (= input + cache read), `input_tokens_details.cached_tokens`,
/// `output_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache (Anthropic only; OpenAI has no such figure).
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// `input_tokens` uncached input and `output_tokens` output, no cache.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }

    /// The same usage with prompt-cache figures.
    #[must_use]
    pub const fn with_cache(mut self, creation: u64, read: u64) -> Self {
        self.cache_creation_input_tokens = creation;
        self.cache_read_input_tokens = read;
        self
    }
}

/// The usage a turn reports unless told otherwise: 100 input tokens, 20 output tokens.
pub const DEFAULT_USAGE: Usage = Usage::new(100, 20);

/// One tool call of a turn: the tool's name and its JSON input (Anthropic `tool_use.input`,
/// OpenAI `function.arguments`, serialized).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) input: Value,
}

impl ToolCall {
    /// A call of `name` with `input`; its id is generated (`toolu_fake_N`, `call_fake_N`).
    pub fn new(name: impl Into<String>, input: Value) -> Self {
        Self {
            id: None,
            name: name.into(),
            input,
        }
    }

    /// The same call with a fixed id, for tests that look for it in the next request.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// An HTTP error a turn answers with instead of a model reply, for quota and retry tests.
///
/// The body has the API's error shape (Anthropic `{"type":"error","error":{"type","message"}}`,
/// OpenAI `{"error":{"message","type","code"}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) kind: Option<String>,
    pub(crate) message: Option<String>,
}

impl Fault {
    /// Any status; the error type is derived from it.
    pub const fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            kind: None,
            message: None,
        }
    }

    /// 429 with a `retry-after` header (whole seconds, rounded up).
    pub const fn rate_limited(retry_after: Duration) -> Self {
        Self {
            status: 429,
            retry_after: Some(retry_after),
            kind: None,
            message: None,
        }
    }

    /// 529 `overloaded_error` (Anthropic's "overloaded"; OpenAI clients see a plain 529).
    pub const fn overloaded() -> Self {
        Self::status(529)
    }

    /// 500 `api_error` / `server_error`.
    pub const fn server_error() -> Self {
        Self::status(500)
    }

    /// The same fault with an explicit error type (Anthropic `error.type`, OpenAI `error.type`
    /// and `error.code`), e.g. `insufficient_quota`.
    #[must_use]
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The same fault with an explicit error message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The same fault with a `retry-after` header.
    #[must_use]
    pub const fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }
}

type Predicate = dyn Fn(&RecordedRequest) -> bool + Send + Sync;

/// A condition a request must meet to consume a turn (see [`Turn::when`]).
#[derive(Clone)]
pub struct Matcher {
    description: String,
    predicate: Arc<Predicate>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Matcher").field(&self.description).finish()
    }
}

impl Matcher {
    /// A custom predicate; `description` shows up in the unexpected-request record.
    pub fn new(
        description: impl Into<String>,
        predicate: impl Fn(&RecordedRequest) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            description: description.into(),
            predicate: Arc::new(predicate),
        }
    }

    /// The request's last input item is a tool result (Anthropic `tool_result` block in the last
    /// user message, chat-completions `role: "tool"` message, Responses `function_call_output`).
    pub fn ends_with_tool_result() -> Self {
        Self::new(
            "the last input item is a tool result",
            RecordedRequest::ends_with_tool_result,
        )
    }

    /// The request body, serialized, contains `needle`.
    pub fn body_contains(needle: impl Into<String>) -> Self {
        let needle = needle.into();
        Self::new(format!("the body contains {needle:?}"), move |request| {
            request.body_contains(&needle)
        })
    }

    /// The request went to `endpoint`.
    pub fn endpoint(endpoint: Endpoint) -> Self {
        Self::new(
            format!("the request goes to {endpoint:?}"),
            move |request| request.endpoint == endpoint,
        )
    }

    /// What the matcher requires, in words.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub(crate) fn matches(&self, request: &RecordedRequest) -> bool {
        (self.predicate)(request)
    }
}

/// One scripted model turn: text and/or tool calls with usage, or an HTTP error.
#[derive(Debug, Clone)]
pub struct Turn {
    pub(crate) text: Option<String>,
    pub(crate) tool_calls: Vec<ToolCall>,
    pub(crate) usage: Usage,
    pub(crate) fault: Option<Fault>,
    pub(crate) matcher: Option<Matcher>,
}

impl Turn {
    fn empty() -> Self {
        Self {
            text: None,
            tool_calls: Vec::new(),
            usage: DEFAULT_USAGE,
            fault: None,
            matcher: None,
        }
    }

    /// A final text reply (`end_turn` / `stop`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::empty().with_text(text)
    }

    /// A reply that calls one tool (`tool_use` / `tool_calls`).
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Self::empty().with_tool_call(ToolCall::new(name, input))
    }

    /// An HTTP error instead of a reply.
    pub fn fault(fault: Fault) -> Self {
        Self {
            fault: Some(fault),
            ..Self::empty()
        }
    }

    /// Adds (or replaces) the text; it comes before the tool calls.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Adds a tool call after the existing ones.
    #[must_use]
    pub fn with_tool_call(mut self, call: ToolCall) -> Self {
        self.tool_calls.push(call);
        self
    }

    /// The usage this turn reports (default [`DEFAULT_USAGE`]).
    #[must_use]
    pub const fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Only a request that meets `matcher` consumes this turn; any other request arriving while
    /// this turn is next is answered with the fallback text and recorded as unexpected.
    #[must_use]
    pub fn when(mut self, matcher: Matcher) -> Self {
        self.matcher = Some(matcher);
        self
    }
}

/// The text of the reply to a request that no turn was left for (or whose turn's matcher did
/// not match).
pub const FALLBACK_TEXT: &str = "mesa-testkit: no scripted turn for this request";

/// A ready-to-render reply: the turn's content with ids filled in.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) text: Option<String>,
    /// (id, name, input).
    pub(crate) tool_calls: Vec<(String, String, Value)>,
    pub(crate) usage: Usage,
    /// A sequence number, unique per server, for message and response ids.
    pub(crate) serial: u64,
}

impl Reply {
    pub(crate) fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}
