//! Budgets and usage (SPEC §1 BudgetPolicy, CostEvent; §9.3 `/budget`, `/usage`): daily limits
//! per agent and for the org, what was spent, usage reported by runners Mesa cannot parse, and
//! deactivating an agent.

use std::time::Duration;

use mesa_domain::entity::{Agent, BudgetPolicy, BudgetScope, TokenUsage};
use mesa_domain::{
    Actor, AgentId, CostSource, MicroUsd, RunId, Timestamp, ValidationError, Version,
};
use mesa_store::{Spend, StoreError, UsageRecord};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// Daily limits to set on a scope. Zero limits are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Tokens per budget day; 0 = unlimited.
    pub daily_token_limit: i64,
    /// Dollars per budget day; 0 = unlimited.
    pub daily_cost_limit_usd: MicroUsd,
    /// Reservation per in-flight run; `None` = derived from the agent's history.
    pub per_run_reserve_usd: Option<MicroUsd>,
}

/// An agent's budget today: its limits, what it used and what runs in flight hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentBudget {
    /// Tokens per budget day; 0 = unlimited.
    pub daily_token_limit: i64,
    /// Dollars per budget day; 0 = unlimited.
    pub daily_cost_limit_usd: MicroUsd,
    /// Tokens recorded since the start of the budget day.
    pub tokens_today: i64,
    /// Money recorded since the start of the budget day.
    pub spent_today_usd: MicroUsd,
    /// Money held by runs in flight.
    pub reserved_usd: MicroUsd,
    /// Set by budget or quota pauses.
    pub paused_until: Option<Timestamp>,
}

/// Tokens and money over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Tokens.
    pub tokens: i64,
    /// Money.
    pub cost_usd: MicroUsd,
}

impl From<Spend> for UsageTotals {
    fn from(s: Spend) -> Self {
        UsageTotals {
            tokens: s.tokens,
            cost_usd: s.cost_usd,
        }
    }
}

/// Usage of an agent or of the whole org (`GET /usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSummary {
    /// The agent, or `None` for the org.
    pub agent: Option<mesa_domain::AgentId>,
    /// Since the start of the budget day.
    pub today: UsageTotals,
    /// The last seven days.
    pub last_7d: UsageTotals,
    /// Ever.
    pub total: UsageTotals,
    /// Money held by runs in flight.
    pub reserved_usd: MicroUsd,
    /// The limits that apply (the agent's, or the org's).
    pub limits: BudgetLimits,
    /// Tokens left today; `None` when unlimited.
    pub tokens_remaining: Option<i64>,
    /// Money left today (after reservations); `None` when unlimited.
    pub cost_remaining_usd: Option<MicroUsd>,
}

/// Usage reported by a runner whose output Mesa cannot parse (`POST /usage/report`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedUsage {
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Money, if known.
    pub cost_usd: MicroUsd,
}

/// A UUID (version 8, name-based) for the cost event of `(agent, idempotency key)`.
fn idempotent_id<T: From<uuid::Uuid>>(agent: AgentId, key: &str) -> T {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("usage-report\0{agent}\0{key}").as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    T::from(uuid::Uuid::from_bytes(bytes))
}

fn scope_name(scope: BudgetScope, agent: Option<&Agent>) -> String {
    match (scope, agent) {
        (BudgetScope::Agent(_), Some(a)) => a.slug.to_string(),
        (BudgetScope::Agent(id), None) => id.to_string(),
        (BudgetScope::Org, _) => "org".to_owned(),
    }
}

fn limits_of(policy: Option<&BudgetPolicy>) -> BudgetLimits {
    match policy {
        Some(p) if p.active => BudgetLimits {
            daily_token_limit: p.daily_token_limit,
            daily_cost_limit_usd: p.daily_cost_limit_usd,
            per_run_reserve_usd: p.per_run_reserve_usd,
        },
        _ => BudgetLimits::default(),
    }
}

impl Mesa {
    /// The start of the current budget day (UTC unless `budget_timezone` is set).
    async fn budget_day_start(&self) -> Timestamp {
        let offset = self.settings().await.budget_offset_minutes();
        self.now().day_start(offset)
    }

