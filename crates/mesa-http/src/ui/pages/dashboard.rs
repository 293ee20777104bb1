//! `GET /`: the dashboard page (SPEC §10): agents with their live status and current run,
//! issue counts, runs in flight, today's cost against the budget, the active work block with
//! its progress and north star, alignment, pending approvals and recent activity.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use mesa_core::Mesa;
use mesa_core::domain::{ApprovalStatus, IssueStatus, RunStatus, WorkBlockStatus};
use mesa_core::store::{ActivityFilter, MAX_PAGE, PageRequest, RunFilter};
use minijinja::context;
use serde_json::json;

use crate::AppState;
use crate::api::approvals::{ApprovalDto, Slugs};
use crate::api::ops::{ActivityDto, RunDto};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(page))
}

fn usd(m: mesa_core::domain::MicroUsd) -> f64 {
    m.as_usd()
}

/// The most agents the dashboard lists; the roster on the Agents page has them all.
const AGENTS_SHOWN: usize = 10;

/// The order the dashboard lists agents in: those at work first, then those that need a look.
fn state_rank(state: &str) -> u8 {
    match state {
        "running" => 0,
        "paused" => 1,
        "idle" => 2,
        _ => 3,
    }
}

/// An agent's state on the dashboard: `running`, `paused`, `idle` or `inactive`.
fn agent_state(
    agent: &mesa_core::domain::entity::Agent,
    running: bool,
    now: mesa_core::domain::Timestamp,
) -> &'static str {
    if !agent.config.active {
        "inactive"
    } else if agent.paused_until.is_some_and(|t| t > now) {
        "paused"
    } else if running {
        "running"
    } else {
        "idle"
    }
}

