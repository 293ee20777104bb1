//! `GET /approvals` (pending first, then resolved, paginated; SPEC §4.2), `GET /approvals/{id}`
//! (one approval; an archetype patch shows its diff) and `POST /approvals/{id}/resolve` (the
//! board approves or rejects, with an optional note; 303 back, or the page with the refusal).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{ApprovalDecision, ApprovalId, ApprovalStatus, ArchetypePatchId};
use mesa_core::store::PageRequest;
use mesa_core::{ErrorKind, Mesa, SessionUser};
use minijinja::context;
use serde::Deserialize;

use crate::api::approvals::{ApprovalDto, Slugs};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Approvals per page.
const PAGE: u32 = 25;

fn approval_id(text: &str) -> Result<ApprovalId, UiError> {
    ApprovalId::parse(text).map_err(|_| UiError::not_found("there is no such approval"))
}

/// `?status=` and `?cursor=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

/// `GET /approvals`.
pub(super) async fn list(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("" | "all") => None,
        Some(s) => Some(
            ApprovalStatus::parse(s)
                .map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message))?,
        ),
    };
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = mesa
        .approvals(status, &PageRequest::new(Some(PAGE), cursor))
        .await?;
    let slugs = Slugs::load(&mesa).await?;
    let items: Vec<ApprovalDto> = page
        .items
        .iter()
        .map(|a| ApprovalDto::new(a, &slugs))
        .collect();
    let status_text = status.map(|s| s.as_str().to_owned()).unwrap_or_default();
    let next_url = page.next_cursor.map(|c| {
        let c: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
        if status_text.is_empty() {
            format!("/approvals?cursor={c}")
        } else {
            format!("/approvals?status={status_text}&cursor={c}")
        }
    });
    let ctx = context! {
        pending => view(&items.iter().filter(|a| a.status == "pending").collect::<Vec<_>>()),
        resolved => view(&items.iter().filter(|a| a.status != "pending").collect::<Vec<_>>()),
        status => status_text,
        next_url => next_url,
    };
    let html = ui
        .page(&mesa, &user, "approvals", "pages/approvals.html", ctx)
        .await?;
    Ok(html.into_response())
}

/// The patch an `archetype_patch` approval decides, with the diff of its archetype's text
/// (the version it was written against) to the proposed text.
async fn patch_of(
    mesa: &Mesa,
    a: &ApprovalDto,
    slugs: &Slugs,
) -> Result<Option<serde_json::Value>, UiError> {
    if a.kind != "archetype_patch" && a.subject_type.as_deref() != Some("archetype_patch") {
        return Ok(None);
    }
    let Some(id) = a
        .subject_id
        .as_deref()
        .and_then(|s| ArchetypePatchId::parse(s).ok())
    else {
        return Ok(None);
    };
    let patch = mesa.archetype_patch(id).await?;
    Ok(Some(super::patch_view(mesa, &patch, slugs).await?))
}

/// Renders one approval with `code` and an optional message (a refused decision).
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    id: ApprovalId,
    code: StatusCode,
    error: Option<String>,
) -> Result<Response, UiError> {
    let a = mesa.approval(id).await?;
    let slugs = Slugs::load(mesa).await?;
    let dto = ApprovalDto::new(&a, &slugs);
    let patch = patch_of(mesa, &dto, &slugs).await?;
    let ctx = context! {
        a => view(&dto),
        patch => view(&patch),
        error => error,
    };
    let html = ui
        .page(mesa, user, "approvals", "pages/approval.html", ctx)
        .await?;
    Ok((code, html).into_response())
}

/// `GET /approvals/{id}`.
pub(super) async fn show(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, approval_id(&id)?, StatusCode::OK, None).await
}

/// The decide form: `decision` (approve or reject), an optional `comment`, and `back`, the
/// dashboard page to return to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ResolveForm {
    decision: String,
    comment: String,
    back: String,
}

/// `back` if it is a path on this site (never another origin), else the approval's page.
pub(super) fn local_path(back: &str, fallback: String) -> String {
    let ok = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.chars().any(char::is_control);
    if ok { back.to_owned() } else { fallback }
}

/// `POST /approvals/{id}/resolve`: the board decides; the effect is carried out by the core.
pub(super) async fn resolve(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, UiError> {
    let id = approval_id(&id)?;
    let decision = match ApprovalDecision::parse(form.decision.trim()) {
        Ok(d) => d,
        Err(_) => {
            let msg = "choose approve or reject".to_owned();
            return render(
                &mesa,
                &ui,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(msg),
            )
            .await;
        }
    };
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    match mesa
        .resolve_approval(&user.principal.actor, id, decision, comment)
        .await
    {
        Ok(_) => {
            Ok(Redirect::to(&local_path(&form.back, format!("/approvals/{id}"))).into_response())
        }
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::Conflict | ErrorKind::StaleVersion => StatusCode::CONFLICT,
                ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                _ => return Err(e.into()),
            };
            render(&mesa, &ui, &user, id, code, Some(e.to_string())).await
        }
    }
}
