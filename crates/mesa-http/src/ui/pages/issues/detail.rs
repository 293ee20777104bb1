//! `GET /issues/{key}`: the issue detail (SPEC §10): description as Markdown, stages with
//! progress, one timeline of comments, evidence, review decisions and system notes,
//! sub-issues, runs with cost and tokens, the branch and the latest diff stat, and the §2
//! actions the board may take. Edit in place (`GET /issues/{key}/edit`, `POST /issues/{key}`
//! with a version check), comments (`POST /issues/{key}/comments`) and actions
//! (`POST /issues/{key}/action`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{
    CommentKind, IssueKey, Markdown, Priority, StageStatus, Title, ValidationError, Version,
};
use mesa_core::workflow::issue::{CommandKind, IssueCommand};
use mesa_core::{CoreError, ErrorKind, IssueDetail, IssuePatch, Mesa, SessionUser};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{BoardAction, Choices, board_actions};
use crate::api::dto::{CommentDto, IssueDto};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// What a re-rendered detail page shows besides the issue: an open edit form, form errors.
#[derive(Debug, Default)]
struct Extra {
    editing: bool,
    edit: Option<Json>,
    edit_error: Option<Json>,
    comment_error: Option<String>,
    comment_draft: String,
    action_error: Option<String>,
}

fn parse_key(text: &str) -> Result<IssueKey, UiError> {
    IssueKey::parse(&text.to_ascii_uppercase())
        .map_err(|_| UiError::not_found(format!("there is no issue {text}")))
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// `GET /issues/{key}`.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(key): Path<String>,
) -> Result<Response, UiError> {
    let key = parse_key(&key)?;
    render(&mesa, &ui, &user, &key, Extra::default(), StatusCode::OK).await
}

/// The edit form's values: from the issue, or what was posted.
fn edit_values(issue: &IssueDto) -> Json {
    json!({
        "title": issue.title,
        "description": issue.description,
        "priority": issue.priority.to_string(),
        "assignee": issue.assignee_slug.clone().unwrap_or_default(),
        "version": issue.version,
    })
}

/// `GET /issues/{key}/edit`: the edit form as a fragment for htmx, or the detail page with
/// the form open.
pub(super) async fn edit(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let key = parse_key(&key)?;
    if is_htmx(&headers) {
        let issue = IssueDto::from(&mesa.issue(&key).await?);
        let choices = Choices::load(&mesa).await?;
        let html = ui.render(
            "partials/issue_edit.html",
            &context! {
                issue => view(&issue),
                edit => view(&edit_values(&issue)),
                edit_error => view(&None::<Json>),
                choices => view(&choices.view()),
                csrf => user.csrf.as_str(),
            },
        )?;
        return Ok(html.into_response());
    }
    let extra = Extra {
        editing: true,
        ..Extra::default()
    };
    render(&mesa, &ui, &user, &key, extra, StatusCode::OK).await
}

/// Renders the detail page of `key` with `extra`, answering `status`.
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    key: &IssueKey,
    extra: Extra,
    status: StatusCode,
) -> Result<Response, UiError> {
    let detail = mesa.issue_detail(key).await?;
    let choices = Choices::load(mesa).await?;
    let ctx = detail_context(mesa, &detail, &choices).await?;
    let issue = IssueDto::from(&detail.issue);
    let edit = extra.edit.unwrap_or_else(|| edit_values(&issue));
    let html = ui
        .page(
            mesa,
            user,
            "issues",
            "pages/issue.html",
            context! {
                editing => extra.editing,
                edit => view(&edit),
                edit_error => view(&extra.edit_error),
                comment_error => extra.comment_error,
                comment_draft => extra.comment_draft,
                action_error => extra.action_error,
                choices => view(&choices.view()),
                ..ctx
            },
        )
        .await?;
    Ok((status, html).into_response())
}

