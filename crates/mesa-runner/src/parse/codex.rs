//! Codex `exec --json` (0.16x).
//!
//! Events: `thread.started`, `turn.started`, `item.started` / `item.updated` /
//! `item.completed` (items `agent_message` with `text`, `command_execution`, `error`, ...),
//! `turn.completed` with `usage`, `turn.failed` with `error.message`, and top-level `error`.
//! Usage is summed over every `turn.completed`; Codex counts cached tokens inside
//! `input_tokens` (as the Responses API does), so the uncached input is the difference.
//! No cost is reported.

use mesa_domain::Timestamp;
use mesa_domain::entity::TokenUsage;
use serde_json::Value;

use super::quota::QuotaScan;
use super::{OutputParser, Parsed, add_usage, clip, count, object, text};
use crate::Stream;

/// Parser of Codex's JSON events.
#[derive(Debug, Default)]
pub struct CodexParser {
    usage: TokenUsage,
    turns: i64,
    result_text: Option<String>,
    turn_failed: bool,
    /// An `error` event not followed by a completed turn.
    pending_error: bool,
    error_message: Option<String>,
    quota: QuotaScan,
}

impl CodexParser {
    fn event(&mut self, v: &Value) {
        match v.get("type").and_then(Value::as_str) {
            Some("item.completed") => self.item(v.get("item").unwrap_or(&Value::Null)),
            Some("turn.completed") => {
                self.turns += 1;
                // Errors before a completed turn were retried away: they explain nothing.
                self.pending_error = false;
                self.quota = QuotaScan::default();
                if let Some(u) = v.get("usage") {
                    add_usage(&mut self.usage, &usage_of(u));
                }
            }
            Some("turn.failed") => {
                self.turn_failed = true;
                let message = v.get("error").and_then(|e| text(e, "message"));
                self.error(message.unwrap_or("turn failed"));
            }
            Some("error") => {
                self.pending_error = true;
                self.error(text(v, "message").unwrap_or("error"));
            }
            _ => {}
        }
    }

    fn item(&mut self, item: &Value) {
        match item.get("type").and_then(Value::as_str) {
            Some("agent_message") => {
                if let Some(t) = text(item, "text") {
                    self.result_text = Some(clip(t));
                }
            }
            // Item errors (e.g. unknown model metadata) do not end the turn.
            Some("error") => {
                if let Some(m) = text(item, "message") {
                    self.quota.text(m);
                }
            }
            _ => {}
        }
    }

    fn error(&mut self, message: &str) {
        self.quota.text(message);
        self.error_message = Some(clip(message));
    }
}

/// A `turn.completed` usage: `input_tokens` includes `cached_input_tokens`.
fn usage_of(u: &Value) -> TokenUsage {
    let input = count(u, "input_tokens");
    let cached = count(u, "cached_input_tokens").min(input);
    TokenUsage {
        input_tokens: input - cached,
        output_tokens: count(u, "output_tokens"),
        cache_read_tokens: cached,
        cache_write_tokens: count(u, "cache_write_input_tokens"),
    }
}

impl OutputParser for CodexParser {
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
        let is_error = self.turn_failed || self.pending_error;
        Parsed {
            usage: self.usage,
            cost_usd: None,
            is_error,
            subtype: None,
            error_message: if is_error {
                self.error_message.take()
            } else {
                None
            },
            num_turns: (self.turns > 0).then_some(self.turns),
            result_text: self.result_text.take(),
            quota: self.quota.resolve(now),
            model: None,
        }
    }
}
