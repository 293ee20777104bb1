//! `GET /issues/new` (the form) and `POST /issues` (create; 303 to the new issue). The
//! command palette posts only `title`: everything else takes its default (type task, no
//! priority, assigned to the CEO).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{
    IssueKey, IssueType, LabelId, Markdown, Priority, Title, ValidationError, WorkBlockId,
};
use mesa_core::{Mesa, NewIssue, SessionUser};
use minijinja::context;
use serde_json::{Value as Json, json};

use super::Choices;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// What the form holds (echoed back when it is refused).
#[derive(Debug, Default)]
struct Draft {
    title: String,
    description: String,
    issue_type: String,
    priority: String,
    assignee: String,
    parent: String,
    labels: Vec<String>,
    block: String,
}

impl Draft {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut d = Draft::default();
        for (k, v) in pairs {
            match k.as_str() {
                "title" => v.trim().clone_into(&mut d.title),
                "description" => v.clone_into(&mut d.description),
                "type" => v.trim().clone_into(&mut d.issue_type),
                "priority" => v.trim().clone_into(&mut d.priority),
                "assignee" => v.trim().clone_into(&mut d.assignee),
                "parent" => v.trim().to_ascii_uppercase().clone_into(&mut d.parent),
                "labels" if !v.trim().is_empty() => d.labels.push(v.trim().to_owned()),
                "work_block" => v.trim().clone_into(&mut d.block),
                _ => {}
            }
        }
        d
    }

    fn view(&self) -> Json {
        json!({
            "title": self.title,
            "description": self.description,
            "type": if self.issue_type.is_empty() { "task" } else { &self.issue_type },
            "priority": if self.priority.is_empty() { "0" } else { &self.priority },
            "assignee": self.assignee,
            "parent": self.parent,
            "labels": self.labels,
            "work_block": self.block,
        })
    }

    /// The new issue, or the first invalid field.
    fn to_new(&self) -> Result<NewIssue, ValidationError> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(NewIssue {
            title: Title::parse(&self.title)?,
            description: Markdown::parse(&self.description)?,
            issue_type: opt(&self.issue_type)
                .map(|t| IssueType::parse(&t))
                .transpose()?
                .unwrap_or_default(),
            priority: match opt(&self.priority) {
                Some(p) => Priority::new(
                    p.parse()
                        .map_err(|_| ValidationError::new("priority", "priority must be 0..4"))?,
                )?,
                None => Priority::default(),
            },
            assignee: opt(&self.assignee),
            parent_key: opt(&self.parent)
                .map(|k| IssueKey::parse_field("parent", &k))
                .transpose()?,
            labels: self
                .labels
                .iter()
                .map(|l| {
                    LabelId::parse(l)
                        .map_err(|_| ValidationError::new("labels", "labels names no label"))
                })
                .collect::<Result<_, _>>()?,
            work_block_id: opt(&self.block)
                .map(|b| {
                    WorkBlockId::parse(&b).map_err(|_| {
                        ValidationError::new("work_block", "work_block names no work block")
                    })
                })
                .transpose()?,
            stages: Default::default(),
        })
    }
}

/// A refusal shown on the form: the field it concerns and, for a duplicate title, the
/// existing issue.
struct Refusal {
    status: StatusCode,
    field: String,
    message: String,
    existing: Option<String>,
}

/// `GET /issues/new`.
pub(super) async fn form(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
) -> Result<Response, UiError> {
    render(&mesa, &ui, &user, &Draft::default(), None).await
}

async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    draft: &Draft,
    refusal: Option<Refusal>,
) -> Result<Response, UiError> {
    let choices = Choices::load(mesa).await?;
    let status = refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    let error =
        refusal.map(|r| json!({ "field": r.field, "message": r.message, "existing": r.existing }));
    let html = ui
        .page(
            mesa,
            user,
            "issues",
            "pages/issue_new.html",
            context! {
                draft => view(&draft.view()),
                choices => view(&choices.view()),
                error => view(&error),
            },
        )
        .await?;
    Ok((status, html).into_response())
}

/// `POST /issues`.
pub(super) async fn submit(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let draft = Draft::from_pairs(&pairs);
    let new = match draft.to_new() {
        Ok(new) => new,
        Err(e) => {
            let refusal = Refusal {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                field: e.field.to_string(),
                message: e.message.clone(),
                existing: None,
            };
            return render(&mesa, &ui, &user, &draft, Some(refusal)).await;
        }
    };
    match mesa.create_issue(&user.principal.actor, new).await {
        Ok(view) => Ok(Redirect::to(&format!("/issues/{}", view.issue.key)).into_response()),
        Err(e) if super::is_user_error(&e) => {
            let existing = e.existing_key().map(ToString::to_string);
            let field = match e.field() {
                Some("assignee_slug") => "assignee".to_owned(),
                Some("parent_key") => "parent".to_owned(),
                Some("work_block_id") => "work_block".to_owned(),
                Some(f) => f.to_owned(),
                None if existing.is_some() => "title".to_owned(),
                None => String::new(),
            };
            let refusal = Refusal {
                status: super::status_of(&e),
                field,
                message: e.to_string(),
                existing,
            };
            render(&mesa, &ui, &user, &draft, Some(refusal)).await
        }
        Err(e) => Err(e.into()),
    }
}
