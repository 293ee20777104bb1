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
use mesa_core::store::{ActivityFilter, PageRequest, RunFilter};
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
    let now = mesa.now();
    let agent_rows: Vec<_> = agents
        .iter()
        .map(|v| {
            let a = &v.agent;
            let current = in_flight
                .iter()
                .find(|r| r.agent_id == a.id && r.status == RunStatus::Running);
            let paused = a.paused_until.is_some_and(|t| t > now);
            let state = if !a.config.active {
                "inactive"
            } else if paused {
                "paused"
            } else if current.is_some() {
                "running"
            } else {
                "idle"
            };
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
    let counts: HashMap<&str, u64> = mesa
        .issue_counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
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
            let d = mesa.work_block_detail(b.id).await?;
            Some(json!({
                "id": d.block.id.to_string(),
                "title": d.block.title.to_string(),
                "done": d.stats.done,
                "planned": d.stats.planned,
                "open": d.stats.open,
                "cost_usd": usd(d.stats.cost),
                "north_star": d.north_star_history.last().map(|n| json!({
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
    let open = |s: IssueStatus| counts.get(s.as_str()).copied().unwrap_or(0);
    let ctx = context! {
        agents => view(&agent_rows),
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