/// The first [`AGENTS_SHOWN`] agents by state (the working ones first, then the roster's
/// order) with their running run; and how many agents are in each state.
fn agent_rows(
    agents: &[mesa_core::AgentView],
    running: &[mesa_core::domain::entity::Run],
    now: mesa_core::domain::Timestamp,
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let running: HashMap<_, _> = running.iter().map(|r| (r.agent_id, r)).collect();
    let mut ranked: Vec<(u8, &'static str, &mesa_core::AgentView)> = agents
        .iter()
        .map(|v| {
            let state = agent_state(&v.agent, running.contains_key(&v.agent.id), now);
            (state_rank(state), state, v)
        })
        .collect();
    let mut by_state = [0_u64; 4];
    for (rank, _, _) in &ranked {
        by_state[usize::from(*rank)] += 1;
    }
    // Stable: within a state, the roster's order.
    ranked.sort_by_key(|(rank, _, _)| *rank);
    let summary = json!({
        "total": agents.len(),
        "running": by_state[0],
        "paused": by_state[1],
        "idle": by_state[2],
        "inactive": by_state[3],
    });
    let shown = ranked
        .into_iter()
        .take(AGENTS_SHOWN)
        .map(|(_, state, v)| {
            let a = &v.agent;
            let current = running.get(&a.id);
            json!({
                "slug": a.slug.to_string(),
                "name": a.config.name.to_string(),
                "runner": a.config.runner.as_str(),
                "model": a.config.model,
                "state": state,
                "run_id": current.map(|r| r.id.to_string()),
                "issue_key": current.and_then(|r| r.issue_key.as_ref().map(ToString::to_string)),
            })
        })
        .collect();
    (shown, summary)
}

async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Html<String>, UiError> {
    let agents = mesa.agent_views().await?;
    let slugs: HashMap<_, _> = agents
        .iter()
        .map(|v| (v.agent.id, v.agent.slug.to_string()))
        .collect();
    let in_flight = mesa
        .runs(
            &RunFilter {
                statuses: vec![RunStatus::Running, RunStatus::Queued],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(50), None),
        )
        .await?
        .items;
    // The running runs apart (bounded by the concurrency caps): the queued ones may fill the
    // list above.
    let running = mesa
        .runs(
            &RunFilter {
                statuses: vec![RunStatus::Running],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(MAX_PAGE), None),
        )
        .await?
        .items;
    let (agent_rows, agent_summary) = agent_rows(&agents, &running, mesa.now());
    let counts = mesa.status_counts().await?;
    let usage = mesa.usage_summary(None).await?;
    let budget = json!({
        "today_usd": usd(usage.today.cost_usd),
        "today_tokens": usage.today.tokens,
        "limit_usd": (usage.limits.daily_cost_limit_usd.0 > 0)
            .then(|| usd(usage.limits.daily_cost_limit_usd)),
        "reserved_usd": usd(usage.reserved_usd),
        "week_usd": usd(usage.last_7d.cost_usd),
    });
    let block = match mesa
        .work_blocks(Some(WorkBlockStatus::Active))
        .await?
        .first()
    {
        Some(b) => {
            // Aggregates over the members, never the members' rows.
            let counts = mesa.work_block_issue_counts(b.id).await?;
            let count = |wanted: &[IssueStatus]| -> u64 {
                counts
                    .iter()
                    .filter(|(s, _)| wanted.contains(s))
                    .map(|(_, n)| n)
                    .sum()
            };
            let planned = count(IssueStatus::ALL);
            let done = count(&[IssueStatus::Done]);
            let closed = count(&[IssueStatus::Cancelled, IssueStatus::WontDo]);
            let spend = mesa.work_block_spend(b.id).await?;
            let north_star = mesa.work_block_north_star(b.id).await?;
            Some(json!({
                "id": b.id.to_string(),
                "title": b.title.to_string(),
                "done": done,
                "planned": planned,
                "open": planned - done - closed,
                "cost_usd": usd(spend.cost),
                "north_star": north_star.last().map(|n| json!({
                    "value": n.value, "at": n.recorded_at.to_rfc3339(),
                })),
            }))
        }
        None => None,
    };
    // The figures without loading every issue (the count of drifting issues comes apart).
    let (strategy, drifting) = mesa.strategy_summary(0).await?;
    let alignment = json!({
        "work": strategy.work_alignment,
        "spend": strategy.spend_alignment,
        "drift_issues": drifting,
    });
    let approval_slugs = Slugs::load(&mesa).await?;
    let approvals: Vec<_> = mesa
        .approvals(
            Some(ApprovalStatus::Pending),
            &PageRequest::new(Some(5), None),
        )
        .await?
        .items
        .iter()
        .map(|a| ApprovalDto::new(a, &approval_slugs))
        .collect();
    let activity: Vec<ActivityDto> = mesa
        .activity_log(
            &ActivityFilter::default(),
            &PageRequest::new(Some(12), None),
        )
        .await?
        .items
        .iter()
        .map(ActivityDto::from)
        .collect();
    let runs: Vec<_> = in_flight
        .iter()
        .map(|r| {
            let mut dto = RunDto::new(r, &slugs);
            // The list shows state, not contents: keep the page small.
            dto.stdout = None;
            dto.prompt = None;
            dto.diff = None;
            dto
        })
        .collect();
    let open = |s: IssueStatus| counts.issues_in(&[s]);
    let ctx = context! {
        agents => view(&agent_rows),
        agent_summary => view(&agent_summary),
        counts => context! {
            todo => open(IssueStatus::Todo),
            in_progress => open(IssueStatus::InProgress),
            blocked => open(IssueStatus::Blocked),
            in_review => open(IssueStatus::InReview) + open(IssueStatus::BoardReview),
            done => open(IssueStatus::Done),
        },
        runs => view(&runs),
        budget => view(&budget),
        block => view(&block),
        alignment => view(&alignment),
        approvals => view(&approvals),
        activity => view(&activity),
    };
    ui.page(&mesa, &user, "dashboard", "pages/dashboard.html", ctx)
        .await
}
