//! Work blocks and strategy (SPEC §3, §10 "Work blocks", "Strategy"): `GET /blocks` (the list
//! by status, with progress and spend, and the board's create form), `GET /blocks/{id}` (the
//! detail with its burn-up chart, north star, issues, lifecycle actions and approvals) and
//! `GET /strategy` (apex blocks, alignment, drift).

mod detail;
mod strategy;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mesa_core::domain::entity::WorkBlock;
use mesa_core::domain::{
    ApexBlockId, IssueStatus, Markdown, Title, ValidationError, WorkBlockStatus,
};
use mesa_core::{BlockProgress, CoreError, ErrorKind, Mesa, NewWorkBlock, SessionUser};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::api::blocks::WorkBlockDto;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/blocks", get(list).post(create))
        .route("/blocks/{id}", get(detail::page))
        .route("/blocks/{id}/north-star", post(detail::north_star))
        .route("/blocks/{id}/command", post(detail::command))
        .route("/strategy", get(strategy::page))
        .route("/strategy/apex", post(strategy::create_apex))
        .route("/strategy/apex/{id}", post(strategy::update_apex))
}

/// Blocks per page of the list.
const PAGE: usize = 50;

/// The statuses in the order the list shows them.
const ORDER: [WorkBlockStatus; 5] = [
    WorkBlockStatus::Proposed,
    WorkBlockStatus::Active,
    WorkBlockStatus::Ready,
    WorkBlockStatus::Shipped,
    WorkBlockStatus::Cancelled,
];

/// A form refused by validation: the field it names (empty: the whole form) and why.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Refusal {
    pub(super) field: String,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn of(e: &ValidationError) -> Self {
        Refusal {
            field: e.field.to_string(),
            message: e.message.clone(),
        }
    }

    /// A core error the person can fix (validation), or `None` for the others.
    pub(super) fn of_core(e: &CoreError) -> Option<Self> {
        (e.kind() == ErrorKind::Invalid).then(|| Refusal {
            field: e.field().unwrap_or_default().to_owned(),
            message: e.to_string(),
        })
    }
}

/// `?status=` (one status or all) and `?cursor=` (an offset).
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

/// The create form's fields, echoed back when it is refused.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct BlockForm {
    title: String,
    goal: String,
    acceptance_criteria: String,
    apex_block_id: String,
    north_star_metric: String,
    north_star_target: String,
}

impl BlockForm {
    fn parse(&self) -> Result<NewWorkBlock, ValidationError> {
        let target = match self.north_star_target.trim() {
            "" => None,
            t => match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    return Err(ValidationError::new(
                        "north_star_target",
                        "the target must be a number",
                    ));
                }
            },
        };
        let metric = self.north_star_metric.trim();
        Ok(NewWorkBlock {
            title: Title::parse(&self.title)?,
            goal: Markdown::parse_field("goal", &self.goal)?,
            acceptance_criteria: Markdown::parse_field(
                "acceptance_criteria",
                &self.acceptance_criteria,
            )?,
            north_star_metric: (!metric.is_empty()).then(|| metric.to_owned()),
            north_star_target: target,
            apex_block_id: match self.apex_block_id.trim() {
                "" => None,
                a => Some(ApexBlockId::parse(a).map_err(|_| {
                    ValidationError::new("apex_block_id", "choose an apex block from the list")
                })?),
            },
        })
    }
}

/// Apex blocks as `[id, title]` choices (with "none" first) and a title lookup.
pub(super) async fn apex_choices(
    mesa: &Mesa,
) -> Result<(Vec<[String; 2]>, HashMap<String, String>), UiError> {
    let apex = mesa.apex_blocks().await?;
    let titles: HashMap<String, String> = apex
        .iter()
        .map(|a| (a.id.to_string(), a.title.to_string()))
        .collect();
    let mut choices = vec![[String::new(), "None".to_owned()]];
    choices.extend(
        apex.iter()
            .filter(|a| a.status == mesa_core::domain::ApexStatus::Active)
            .map(|a| [a.id.to_string(), a.title.to_string()]),
    );
    Ok((choices, titles))
}

/// Progress and spend of one block, for the list.
fn row(
    b: &WorkBlock,
    progress: Option<&BlockProgress>,
    apex: &HashMap<String, String>,
) -> serde_json::Value {
    let none = BlockProgress::default();
    let progress = progress.unwrap_or(&none);
    let planned: u64 = progress.counts.iter().map(|(_, n)| n).sum();
    let done: u64 = progress
        .counts
        .iter()
        .filter(|(s, _)| *s == IssueStatus::Done)
        .map(|(_, n)| n)
        .sum();
    let apex_id = b.apex_block_id.map(|a| a.to_string());
    json!({
        "block": WorkBlockDto::from(b),
        "planned": planned,
        "done": done,
        "cost_usd": progress.spend.cost.as_usd(),
        "tokens": progress.spend.tokens,
        "apex_title": apex_id.as_ref().and_then(|a| apex.get(a)),
    })
}

async fn render_list(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    q: &ListQuery,
    form: &BlockForm,
    refusal: Option<Refusal>,
) -> Result<Response, UiError> {
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("" | "all") => None,
        Some(s) => Some(
            WorkBlockStatus::parse(s)
                .map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message))?,
        ),
    };
    let mut blocks = mesa.work_blocks(status).await?;
    // Stable: newest first within each status.
    blocks.sort_by_key(|b| ORDER.iter().position(|s| *s == b.status));
    let start = q
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0)
        .min(blocks.len());
    let end = (start + PAGE).min(blocks.len());
    let (apex_options, apex) = apex_choices(mesa).await?;
    let shown = &blocks[start..end];
    let ids: Vec<_> = shown.iter().map(|b| b.id).collect();
    let progress = mesa.work_blocks_progress(&ids).await?;
    let rows: Vec<_> = shown
        .iter()
        .map(|b| row(b, progress.get(&b.id), &apex))
        .collect();
    let status_text = status.map(|s| s.as_str().to_owned()).unwrap_or_default();
    let next_url = (end < blocks.len()).then(|| {
        if status_text.is_empty() {
            format!("/blocks?cursor={end}")
        } else {
            format!("/blocks?status={status_text}&cursor={end}")
        }
    });
    let code = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = context! {
        rows => view(&rows),
        status => status_text,
        next_url => next_url,
        form => view(form),
        refusal => view(&refusal),
        apex_options => view(&apex_options),
    };
    let html = ui
        .page(mesa, user, "blocks", "pages/blocks.html", ctx)
        .await?;
    Ok((code, html).into_response())
}

/// `GET /blocks`.
async fn list(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    render_list(&mesa, &ui, &user, &q, &BlockForm::default(), None).await
}

/// `POST /blocks`: propose a block as the board; 303 to it, or the list again with the error.
async fn create(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<BlockForm>,
) -> Result<Response, UiError> {
    let q = ListQuery::default();
    let new = match form.parse() {
        Ok(new) => new,
        Err(e) => return render_list(&mesa, &ui, &user, &q, &form, Some(Refusal::of(&e))).await,
    };
    match mesa.create_work_block(&user.principal.actor, new).await {
        Ok(b) => Ok(Redirect::to(&format!("/blocks/{}", b.id)).into_response()),
        Err(e) => match Refusal::of_core(&e) {
            Some(r) => render_list(&mesa, &ui, &user, &q, &form, Some(r)).await,
            None => Err(e.into()),
        },
    }
}
