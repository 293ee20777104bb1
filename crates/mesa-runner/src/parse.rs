//! Incremental output parsing (SPEC §7.4). Being written.

use mesa_domain::entity::TokenUsage;
use mesa_domain::{MicroUsd, Timestamp};

use crate::{QuotaHit, Stream};

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
