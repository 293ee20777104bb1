//! Incremental output parsing (SPEC §7.4): one parser per CLI runner, fed one whole line at a
//! time as the process writes it, never the whole output at the end.
//!
//! Parsers ignore what they do not understand (non-JSON lines, unknown events, wrong types), so
//! garbage in the output never changes the figures and never panics. Quota and rate-limit
//! errors (SPEC §6.5) are looked for only in error-bearing text: error events, error results
//! and stderr.

mod claude;
mod codex;
mod command;
mod copilot;
mod gemini;
mod opencode;
mod quota;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{MicroUsd, RunnerKind, Timestamp};
use serde_json::Value;

use crate::{QuotaHit, Stream};

pub use claude::ClaudeParser;
pub use codex::CodexParser;
pub use command::CommandParser;
pub use copilot::CopilotParser;
pub use gemini::GeminiParser;
pub use opencode::OpencodeParser;
pub use quota::detect_quota;

/// What a runner's output said, once it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Tokens used.
    pub usage: TokenUsage,
    /// Cost reported by the runner itself, if it reports one.
    pub cost_usd: Option<MicroUsd>,
    /// The output said the run failed.
    pub is_error: bool,
    /// The runner's own name for the outcome (e.g. Claude's result `subtype`).
    pub subtype: Option<String>,
    /// A human reason for a failure.
    pub error_message: Option<String>,
    /// Agent turns.
    pub num_turns: Option<i64>,
    /// The final text.
    pub result_text: Option<String>,
    /// A provider quota or rate limit was hit.
    pub quota: Option<QuotaHit>,
    /// The model that answered, when reported.
    pub model: Option<String>,
}

/// Reads a runner's output line by line as it arrives.
pub trait OutputParser: Send {
    /// One line (without its line ending).
    fn line(&mut self, stream: Stream, line: &str);
    /// The figures, after the process ended. `now` resolves relative reset times.
    fn finish(&mut self, now: Timestamp) -> Parsed;
}

/// The parser for a runner's output. Runners without a CLI of their own get the `command`
/// protocol parser.
pub fn parser_for(kind: RunnerKind) -> Box<dyn OutputParser> {
    match kind {
        RunnerKind::ClaudeCode => Box::new(ClaudeParser::default()),
        RunnerKind::Codex => Box::new(CodexParser::default()),
        RunnerKind::Gemini => Box::new(GeminiParser::default()),
        RunnerKind::Opencode => Box::new(OpencodeParser::default()),
        RunnerKind::Copilot => Box::new(CopilotParser::default()),
        _ => Box::new(CommandParser::default()),
    }
}

/// The longest text a parser keeps for a result or an error message.
const MAX_TEXT: usize = 16 * 1024;

/// `line` as a JSON object, when it is one.
fn object(line: &str) -> Option<serde_json::Map<String, Value>> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str(t) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A non-negative integer field, tolerating floats and numeric strings; absent or bad is 0.
fn count(v: &Value, key: &str) -> i64 {
    int(v.get(key)).unwrap_or(0)
}

fn int(v: Option<&Value>) -> Option<i64> {
    let n = match v? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(f64_to_i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    Some(n.max(0))
}

#[expect(clippy::cast_possible_truncation, reason = "clamped first")]
fn f64_to_i64(f: f64) -> i64 {
    f.clamp(0.0, 9e18) as i64
}

/// A dollar amount as micro-dollars, when it is a valid one.
fn usd(v: Option<&Value>) -> Option<MicroUsd> {
    let f = match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    MicroUsd::from_usd("cost_usd", f).ok()
}

/// A non-empty string field.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// `t` cut to [`MAX_TEXT`] bytes on a character boundary.
fn clip(t: &str) -> String {
    if t.len() <= MAX_TEXT {
        return t.to_owned();
    }
    let mut end = MAX_TEXT;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &t[..end])
}

fn add_usage(total: &mut TokenUsage, more: &TokenUsage) {
    total.input_tokens = total.input_tokens.saturating_add(more.input_tokens);
    total.output_tokens = total.output_tokens.saturating_add(more.output_tokens);
    total.cache_read_tokens = total
        .cache_read_tokens
        .saturating_add(more.cache_read_tokens);
    total.cache_write_tokens = total
        .cache_write_tokens
        .saturating_add(more.cache_write_tokens);
}

#[cfg(test)]
mod real_cli;
#[cfg(test)]
mod tests;
