//! `GET /strategy` (SPEC §3.2): the apex blocks with the board's create and edit forms, the
//! two alignment figures, and the drift: the open issues that roll up to no active apex block,
//! and the unaligned spend. `POST /strategy/apex` creates an apex block and
//! `POST /strategy/apex/{id}` edits or archives one; both answer 303 back to the page.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{ApexBlockId, ApexStatus, Markdown, Title, ValidationError};
use mesa_core::{Mesa, SessionUser};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Refusal;
use crate::api::blocks::ApexBlockDto;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Drifting issues listed by key (the count is always complete).
const DRIFT_SHOWN: u32 = 50;

/// The apex form (create and edit), echoed back when refused.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct ApexForm {
    title: String,
    goal: String,
    status: String,
}

impl ApexForm {
    fn parse(&self) -> Result<(Title, Markdown), ValidationError> {
        Ok((
            Title::parse(&self.title)?,
            Markdown::parse_field("goal", &self.goal)?,
        ))
    }
}

/// Which form a refusal belongs to: `new` or an apex block's id.
#[derive(Debug, Serialize)]
struct Refused {
    form: String,
    refusal: Refusal,
}

async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    draft: &ApexForm,
    refused: Option<Refused>,
) -> Result<Response, UiError> {
    let apex: Vec<ApexBlockDto> = mesa
        .apex_blocks()
        .await?
        .iter()
        .map(ApexBlockDto::from)
        .collect();
    let (s, drift_count) = mesa.strategy_summary(DRIFT_SHOWN).await?;
    let figures = json!({
        "work_pct": (s.work_alignment * 100.0).round(),
        "spend_pct": (s.spend_alignment * 100.0).round(),
        "drift_count": drift_count,
        "drift_cost_usd": s.drift_cost.as_usd(),
        "drift_keys": s.drift_issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    let code = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = context! {
        apex => view(&apex),
        figures => view(&figures),
        form => view(draft),
        refused => view(&refused),
    };
    let html = ui
        .page(mesa, user, "strategy", "pages/strategy.html", ctx)
        .await?;
    Ok((code, html).into_response())
}

/// `GET /strategy`.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, &ApexForm::default(), None).await
}

/// `POST /strategy/apex`: create an apex block (board only).
pub(super) async fn create_apex(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<ApexForm>,
) -> Result<Response, UiError> {
    let refuse = |refusal| Refused {
        form: "new".to_owned(),
        refusal,
    };
    let (title, goal) = match form.parse() {
        Ok(p) => p,
        Err(e) => return render(&mesa, &ui, &user, &form, Some(refuse(Refusal::of(&e)))).await,
    };
    match mesa
        .create_apex_block(&user.principal.actor, title, goal)
        .await
    {
        Ok(_) => Ok(Redirect::to("/strategy").into_response()),
        Err(e) => match Refusal::of_core(&e) {
            Some(r) => render(&mesa, &ui, &user, &form, Some(refuse(r))).await,
            None => Err(e.into()),
        },
    }
}

/// `POST /strategy/apex/{id}`: edit an apex block's title, goal and status (board only).
pub(super) async fn update_apex(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<ApexForm>,
) -> Result<Response, UiError> {
    let id =
        ApexBlockId::parse(&id).map_err(|_| UiError::not_found("there is no such apex block"))?;
    let refuse = |refusal| Refused {
        form: id.to_string(),
        refusal,
    };
    let parsed = form.parse().and_then(|(t, g)| {
        let status = match form.status.trim() {
            "" => None,
            s => Some(ApexStatus::parse(s)?),
        };
        Ok((t, g, status))
    });
    let (title, goal, status) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let blank = ApexForm::default();
            return render(&mesa, &ui, &user, &blank, Some(refuse(Refusal::of(&e)))).await;
        }
    };
    match mesa
        .update_apex_block(
            &user.principal.actor,
            id,
            Some(title),
            Some(goal),
            status,
            None,
        )
        .await
    {
        Ok(_) => Ok(Redirect::to("/strategy").into_response()),
        Err(e) => match Refusal::of_core(&e) {
            Some(r) => {
                let blank = ApexForm::default();
                render(&mesa, &ui, &user, &blank, Some(refuse(r))).await
            }
            None => Err(e.into()),
        },
    }
}
