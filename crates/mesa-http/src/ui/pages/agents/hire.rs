//! `GET /agents/new` and `POST /agents`: the board hires an agent (SPEC §1 Agent; §14: the
//! working directory is set only by the board and must be an existing absolute directory).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::entity::AgentConfig;
use mesa_core::domain::{Name, RunnerKind, Slug, ValidationError, WorkingDir};
use mesa_core::{Mesa, NewAgent, SessionUser};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// The hiring form, as text.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct HireForm {
    name: String,
    slug: String,
    archetype: String,
    runner: String,
    model: String,
    reports_to: String,
    reviewer: String,
    working_dir: String,
    /// One argument per line (runner `command` only).
    command: String,
}

/// Renders the hiring form with `errors`, as `status`.
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    form: &HireForm,
    errors: &BTreeMap<String, String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let archetypes: Vec<[String; 2]> = mesa
        .archetypes()
        .await?
        .iter()
        .map(|a| [a.slug.to_string(), format!("{} ({})", a.title, a.slug)])
        .collect();
    let runners: Vec<[&str; 2]> = RunnerKind::ALL
        .iter()
        .map(|r| [r.as_str(), r.as_str()])
        .collect();
    let mut agents = vec![[String::new(), "— none —".to_owned()]];
    agents.extend(mesa.agents().await?.iter().map(|a| {
        [
            a.slug.to_string(),
            format!("{} (@{})", a.config.name, a.slug),
        ]
    }));
    let ctx = context! {
        form => view(form),
        errors => view(errors),
        archetypes => view(&archetypes),
        runners => view(&runners),
        agents => view(&agents),
    };
    let html = ui
        .page(mesa, user, "agents", "pages/agent_new.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

/// `GET /agents/new`: the hiring form.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    let form = HireForm {
        runner: RunnerKind::DryRun.as_str().to_owned(),
        working_dir: mesa.config().workspace.as_str().to_owned(),
        ..HireForm::default()
    };
    render(&mesa, &ui, &user, &form, &BTreeMap::new(), StatusCode::OK).await
}

impl HireForm {
    /// The new agent, or every bad field.
    async fn parse(&self, mesa: &Mesa) -> Result<NewAgent, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let mut note = |e: ValidationError| {
            errors.entry(e.field.to_string()).or_insert(e.message);
        };
        let name = Name::parse_field("name", &self.name)
            .map_err(&mut note)
            .ok();
        let slug = Slug::parse_field("slug", &self.slug)
            .map_err(&mut note)
            .ok();
        let archetype = Slug::parse_field("archetype", &self.archetype)
            .map_err(&mut note)
            .ok();
        let runner = RunnerKind::parse_field("runner", &self.runner)
            .map_err(&mut note)
            .ok();
        let dir = WorkingDir::parse(&self.working_dir).map_err(&mut note).ok();
        let command: Vec<String> = self
            .command
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if runner == Some(RunnerKind::Command) && command.is_empty() {
            note(ValidationError::new(
                "command",
                "command (one argument per line) is required for runner command",
            ));
        }
        if let Some(s) = &slug
            && mesa.find_agent(s.as_str()).await.is_ok()
        {
            errors.insert(
                "slug".to_owned(),
                format!("an agent with slug {s} already exists"),
            );
        }
        let mut refs = [None, None];
        for (i, (field, text)) in [
            ("reports_to", &self.reports_to),
            ("reviewer", &self.reviewer),
        ]
        .into_iter()
        .enumerate()
        {
            if !text.trim().is_empty() {
                match mesa.resolve_agent(field, text.trim()).await {
                    Ok(a) => refs[i] = Some(a.id),
                    Err(e) => {
                        errors.insert(field.to_owned(), e.to_string());
                    }
                }
            }
        }
        let (Some(name), Some(slug), Some(archetype), Some(runner), Some(dir), true) =
            (name, slug, archetype, runner, dir, errors.is_empty())
        else {
            return Err(errors);
        };
        let mut config = AgentConfig::new(name, archetype, runner, dir);
        config.model = self.model.trim().to_owned();
        config.reports_to = refs[0];
        config.reviewer_id = refs[1];
        config.command = command;
        Ok(NewAgent { slug, config })
    }
}

/// `POST /agents`: creates the agent (303 to its page), or shows the form again with the
/// errors by their fields (422) and creates nothing.
pub(super) async fn create(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<HireForm>,
) -> Result<Response, UiError> {
    let refuse = StatusCode::UNPROCESSABLE_ENTITY;
    let new = match form.parse(&mesa).await {
        Ok(n) => n,
        Err(errors) => return render(&mesa, &ui, &user, &form, &errors, refuse).await,
    };
    match mesa.create_agent(&user.principal.actor, new).await {
        Ok(a) => Ok(Redirect::to(&format!("/agents/{}", a.slug)).into_response()),
        Err(e) => match super::detail::field_error(&e) {
            Some((field, message)) => {
                let errors = BTreeMap::from([(field, message)]);
                render(&mesa, &ui, &user, &form, &errors, refuse).await
            }
            None => Err(e.into()),
        },
    }
}
