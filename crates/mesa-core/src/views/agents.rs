//! Dashboard read models: agents (the roster's runs today).

use std::collections::HashMap;

use mesa_domain::AgentId;

use crate::error::Result;
use crate::mesa::Mesa;

impl Mesa {
    /// How many runs each of `agents` has had queued since the start of the current budget
    /// day (SPEC §6.2 day boundaries); agents without any are absent.
    pub async fn runs_today_per_agent(&self, agents: &[AgentId]) -> Result<HashMap<AgentId, u64>> {
        let offset = self.settings().await.budget_offset_minutes();
        let today = self.now().day_start(offset);
        Ok(self
            .inner
            .store
            .runs_per_agent_since(agents, today)
            .await?
            .into_iter()
            .collect())
    }
}

impl Mesa {
    /// Every agent's daily cost limit (absent or 0 = unlimited), in one query.
    pub async fn agent_cost_limits(&self) -> Result<HashMap<AgentId, mesa_domain::MicroUsd>> {
        Ok(self
            .inner
            .store
            .agent_cost_limits()
            .await?
            .into_iter()
            .collect())
    }
}

impl Mesa {
    /// Where a run's recorded cost came from (parsed, reported, estimated); `None` before the
    /// run finished or when it used nothing.
    pub async fn run_cost_source(
        &self,
        run: mesa_domain::RunId,
    ) -> Result<Option<mesa_domain::CostSource>> {
        Ok(self.inner.store.run_cost_source(run).await?)
    }
}
