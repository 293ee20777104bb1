//! `GET /governance/archetypes/{slug}`: an archetype's versions and the diff of one version
//! (`?v=`, default the current one) against the one before; `POST …/rollback` restores an old
//! version as a new one. `POST /governance/patches/{id}/decide` approves or rejects a proposed
//! patch (SPEC §4.3). All answer 303 back, or the page with the refusal.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{ApprovalDecision, ArchetypePatchId, Slug};
use mesa_core::{CoreError, ErrorKind, Mesa, SessionUser};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::Notice;
use crate::api::archetypes::ArchetypeDto;
use crate::ui::diff::line_diff;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

fn slug_of(text: &str) -> Result<Slug, UiError> {
    Slug::parse_field("slug", text).map_err(|_| UiError::not_found("there is no such archetype"))
}

/// The status a refused change answers with, or `None` for faults.
pub(super) fn refusal_status(e: &CoreError) -> Option<StatusCode> {
    match e.kind() {
        ErrorKind::Invalid => Some(StatusCode::UNPROCESSABLE_ENTITY),
        ErrorKind::Conflict | ErrorKind::StaleVersion => Some(StatusCode::CONFLICT),
        ErrorKind::Forbidden => Some(StatusCode::FORBIDDEN),
        ErrorKind::NotFound => Some(StatusCode::NOT_FOUND),
        _ => None,
    }
}

/// `?v=`: the version whose change to show.
#[derive(Debug, Default, Deserialize)]
pub(super) struct VersionQuery {
    v: Option<i64>,
}

async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    slug: &Slug,
    shown: Option<i64>,
    error: Option<(StatusCode, String)>,
) -> Result<Response, UiError> {
    let a = mesa.archetype(slug).await?;
    let mut versions = mesa.archetype_versions(slug).await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let shown = shown.unwrap_or(a.version);
    let diff = versions.iter().position(|v| v.version == shown).map(|i| {
        let before = versions.get(i + 1).map_or("", |p| p.body.as_str());
        json!({
            "version": shown,
            "previous": versions.get(i + 1).map(|p| p.version),
            "lines": line_diff(before, versions[i].body.as_str()),
        })
    });
    let rows: Vec<_> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "title": v.title.to_string(),
                "source": v.source.to_storage(),
                "created_at": v.created_at.to_rfc3339(),
            })
        })
        .collect();
    let (code, message) = match error {
        Some((c, m)) => (c, Some(m)),
        None => (StatusCode::OK, None),
    };
    let ctx = context! {
        archetype => view(&ArchetypeDto::from(&a)),
        versions => view(&rows),
        diff => view(&diff),
        error => message,
    };
    let html = ui
        .page(
            mesa,
            user,
            "governance",
            "pages/governance_archetype.html",
            ctx,
        )
        .await?;
    Ok((code, html).into_response())
}

/// `GET /governance/archetypes/{slug}`.
pub(super) async fn show(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, &slug_of(&slug)?, q.v, None).await
}

/// The rollback form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RollbackForm {
    version: String,
}

/// `POST /governance/archetypes/{slug}/rollback`: restore `version` as a new version.
pub(super) async fn rollback(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(slug): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Result<Response, UiError> {
    let slug = slug_of(&slug)?;
    let Ok(version) = form.version.trim().parse::<i64>() else {
        let e = (
            StatusCode::UNPROCESSABLE_ENTITY,
            "version must be a version number".to_owned(),
        );
        return render(&mesa, &ui, &user, &slug, None, Some(e)).await;
    };
    match mesa
        .rollback_archetype(&user.principal.actor, &slug, version)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/governance/archetypes/{slug}")).into_response()),
        Err(e) => match refusal_status(&e) {
            Some(code) => render(&mesa, &ui, &user, &slug, None, Some((code, e.to_string()))).await,
            None => Err(e.into()),
        },
    }
}

/// The patch decision form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DecideForm {
    decision: String,
    comment: String,
}

/// `POST /governance/patches/{id}/decide`: approve (a new archetype version) or reject.
pub(super) async fn decide(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Result<Response, UiError> {
    let id = ArchetypePatchId::parse(&id)
        .map_err(|_| UiError::not_found("there is no such archetype patch"))?;
    let notice = |status, message| Notice {
        form: id.to_string(),
        message,
        status,
    };
    let Ok(decision) = ApprovalDecision::parse(form.decision.trim()) else {
        let n = notice(
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose approve or reject".to_owned(),
        );
        return super::render(&mesa, &ui, &user, "patches", Some(n), "").await;
    };
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    match mesa
        .decide_archetype_patch(&user.principal.actor, id, decision, comment)
        .await
    {
        Ok(_) => Ok(Redirect::to("/governance?tab=patches").into_response()),
        Err(e) => match refusal_status(&e) {
            Some(code) => {
                let n = notice(code, e.to_string());
                super::render(&mesa, &ui, &user, "patches", Some(n), "").await
            }
            None => Err(e.into()),
        },
    }
}
