//! Gemini CLI `--output-format stream-json`.
//!
//! Events: `init` (with `model`), `message` (`role`, `content`, `delta` for streamed chunks),
//! `tool_use`, `tool_result`, `error` (`severity`, `message`) and a final `result` (`status`
//! `success` or `error`, `error.message`, `stats`). Tokens come from the result's `stats`:
//! `input_tokens` counts the prompt including `cached` tokens (`input` is the uncached part when
//! present), and whatever `total_tokens` has beyond input and output (thinking) is output.
//! The final text is the assistant's text after its last tool call.

use mesa_domain::Timestamp;
use mesa_domain::entity::TokenUsage;
use serde_json::Value;

use super::quota::QuotaScan;
use super::{MAX_TEXT, OutputParser, Parsed, clip, count, int, object, text};
use crate::Stream;

/// Parser of Gemini CLI's stream-json output.
#[derive(Debug, Default)]
pub struct GeminiParser {
    model: Option<String>,
    /// Assistant text since the last tool call.
    text: String,
    saw_result: bool,
    usage: TokenUsage,
    is_error: bool,
    error_message: Option<String>,
    /// The last `error` event of severity `error`, for runs that end without a result.
    last_error: Option<String>,
    quota: QuotaScan,
}

impl GeminiParser {
    fn event(&mut self, v: &Value) {
        match v.get("type").and_then(Value::as_str) {
            Some("init") => {
                if let Some(m) = text(v, "model") {
                    self.model = Some(m.to_owned());
                }
            }
            Some("message") if v.get("role").and_then(Value::as_str) == Some("assistant") => {
                self.message(v);
            }
            Some("tool_use" | "tool_result") => self.text.clear(),
            Some("error") => {
                if let Some(m) = text(v, "message") {
                    self.quota.text(m);
                    if v.get("severity").and_then(Value::as_str) != Some("warning") {
                        self.last_error = Some(clip(m));
                    }
                }
            }
            Some("result") => self.result(v),
            _ => {}
        }
    }

    fn message(&mut self, v: &Value) {
        let Some(content) = v.get("content").and_then(Value::as_str) else {
            return;
        };
        if v.get("delta").and_then(Value::as_bool) != Some(true) {
            self.text.clear();
        }
        if self.text.len() + content.len() <= MAX_TEXT {
            self.text.push_str(content);
        }
    }

    fn result(&mut self, v: &Value) {
        self.saw_result = true;
        if let Some(stats) = v.get("stats") {
            self.usage = usage_of(stats);
        }
        self.is_error = v.get("status").and_then(Value::as_str) == Some("error");
        if self.is_error {
            let message = v
                .get("error")
                .and_then(|e| text(e, "message").or_else(|| e.as_str()))
                .map(clip)
                .or_else(|| self.last_error.clone());
            if let Some(m) = &message {
                self.quota.text(m);
            }
            if let Some(code) = v.get("error").and_then(|e| int(e.get("code"))) {
                self.quota.status(code);
            }
            self.error_message = message;
        }
    }
}

/// The result's `stats`.
fn usage_of(s: &Value) -> TokenUsage {
    let prompt = count(s, "input_tokens");
    let cached = count(s, "cached").min(prompt);
    let input = match s.get("input") {
        Some(_) => count(s, "input"),
        None => prompt - cached,
    };
    let output = count(s, "output_tokens");
    let thinking = count(s, "total_tokens")
        .saturating_sub(prompt)
        .saturating_sub(output)
        .max(0);
    TokenUsage {
        input_tokens: input,
        output_tokens: output + thinking,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    }
}

impl OutputParser for GeminiParser {
    fn line(&mut self, stream: Stream, line: &str) {
        match stream {
            Stream::Stdout => {
                if let Some(map) = object(line) {
                    self.event(&Value::Object(map));
                }
            }
            Stream::Stderr => {
                self.quota.text(line);
            }
        }
    }

    fn finish(&mut self, now: Timestamp) -> Parsed {
        let text = std::mem::take(&mut self.text);
        let text = text.trim();
        let (is_error, error_message) = if self.saw_result {
            (self.is_error, self.error_message.take())
        } else {
            // Without a result the exit code decides; an error event explains the failure.
            (false, self.last_error.take())
        };
        Parsed {
            usage: self.usage,
            cost_usd: None,
            is_error,
            subtype: None,
            error_message,
            num_turns: None,
            result_text: (!text.is_empty()).then(|| text.to_owned()),
            quota: self.quota.resolve(now),
            model: self.model.take(),
        }
    }
}