    /// The limits of a scope (all zero, unlimited, when none were set).
    pub async fn budget_limits(&self, scope: BudgetScope) -> Result<BudgetLimits> {
        let policy = self.inner.store.budget_policy(scope).await?;
        Ok(limits_of(policy.as_ref()))
    }

    /// The org-wide limits (board only).
    pub async fn org_budget(&self, actor: &Actor) -> Result<BudgetLimits> {
        Self::require_board(actor, "read the org budget")?;
        self.budget_limits(BudgetScope::Org).await
    }

    /// Sets the daily limits of an agent (`Some(slug or id)`) or of the org (`None`), board
    /// only. Negative limits are refused.
    pub async fn put_budget(
        &self,
        actor: &Actor,
        agent: Option<&str>,
        limits: BudgetLimits,
    ) -> Result<BudgetLimits> {
        Self::require_board(actor, "change budgets")?;
        if limits.daily_token_limit < 0 {
            return Err(ValidationError::new(
                "daily_token_limit",
                "daily_token_limit must not be negative (0 = unlimited)",
            )
            .into());
        }
        if limits.daily_cost_limit_usd.0 < 0 {
            return Err(ValidationError::new(
                "daily_cost_limit_usd",
                "daily_cost_limit_usd must not be negative (0 = unlimited)",
            )
            .into());
        }
        if limits.per_run_reserve_usd.is_some_and(|r| r.0 < 0) {
            return Err(ValidationError::new(
                "per_run_reserve_usd",
                "per_run_reserve_usd must not be negative",
            )
            .into());
        }
        let agent = match agent {
            Some(a) => Some(self.find_agent(a).await?),
            None => None,
        };
        let scope = agent
            .as_ref()
            .map_or(BudgetScope::Org, |a| BudgetScope::Agent(a.id));
        let name = scope_name(scope, agent.as_ref());
        let policy = BudgetPolicy {
            id: Self::new_id(),
            scope,
            daily_token_limit: limits.daily_token_limit,
            daily_cost_limit_usd: limits.daily_cost_limit_usd,
            per_run_reserve_usd: limits.per_run_reserve_usd,
            active: true,
            updated_at: self.now(),
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "budget.updated",
            "budget",
            name.clone(),
            format!(
                "set the daily budget of {name}: {} tokens, {} (0 = unlimited)",
                limits.daily_token_limit, limits.daily_cost_limit_usd
            ),
            serde_json::json!({
                "daily_token_limit": limits.daily_token_limit,
                "daily_cost_limit_usd": limits.daily_cost_limit_usd.as_usd(),
                "per_run_reserve_usd": limits.per_run_reserve_usd.map(MicroUsd::as_usd),
            }),
        );
        let stored = self
            .inner
            .store
            .put_budget_policy(policy, vec![activity])
            .await?;
        Ok(limits_of(Some(&stored)))
    }

    /// An agent's budget today.
    pub async fn agent_budget(&self, agent: &Agent) -> Result<AgentBudget> {
        let scope = BudgetScope::Agent(agent.id);
        let limits = self.budget_limits(scope).await?;
        let day_start = self.budget_day_start().await;
        let spend = self.inner.store.spend(scope, day_start).await?;
        Ok(AgentBudget {
            daily_token_limit: limits.daily_token_limit,
            daily_cost_limit_usd: limits.daily_cost_limit_usd,
            tokens_today: spend.tokens,
            spent_today_usd: spend.cost_usd,
            reserved_usd: spend.reserved_usd,
            paused_until: agent.paused_until,
        })
    }

