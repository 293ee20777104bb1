//! What the server received: one [`RecordedRequest`] per HTTP request, for assertions.

use serde_json::Value;

/// Which endpoint a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/messages` (Anthropic Messages API; Claude Code adds `?beta=true`).
    AnthropicMessages,
    /// `POST /v1/messages/count_tokens`.
    AnthropicCountTokens,
    /// `POST /v1/chat/completions` (OpenAI chat completions).
    ChatCompletions,
    /// `POST /v1/responses` (OpenAI Responses API, used by Codex).
    Responses,
    /// `GET /v1/models` and `GET /v1/models/{id}`.
    Models,
    /// Anything else (`HEAD /`, `GET /`, unknown paths).
    Other,
}

impl Endpoint {
    /// Whether requests to this endpoint consume script turns.
    pub const fn is_model_call(self) -> bool {
        matches!(
            self,
            Self::AnthropicMessages | Self::ChatCompletions | Self::Responses
        )
    }
}

/// How the server answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It consumed the turn with this index (0-based, in script order), fault turns included.
    Turn(usize),
    /// No turn was consumed: the script had run out or the next turn's matcher refused it.
    /// The reply was [`crate::FALLBACK_TEXT`] (or a 400 for a body that is not JSON).
    Unexpected(String),
    /// An auxiliary endpoint (start-up probe, model list, token count) answered without the
    /// script.
    Auxiliary,
}

/// A tool result found in a request's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the tool call it answers (`tool_use_id` / `tool_call_id` / `call_id`).
    pub call_id: String,
    /// The result text (text parts joined with newlines).
    pub content: String,
    /// Anthropic's `is_error` flag (always false for OpenAI).
    pub is_error: bool,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival order, from 0, over all requests.
    pub seq: usize,
    /// The endpoint it went to.
    pub endpoint: Endpoint,
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any (Claude Code sends `beta=true`).
    pub query: Option<String>,
    /// Every header, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Null` when it was empty or not JSON.
    pub body: Value,
    /// How it was answered.
    pub outcome: Outcome,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `model` field of the body.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// Whether the body asked for a stream (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// Whether the serialized body contains `needle`.
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body.to_string().contains(needle) || texts_contain(&self.body, needle)
    }

    /// The input items: Anthropic and chat-completions `messages`, Responses `input` (a string
    /// input becomes one user item).
    fn items(&self) -> Vec<Value> {
        if let Some(messages) = self.body.get("messages").and_then(Value::as_array) {
            return messages.clone();
        }
        match self.body.get("input") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(text)) => {
                vec![serde_json::json!({"role": "user", "content": text})]
            }
            _ => Vec::new(),
        }
    }

    /// Every tool result in the input, in order.
    pub fn tool_results(&self) -> Vec<ToolResult> {
        let mut results = Vec::new();
        for item in self.items() {
            // Chat completions: a `tool` message.
            if item.get("role").and_then(Value::as_str) == Some("tool") {
                results.push(ToolResult {
                    call_id: str_field(&item, "tool_call_id"),
                    content: content_text(item.get("content")),
                    is_error: false,
                });
                continue;
            }
            // Responses: a `function_call_output` (or custom tool) item.
            if let Some(kind) = item.get("type").and_then(Value::as_str)
                && kind.ends_with("call_output")
            {
                results.push(ToolResult {
                    call_id: str_field(&item, "call_id"),
                    content: content_text(item.get("output")),
                    is_error: false,
                });
                continue;
            }
            // Anthropic: `tool_result` blocks in a user message.
            if let Some(blocks) = item.get("content").and_then(Value::as_array) {
                for block in blocks {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                        results.push(ToolResult {
                            call_id: str_field(block, "tool_use_id"),
                            content: content_text(block.get("content")),
                            is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
                        });
                    }
                }
            }
        }
        results
    }

    /// Whether the last input item is (or, for Anthropic, contains) a tool result.
    pub fn ends_with_tool_result(&self) -> bool {
        let Some(last) = self.items().pop() else {
            return false;
        };
        if last.get("role").and_then(Value::as_str) == Some("tool") {
            return true;
        }
        if last
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.ends_with("call_output"))
        {
            return true;
        }
        last.get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            })
    }

    /// The text of every user message, in order (text blocks joined with newlines).
    pub fn user_texts(&self) -> Vec<String> {
        self.items()
            .iter()
            .filter(|item| item.get("role").and_then(Value::as_str) == Some("user"))
            .map(|item| content_text(item.get("content")))
            .filter(|text| !text.is_empty())
            .collect()
    }

    /// The system prompt: Anthropic `system`, chat-completions `system`/`developer` messages,
    /// Responses `instructions` and `system`/`developer` items; joined with newlines.
    pub fn system_prompt(&self) -> String {
        let mut parts = Vec::new();
        if let Some(system) = self.body.get("system") {
            parts.push(content_text(Some(system)));
        }
        if let Some(instructions) = self.body.get("instructions").and_then(Value::as_str) {
            parts.push(instructions.to_owned());
        }
        for item in self.items() {
            if matches!(
                item.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            ) {
                parts.push(content_text(item.get("content")));
            }
        }
        parts.join("\n")
    }

    /// The names of the tools the request offered the model.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| {
                        tool.get("name")
                            .or_else(|| tool.pointer("/function/name"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn str_field(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The text of a content value: a string, or an array of parts with `text` (Anthropic `text`,
/// OpenAI `text` / `input_text` / `output_text`), joined with newlines.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.clone()),
                _ => part.get("text").and_then(Value::as_str).map(str::to_owned),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Whether any string inside `value` contains `needle` (so needles with quotes or newlines match
/// without JSON escaping).
fn texts_contain(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => text.contains(needle),
        Value::Array(items) => items.iter().any(|item| texts_contain(item, needle)),
        Value::Object(map) => map.values().any(|item| texts_contain(item, needle)),
        _ => false,
    }
}
