//! `GET /blocks/{id}`: a work block's goal and acceptance criteria, stats, burn-up chart,
//! north-star history, issues, the lifecycle actions the board may take (SPEC §3.1) and the
//! approvals about it. `POST /blocks/{id}/north-star` records a measurement and
//! `POST /blocks/{id}/command` moves the block; both answer 303 back to the page.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{IssueStatus, Timestamp, WorkBlockId};
use mesa_core::store::{IssueFilter, PageRequest};
use mesa_core::workflow::work_block::{BlockCommand, BlockCommandKind, allowed_block_commands};
use mesa_core::{Mesa, SessionUser};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::Refusal;
use crate::api::approvals::{ApprovalDto, Slugs};
use crate::api::blocks::WorkBlockDto;
use crate::api::dto::IssueDto;
use crate::ui::chart::{Series, Unit, line_chart};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Member issues shown on the page; the rest are a link to the filtered issue list.
const ISSUES_SHOWN: u32 = 50;
/// Most points of the burn-up chart (longer blocks are sampled every few days).
const MAX_POINTS: i64 = 120;
/// Most north-star measurements listed (newest first).
const NORTH_STAR_SHOWN: usize = 20;
const DAY_MS: i64 = 86_400_000;

fn block_id(text: &str) -> Result<WorkBlockId, UiError> {
    WorkBlockId::parse(text).map_err(|_| UiError::not_found("there is no such work block"))
}

/// The burn-up chart's x labels (UTC dates) and its two lines: member issues planned and
/// done by the end of each day from `start` to `end`, from each member's (created, done) times.
///
/// The store keeps no membership history, so an issue counts as planned from its own
/// `created_at` (an issue moved into the block later counts from its creation). Done issues
/// count from `completed_at`, or `updated_at` for rows written before it was kept.
pub(super) fn burn_up(
    members: &[(Timestamp, Option<Timestamp>)],
    start: Timestamp,
    end: Timestamp,
) -> (Vec<String>, Vec<Series>) {
    let first = start.day_start(0).as_millis();
    let last = end.max(start).day_start(0).as_millis();
    let days = (last - first) / DAY_MS + 1;
    let step = (days + MAX_POINTS - 1) / MAX_POINTS;
    let mut labels = Vec::new();
    let (mut planned, mut done) = (Vec::new(), Vec::new());
    let mut day = 0;
    loop {
        let day_end = first + (day + 1) * DAY_MS;
        let date = Timestamp::from_millis(first + day * DAY_MS).to_rfc3339();
        labels.push(date.get(..10).unwrap_or(&date).to_owned());
        let by_then = |t: &Timestamp| t.as_millis() < day_end;
        #[expect(
            clippy::cast_precision_loss,
            reason = "member counts are far below 2^52"
        )]
        {
            planned.push(members.iter().filter(|(c, _)| by_then(c)).count() as f64);
            done.push(
                members
                    .iter()
                    .filter(|(_, d)| d.as_ref().is_some_and(by_then))
                    .count() as f64,
            );
        }
        if day >= days - 1 {
            break;
        }
        day = (day + step).min(days - 1);
    }
    let series = vec![
        Series {
            name: "Planned".to_owned(),
            values: planned,
        },
        Series {
            name: "Done".to_owned(),
            values: done,
        },
    ];
    (labels, series)
}

/// The lifecycle buttons the board may press from `status`: `[command, label, confirm?]`.
fn actions(status: mesa_core::domain::WorkBlockStatus) -> Vec<[&'static str; 3]> {
    allowed_block_commands(status)
        .into_iter()
        .filter_map(|c| match c {
            BlockCommandKind::Activate => Some(["activate", "Activate", ""]),
            BlockCommandKind::Reopen => Some(["reopen", "Reopen", ""]),
            BlockCommandKind::MarkReady => Some(["mark_ready", "Mark ready", ""]),
            BlockCommandKind::Ship => Some([
                "ship",
                "Ship",
                "Ship this block? Shipped blocks cannot change.",
            ]),
            BlockCommandKind::Cancel => Some([
                "cancel",
                "Cancel block",
                "Cancel this block? This cannot be undone.",
            ]),
            _ => None,
        })
        .collect()
}