    /// Usage today, over the last seven days and ever, of an agent (`Some`) or the org (`None`),
    /// with what is left of today's budget.
    pub async fn usage_summary(&self, agent: Option<&Agent>) -> Result<UsageSummary> {
        let scope = agent.map_or(BudgetScope::Org, |a| BudgetScope::Agent(a.id));
        let store = &self.inner.store;
        let day_start = self.budget_day_start().await;
        let today = store.spend(scope, day_start).await?;
        let week = store
            .spend(scope, self.now() - Duration::from_secs(7 * 86_400))
            .await?;
        let total = store.spend(scope, Timestamp::EPOCH).await?;
        let limits = self.budget_limits(scope).await?;
        let tokens_remaining = (limits.daily_token_limit > 0)
            .then(|| (limits.daily_token_limit - today.tokens - today.reserved_tokens).max(0));
        let cost_remaining_usd = (!limits.daily_cost_limit_usd.is_zero()).then(|| {
            MicroUsd(
                (limits.daily_cost_limit_usd.0 - today.cost_usd.0 - today.reserved_usd.0).max(0),
            )
        });
        Ok(UsageSummary {
            agent: agent.map(|a| a.id),
            today: today.into(),
            last_7d: week.into(),
            total: total.into(),
            reserved_usd: today.reserved_usd,
            limits,
            tokens_remaining,
            cost_remaining_usd,
        })
    }

    /// Records usage the calling agent reports (source `reported`), added to `run` when the
    /// caller holds a run key. Only agents report usage. With an `idempotency_key`, a retry
    /// with the same key by the same agent records nothing more (SPEC §9.3.1): the cost event's
    /// id is derived from the two, so the store refuses the second insert and the whole
    /// transaction, run update and audit row included, is rolled back.
    pub async fn report_usage(
        &self,
        actor: &Actor,
        run: Option<RunId>,
        usage: ReportedUsage,
        idempotency_key: Option<&str>,
    ) -> Result<()> {
        let Actor::Agent { id, slug } = actor else {
            return Err(CoreError::Forbidden(
                "only agents report usage; a board token has no agent to charge".to_owned(),
            ));
        };
        for (field, value) in [
            ("input_tokens", usage.input_tokens),
            ("output_tokens", usage.output_tokens),
        ] {
            if value < 0 {
                return Err(
                    ValidationError::new(field, format!("{field} must not be negative")).into(),
                );
            }
        }
        if usage.cost_usd.0 < 0 {
            return Err(ValidationError::new("cost_usd", "cost_usd must not be negative").into());
        }
        let tokens = TokenUsage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            ..TokenUsage::default()
        };
        let activity = self.activity(
            actor,
            "usage.reported",
            "agent",
            slug.as_str(),
            format!(
                "{slug} reported {} tokens, {}",
                tokens.total(),
                usage.cost_usd
            ),
            serde_json::json!({
                "run_id": run.map(|r| r.to_string()),
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": usage.cost_usd.as_usd(),
            }),
        );
        let event_id = match idempotency_key {
            Some(k) => idempotent_id(*id, k),
            None => Self::new_id(),
        };
        let recorded = self
            .inner
            .store
            .record_usage(UsageRecord {
                event_id,
                agent_id: *id,
                run_id: run,
                usage: tokens,
                cost_usd: usage.cost_usd,
                source: CostSource::Reported,
                at: self.now(),
                activity: vec![activity],
            })
            .await;
        match recorded {
            Err(StoreError::Conflict { .. }) if idempotency_key.is_some() => Ok(()),
            other => Ok(other?),
        }
    }

    /// Deactivates an agent (board only): `active = false`, stored as a revision. An agent that
    /// is already inactive is returned unchanged.
    pub async fn deactivate_agent(
        &self,
        actor: &Actor,
        slug_or_id: &str,
        reason: Option<&str>,
    ) -> Result<Agent> {
        Self::require_board(actor, "deactivate agents")?;
        let current = self.find_agent(slug_or_id).await?;
        if !current.config.active {
            return Ok(current);
        }
        let mut config = current.config.clone();
        config.active = false;
        let reason = reason.unwrap_or("deactivated");
        self.write_agent_config(actor, current, config, None, reason, "agent.deactivated")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_ids_are_stable_per_agent_and_key() {
        let a = AgentId::from(uuid::Uuid::now_v7());
        let b = AgentId::from(uuid::Uuid::now_v7());
        let id: uuid::Uuid = idempotent_id(a, "k");
        assert_eq!(id, idempotent_id::<uuid::Uuid>(a, "k"));
        assert_ne!(id, idempotent_id::<uuid::Uuid>(a, "k2"));
        assert_ne!(id, idempotent_id::<uuid::Uuid>(b, "k"));
        assert_eq!(id.get_version_num(), 8);
    }
}
