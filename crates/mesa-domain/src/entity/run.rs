//! Runs, keys, costs and budgets.

use crate::{
    AgentId, ApiKeyId, ApiKeyKind, BudgetPolicyId, CostEventId, CostSource, IssueKey, MicroUsd,
    RunId, RunMode, RunStatus, RunTrigger, RunnerKind, Timestamp, Version,
};

/// Token counts of a run or a cost event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: i64,
    /// Tokens written to the prompt cache.
    pub cache_write_tokens: i64,
}

impl TokenUsage {
    /// All tokens counted against a token budget.
    pub const fn total(&self) -> i64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// True when nothing was used.
    pub const fn is_zero(&self) -> bool {
        self.total() == 0
    }
}

/// One execution of an agent (SPEC §1 Run).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Run {
    /// Identity.
    pub id: RunId,
    /// The agent.
    pub agent_id: AgentId,
    /// The issue, if any (none for heartbeat, cron, audit).
    pub issue_key: Option<IssueKey>,
    /// Why it exists.
    pub mode: RunMode,
    /// Lifecycle position.
    pub status: RunStatus,
    /// Every wake-up merged into this run, first one first (SPEC §6.1 deduplication).
    pub triggers: Vec<RunTrigger>,
    /// The runner used.
    pub runner: RunnerKind,
    /// The model used.
    pub model: String,
    /// The prompt as sent.
    pub prompt: Option<String>,
    /// The git worktree it ran in.
    pub worktree_path: Option<String>,
    /// The branch it worked on.
    pub branch: Option<String>,
    /// The commit the worktree started from.
    pub base_commit: Option<String>,
    /// Process id while running.
    pub pid: Option<i64>,
    /// Process group while running.
    pub pgid: Option<i64>,
    /// Exit code of the process.
    pub exit_code: Option<i64>,
    /// Captured output (capped, SPEC §7.5).
    pub stdout: Option<String>,
    /// Diff of the worktree (capped).
    pub diff: Option<String>,
    /// `git diff --stat` style summary.
    pub diff_stat: Option<String>,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Money spent.
    pub cost_usd: MicroUsd,
    /// Money reserved while in flight (SPEC §6.2).
    pub cost_reserved_usd: MicroUsd,
    /// Tokens reserved while in flight.
    pub tokens_reserved: i64,
    /// Agent turns taken.
    pub num_turns: Option<i64>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The Mesa node that runs it.
    pub node_id: Option<String>,
    /// Lease held by the node while it runs (SPEC §6.6).
    pub lease_expires_at: Option<Timestamp>,
    /// Earliest time it may start (re-queued after a quota pause).
    pub not_before: Option<Timestamp>,
    /// Queue order: the issue's priority at enqueue time.
    pub priority: i64,
    /// When queued.
    pub queued_at: Timestamp,
    /// When started.
    pub started_at: Option<Timestamp>,
    /// When finished.
    pub finished_at: Option<Timestamp>,
}

/// An API credential (SPEC §1 ApiKey). The raw key is never stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    /// Identity.
    pub id: ApiKeyId,
    /// run, agent or board.
    pub kind: ApiKeyKind,
    /// First 12 characters, for display.
    pub prefix: String,
    /// SHA-256 hex of the whole key.
    #[serde(skip)]
    pub hash: String,
    /// The agent (run and agent keys).
    pub agent_id: Option<AgentId>,
    /// The run (run keys).
    pub run_id: Option<RunId>,
    /// Human name (board tokens: shown as `board:<name>` in the log).
    pub name: String,
    /// Scopes (reserved; empty means the kind's default rights).
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Revocation.
    pub revoked_at: Option<Timestamp>,
    /// Last successful use.
    pub last_used_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl ApiKey {
    /// Usable at `now`: not revoked and not expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// Spend of one finished run (SPEC §1 CostEvent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CostEvent {
    /// Identity.
    pub id: CostEventId,
    /// The run (none for usage reported outside a run).
    pub run_id: Option<RunId>,
    /// The agent.
    pub agent_id: AgentId,
    /// Tokens.
    pub usage: TokenUsage,
    /// Money.
    pub cost_usd: MicroUsd,
    /// parsed, reported or estimated.
    pub source: CostSource,
    /// When.
    pub created_at: Timestamp,
}

/// What a budget policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "agent_id")]
pub enum BudgetScope {
    /// The whole org.
    Org,
    /// One agent.
    Agent(AgentId),
}

/// Daily limits (SPEC §1 BudgetPolicy). Zero limits mean unlimited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetPolicy {
    /// Identity.
    pub id: BudgetPolicyId,
    /// Org or agent.
    pub scope: BudgetScope,
    /// Tokens per budget day; 0 = unlimited.
    pub daily_token_limit: i64,
    /// Dollars per budget day; 0 = unlimited.
    pub daily_cost_limit_usd: MicroUsd,
    /// Reservation per in-flight run; `None` = derived from history (SPEC §1).
    pub per_run_reserve_usd: Option<MicroUsd>,
    /// Inactive policies are ignored.
    pub active: bool,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// The default reservation when an agent has no history: one dollar.
pub const DEFAULT_RUN_RESERVE: MicroUsd = MicroUsd(1_000_000);

/// The reservation for a new run: the 90th percentile of the last runs' costs (SPEC §1
/// BudgetPolicy), or [`DEFAULT_RUN_RESERVE`] without history. Pure, for the store and tests.
pub fn default_run_reserve(recent_costs: &[MicroUsd]) -> MicroUsd {
    if recent_costs.is_empty() {
        return DEFAULT_RUN_RESERVE;
    }
    let mut sorted = recent_costs.to_vec();
    sorted.sort_unstable();
    // Nearest-rank percentile: the smallest value with at least 90% of the values at or below it.
    let rank = (sorted.len() * 9).div_ceil(10).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_p90_of_history() {
        assert_eq!(default_run_reserve(&[]), DEFAULT_RUN_RESERVE);
        let costs: Vec<_> = (1..=20).map(|c| MicroUsd(c * 1000)).collect();
        assert_eq!(default_run_reserve(&costs), MicroUsd(18_000));
        assert_eq!(default_run_reserve(&[MicroUsd(5)]), MicroUsd(5));
    }
}
