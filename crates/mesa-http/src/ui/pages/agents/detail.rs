//! `GET /agents/{slug}`: one agent in tabs, and its actions: save the configuration, roll
//! back to a revision, wake, pause and resume, create and revoke keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::entity::{Agent, AgentConfig};
use mesa_core::domain::{
    ApiKeyId, ApiKeyKind, IssueKey, Name, RunnerKind, Slug, ValidationError, Version, WorkingDir,
};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{CoreError, Mesa, SessionUser};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::notice;
use crate::api::agents::{AgentConfigDto, agent_at, agent_dto};
use crate::api::dto::time;
use crate::api::ops::{RunDto, slugs};
use crate::ui::chart::{Unit, bar_chart};
use crate::ui::diff::{DiffLine, is_empty, line_diff};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// The tabs, as `[id, label]`.
const TABS: [(&str, &str); 6] = [
    ("overview", "Overview"),
    ("config", "Configuration"),
    ("revisions", "Revisions"),
    ("runs", "Runs"),
    ("reflections", "Reflections"),
    ("keys", "Keys"),
];

/// Runs per page on the Runs tab.
const RUNS_PER_PAGE: u32 = 25;
/// Revisions shown (newest first).
const MAX_REVISIONS: usize = 50;
/// Reflections shown (newest first).
const MAX_REFLECTIONS: u32 = 30;

/// `GET /agents/{slug}` query.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DetailQuery {
    tab: Option<String>,
    done: Option<String>,
    cursor: Option<String>,
}

/// What a POST adds to the page it re-renders (instead of redirecting).
#[derive(Debug, Default)]
struct Extra {
    /// Field → message.
    errors: BTreeMap<String, String>,
    /// The submitted configuration form.
    form: Option<ConfigForm>,
    /// A key created just now: shown once.
    new_key: Option<Value>,
}

fn tab_of(q: Option<&str>) -> &'static str {
    TABS.iter()
        .find(|(id, _)| Some(*id) == q)
        .map_or("overview", |(id, _)| id)
}

/// `GET /agents/{slug}`: the agent in the tab `?tab=` names (overview by default).
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let tab = tab_of(q.tab.as_deref());
    render(
        &mesa,
        &ui,
        &user,
        &agent,
        tab,
        &q,
        Extra::default(),
        StatusCode::OK,
    )
    .await
}

