//! The chat-completions wire format: the request body, the reply, and HTTP failures.

use std::net::IpAddr;

use mesa_domain::Timestamp;
use mesa_domain::entity::TokenUsage;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCall {
    /// The id the tool result must name (`tool_call_id`).
    pub(crate) id: String,
    /// The function name.
    pub(crate) name: String,
    /// The arguments, a JSON object serialized as text (as the API sends them).
    pub(crate) arguments: String,
}

/// What one chat-completions reply said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The assistant text, when not empty.
    pub(crate) text: Option<String>,
    /// The tool calls, in order.
    pub(crate) tool_calls: Vec<ToolCall>,
    /// The tokens this reply reports.
    pub(crate) usage: TokenUsage,
}

impl Reply {
    /// Reads a non-streaming `chat.completion` object. `turn` numbers the ids made up for tool
    /// calls that come without one (some local servers omit them).
    pub(crate) fn parse(body: &[u8], turn: u32) -> Result<Reply, String> {
        let reply: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        if reply.get("error").is_some_and(|e| !e.is_null()) {
            return Err(format!("the reply is an error: {}", error_message(body)));
        }
        let message = reply
            .pointer("/choices/0/message")
            .filter(|m| m.is_object())
            .ok_or("the reply has no choices[0].message")?;
        let text = content_text(message.get("content")).filter(|t| !t.trim().is_empty());
        let tool_calls = match message.get("tool_calls") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(calls)) => calls
                .iter()
                .enumerate()
                .map(|(index, call)| tool_call(call, turn, index))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("tool_calls is not an array".to_owned()),
        };
        Ok(Reply {
            text,
            tool_calls,
            usage: usage(reply.get("usage")),
        })
    }

    /// The assistant message to append to the conversation.
    pub(crate) fn to_message(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.text});
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        message
    }
}

fn tool_call(call: &Value, turn: u32, index: usize) -> Result<ToolCall, String> {
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("tool call {index} has no function name"))?;
    let arguments = match call.pointer("/function/arguments") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(text)) => text.clone(),
        // Some servers (older Ollama) send the arguments as an object.
        Some(other) => other.to_string(),
    };
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("call_{turn}_{index}"), str::to_owned);
    Ok(ToolCall {
        id,
        name: name.to_owned(),
        arguments,
    })
}

/// A content value: a string, or an array of parts with `text`.
fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

/// OpenAI counts cached tokens inside `prompt_tokens`; Mesa counts input without them, so
/// `input + cache_read` is what the provider billed as prompt.
fn usage(usage: Option<&Value>) -> TokenUsage {
    let figure = |pointer: &str| {
        usage
            .and_then(|u| u.pointer(pointer))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)
    };
    let prompt = figure("/prompt_tokens");
    let cached = figure("/prompt_tokens_details/cached_tokens").min(prompt);
    TokenUsage {
        input_tokens: prompt - cached,
        output_tokens: figure("/completion_tokens"),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    }
}

/// The request body for one model call (non-streaming).
pub(crate) fn request_body(model: &str, messages: &[Value], tools: &[Value]) -> Value {
    let mut body = json!({"messages": messages, "stream": false});
    if !model.is_empty() {
        body["model"] = json!(model);
    }
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    body
}

/// Why a model call did not give a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A provider quota or rate limit (429, 529, 503 "overloaded").
    Quota {
        /// What the provider said.
        detail: String,
        /// When it said to come back.
        retry_at: Option<Timestamp>,
    },
    /// Any other failure, as a reason for the run.
    Other(String),
}

/// Classifies an unsuccessful HTTP answer.
pub(crate) fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Failure {
    let message = error_message(body);
    let overloaded = status.as_u16() == 529
        || (status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            && message.to_ascii_lowercase().contains("overload"));
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || overloaded {
        return Failure::Quota {
            detail: format!("the model endpoint answered HTTP {status}: {message}"),
            retry_at: retry_after.and_then(|value| parse_retry_after(value, now)),
        };
    }
    Failure::Other(format!(
        "the model endpoint answered HTTP {status}: {message}"
    ))
}

/// The most useful text of an error body: `error.message`, `error` (a string), `message`, or
/// the start of the body.
pub(crate) fn error_message(body: &[u8]) -> String {
    const MAX: usize = 300;
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = found.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    super::summary::clip(&text, MAX)
}

/// `retry-after`: delay-seconds or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`).
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Timestamp> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(Timestamp::from_offset_datetime(
            now + time::Duration::seconds(i64::from(seconds)),
        ));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|t| Timestamp::from_offset_datetime(t.assume_utc()))
}

