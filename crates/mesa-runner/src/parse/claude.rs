//! Claude Code `--output-format stream-json` (2.1.x).
//!
//! Events: `system` (`init` names the model; `api_retry` once per provider retry), `assistant`
//! (one per content block, whose `usage` is an early snapshot), `user` (tool results), and a
//! final `result` whose `is_error` is the failure flag (provider errors still say `subtype:
//! "success"`). Totals come from the result: tokens from `modelUsage` (summed over models) or
//! else `usage`, cost from `total_cost_usd` or else the models' `costUSD`.

use std::collections::BTreeMap;

use mesa_domain::Timestamp;
use mesa_domain::entity::TokenUsage;
use serde_json::Value;

use super::quota::QuotaScan;
use super::{OutputParser, Parsed, add_usage, clip, count, int, object, text, usd};
use crate::Stream;

/// At most this many assistant messages are remembered for the fallback usage.
const MAX_SNAPSHOTS: usize = 10_000;

/// Parser of Claude Code's stream-json output.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    init_model: Option<String>,
    result: Option<Parsed>,
    last_text: Option<String>,
    /// The latest usage snapshot of each assistant message, by message id: a lower bound of the
    /// usage when the run ends without a result event (killed, crashed).
    snapshots: BTreeMap<String, TokenUsage>,
    /// Error text of the result and stderr.
    quota: QuotaScan,
    /// Provider errors the CLI retried: they explain the failure only when the run ends on a
    /// provider error (or without a result), not when it recovered and failed otherwise.
    retries: QuotaScan,
    /// The result carried `api_error_status`.
    api_error: bool,
}

impl ClaudeParser {
    fn event(&mut self, v: &Value) {
        match v.get("type").and_then(Value::as_str) {
            Some("system") => self.system(v),
            Some("assistant") => self.assistant(v),
            Some("result") => self.result = Some(self.result_event(v)),
            _ => {}
        }
    }

    fn system(&mut self, v: &Value) {
        match v.get("subtype").and_then(Value::as_str) {
            Some("init") => {
                if let Some(model) = text(v, "model") {
                    self.init_model = Some(model.to_owned());
                }
            }
            Some("api_retry") => {
                // A retry is not a failure; it only explains one if the run then fails.
                if let Some(error) = text(v, "error") {
                    self.retries.text(error);
                }
                if let Some(status) = int(v.get("error_status")) {
                    self.retries.status(status);
                }
            }
            _ => {}
        }
    }

    fn assistant(&mut self, v: &Value) {
        let Some(message) = v.get("message") else {
            return;
        };
        let texts: Vec<&str> = message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| text(block, "text"))
            .collect();
        if !texts.is_empty() {
            self.last_text = Some(clip(&texts.join("\n")));
        }
        if let (Some(id), Some(usage)) = (text(message, "id"), message.get("usage"))
            && (self.snapshots.len() < MAX_SNAPSHOTS || self.snapshots.contains_key(id))
        {
            self.snapshots.insert(id.to_owned(), usage_of(usage));
        }
    }

    fn result_event(&mut self, v: &Value) -> Parsed {
        let subtype = text(v, "subtype").map(str::to_owned);
        let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false)
            || subtype.as_deref().is_some_and(|s| s.starts_with("error"));
        let result_text = text(v, "result").map(clip);
        let models = v.get("modelUsage").and_then(Value::as_object);
        let usage = match models.filter(|m| !m.is_empty()) {
            Some(models) => {
                let mut total = TokenUsage::default();
                for m in models.values() {
                    add_usage(&mut total, &model_usage_of(m));
                }
                total
            }
            None => v.get("usage").map(usage_of).unwrap_or_default(),
        };
        let cost_usd = usd(v.get("total_cost_usd")).or_else(|| {
            let costs: Vec<_> = models
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|m| usd(m.get("costUSD")))
                .collect();
            (!costs.is_empty()).then(|| costs.into_iter().sum())
        });
        let mut error_message = None;
        if is_error {
            if let Some(status) = int(v.get("api_error_status")) {
                self.api_error = true;
                self.quota.status(status);
            }
            let errors: Vec<&str> = v
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for e in &errors {
                self.quota.text(e);
            }
            if let Some(t) = &result_text {
                self.quota.text(t);
            }
            error_message = result_text
                .clone()
                .or_else(|| (!errors.is_empty()).then(|| clip(&errors.join("; "))));
        }
        Parsed {
            usage,
            cost_usd,
            is_error,
            subtype,
            error_message,
            num_turns: int(v.get("num_turns")),
            result_text,
            quota: None,
            model: main_model(models),
        }
    }
}

/// The model that cost the most (the main model; sub-agents may use a cheaper one).
fn main_model(models: Option<&serde_json::Map<String, Value>>) -> Option<String> {
    models?
        .iter()
        .max_by_key(|(_, m)| {
            (
                usd(m.get("costUSD")).unwrap_or_default(),
                count(m, "outputTokens"),
            )
        })
        .map(|(name, _)| name.clone())
}

/// An Anthropic `usage` object: uncached input, output, cache writes and reads.
fn usage_of(u: &Value) -> TokenUsage {
    TokenUsage {
        input_tokens: count(u, "input_tokens"),
        output_tokens: count(u, "output_tokens"),
        cache_read_tokens: count(u, "cache_read_input_tokens"),
        cache_write_tokens: count(u, "cache_creation_input_tokens"),
    }
}

/// One model's entry of `modelUsage`.
fn model_usage_of(m: &Value) -> TokenUsage {
    TokenUsage {
        input_tokens: count(m, "inputTokens"),
        output_tokens: count(m, "outputTokens"),
        cache_read_tokens: count(m, "cacheReadInputTokens"),
        cache_write_tokens: count(m, "cacheCreationInputTokens"),
    }
}

impl OutputParser for ClaudeParser {
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
        let mut parsed = match self.result.take() {
            Some(result) => {
                if self.api_error && self.quota.resolve(now).is_some() {
                    self.quota.merge(&self.retries);
                }
                result
            }
            None => {
                self.quota.merge(&self.retries);
                let mut usage = TokenUsage::default();
                for u in self.snapshots.values() {
                    add_usage(&mut usage, u);
                }
                Parsed {
                    usage,
                    result_text: self.last_text.take(),
                    ..Parsed::default()
                }
            }
        };
        if parsed.model.is_none() {
            parsed.model = self.init_model.take();
        }
        parsed.quota = self.quota.resolve(now);
        parsed
    }
}
