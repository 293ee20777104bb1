//! opencode `run --format json`.
//!
//! One event per line with a `type` and a `part`: `step_start`, `text` (`part.text`),
//! `tool_use`, `step_finish` (`part.tokens` {input, output, reasoning, cache {read, write}} and
//! `part.cost` in dollars), and `error` (`error.name`, `error.data.message`,
//! `error.data.statusCode`). Tokens and cost are summed over every `step_finish`; reasoning
//! tokens are billed as output.

use mesa_domain::entity::TokenUsage;
use mesa_domain::{MicroUsd, Timestamp};
use serde_json::Value;

use super::quota::QuotaScan;
use super::{OutputParser, Parsed, add_usage, clip, count, int, object, text, usd};
use crate::Stream;

/// Parser of opencode's JSON events.
#[derive(Debug, Default)]
pub struct OpencodeParser {
    usage: TokenUsage,
    cost: Option<MicroUsd>,
    steps: i64,
    result_text: Option<String>,
    error_message: Option<String>,
    quota: QuotaScan,
}

impl OpencodeParser {
    fn event(&mut self, v: &Value) {
        let part = v.get("part").unwrap_or(&Value::Null);
        match v.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = text(part, "text") {
                    self.result_text = Some(clip(t.trim()));
                }
            }
            Some("step_finish") => self.step_finish(part),
            Some("error") => self.error(v.get("error").unwrap_or(&Value::Null)),
            _ => {}
        }
    }

    fn step_finish(&mut self, part: &Value) {
        self.steps += 1;
        if let Some(t) = part.get("tokens") {
            let cache = t.get("cache").unwrap_or(&Value::Null);
            add_usage(
                &mut self.usage,
                &TokenUsage {
                    input_tokens: count(t, "input"),
                    output_tokens: count(t, "output").saturating_add(count(t, "reasoning")),
                    cache_read_tokens: count(cache, "read"),
                    cache_write_tokens: count(cache, "write"),
                },
            );
        }
        if let Some(cost) = usd(part.get("cost")) {
            self.cost = Some(self.cost.unwrap_or_default() + cost);
        }
    }

    fn error(&mut self, e: &Value) {
        let data = e.get("data").unwrap_or(&Value::Null);
        let message = text(data, "message")
            .or_else(|| text(e, "message"))
            .or_else(|| text(e, "name"))
            .or_else(|| e.as_str())
            .unwrap_or("error");
        self.quota.text(message);
        if let Some(status) = int(data.get("statusCode")) {
            self.quota.status(status);
        }
        self.error_message = Some(clip(message));
    }
}

impl OutputParser for OpencodeParser {
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
        Parsed {
            usage: self.usage,
            cost_usd: self.cost,
            is_error: self.error_message.is_some(),
            subtype: None,
            error_message: self.error_message.take(),
            num_turns: (self.steps > 0).then_some(self.steps),
            result_text: self.result_text.take(),
            quota: self.quota.resolve(now),
            model: None,
        }
    }
}
