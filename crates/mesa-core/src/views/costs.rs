//! Dashboard read models: spend per agent and day (agent detail, costs page).

use mesa_domain::{AgentId, Timestamp};
use mesa_store::DailyCost;

use crate::error::Result;
use crate::mesa::Mesa;
use crate::read_cache::Depends;

const DAY_MS: i64 = 86_400_000;

/// Spend per agent and day over the last days, in budget days (SPEC §6.2 day boundaries).
#[derive(Debug, Clone, PartialEq)]
pub struct CostDays {
    /// The start of every day of the window, oldest first (today last).
    pub days: Vec<Timestamp>,
    /// Spend per (agent, day) with any spend, by day then agent.
    pub rows: Vec<DailyCost>,
}

impl CostDays {
    /// Total cost per day of the window, in `days` order, in micro-dollars.
    pub fn totals(&self) -> Vec<i64> {
        self.days
            .iter()
            .map(|d| {
                self.rows
                    .iter()
                    .filter(|r| r.day == *d)
                    .map(|r| r.cost_usd.0)
                    .sum()
            })
            .collect()
    }
}

impl Mesa {
    /// Spend per agent (or of `agent` only) and budget day over the last `days` days
    /// (today included, at most 366), from the read cache while nothing was committed since
    /// they were summed for the same days.
    pub async fn daily_costs(&self, agent: Option<AgentId>, days: u32) -> Result<CostDays> {
        let days = i64::from(days.clamp(1, 366));
        let offset = self.settings().await.budget_offset_minutes();
        let today = self.now().day_start(offset);
        let first = Timestamp::from_millis(today.as_millis() - (days - 1) * DAY_MS);
        let agent_key = agent.map(|a| a.to_string()).unwrap_or_default();
        let rows = self
            .read_through(
                format!(
                    "daily-costs\u{0}{agent_key}\u{0}{}\u{0}{offset}",
                    first.as_millis()
                ),
                |rows: &Vec<DailyCost>| rows.len() * std::mem::size_of::<DailyCost>(),
                |_| Depends::Everything,
                || async {
                    self.inner
                        .store
                        .daily_costs(first, offset, agent)
                        .await
                        .map_err(crate::error::CoreError::from)
                },
            )
            .await?;
        Ok(CostDays {
            days: (0..days)
                .map(|i| Timestamp::from_millis(first.as_millis() + i * DAY_MS))
                .collect(),
            rows: rows.as_ref().clone(),
        })
    }
}
