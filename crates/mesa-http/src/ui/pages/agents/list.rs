//! `GET /agents`: the org chart (the `reports_to` tree) and the roster; `POST
//! /agents/scheduler`: the board's scheduler pause switch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
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
    /// How many agents report to this one.
    reports: usize,
    /// The reports shown below it (none while the node is collapsed).
    children: Vec<Node>,
}

/// `GET /agents` query: the notice after a redirect, the roster page (from 1) and a manager
/// whose reports the roster is limited to.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    done: Option<String>,
    page: Option<usize>,
    reports_to: Option<String>,
}

/// Roster lines per page.
const ROSTER_PAGE: usize = 50;
/// Up to this many agents, the org chart is shown whole; beyond, only the top two levels are,
/// and deeper reports open on demand (`GET /agents/org/{slug}`).
const ORG_WHOLE: usize = 100;
/// The levels shown of a larger org chart (the roots are level 0).
const ORG_LEVELS: usize = 2;

/// Agents by manager (`None`: no known manager), in roster order.
type Reports<'a> = HashMap<Option<AgentId>, Vec<&'a AgentView>>;

/// What the org chart is drawn from.
struct Org<'a> {
    reports: Reports<'a>,
    states: &'a HashMap<AgentId, &'static str>,
    /// Levels drawn below a node before its reports are collapsed.
    levels: usize,
}

impl Org<'_> {
    /// The node of `v` with `levels` levels of reports below it; `seen` guards against cycles.
    fn node(&self, v: &AgentView, levels: usize, seen: &mut HashSet<AgentId>) -> Node {
        seen.insert(v.agent.id);
        let below = self.reports.get(&Some(v.agent.id));
        let mut children = Vec::new();
        if levels > 0 {
            for c in below.into_iter().flatten() {
                if !seen.contains(&c.agent.id) {
                    children.push(self.node(c, levels - 1, seen));
                }
            }
        }
        Node {
            slug: v.agent.slug.to_string(),
            name: v.agent.config.name.to_string(),
            archetype: v.agent.config.archetype.to_string(),
            state: self.states.get(&v.agent.id).copied().unwrap_or("idle"),
            reports: below.map_or(0, Vec::len),
            children,
        }
    }
}

impl Org<'_> {
    /// Adds `id` and everyone below it to `reached`.
    fn reach(&self, id: AgentId, reached: &mut HashSet<AgentId>) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if reached.insert(id) {
                stack.extend(
                    self.reports
                        .get(&Some(id))
                        .into_iter()
                        .flatten()
                        .map(|v| v.agent.id),
                );
            }
        }
    }
}

/// Groups `views` by manager (an unknown manager or the agent itself counts as none).
fn reports_of(views: &[AgentView]) -> Reports<'_> {
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
    reports
}