/// Renders the agent page on `tab`, with what a refused or answered POST adds, as `status`.
#[expect(
    clippy::too_many_arguments,
    reason = "one renderer for every tab and action"
)]
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    agent: &Agent,
    tab: &'static str,
    q: &DetailQuery,
    extra: Extra,
    status: StatusCode,
) -> Result<Response, UiError> {
    let dto = agent_dto(mesa, &user.principal, agent).await?;
    let slug = agent.slug.to_string();
    let tabs: Vec<[String; 3]> = TABS
        .iter()
        .map(|(id, label)| {
            [
                (*id).to_owned(),
                (*label).to_owned(),
                format!("/agents/{slug}?tab={id}"),
            ]
        })
        .collect();
    let body = match tab {
        "config" => config_tab(mesa, agent, &extra).await?,
        "revisions" => revisions_tab(mesa, agent).await?,
        "runs" => runs_tab(mesa, agent, q.cursor.clone()).await?,
        "reflections" => reflections_tab(mesa, agent).await?,
        "keys" => keys_tab(mesa, agent).await?,
        _ => overview_tab(mesa, agent).await?,
    };
    let ctx = context! {
        agent => view(&dto),
        tab => tab,
        tabs => view(&tabs),
        data => body,
        errors => view(&extra.errors),
        new_key => extra.new_key,
        notice => notice(q.done.as_deref()),
        paused_now => agent.paused_until.is_some_and(|t| t > mesa.now()),
    };
    let html = ui
        .page(mesa, user, "agents", "pages/agent.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

/// Overview: usage today, 7 days and in total against the limits, and 30 days of spend.
async fn overview_tab(mesa: &Mesa, agent: &Agent) -> Result<Value, UiError> {
    let usage = mesa.usage_summary(Some(agent)).await?;
    let days = mesa.daily_costs(Some(agent.id), 30).await?;
    let bars: Vec<(String, f64)> = days
        .days
        .iter()
        .zip(days.totals())
        .map(|(d, micro)| {
            let label = time(*d).get(5..10).unwrap_or_default().to_owned();
            (label, mesa_core::domain::MicroUsd(micro).as_usd())
        })
        .collect();
    let limit = usage.limits.daily_cost_limit_usd;
    Ok(context! {
        today_usd => usage.today.cost_usd.as_usd(),
        today_tokens => usage.today.tokens,
        week_usd => usage.last_7d.cost_usd.as_usd(),
        week_tokens => usage.last_7d.tokens,
        total_usd => usage.total.cost_usd.as_usd(),
        total_tokens => usage.total.tokens,
        reserved_usd => usage.reserved_usd.as_usd(),
        limit_usd => (limit.0 > 0).then(|| limit.as_usd()),
        token_limit => (usage.limits.daily_token_limit > 0).then_some(usage.limits.daily_token_limit),
        chart => bar_chart("Spend per day, last 30 days", &bars, Unit::Usd),
    })
}

/// `[value, label]` options of the other agents, with a "none" first.
async fn agent_options(mesa: &Mesa, agent: &Agent) -> Result<Vec<[String; 2]>, UiError> {
    let mut options = vec![[String::new(), "— none —".to_owned()]];
    options.extend(
        mesa.agents()
            .await?
            .iter()
            .filter(|a| a.id != agent.id)
            .map(|a| {
                [
                    a.slug.to_string(),
                    format!("{} (@{})", a.config.name, a.slug),
                ]
            }),
    );
    Ok(options)
}

/// Configuration: the form, filled from the agent or from a refused submission.
async fn config_tab(mesa: &Mesa, agent: &Agent, extra: &Extra) -> Result<Value, UiError> {
    let form = match &extra.form {
        Some(f) => f.clone(),
        None => ConfigForm::of(mesa, agent).await?,
    };
    let runners: Vec<[&str; 2]> = RunnerKind::ALL
        .iter()
        .map(|r| [r.as_str(), r.as_str()])
        .collect();
    Ok(context! {
        form => view(&form),
        runners => view(&runners),
        agents => view(&agent_options(mesa, agent).await?),
        yes_no => view(&[["true", "Yes"], ["false", "No"]]),
    })
}

/// A configuration as the revision diff shows it: pretty JSON, one field per line.
fn config_lines(c: &AgentConfig) -> String {
    serde_json::to_string_pretty(&AgentConfigDto::from(c)).unwrap_or_default()
}

/// One revision with its diff against the previous one.
#[derive(Debug, Serialize)]
struct RevisionView {
    number: i64,
    changed_by: String,
    reason: String,
    created_at: String,
    current: bool,
    diff: Vec<DiffLine>,
    unchanged: bool,
}

/// Revisions, newest first, each with its diff against the one before.
async fn revisions_tab(mesa: &Mesa, agent: &Agent) -> Result<Value, UiError> {
    let revisions = mesa.agent_revisions(&agent.id.to_string()).await?;
    let current = config_lines(&agent.config);
    let shown = revisions.len().min(MAX_REVISIONS);
    let items: Vec<RevisionView> = (0..shown)
        .map(|i| {
            let r = &revisions[i];
            let text = config_lines(&r.config);
            let before = revisions.get(i + 1).map(|p| config_lines(&p.config));
            let diff = line_diff(before.as_deref().unwrap_or(""), &text);
            RevisionView {
                number: r.number,
                changed_by: r.changed_by.clone(),
                reason: r.reason.clone(),
                created_at: time(r.created_at),
                current: i == 0 && text == current,
                unchanged: before.is_some() && is_empty(&diff),
                diff,
            }
        })
        .collect();
    Ok(context! {
        revisions => view(&items),
        more => revisions.len() > shown,
    })
}

/// Runs: the agent's latest runs, paginated.
async fn runs_tab(mesa: &Mesa, agent: &Agent, cursor: Option<String>) -> Result<Value, UiError> {
    let filter = RunFilter {
        agent: Some(agent.id),
        ..RunFilter::default()
    };
    let page = mesa
        .runs(&filter, &PageRequest::new(Some(RUNS_PER_PAGE), cursor))
        .await?;
    let slugs = slugs(mesa).await?;
    let runs: Vec<RunDto> = page.items.iter().map(|r| RunDto::new(r, &slugs)).collect();
    let next = page.next_cursor.map(|c| {
        format!(
            "/agents/{}?tab=runs&cursor={}",
            agent.slug,
            form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
        )
    });
    Ok(context! { runs => view(&runs), next_url => next })
}

/// Reflections: what the agent learned, newest first.
async fn reflections_tab(mesa: &Mesa, agent: &Agent) -> Result<Value, UiError> {
    let items: Vec<_> = mesa
        .reflections(agent.id, MAX_REFLECTIONS)
        .await?
        .iter()
        .map(|r| {
            json!({
                "outcome": r.outcome.as_str(),
                "body": r.body,
                "issue_key": r.issue_key.as_ref().map(ToString::to_string),
                "run_id": r.run_id.map(|id| id.to_string()),
                "created_at": time(r.created_at),
            })
        })
        .collect();
    Ok(context! { reflections => view(&items) })
}

/// Keys: the agent's long-lived keys (prefixes only).
async fn keys_tab(mesa: &Mesa, agent: &Agent) -> Result<Value, UiError> {
    let now = mesa.now();
    let keys: Vec<_> = mesa
        .keys(Some(&agent.id.to_string()))
        .await?
        .iter()
        .filter(|k| k.kind == ApiKeyKind::Agent)
        .map(|k| {
            json!({
                "id": k.id.to_string(),
                "name": k.name,
                "prefix": k.prefix,
                "live": k.is_live(now),
                "created_at": time(k.created_at),
                "expires_at": k.expires_at.map(time),
                "revoked_at": k.revoked_at.map(time),
                "last_used_at": k.last_used_at.map(time),
            })
        })
        .collect();
    Ok(context! { keys => view(&keys) })
}

// ---- configuration ----

/// The configuration form: every field the board edits, as text.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct ConfigForm {
    name: String,
    archetype: String,
    runner: String,
    model: String,
    working_dir: String,
    max_turns: String,
    timeout_sec: String,
    heartbeat_enabled: String,
    heartbeat_interval_sec: String,
    reports_to: String,
    reviewer: String,
    active: String,
    chrome_enabled: String,
    max_concurrent_runs: String,
    api_key_env: String,
    base_url: String,
    /// One argument per line.
    command: String,
    /// One argument per line.
    runner_args: String,
    /// Comma-separated.
    allowed_tools: String,
    /// Comma-separated.
    disallowed_tools: String,
    reason: String,
    version: String,
}

fn slug_of(roster: &[Agent], id: Option<mesa_core::domain::AgentId>) -> String {
    id.and_then(|id| roster.iter().find(|a| a.id == id))
        .map(|a| a.slug.to_string())
        .unwrap_or_default()
}

impl ConfigForm {
    /// The form filled with the agent's configuration.
    async fn of(mesa: &Mesa, agent: &Agent) -> Result<Self, UiError> {
        let roster = mesa.agents().await?;
        let c = &agent.config;
        Ok(ConfigForm {
            name: c.name.to_string(),
            archetype: c.archetype.to_string(),
            runner: c.runner.as_str().to_owned(),
            model: c.model.clone(),
            working_dir: c.working_dir.as_str().to_owned(),
            max_turns: c.max_turns.to_string(),
            timeout_sec: c.timeout_sec.to_string(),
            heartbeat_enabled: c.heartbeat_enabled.to_string(),
            heartbeat_interval_sec: c.heartbeat_interval_sec.to_string(),
            reports_to: slug_of(&roster, c.reports_to),
            reviewer: slug_of(&roster, c.reviewer_id),
            active: c.active.to_string(),
            chrome_enabled: c.chrome_enabled.to_string(),
            max_concurrent_runs: c.max_concurrent_runs.to_string(),
            api_key_env: c.api_key_env.clone().unwrap_or_default(),
            base_url: c.base_url.clone().unwrap_or_default(),
            command: c.command.join("\n"),
            runner_args: c.runner_args.join("\n"),
            allowed_tools: c.allowed_tools.join(", "),
            disallowed_tools: c.disallowed_tools.join(", "),
            reason: String::new(),
            version: agent.version.0.to_string(),
        })
    }

    /// The configuration this form describes on top of `base` (which keeps what the form does
    /// not edit, such as `env`); every bad field is reported.
    async fn apply(
        &self,
        mesa: &Mesa,
        base: &AgentConfig,
    ) -> Result<AgentConfig, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let mut c = base.clone();
        let mut note = |e: ValidationError| {
            errors.entry(e.field.to_string()).or_insert(e.message);
        };
        match Name::parse_field("name", &self.name) {
            Ok(v) => c.name = v,
            Err(e) => note(e),
        }
        match Slug::parse_field("archetype", &self.archetype) {
            Ok(v) => c.archetype = v,
            Err(e) => note(e),
        }
        match RunnerKind::parse_field("runner", &self.runner) {
            Ok(v) => c.runner = v,
            Err(e) => note(e),
        }
        c.model = self.model.trim().to_owned();
        match WorkingDir::parse(&self.working_dir) {
            Ok(v) => c.working_dir = v,
            Err(e) => note(e),
        }
        for (field, text, slot) in [
            ("max_turns", &self.max_turns, &mut c.max_turns),
            ("timeout_sec", &self.timeout_sec, &mut c.timeout_sec),
            (
                "heartbeat_interval_sec",
                &self.heartbeat_interval_sec,
                &mut c.heartbeat_interval_sec,
            ),
            (
                "max_concurrent_runs",
                &self.max_concurrent_runs,
                &mut c.max_concurrent_runs,
            ),
        ] {
            match positive(field, text) {
                Ok(v) => *slot = v,
                Err(e) => note(e),
            }
        }
        c.heartbeat_enabled = self.heartbeat_enabled == "true";
        c.active = self.active == "true";
        c.chrome_enabled = self.chrome_enabled == "true";
        c.api_key_env = non_empty(&self.api_key_env);
        c.base_url = non_empty(&self.base_url);
        c.command = lines(&self.command);
        c.runner_args = lines(&self.runner_args);
        c.allowed_tools = commas(&self.allowed_tools);
        c.disallowed_tools = commas(&self.disallowed_tools);
        if c.runner == RunnerKind::Command && c.command.is_empty() {
            note(ValidationError::new(
                "command",
                "command (one argument per line) is required for runner command",
            ));
        }
        for (field, text) in [
            ("reports_to", &self.reports_to),
            ("reviewer", &self.reviewer),
        ] {
            let id = match text.trim() {
                "" => None,
                t => match mesa.resolve_agent(field, t).await {
                    Ok(a) => Some(a.id),
                    Err(e) => {
                        errors.insert(field.to_owned(), e.to_string());
                        None
                    }
                },
            };
            if field == "reports_to" {
                c.reports_to = id;
            } else {
                c.reviewer_id = id;
            }
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }
}

fn positive(field: &'static str, text: &str) -> Result<u32, ValidationError> {
    match text.trim().parse::<u32>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(ValidationError::new(
            field,
            format!("{field} must be a whole number of at least 1"),
        )),
    }
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn commas(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The field a core refusal names, if it is a bad-input one.
pub(super) fn field_error(e: &CoreError) -> Option<(String, String)> {
    match e {
        CoreError::Invalid(v) => Some((v.field.to_string(), v.message.clone())),
        CoreError::UnknownReference { field, message } => {
            Some(((*field).to_owned(), message.clone()))
        }
        _ => None,
    }
}

/// `POST /agents/{slug}/config`: saves the form as a new revision (303), or shows it again
/// with the errors by their fields (422) and writes nothing.
pub(super) async fn save_config(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(form): Form<ConfigForm>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let refuse = |errors: BTreeMap<String, String>, form: ConfigForm| Extra {
        errors,
        form: Some(form),
        new_key: None,
    };
    let config = match form.apply(&mesa, &agent.config).await {
        Ok(c) => c,
        Err(errors) => {
            let extra = refuse(errors, form);
            let q = DetailQuery::default();
            return render(
                &mesa,
                &ui,
                &user,
                &agent,
                "config",
                &q,
                extra,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let expected = form.version.trim().parse::<i64>().ok().map(Version);
    let reason = non_empty(&form.reason).unwrap_or_else(|| "changed in the dashboard".to_owned());
    match mesa
        .update_agent_config(
            &user.principal.actor,
            &agent.id.to_string(),
            config,
            expected,
            &reason,
        )
        .await
    {
        Ok(a) => {
            Ok(Redirect::to(&format!("/agents/{}?tab=config&done=saved", a.slug)).into_response())
        }
        Err(e) => match field_error(&e) {
            Some((field, message)) => {
                let extra = refuse(BTreeMap::from([(field, message)]), form);
                let q = DetailQuery::default();
                render(
                    &mesa,
                    &ui,
                    &user,
                    &agent,
                    "config",
                    &q,
                    extra,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

// ---- actions ----

/// `POST /agents/{slug}/rollback` form.
#[derive(Debug, Deserialize)]
pub(super) struct RollbackForm {
    revision: String,
}

/// `POST /agents/{slug}/rollback`: restores revision `revision` as a new revision.
pub(super) async fn rollback(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let number: i64 = f.revision.trim().parse().map_err(|_| {
        UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "revision must be a revision number",
        )
    })?;
    mesa.rollback_agent(&user.principal.actor, &agent.id.to_string(), number)
        .await?;
    Ok(Redirect::to(&format!(
        "/agents/{}?tab=revisions&done=rolled_back",
        agent.slug
    ))
    .into_response())
}

/// `POST /agents/{slug}/wake` form: an optional issue.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WakeForm {
    issue_key: String,
}

/// `POST /agents/{slug}/wake`: queues a manual run (a heartbeat without an issue).
pub(super) async fn wake(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(f): Form<WakeForm>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let issue = match f.issue_key.trim() {
        "" => None,
        k => Some(
            IssueKey::parse_field("issue_key", k)
                .map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message))?,
        ),
    };
    mesa.wake_agent(&user.principal.actor, &agent.id.to_string(), issue.as_ref())
        .await?;
    Ok(Redirect::to(&format!("/agents/{}?done=woken", agent.slug)).into_response())
}

/// `POST /agents/{slug}/pause`: deactivates the agent (a revision); it gets no new runs.
pub(super) async fn pause(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    mesa.deactivate_agent(
        &user.principal.actor,
        &agent.id.to_string(),
        Some("paused in the dashboard"),
    )
    .await?;
    Ok(Redirect::to(&format!("/agents/{}?done=paused", agent.slug)).into_response())
}

/// `POST /agents/{slug}/resume`: activates the agent again (a revision).
pub(super) async fn resume(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    if !agent.config.active {
        let mut config = agent.config.clone();
        config.active = true;
        mesa.update_agent_config(
            &user.principal.actor,
            &agent.id.to_string(),
            config,
            Some(agent.version),
            "resumed in the dashboard",
        )
        .await?;
    }
    Ok(Redirect::to(&format!("/agents/{}?done=resumed", agent.slug)).into_response())
}

/// `POST /agents/{slug}/keys` form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KeyForm {
    name: String,
}

/// Creates a key and shows the page with its raw value, once (never in a URL).
pub(super) async fn create_key(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(f): Form<KeyForm>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let q = DetailQuery::default();
    let name = match f.name.trim() {
        "" => None,
        n => match Name::parse_field("name", n) {
            Ok(n) => Some(n),
            Err(e) => {
                let extra = Extra {
                    errors: BTreeMap::from([("name".to_owned(), e.message)]),
                    ..Extra::default()
                };
                return render(
                    &mesa,
                    &ui,
                    &user,
                    &agent,
                    "keys",
                    &q,
                    extra,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let minted = mesa
        .create_agent_key(&user.principal.actor, &agent.id.to_string(), name, None)
        .await?;
    let extra = Extra {
        new_key: Some(
            context! { raw => minted.raw, prefix => minted.key.prefix, name => minted.key.name },
        ),
        ..Extra::default()
    };
    render(&mesa, &ui, &user, &agent, "keys", &q, extra, StatusCode::OK).await
}

/// `POST /agents/{slug}/keys/{id}/revoke`: revokes one of this agent's keys.
pub(super) async fn revoke_key(
    State(mesa): State<Mesa>,
    Board(user): Board,
    Path((slug, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let agent = agent_at(&mesa, &slug).await?;
    let missing = || UiError::not_found("this agent has no such key");
    let id = ApiKeyId::parse(&id).map_err(|_| missing())?;
    let key = mesa
        .keys(Some(&agent.id.to_string()))
        .await?
        .into_iter()
        .find(|k| k.id == id && k.kind == ApiKeyKind::Agent)
        .ok_or_else(missing)?;
    mesa.revoke_key(&user.principal.actor, key.id).await?;
    Ok(Redirect::to(&format!("/agents/{}?tab=keys&done=revoked", agent.slug)).into_response())
}
