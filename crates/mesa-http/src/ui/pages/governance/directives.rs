//! Directives (SPEC §1 Directive, §4.3): short board rules given to every agent's prompt.
//! `POST /governance/directives` adds one, `POST /governance/directives/{id}` edits one and
//! `POST /governance/directives/{id}/delete` removes one; all answer 303 to the tab, or the
//! tab with the refusal next to the form.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::Mesa;
use mesa_core::domain::DirectiveId;
use serde::Deserialize;

use super::Notice;
use super::archetypes::refusal_status;
use crate::ui::Ui;
use crate::ui::error::UiError;
use crate::ui::session::Board;

const TAB: &str = "/governance?tab=directives";

/// The directive form: `text`, and `active` (a checkbox: present when on).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DirectiveForm {
    text: String,
    active: Option<String>,
}

fn directive_id(text: &str) -> Result<DirectiveId, UiError> {
    DirectiveId::parse(text).map_err(|_| UiError::not_found("there is no such directive"))
}

/// Answers a refused change with the tab and the message, or fails for faults.
async fn refused(
    mesa: &Mesa,
    ui: &Ui,
    user: &mesa_core::SessionUser,
    form: String,
    e: mesa_core::CoreError,
    draft: &str,
) -> Result<Response, UiError> {
    let Some(status) = refusal_status(&e) else {
        return Err(e.into());
    };
    let n = Notice {
        form,
        message: e.to_string(),
        status,
    };
    super::render(mesa, ui, user, "directives", Some(n), draft).await
}

/// `POST /governance/directives`.
pub(super) async fn create(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(form): Form<DirectiveForm>,
) -> Result<Response, UiError> {
    match mesa
        .create_directive(
            &user.principal.actor,
            form.text.trim(),
            form.active.is_some(),
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(TAB).into_response()),
        Err(e) => refused(&mesa, &ui, &user, "new".to_owned(), e, &form.text).await,
    }
}

/// `POST /governance/directives/{id}`.
pub(super) async fn update(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
    Form(form): Form<DirectiveForm>,
) -> Result<Response, UiError> {
    let id = directive_id(&id)?;
    match mesa
        .update_directive(
            &user.principal.actor,
            id,
            Some(form.text.trim()),
            Some(form.active.is_some()),
            None,
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(TAB).into_response()),
        Err(e) => refused(&mesa, &ui, &user, id.to_string(), e, "").await,
    }
}

/// `POST /governance/directives/{id}/delete`.
pub(super) async fn delete(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = directive_id(&id)?;
    match mesa.delete_directive(&user.principal.actor, id).await {
        Ok(()) => Ok(Redirect::to(TAB).into_response()),
        Err(e) => refused(&mesa, &ui, &user, id.to_string(), e, "").await,
    }
}