/// Whether `base_url` points at this machine or a private network: a local model, which costs
/// nothing.
pub(crate) fn is_local_endpoint(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_private(ip);
    }
    let name = host.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name == "host.docker.internal"
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_text_tool_calls_and_cached_usage() {
        let body = json!({
            "choices": [{"message": {"role": "assistant", "content": "Let me look.",
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "list_dir", "arguments": "{\"path\":\".\"}"}},
                    {"type": "function",
                     "function": {"name": "read_file", "arguments": {"path": "a.txt"}}}
                ]}}],
            "usage": {"prompt_tokens": 1500, "completion_tokens": 80,
                      "prompt_tokens_details": {"cached_tokens": 1000}},
        });
        let reply = Reply::parse(body.to_string().as_bytes(), 3).unwrap();
        assert_eq!(reply.text.as_deref(), Some("Let me look."));
        assert_eq!(
            reply.tool_calls,
            [
                ToolCall {
                    id: "call_1".to_owned(),
                    name: "list_dir".to_owned(),
                    arguments: r#"{"path":"."}"#.to_owned(),
                },
                ToolCall {
                    id: "call_3_1".to_owned(),
                    name: "read_file".to_owned(),
                    arguments: r#"{"path":"a.txt"}"#.to_owned(),
                },
            ]
        );
        assert_eq!(
            reply.usage,
            TokenUsage {
                input_tokens: 500,
                output_tokens: 80,
                cache_read_tokens: 1000,
                cache_write_tokens: 0,
            }
        );
        assert_eq!(
            reply.to_message(),
            json!({"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "list_dir", "arguments": "{\"path\":\".\"}"}},
                {"id": "call_3_1", "type": "function",
                 "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}}
            ]})
        );
    }

    #[test]
    fn a_final_reply_without_usage_or_with_content_parts() {
        let reply = Reply::parse(br#"{"choices":[{"message":{"content":"Done."}}]}"#, 1).unwrap();
        assert_eq!(reply.text.as_deref(), Some("Done."));
        assert!(reply.tool_calls.is_empty());
        assert!(reply.usage.is_zero());
        assert_eq!(
            reply.to_message(),
            json!({"role": "assistant", "content": "Done."})
        );
        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},
                        {"type":"text","text":"b"}]}}]}"#;
        assert_eq!(
            Reply::parse(parts, 1).unwrap().text.as_deref(),
            Some("a\nb")
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        for (body, expected) in [
            (&b"<html>"[..], "the body is not JSON"),
            (br#"{"choices":[]}"#, "the reply has no choices[0].message"),
            (
                br#"{"choices":[{"message":{"tool_calls":{}}}]}"#,
                "tool_calls is not an array",
            ),
            (
                br#"{"error":{"message":"model not loaded"}}"#,
                "the reply is an error: model not loaded",
            ),
        ] {
            let err = Reply::parse(body, 1).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn request_bodies_omit_what_is_empty() {
        let messages = [json!({"role": "user", "content": "hi"})];
        assert_eq!(
            request_body("", &messages, &[]),
            json!({"messages": messages, "stream": false})
        );
        let tools = [json!({"type": "function"})];
        assert_eq!(
            request_body("qwen3", &messages, &tools),
            json!({"model": "qwen3", "messages": messages, "stream": false, "tools": tools})
        );
    }

    fn at(rfc3339: &str) -> OffsetDateTime {
        Timestamp::parse_rfc3339("t", rfc3339)
            .unwrap()
            .to_offset_datetime()
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = at("2026-11-25T10:00:00Z");
        let expect = |text| Some(Timestamp::parse_rfc3339("t", text).unwrap());
        assert_eq!(parse_retry_after("30", now), expect("2026-11-25T10:00:30Z"));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:15:00 GMT", now),
            expect("2026-11-25T11:15:00Z")
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn quota_statuses_and_other_failures() {
        let now = at("2026-11-25T10:00:00Z");
        let status = |code| reqwest::StatusCode::from_u16(code).unwrap();
        assert_eq!(
            classify(
                status(429),
                Some("60"),
                br#"{"error":{"message":"slow down"}}"#,
                now
            ),
            Failure::Quota {
                detail: "the model endpoint answered HTTP 429 Too Many Requests: slow down"
                    .to_owned(),
                retry_at: Some(Timestamp::parse_rfc3339("t", "2026-11-25T10:01:00Z").unwrap()),
            }
        );
        assert!(matches!(
            classify(status(503), None, b"server overloaded", now),
            Failure::Quota { retry_at: None, .. }
        ));
        assert_eq!(
            classify(status(503), None, b"", now),
            Failure::Other(
                "the model endpoint answered HTTP 503 Service Unavailable: (empty body)".to_owned()
            )
        );
        assert_eq!(
            classify(status(401), None, br#"{"error":"bad key"}"#, now),
            Failure::Other("the model endpoint answered HTTP 401 Unauthorized: bad key".to_owned())
        );
    }

    #[test]
    fn local_endpoints() {
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:1234/v1",
            "http://10.0.0.5/v1",
            "http://172.16.3.4/v1",
            "http://[fd00::1]/v1",
            "http://[::ffff:127.0.0.1]/v1",
            "http://gpu-box.local:8000/v1",
        ] {
            assert!(is_local_endpoint(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://8.8.8.8/v1",
            "not a url",
        ] {
            assert!(!is_local_endpoint(url), "{url}");
        }
    }
}
