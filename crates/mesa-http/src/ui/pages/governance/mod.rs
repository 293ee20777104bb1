//! Approvals and governance (SPEC §4, §5, §10 "Approvals", "Governance"). `/approvals` lives in
//! [`approvals`]; `GET /governance?tab=` shows one tab: archetypes (→ [`archetypes`] for one
//! archetype's versions, diffs and rollback), proposed archetype patches with their diffs and
//! approve/reject forms, directives (create, edit, delete: [`directives`]), audits with their
//! findings, and skills.

mod approvals;
mod archetypes;
mod directives;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mesa_core::domain::PatchStatus;
use mesa_core::domain::entity::ArchetypePatch;
use mesa_core::{Mesa, SessionUser};
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::approvals::Slugs;
use crate::api::archetypes::{ArchetypeDto, PatchDto};
use crate::api::learning::SkillDto;
use crate::api::ops::{AuditDto, DirectiveDto};
use crate::ui::diff::line_diff;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/resolve", post(approvals::resolve))
        .route("/governance", get(page))
        .route("/governance/archetypes/{slug}", get(archetypes::show))
        .route(
            "/governance/archetypes/{slug}/rollback",
            post(archetypes::rollback),
        )
        .route("/governance/patches/{id}/decide", post(archetypes::decide))
        .route("/governance/directives", post(directives::create))
        .route("/governance/directives/{id}", post(directives::update))
        .route(
            "/governance/directives/{id}/delete",
            post(directives::delete),
        )
}

/// Pending patches shown with their diffs; decided ones listed without.
const PATCHES_SHOWN: usize = 20;
/// Audits and skills listed.
const LIST_SHOWN: usize = 100;

/// The tabs: `[id, label, href]`.
const TABS: [[&str; 3]; 5] = [
    ["archetypes", "Archetypes", "/governance"],
    ["patches", "Patches", "/governance?tab=patches"],
    ["directives", "Directives", "/governance?tab=directives"],
    ["audits", "Audits", "/governance?tab=audits"],
    ["skills", "Skills", "/governance?tab=skills"],
];

/// A patch as the pages show it: the DTO and the diff of the archetype's text at the version
/// the patch was written against (the current text if that version is gone) to the proposal.
pub(super) async fn patch_view(
    mesa: &Mesa,
    p: &ArchetypePatch,
    slugs: &Slugs,
) -> Result<serde_json::Value, UiError> {
    let versions = mesa.archetype_versions(&p.archetype_slug).await?;
    let current = versions.iter().map(|v| v.version).max().unwrap_or(0);
    let base = match versions.iter().find(|v| v.version == p.base_version) {
        Some(v) => v.body.to_string(),
        None => mesa.archetype(&p.archetype_slug).await?.body.to_string(),
    };
    Ok(json!({
        "patch": PatchDto::new(p, slugs),
        "current_version": current,
        "diff": line_diff(&base, p.proposed_body.as_str()),
    }))
}

/// `?tab=`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TabQuery {
    tab: Option<String>,
}

/// What a refused form on the page says: which form (`new`, a directive's id, a patch's id)
/// and why.
pub(super) struct Notice {
    pub(super) form: String,
    pub(super) message: String,
    pub(super) status: StatusCode,
}

async fn tab_data(mesa: &Mesa, tab: &str) -> Result<Value, UiError> {
    Ok(match tab {
        "patches" => {
            let all = mesa.archetype_patches(None).await?;
            let slugs = Slugs::load(mesa).await?;
            let mut pending = Vec::new();
            for p in all
                .iter()
                .filter(|p| p.status == PatchStatus::Pending)
                .take(PATCHES_SHOWN)
            {
                pending.push(patch_view(mesa, p, &slugs).await?);
            }
            let decided: Vec<PatchDto> = all
                .iter()
                .filter(|p| p.status != PatchStatus::Pending)
                .take(PATCHES_SHOWN)
                .map(|p| PatchDto::new(p, &slugs))
                .collect();
            context! { pending => view(&pending), decided => view(&decided) }
        }
        "directives" => {
            let items: Vec<DirectiveDto> = mesa
                .directives()
                .await?
                .iter()
                .map(DirectiveDto::from)
                .collect();
            context! { directives => view(&items) }
        }
        "audits" => {
            let items: Vec<AuditDto> = mesa
                .audits()
                .await?
                .iter()
                .take(LIST_SHOWN)
                .map(AuditDto::from)
                .collect();
            context! { audits => view(&items) }
        }
        "skills" => {
            let items: Vec<SkillDto> = mesa
                .skills(None)
                .await?
                .iter()
                .take(LIST_SHOWN)
                .map(SkillDto::from)
                .collect();
            context! { skills => view(&items) }
        }
        _ => {
            let items: Vec<ArchetypeDto> = mesa
                .archetypes()
                .await?
                .iter()
                .map(ArchetypeDto::from)
                .collect();
            context! { archetypes => view(&items) }
        }
    })
}

/// Renders tab `tab` with an optional notice (a refused form) and the draft text of the
/// directive form.
pub(super) async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    tab: &str,
    notice: Option<Notice>,
    draft: &str,
) -> Result<Response, UiError> {
    let tab = TABS
        .iter()
        .map(|t| t[0])
        .find(|t| *t == tab)
        .unwrap_or("archetypes");
    let data = tab_data(mesa, tab).await?;
    let status = notice.as_ref().map_or(StatusCode::OK, |n| n.status);
    let ctx = context! {
        tab => tab,
        tabs => view(&TABS),
        data => data,
        notice => notice.map(|n| json!({"form": n.form, "message": n.message})).map(|n| view(&n)),
        draft => draft,
    };
    let html = ui
        .page(mesa, user, "governance", "pages/governance.html", ctx)
        .await?;
    Ok((status, html).into_response())
}

/// `GET /governance`.
async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<TabQuery>,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, q.tab.as_deref().unwrap_or(""), None, "").await
}
