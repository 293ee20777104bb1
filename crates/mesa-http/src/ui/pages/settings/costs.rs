//! `/costs`: today's org spend against the org budget, spend per day over the last 30 days
//! (chart), per agent (today, 7 and 30 days), per work block and per apex block
//! (SPEC §6.2, §10 "Costs").

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use mesa_core::Mesa;
use mesa_core::domain::{AgentId, ApexBlockId, MicroUsd};
use minijinja::context;
use serde::Serialize;

use crate::AppState;
use crate::api::ops::slugs;
use crate::ui::chart::{Unit, bar_chart};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Days in the chart and the agent table's longest column.
const WINDOW_DAYS: u32 = 30;
/// Work blocks listed.
const MAX_BLOCKS: usize = 50;
/// Agents listed, those that spent most first.
const MAX_AGENTS: usize = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/costs", get(page))
}

/// One agent's spend.
#[derive(Debug, Default, Serialize)]
struct AgentSpend {
    slug: String,
    today_usd: f64,
    week_usd: f64,
    month_usd: f64,
    month_tokens: i64,
}

/// One block's spend.
#[derive(Debug, Serialize)]
struct BlockSpend {
    id: String,
    title: String,
    status: String,
    cost_usd: f64,
    tokens: i64,
}

/// Spend per agent over the window: the last day is today, the last 7 days the week.
fn per_agent(days: &mesa_core::CostDays, slugs: &HashMap<AgentId, String>) -> Vec<AgentSpend> {
    let n = days.days.len();
    let today = days.days.last().copied();
    let week_start = days.days.get(n.saturating_sub(7)).copied();
    let mut by_agent: HashMap<AgentId, AgentSpend> = HashMap::new();
    for r in &days.rows {
        let e = by_agent.entry(r.agent_id).or_insert_with(|| AgentSpend {
            slug: slugs
                .get(&r.agent_id)
                .cloned()
                .unwrap_or_else(|| r.agent_id.to_string()),
            ..AgentSpend::default()
        });
        let usd = r.cost_usd.as_usd();
        e.month_usd += usd;
        e.month_tokens += r.tokens;
        if week_start.is_some_and(|w| r.day >= w) {
            e.week_usd += usd;
        }
        if Some(r.day) == today {
            e.today_usd += usd;
        }
    }
    let mut rows: Vec<AgentSpend> = by_agent.into_values().collect();
    rows.sort_by(|a, b| {
        b.month_usd
            .total_cmp(&a.month_usd)
            .then_with(|| a.slug.cmp(&b.slug))
    });
    rows
}

/// The chart's day label: `MM-DD`.
fn day_label(day: mesa_core::domain::Timestamp) -> String {
    day.to_rfc3339().get(5..10).unwrap_or_default().to_owned()
}

async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Html<String>, UiError> {
    let days = mesa.daily_costs(None, WINDOW_DAYS).await?;
    let bars: Vec<(String, f64)> = days
        .days
        .iter()
        .zip(days.totals())
        .map(|(d, total)| (day_label(*d), MicroUsd(total).as_usd()))
        .collect();
    let month_usd: f64 = bars.iter().map(|(_, v)| v).sum();
    let chart = bar_chart("Spend per day, last 30 days", &bars, Unit::Usd);
    let mut agents = per_agent(&days, &slugs(&mesa).await?);
    let agents_more = agents.len().saturating_sub(MAX_AGENTS);
    agents.truncate(MAX_AGENTS);

    let mut blocks = Vec::new();
    let mut per_apex: HashMap<ApexBlockId, (f64, i64)> = HashMap::new();
    let listed = mesa.work_blocks(None).await?;
    let listed = &listed[..listed.len().min(MAX_BLOCKS)];
    let ids: Vec<_> = listed.iter().map(|b| b.id).collect();
    let progress = mesa.work_blocks_progress(&ids).await?;
    for b in listed {
        let spend = progress.get(&b.id).map(|p| p.spend).unwrap_or_default();
        let (cost, tokens) = (spend.cost, spend.tokens);
        if let Some(apex) = b.apex_block_id {
            let e = per_apex.entry(apex).or_default();
            e.0 += cost.as_usd();
            e.1 += tokens;
        }
        blocks.push(BlockSpend {
            id: b.id.to_string(),
            title: b.title.to_string(),
            status: b.status.as_str().to_owned(),
            cost_usd: cost.as_usd(),
            tokens,
        });
    }
    let apex: Vec<_> = mesa
        .apex_blocks()
        .await?
        .iter()
        .map(|a| {
            let (cost, tokens) = per_apex.get(&a.id).copied().unwrap_or_default();
            context! {
                id => a.id.to_string(),
                title => a.title.to_string(),
                status => a.status.as_str(),
                cost_usd => cost,
                tokens => tokens,
            }
        })
        .collect();
    let usage = mesa.usage_summary(None).await?;
    let limit = usage.limits.daily_cost_limit_usd;
    let today = context! {
        spent_usd => usage.today.cost_usd.as_usd(),
        tokens => usage.today.tokens,
        reserved_usd => usage.reserved_usd.as_usd(),
        limit_usd => (limit.0 > 0).then(|| limit.as_usd()),
        spent_cents => usage.today.cost_usd.0 / 10_000,
        limit_cents => limit.0 / 10_000,
    };
    let ctx = context! {
        today => today,
        chart => chart,
        month_usd => month_usd,
        agents => view(&agents),
        agents_more => agents_more,
        blocks => view(&blocks),
        apex => apex,
    };
    ui.page(&mesa, &user, "costs", "pages/costs.html", ctx)
        .await
}

#[cfg(test)]
mod tests {
    use mesa_core::domain::Timestamp;
    use mesa_core::store::DailyCost;

    use super::*;

    #[test]
    fn agent_totals_split_today_week_and_month() {
        const DAY: i64 = 86_400_000;
        let a = AgentId::parse("00000000-0000-4000-8000-000000000001").unwrap();
        let days: Vec<Timestamp> = (0..30).map(|i| Timestamp::from_millis(i * DAY)).collect();
        let row = |day: usize, usd: i64| DailyCost {
            agent_id: a,
            day: days[day],
            cost_usd: MicroUsd(usd * 1_000_000),
            tokens: 10,
        };
        let cd = mesa_core::CostDays {
            days: days.clone(),
            rows: vec![row(0, 1), row(25, 2), row(29, 4)],
        };
        let slugs = HashMap::from([(a, "ceo".to_owned())]);
        let rows = per_agent(&cd, &slugs);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].slug, "ceo");
        assert!((rows[0].today_usd - 4.0).abs() < 1e-9);
        assert!((rows[0].week_usd - 6.0).abs() < 1e-9);
        assert!((rows[0].month_usd - 7.0).abs() < 1e-9);
        assert_eq!(rows[0].month_tokens, 30);
    }
}