/// The org chart: agents without a (known) manager at the top; agents caught in a cycle (which
/// the core refuses, but old data might hold) are appended as roots so none is lost. A large
/// org shows its top levels only.
fn org_chart(views: &[AgentView], states: &HashMap<AgentId, &'static str>) -> Vec<Node> {
    let levels = if views.len() <= ORG_WHOLE {
        usize::MAX
    } else {
        ORG_LEVELS - 1
    };
    let org = Org {
        reports: reports_of(views),
        states,
        levels,
    };
    let mut seen = HashSet::new();
    let mut roots: Vec<Node> = org
        .reports
        .get(&None)
        .map(|list| {
            list.iter()
                .map(|v| org.node(v, org.levels, &mut seen))
                .collect()
        })
        .unwrap_or_default();
    // Whatever the roots reach, shown or collapsed, is placed; the rest is in a cycle.
    let mut reached = HashSet::new();
    for v in org.reports.get(&None).into_iter().flatten() {
        org.reach(v.agent.id, &mut reached);
    }
    for v in views {
        if !reached.contains(&v.agent.id) && !seen.contains(&v.agent.id) {
            org.reach(v.agent.id, &mut reached);
            roots.push(org.node(v, org.levels, &mut seen));
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

/// Every agent's state (`running`, `idle`, `paused`, `inactive`).
async fn states_of(
    mesa: &Mesa,
    views: &[AgentView],
) -> Result<HashMap<AgentId, &'static str>, UiError> {
    let now = mesa.now();
    let running = running_agents(mesa).await?;
    Ok(views
        .iter()
        .map(|v| {
            (
                v.agent.id,
                state(&v.agent, now, running.contains(&v.agent.id)),
            )
        })
        .collect())
}

/// The roster lines of `shown`.
async fn roster(
    mesa: &Mesa,
    shown: &[&AgentView],
    states: &HashMap<AgentId, &'static str>,
) -> Result<Vec<Row>, UiError> {
    let now = mesa.now();
    let today = mesa.daily_costs(None, 1).await?;
    let mut spent: HashMap<AgentId, i64> = HashMap::new();
    for r in &today.rows {
        *spent.entry(r.agent_id).or_default() += r.cost_usd.0;
    }
    let limits = mesa.agent_cost_limits().await?;
    let ids: Vec<AgentId> = shown.iter().map(|v| v.agent.id).collect();
    let runs_today = mesa.runs_today_per_agent(&ids).await?;
    Ok(shown
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
        .collect())
}

/// The `/agents` link to roster page `page` (from 1), keeping the manager filter.
fn roster_url(page: usize, reports_to: Option<&str>) -> String {
    let mut url = format!("/agents?page={page}");
    if let Some(slug) = reports_to {
        // A slug (checked when read), so nothing to encode.
        url.push_str("&reports_to=");
        url.push_str(slug);
    }
    url
}

/// `GET /agents`: the org chart and a page of the roster.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, UiError> {
    let views = mesa.agent_views().await?;
    let states = states_of(&mesa, &views).await?;
    // Only a well-formed slug filters (anything else is ignored, and never echoed in a link).
    let reports_to = q
        .reports_to
        .as_deref()
        .filter(|s| mesa_core::domain::Slug::parse(s).is_ok());
    let listed: Vec<&AgentView> = views
        .iter()
        .filter(|v| {
            reports_to.is_none_or(|m| v.reports_to.as_ref().is_some_and(|r| r.as_str() == m))
        })
        .collect();
    let pages = listed.len().div_ceil(ROSTER_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * ROSTER_PAGE;
    let shown = &listed[first.min(listed.len())..(first + ROSTER_PAGE).min(listed.len())];
    let rows = roster(&mesa, shown, &states).await?;
    let ctx = context! {
        rows => view(&rows),
        tree => view(&org_chart(&views, &states)),
        roster => context! {
            first => first + 1,
            last => first + shown.len(),
            total => listed.len(),
            reports_to => reports_to,
            prev_url => (page > 1).then(|| roster_url(page - 1, reports_to)),
            next_url => (page < pages).then(|| roster_url(page + 1, reports_to)),
            self_url => if page > 1 || reports_to.is_some() { roster_url(page, reports_to) } else { "/agents".to_owned() },
        },
        scheduler_paused => mesa.scheduler_paused().await,
        notice => notice(q.done.as_deref()),
    };
    ui.page(&mesa, &user, "agents", "pages/agents.html", ctx)
        .await
}

/// `GET /agents/org/{slug}`: an htmx fragment, the direct reports of one agent in the org
/// chart, each with its own reports collapsed.
pub(super) async fn org_reports(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(_user): Board,
    Path(slug): Path<String>,
) -> Result<Html<String>, UiError> {
    let manager = mesa.find_agent(&slug).await?;
    let views = mesa.agent_views().await?;
    let states = states_of(&mesa, &views).await?;
    let org = Org {
        reports: reports_of(&views),
        states: &states,
        levels: 0,
    };
    let mut seen = HashSet::from([manager.id]);
    let nodes: Vec<Node> = org
        .reports
        .get(&Some(manager.id))
        .into_iter()
        .flatten()
        .map(|v| org.node(v, 0, &mut seen))
        .collect();
    ui.render(
        "partials/org_reports.html",
        &context! { nodes => view(&nodes) },
    )
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
