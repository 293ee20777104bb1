//! The `command` runner's protocol, for custom agents and tests.
//!
//! Every stdout line that is a JSON object with one of these `type`s is understood; any other
//! line is plain output:
//!
//! - `{"type":"mesa.usage","input_tokens":1200,"output_tokens":300,"cache_read_tokens":0,
//!   "cache_write_tokens":0,"cost_usd":0.0042,"model":"my-model"}`: usage to add up. Every
//!   field is optional; tokens and costs of several lines are summed, the last `model` wins.
//!   Without any `cost_usd`, the cost is estimated from the price table.
//! - `{"type":"mesa.result","is_error":false,"result":"done: 3 files changed"}`: the final
//!   text; `is_error: true` fails the run with `result` as the reason. The last one wins.
//!
//! stderr lines are scanned for quota and rate-limit messages.

use mesa_domain::entity::TokenUsage;
use mesa_domain::{MicroUsd, Timestamp};
use serde_json::Value;

use super::quota::QuotaScan;
use super::{OutputParser, Parsed, add_usage, clip, count, object, text, usd};
use crate::Stream;

/// Parser of the `command` runner's protocol.
#[derive(Debug, Default)]
pub struct CommandParser {
    usage: TokenUsage,
    cost: Option<MicroUsd>,
    model: Option<String>,
    result: Option<(bool, Option<String>)>,
    quota: QuotaScan,
}

impl CommandParser {
    fn event(&mut self, v: &Value) {
        match v.get("type").and_then(Value::as_str) {
            Some("mesa.usage") => {
                add_usage(
                    &mut self.usage,
                    &TokenUsage {
                        input_tokens: count(v, "input_tokens"),
                        output_tokens: count(v, "output_tokens"),
                        cache_read_tokens: count(v, "cache_read_tokens"),
                        cache_write_tokens: count(v, "cache_write_tokens"),
                    },
                );
                if let Some(cost) = usd(v.get("cost_usd")) {
                    self.cost = Some(self.cost.unwrap_or_default() + cost);
                }
                if let Some(model) = text(v, "model") {
                    self.model = Some(model.to_owned());
                }
            }
            Some("mesa.result") => {
                let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                let result = text(v, "result").map(clip);
                if is_error && let Some(r) = &result {
                    self.quota.text(r);
                }
                self.result = Some((is_error, result));
            }
            _ => {}
        }
    }
}

impl OutputParser for CommandParser {
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
        let (is_error, result_text) = self.result.take().unwrap_or((false, None));
        Parsed {
            usage: self.usage,
            cost_usd: self.cost,
            is_error,
            subtype: None,
            error_message: if is_error { result_text.clone() } else { None },
            num_turns: None,
            result_text,
            quota: self.quota.resolve(now),
            model: self.model.take(),
        }
    }
}