/// Everything the detail shows about the issue.
async fn detail_context(
    mesa: &Mesa,
    detail: &IssueDetail,
    choices: &Choices,
) -> Result<minijinja::Value, UiError> {
    let issue = IssueDto::from(&detail.issue);
    let parent = match &detail.issue.issue.parent_key {
        Some(p) => match mesa.issue(p).await {
            Ok(v) => Some(json!({
                "key": v.issue.key.to_string(),
                "title": v.issue.title.to_string(),
                "status": v.issue.status.as_str(),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let children: Vec<IssueDto> = detail.children.iter().map(IssueDto::from).collect();
    let timeline: Vec<CommentDto> = detail.comments.iter().map(CommentDto::from).collect();
    let slugs: &HashMap<String, String> = &choices.agent_slugs;
    let runs: Vec<Json> = detail
        .runs
        .iter()
        .map(|r| {
            json!({
                "id": r.id.to_string(),
                "agent_slug": slugs.get(&r.agent_id.to_string()),
                "mode": r.mode.as_str(),
                "status": r.status.as_str(),
                "cost_usd": r.cost_usd.as_usd(),
                "tokens": r.usage.total(),
                "queued_at": r.queued_at.to_rfc3339(),
            })
        })
        .collect();
    let latest_diff = detail
        .runs
        .iter()
        .find(|r| r.diff_stat.as_deref().is_some_and(|s| !s.trim().is_empty()))
        .map(|r| json!({ "run_id": r.id.to_string(), "stat": r.diff_stat }));
    let stages = detail.issue.issue.stages.as_slice();
    let stages_done = stages
        .iter()
        .filter(|s| s.status == StageStatus::Done)
        .count();
    let reporter = match issue.created_by.as_str() {
        "board" => json!({ "kind": "board", "name": "the board" }),
        other => match slugs.get(other) {
            Some(slug) => json!({ "kind": "agent", "name": slug }),
            None => json!({ "kind": "other", "name": other }),
        },
    };
    let actions: Vec<Json> = board_actions(detail.issue.issue.status)
        .iter()
        .map(BoardAction::view)
        .collect();
    let label_names: Vec<&String> = issue
        .labels
        .iter()
        .filter_map(|l| choices.label_names.get(l))
        .collect();
    let block_title = issue
        .work_block_id
        .as_ref()
        .and_then(|b| choices.block_titles.get(b));
    let branch = issue
        .branch
        .clone()
        .unwrap_or_else(|| format!("mesa/{}", issue.key));
    // The GitHub panel (SPEC §11.4) loads itself after the page; only shown when configured.
    let github_pr = mesa
        .setting_value("github_repo")
        .await
        .is_some_and(|r| !r.is_empty());
    Ok(context! {
        issue => view(&issue),
        parent => view(&parent),
        children => view(&children),
        timeline => view(&timeline),
        runs => view(&runs),
        latest_diff => view(&latest_diff),
        stages_done => stages_done,
        stages_total => stages.len(),
        reporter => view(&reporter),
        actions => view(&actions),
        label_names => view(&label_names),
        block_title => block_title,
        branch => branch,
        github_pr => github_pr,
    })
}

/// `POST /issues/{key}`: the edit form.
#[derive(Debug, Deserialize)]
pub(super) struct SaveForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    assignee: String,
    version: Option<i64>,
}

impl SaveForm {
    fn values(&self) -> Json {
        json!({
            "title": self.title,
            "description": self.description,
            "priority": self.priority,
            "assignee": self.assignee,
            "version": self.version,
        })
    }

    /// The changes against `current`, or the first invalid field.
    fn patch(&self, current: &IssueDto) -> Result<IssuePatch, ValidationError> {
        let title = Title::parse(&self.title)?;
        let description = Markdown::parse(&self.description)?;
        let priority = Priority::new(
            self.priority
                .trim()
                .parse()
                .map_err(|_| ValidationError::new("priority", "priority must be 0..4"))?,
        )?;
        let assignee = self.assignee.trim();
        let version = self
            .version
            .ok_or_else(|| ValidationError::new("version", "version is required"))?;
        Ok(IssuePatch {
            title: (title.as_str() != current.title).then_some(title),
            description: (description.as_str() != current.description).then_some(description),
            priority: (priority.get() != current.priority).then_some(priority),
            assignee: (Some(assignee) != current.assignee_slug.as_deref()
                && !(assignee.is_empty() && current.assignee_slug.is_none()))
            .then(|| (!assignee.is_empty()).then(|| assignee.to_owned())),
            expected: Some(Version(version)),
            ..IssuePatch::default()
        })
    }
}

/// `POST /issues/{key}`: saves the edit form; a stale version or bad input re-renders the
/// form with the message and changes nothing.
pub(super) async fn save(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(key): Path<String>,
    Form(form): Form<SaveForm>,
) -> Result<Response, UiError> {
    let key = parse_key(&key)?;
    let current = IssueDto::from(&mesa.issue(&key).await?);
    let refuse = |status: StatusCode, field: &str, message: String| Extra {
        editing: true,
        edit: Some(form.values()),
        edit_error: Some(json!({ "field": field, "message": message, "status": status.as_u16() })),
        ..Extra::default()
    };
    let patch = match form.patch(&current) {
        Ok(p) => p,
        Err(e) => {
            let extra = refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.field, e.message);
            return render(
                &mesa,
                &ui,
                &user,
                &key,
                extra,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match mesa.update_issue(&user.principal.actor, &key, patch).await {
        Ok(_) => Ok(Redirect::to(&format!("/issues/{key}")).into_response()),
        Err(e) if super::is_user_error(&e) => {
            let status = super::status_of(&e);
            let message = if e.kind() == ErrorKind::StaleVersion {
                "Someone changed this issue while you were editing it (it is now at \
                 a newer version). Your changes were not saved: reload the issue and edit again."
                    .to_owned()
            } else {
                e.to_string()
            };
            let field = match e.field() {
                Some("assignee_slug") => "assignee",
                Some(f) => f,
                None => "",
            };
            let extra = refuse(status, field, message);
            render(&mesa, &ui, &user, &key, extra, status).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /issues/{key}/comments` form.
#[derive(Debug, Deserialize)]
pub(super) struct CommentForm {
    #[serde(default)]
    body: String,
    kind: Option<String>,
}

/// `POST /issues/{key}/comments`: posts a comment (or evidence) as the board.
pub(super) async fn comment(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(key): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Response, UiError> {
    let key = parse_key(&key)?;
    let kind = match form.kind.as_deref().map(str::trim) {
        None | Some("" | "comment") => Ok(CommentKind::Comment),
        Some("evidence") => Ok(CommentKind::Evidence),
        Some(_) => Err("kind must be comment or evidence".to_owned()),
    };
    let result: Result<(), String> = match kind {
        Err(message) => Err(message),
        Ok(_) if form.body.trim().is_empty() => Err("Write a comment first.".to_owned()),
        Ok(kind) => match mesa
            .add_comment(&user.principal.actor, &key, &form.body, kind)
            .await
        {
            Ok(_) => return Ok(Redirect::to(&format!("/issues/{key}#comments")).into_response()),
            Err(e) if super::is_user_error(&e) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        },
    };
    let message = result.err().unwrap_or_default();
    let extra = Extra {
        comment_error: Some(message),
        comment_draft: form.body,
        ..Extra::default()
    };
    render(
        &mesa,
        &ui,
        &user,
        &key,
        extra,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `POST /issues/{key}/action` form.
#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    command: String,
    comment: Option<String>,
    force: Option<String>,
    version: Option<i64>,
    /// Set by the board view's quick actions: a required comment gets a default note.
    quick: Option<String>,
    /// Where to go afterwards (an `/issues…` path).
    back: Option<String>,
}

/// `POST /issues/{key}/action`: one §2 command as the board; refused commands re-render the
/// detail with the reason and change nothing.
pub(super) async fn action(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Path(key): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    let key = parse_key(&key)?;
    let current = mesa.issue(&key).await?;
    let allowed = board_actions(current.issue.status);
    let chosen = CommandKind::parse(form.command.trim())
        .ok()
        .and_then(|c| allowed.iter().find(|a| a.command == c).cloned());
    let Some(chosen) = chosen else {
        let names: Vec<&str> = allowed.iter().map(|a| a.command.as_str()).collect();
        let extra = Extra {
            action_error: Some(format!(
                "{:?} is not an action the board can take on {key} now (it is {}); allowed: {}",
                form.command,
                current.issue.status,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )),
            ..Extra::default()
        };
        return render(
            &mesa,
            &ui,
            &user,
            &key,
            extra,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let mut comment = form
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if comment.is_none() && chosen.needs_comment() {
        if form.quick.is_some() {
            comment = Some(format!(
                "{} from the issues board by {}.",
                chosen.label(),
                crate::ui::board_name(&user.principal.actor)
            ));
        } else {
            let extra = Extra {
                action_error: Some(format!("{} needs a comment (the reason).", chosen.label())),
                ..Extra::default()
            };
            return render(
                &mesa,
                &ui,
                &user,
                &key,
                extra,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    }
    let force = form
        .force
        .as_deref()
        .is_some_and(|f| f == "on" || f == "true");
    let command = IssueCommand::from_kind(chosen.command, comment, force)
        .ok_or_else(|| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not a command"))?;
    let expected = form.version.map(Version);
    match mesa
        .issue_command(&user.principal.actor, &key, command, expected)
        .await
    {
        Ok(_) => {
            let target = super::back_to(form.back.as_deref(), &format!("/issues/{key}"));
            Ok(Redirect::to(&target).into_response())
        }
        Err(e) if super::is_user_error(&e) => {
            let status = super::status_of(&e);
            let extra = Extra {
                action_error: Some(describe(&e)),
                ..Extra::default()
            };
            render(&mesa, &ui, &user, &key, extra, status).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A refused command as a sentence.
fn describe(e: &CoreError) -> String {
    if e.kind() == ErrorKind::StaleVersion {
        "The issue changed since this page was loaded; nothing was done. Look again and retry."
            .to_owned()
    } else {
        e.to_string()
    }
}
