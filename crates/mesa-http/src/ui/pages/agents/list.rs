//! `GET /agents`: the org chart (the `reports_to` tree) and the roster; `POST
//! /agents/scheduler`: the board's scheduler pause switch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mesa_core::domain::{AgentId, RunStatus};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{AgentView, Mesa};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{notice, state};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// One roster line.
#[derive(Debug, Serialize)]
struct Row {
    slug: String,
    name: String,
    archetype: String,
    runner: String,
    model: String,
    state: &'static str,
    pause_reason: Option<String>,
    reports_to: Option<String>,
    spent_usd: f64,
    limit_usd: Option<f64>,
    runs_today: u64,
}

/// One node of the org chart.
#[derive(Debug, Serialize)]
struct Node {
    slug: String,
    name: String,
    archetype: String,
    state: &'static str,
    children: Vec<Node>,
}

/// `GET /agents` query.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    done: Option<String>,
}

/// Agents by manager (`None`: no known manager), in roster order.
type Reports<'a> = HashMap<Option<AgentId>, Vec<&'a AgentView>>;

/// The node of `v` with its reports below it; `seen` guards against cycles.
fn node(
    v: &AgentView,
    reports: &Reports<'_>,
    states: &HashMap<AgentId, &'static str>,
    seen: &mut HashSet<AgentId>,
) -> Node {
    seen.insert(v.agent.id);
    let mut children = Vec::new();
    for c in reports.get(&Some(v.agent.id)).into_iter().flatten() {
        if !seen.contains(&c.agent.id) {
            children.push(node(c, reports, states, seen));
        }
    }
    Node {
        slug: v.agent.slug.to_string(),
        name: v.agent.config.name.to_string(),
        archetype: v.agent.config.archetype.to_string(),
        state: states.get(&v.agent.id).copied().unwrap_or("idle"),
        children,
    }
}

/// The org chart: agents without a (known) manager at the top; agents caught in a cycle (which
/// the core refuses, but old data might hold) are appended as roots so none is lost.
fn org_chart(views: &[AgentView], states: &HashMap<AgentId, &'static str>) -> Vec<Node> {
    let ids: HashSet<AgentId> = views.iter().map(|v| v.agent.id).collect();
    let mut reports: Reports<'_> = HashMap::new();
    for v in views {
        let boss = v
            .agent
            .config
            .reports_to
            .filter(|b| ids.contains(b) && *b != v.agent.id);
        reports.entry(boss).or_default().push(v);
    }
    let mut seen = HashSet::new();
    let mut roots: Vec<Node> = reports
        .get(&None)
        .map(|list| {
            list.iter()
                .map(|v| node(v, &reports, states, &mut seen))
                .collect()
        })
        .unwrap_or_default();
    for v in views {
        if !seen.contains(&v.agent.id) {
            roots.push(node(v, &reports, states, &mut seen));
        }
    }
    roots
}

/// The agents running now (bounded by the concurrency limits).
async fn running_agents(mesa: &Mesa) -> Result<HashSet<AgentId>, UiError> {
    let filter = RunFilter {
        statuses: vec![RunStatus::Running],
        ..RunFilter::default()
    };
    Ok(mesa
        .runs(&filter, &PageRequest::new(Some(500), None))
        .await?
        .items
        .iter()
        .map(|r| r.agent_id)
        .collect())
}

/// `GET /agents`: the org chart and the roster.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, UiError> {
    let views = mesa.agent_views().await?;
    let now = mesa.now();
    let running = running_agents(&mesa).await?;
    let today = mesa.daily_costs(None, 1).await?;
    let mut spent: HashMap<AgentId, i64> = HashMap::new();
    for r in &today.rows {
        *spent.entry(r.agent_id).or_default() += r.cost_usd.0;
    }
    let limits = mesa.agent_cost_limits().await?;
    let runs_today = mesa.runs_today_per_agent().await?;
    let states: HashMap<AgentId, &'static str> = views
        .iter()
        .map(|v| {
            (
                v.agent.id,
                state(&v.agent, now, running.contains(&v.agent.id)),
            )
        })
        .collect();
    let rows: Vec<Row> = views
        .iter()
        .map(|v| {
            let a = &v.agent;
            Row {
                slug: a.slug.to_string(),
                name: a.config.name.to_string(),
                archetype: a.config.archetype.to_string(),
                runner: a.config.runner.as_str().to_owned(),
                model: a.config.model.clone(),
                state: states.get(&a.id).copied().unwrap_or("idle"),
                pause_reason: a
                    .paused_until
                    .filter(|t| *t > now)
                    .and_then(|_| a.pause_reason.clone()),
                reports_to: v.reports_to.as_ref().map(ToString::to_string),
                spent_usd: mesa_core::domain::MicroUsd(spent.get(&a.id).copied().unwrap_or(0))
                    .as_usd(),
                limit_usd: limits.get(&a.id).filter(|l| l.0 > 0).map(|l| l.as_usd()),
                runs_today: runs_today.get(&a.id).copied().unwrap_or(0),
            }
        })
        .collect();
    let ctx = context! {
        rows => view(&rows),
        tree => view(&org_chart(&views, &states)),
        scheduler_paused => mesa.scheduler_paused().await,
        notice => notice(q.done.as_deref()),
    };
    ui.page(&mesa, &user, "agents", "pages/agents.html", ctx)
        .await
}

/// `POST /agents/scheduler` form: `paused` is `1` to pause, anything else resumes.
#[derive(Debug, Deserialize)]
pub(super) struct SchedulerForm {
    #[serde(default)]
    paused: String,
}

/// `POST /agents/scheduler`: pauses or resumes dispatch.
pub(super) async fn scheduler(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Form(f): Form<SchedulerForm>,
) -> Result<Response, UiError> {
    let pause = f.paused == "1";
    mesa.set_scheduler_paused(&user.principal.actor, pause)
        .await?;
    let done = if pause {
        "scheduler_paused"
    } else {
        "scheduler_resumed"
    };
    Ok(Redirect::to(&format!("/agents?done={done}")).into_response())
}