/// Renders the page with `code` and an optional refusal (a form's error or a refused action).
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    id: WorkBlockId,
    code: StatusCode,
    refusal: Option<Refusal>,
) -> Result<Response, UiError> {
    let b = mesa.work_block(id).await?;
    let end = b
        .shipped_at
        .or(b.cancelled_at)
        .unwrap_or_else(|| mesa.now());
    let members = mesa.work_block_member_times(id).await?;
    let (labels, series) = burn_up(&members, b.created_at, end);
    let chart = line_chart(
        "Burn-up: issues planned and done",
        &labels,
        &series,
        Unit::Count,
    );
    let filter = IssueFilter {
        work_block: Some(id),
        ..IssueFilter::default()
    };
    let listed = mesa
        .issues(&filter, &PageRequest::new(Some(ISSUES_SHOWN), None))
        .await?;
    let issues: Vec<IssueDto> = listed.items.iter().map(IssueDto::from).collect();
    let north_star: Vec<_> = mesa
        .work_block_north_star(id)
        .await?
        .iter()
        .rev()
        .take(NORTH_STAR_SHOWN)
        .map(|v| json!({"value": v.value, "recorded_by": v.recorded_by, "recorded_at": v.recorded_at.to_rfc3339()}))
        .collect();
    let slugs = Slugs::load(mesa).await?;
    let me = id.to_string();
    let approvals: Vec<ApprovalDto> = mesa
        .approvals(None, &PageRequest::new(Some(200), None))
        .await?
        .items
        .iter()
        .filter(|a| {
            a.subject
                .as_ref()
                .is_some_and(|s| s.entity_type == "work_block" && s.entity_id == me)
        })
        .map(|a| ApprovalDto::new(a, &slugs))
        .collect();
    let apex = match b.apex_block_id {
        Some(a) => Some(mesa.apex_block(a).await?.title.to_string()),
        None => None,
    };
    let counts = mesa.work_block_issue_counts(id).await?;
    let count = |f: &dyn Fn(IssueStatus) -> bool| -> u64 {
        counts.iter().filter(|(s, _)| f(*s)).map(|(_, n)| n).sum()
    };
    let spend = mesa.work_block_spend(id).await?;
    let cycle_ms = match (b.activated_at, b.shipped_at) {
        (Some(from), Some(to)) => {
            Some(u64::try_from(to.since(from).as_millis()).unwrap_or(u64::MAX))
        }
        _ => None,
    };
    let stats = json!({
        "planned": count(&|_| true),
        "done": count(&|s| s == IssueStatus::Done),
        "cancelled": count(&|s| matches!(s, IssueStatus::Cancelled | IssueStatus::WontDo)),
        "open": count(&|s| !s.is_terminal()),
        "runs": spend.runs, "cost_usd": spend.cost.as_usd(), "tokens": spend.tokens,
        "cycle_time_ms": cycle_ms,
    });
    let ctx = context! {
        block => view(&WorkBlockDto::from(&b)),
        apex_title => apex,
        stats => view(&stats),
        chart => chart,
        north_star => view(&north_star),
        issues => view(&issues),
        more_issues => listed.next_cursor.is_some(),
        actions => view(&actions(b.status)),
        approvals => view(&approvals),
        refusal => view(&refusal),
    };
    let html = ui
        .page(mesa, user, "blocks", "pages/block.html", ctx)
        .await?;
    Ok((code, html).into_response())
}

/// `GET /blocks/{id}`.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, block_id(&id)?, StatusCode::OK, None).await
}

/// The north-star form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NorthStarForm {
    value: String,
}

/// `POST /blocks/{id}/north-star`: record a measurement as the board.
pub(super) async fn north_star(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<NorthStarForm>,
) -> Result<Response, UiError> {
    let id = block_id(&id)?;
    let value = match form.value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => v,
        _ => {
            let r = Refusal {
                field: "value".to_owned(),
                message: "the measurement must be a number".to_owned(),
            };
            return render(
                &mesa,
                &ui,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(r),
            )
            .await;
        }
    };
    match mesa
        .record_north_star(&user.principal.actor, id, value)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/blocks/{id}")).into_response()),
        Err(e) => refused(&mesa, &ui, &user, id, e).await,
    }
}

/// The lifecycle form: `action` is activate, reopen, mark_ready, ship or cancel.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CommandForm {
    action: String,
}

/// `POST /blocks/{id}/command`: the board moves the block (SPEC §3.1).
pub(super) async fn command(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Response, UiError> {
    let id = block_id(&id)?;
    let command = match form.action.as_str() {
        "activate" => BlockCommand::Activate,
        "reopen" => BlockCommand::Reopen,
        "mark_ready" => BlockCommand::MarkReady,
        "ship" => BlockCommand::Ship,
        "cancel" => BlockCommand::Cancel,
        _ => {
            let r = Refusal {
                field: "action".to_owned(),
                message: "choose activate, reopen, mark ready, ship or cancel".to_owned(),
            };
            return render(
                &mesa,
                &ui,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(r),
            )
            .await;
        }
    };
    match mesa
        .work_block_command(&user.principal.actor, id, command, None)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/blocks/{id}")).into_response()),
        Err(e) => refused(&mesa, &ui, &user, id, e).await,
    }
}

/// A refused change: the page again with the reason (422 invalid, 409 conflict...), or the
/// error page for faults.
async fn refused(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    id: WorkBlockId,
    e: mesa_core::CoreError,
) -> Result<Response, UiError> {
    use mesa_core::ErrorKind;
    let code = match e.kind() {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict | ErrorKind::StaleVersion => StatusCode::CONFLICT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        _ => return Err(e.into()),
    };
    let r = Refusal {
        field: e.field().unwrap_or_default().to_owned(),
        message: e.to_string(),
    };
    render(mesa, ui, user, id, code, Some(r)).await
}
