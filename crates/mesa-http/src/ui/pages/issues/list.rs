//! `GET /issues`: the issue list (filters as query parameters, cursor pages, bulk actions)
//! and, with `?view=board`, the board of status columns with quick actions on every card.
//! `POST /issues/bulk`: one action on the selected issues, reporting per-issue failures.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::domain::{IssueKey, IssueStatus, IssueType, LabelId, Priority, WorkBlockId};
use mesa_core::store::{IssueFilter, PageRequest};
use mesa_core::{IssuePatch, IssueView, Mesa, SessionUser};
use minijinja::context;
use serde_json::{Value as Json, json};

use super::{BOARD_COLUMNS, Choices, board_actions, status_label};
use crate::api::dto::IssueDto;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// Rows on a list page.
const PAGE_SIZE: u32 = 50;
/// Cards per board column.
const COLUMN_SIZE: u32 = 50;
/// Store pages scanned per request when filtering by type or priority (which the store's
/// filter lacks): the page holds what matched in them and continues after the last one.
const MAX_SCANNED_PAGES: usize = 4;
/// Issues one bulk action may touch.
const MAX_BULK: usize = 200;
/// Query parameters that are filters (kept across pages and bulk actions).
const FILTER_KEYS: &[&str] = &[
    "status", "assignee", "label", "type", "priority", "block", "q", "view",
];

/// The list's query parameters, read from repeated pairs (`status` may repeat or be
/// comma-separated).
#[derive(Debug, Default, Clone)]
pub(super) struct ListParams {
    statuses: Vec<String>,
    assignee: String,
    label: String,
    issue_type: String,
    priority: String,
    block: String,
    q: String,
    cursor: Option<String>,
    board: bool,
    bulk: Option<String>,
}

impl ListParams {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            let v = v.trim();
            match k.as_str() {
                "status" => p.statuses.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
                "assignee" => v.clone_into(&mut p.assignee),
                "label" => v.clone_into(&mut p.label),
                "type" => v.clone_into(&mut p.issue_type),
                "priority" => v.clone_into(&mut p.priority),
                "block" => v.clone_into(&mut p.block),
                "q" => v.clone_into(&mut p.q),
                "cursor" if !v.is_empty() => p.cursor = Some(v.to_owned()),
                "view" => p.board = v == "board",
                "bulk" if !v.is_empty() => p.bulk = Some(v.to_owned()),
                _ => {}
            }
        }
        p
    }

    /// The filters as a query string (no cursor, no notice), `view` included.
    fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for st in &self.statuses {
            s.append_pair("status", st);
        }
        for (k, v) in [
            ("assignee", &self.assignee),
            ("label", &self.label),
            ("type", &self.issue_type),
            ("priority", &self.priority),
            ("block", &self.block),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if self.board {
            s.append_pair("view", "board");
        }
        s.finish()
    }

    /// `/issues?<filters>` plus `extra` pairs.
    fn url(&self, extra: &[(&str, &str)]) -> String {
        let mut q = self.query();
        for (k, v) in extra {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair(k, v)
                    .finish(),
            );
        }
        if q.is_empty() {
            "/issues".to_owned()
        } else {
            format!("/issues?{q}")
        }
    }

    fn view(&self) -> Json {
        json!({
            "statuses": self.statuses,
            "assignee": self.assignee,
            "label": self.label,
            "type": self.issue_type,
            "priority": self.priority,
            "block": self.block,
            "q": self.q,
            "board": self.board,
            "query": self.query(),
        })
    }
}

/// The store filter and the in-memory type/priority filter the parameters mean; unknown
/// values are reported in `problems` and ignored.
struct Resolved {
    filter: IssueFilter,
    issue_type: Option<IssueType>,
    priority: Option<Priority>,
    problems: Vec<String>,
}

async fn resolve(mesa: &Mesa, p: &ListParams) -> Result<Resolved, UiError> {
    let mut r = Resolved {
        filter: IssueFilter::default(),
        issue_type: None,
        priority: None,
        problems: Vec::new(),
    };
    for s in &p.statuses {
        match IssueStatus::parse(s) {
            Ok(s) if !r.filter.statuses.contains(&s) => r.filter.statuses.push(s),
            Ok(_) => {}
            Err(_) => r.problems.push(format!("unknown status {s:?}")),
        }
    }
    if !p.assignee.is_empty() {
        match mesa.resolve_agent("assignee", &p.assignee).await {
            Ok(a) => r.filter.assignee = Some(a.id),
            Err(e) if super::is_user_error(&e) => {
                r.problems
                    .push(format!("unknown assignee {:?}", p.assignee));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !p.label.is_empty() {
        let id = match LabelId::parse(&p.label) {
            Ok(id) => Some(id),
            Err(_) => mesa
                .labels()
                .await?
                .into_iter()
                .find(|l| l.name.as_str().eq_ignore_ascii_case(&p.label))
                .map(|l| l.id),
        };
        match id {
            Some(id) => r.filter.label = Some(id),
            None => r.problems.push(format!("unknown label {:?}", p.label)),
        }
    }
    if !p.block.is_empty() {
        match WorkBlockId::parse(&p.block) {
            Ok(id) => r.filter.work_block = Some(id),
            Err(_) => r.problems.push(format!("unknown work block {:?}", p.block)),
        }
    }
    if !p.issue_type.is_empty() {
        match IssueType::parse(&p.issue_type) {
            Ok(t) => r.issue_type = Some(t),
            Err(_) => r.problems.push(format!("unknown type {:?}", p.issue_type)),
        }
    }
    if !p.priority.is_empty() {
        match p
            .priority
            .parse::<i64>()
            .ok()
            .and_then(|n| Priority::new(n).ok())
        {
            Some(pr) => r.priority = Some(pr),
            None => r
                .problems
                .push(format!("unknown priority {:?}", p.priority)),
        }
    }
    if !p.q.is_empty() {
        r.filter.text = Some(p.q.clone());
    }
    Ok(r)
}

/// One page of issues matching `r`, newest first, and the cursor of the next one.
async fn fetch(
    mesa: &Mesa,
    r: &Resolved,
    filter: &IssueFilter,
    limit: u32,
    cursor: Option<String>,
) -> Result<(Vec<IssueView>, Option<String>), UiError> {
    if r.issue_type.is_none() && r.priority.is_none() {
        let page = mesa
            .issues(filter, &PageRequest::new(Some(limit), cursor))
            .await?;
        return Ok((page.items, page.next_cursor));
    }
    let keep = |v: &IssueView| {
        r.issue_type.is_none_or(|t| v.issue.issue_type == t)
            && r.priority.is_none_or(|p| v.issue.priority == p)
    };
    let mut found = Vec::new();
    let mut cursor = cursor;
    for _ in 0..MAX_SCANNED_PAGES {
        let page = mesa
            .issues(filter, &PageRequest::new(Some(limit), cursor.take()))
            .await?;
        found.extend(page.items.into_iter().filter(keep));
        cursor = page.next_cursor;
        if cursor.is_none() || found.len() >= limit as usize {
            break;
        }
    }
    Ok((found, cursor))
}

/// Table rows / cards: the issue DTO plus what the page shows beside it.
fn rows(items: &[IssueView], choices: &Choices) -> Vec<Json> {
    items
        .iter()
        .map(|v| {
            let dto = IssueDto::from(v);
            let labels: Vec<&str> = dto
                .labels
                .iter()
                .filter_map(|l| choices.label_names.get(l).map(String::as_str))
                .collect();
            let block = dto
                .work_block_id
                .as_ref()
                .and_then(|b| choices.block_titles.get(b));
            let actions: Vec<Json> = board_actions(v.issue.status)
                .iter()
                .map(super::BoardAction::view)
                .collect();
            json!({
                "issue": dto,
                "label_names": labels,
                "block_title": block,
                "actions": actions,
            })
        })
        .collect()
}

/// `GET /issues`.
pub(super) async fn page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let params = ListParams::from_pairs(&pairs);
    render(&mesa, &ui, &user, &params, None, StatusCode::OK).await
}

/// Renders the list or the board, with an optional bulk-form error.
async fn render(
    mesa: &Mesa,
    ui: &Ui,
    user: &SessionUser,
    params: &ListParams,
    bulk_error: Option<String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let resolved = resolve(mesa, params).await?;
    let choices = Choices::load(mesa).await?;
    let mut ctx_rows = Vec::new();
    let mut columns = Vec::new();
    let mut next_url = None;
    if params.board {
        for s in BOARD_COLUMNS {
            if !resolved.filter.statuses.is_empty() && !resolved.filter.statuses.contains(s) {
                continue;
            }
            let filter = IssueFilter {
                statuses: vec![*s],
                ..resolved.filter.clone()
            };
            let (items, next) = fetch(mesa, &resolved, &filter, COLUMN_SIZE, None).await?;
            let more = next.map(|_| {
                ListParams {
                    statuses: vec![s.as_str().to_owned()],
                    board: false,
                    ..params.clone()
                }
                .url(&[])
            });
            columns.push(json!({
                "status": s.as_str(),
                "label": status_label(*s),
                "cards": rows(&items, &choices),
                "more": more,
            }));
        }
    } else {
        let (items, next) = fetch(
            mesa,
            &resolved,
            &resolved.filter,
            PAGE_SIZE,
            params.cursor.clone(),
        )
        .await?;
        ctx_rows = rows(&items, &choices);
        next_url = next.map(|c| params.url(&[("cursor", &c)]));
    }
    let html = ui
        .page(
            mesa,
            user,
            "issues",
            "pages/issues.html",
            context! {
                params => view(&params.view()),
                choices => view(&choices.view()),
                rows => view(&ctx_rows),
                columns => view(&columns),
                next_url => next_url,
                problems => resolved.problems,
                notice => params.bulk.clone(),
                bulk_error => bulk_error,
                list_url => ListParams { board: false, ..params.clone() }.url(&[]),
                board_url => ListParams { board: true, cursor: None, ..params.clone() }.url(&[]),
                back => params.url(&[]),
                region_url => match &params.cursor {
                    Some(c) if !params.board => params.url(&[("cursor", c)]),
                    _ => params.url(&[]),
                },
            },
        )
        .await?;
    Ok((status, html).into_response())
}

/// A parsed bulk action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BulkAction {
    Status(IssueStatus),
    Priority(Priority),
    Assign(String),
    Block(WorkBlockId),
    Cancel,
}

impl BulkAction {
    fn parse(text: &str) -> Option<Self> {
        let (kind, arg) = text.split_once(':').unwrap_or((text, ""));
        match kind {
            "status" => IssueStatus::parse(arg).ok().map(BulkAction::Status),
            "priority" => arg
                .parse::<i64>()
                .ok()
                .and_then(|n| Priority::new(n).ok())
                .map(BulkAction::Priority),
            "assign" if !arg.is_empty() => Some(BulkAction::Assign(arg.to_owned())),
            "block" => WorkBlockId::parse(arg).ok().map(BulkAction::Block),
            "cancel" => Some(BulkAction::Cancel),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            BulkAction::Status(s) => format!("Set status to {}", status_label(*s)),
            BulkAction::Priority(p) => format!(
                "Set priority to {}",
                super::PRIORITIES[usize::from(p.get()).min(4)]
            ),
            BulkAction::Assign(a) => format!("Assign to @{a}"),
            BulkAction::Block(_) => "Add to work block".to_owned(),
            BulkAction::Cancel => "Cancel".to_owned(),
        }
    }
}

/// `POST /issues/bulk`: `keys` (repeated), `action`, optional `reason`, `back`.
pub(super) async fn bulk(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let back = super::back_to(Some(&get("back")), "/issues");
    let back_params = ListParams::from_pairs(
        &form_urlencoded::parse(back.split_once('?').map_or("", |(_, q)| q).as_bytes())
            .into_owned()
            .filter(|(k, _)| FILTER_KEYS.contains(&k.as_str()))
            .collect::<Vec<_>>(),
    );
    let (keys, action) = match selection(&pairs, &get("action")) {
        Ok(found) => found,
        Err(message) => {
            return render(
                &mesa,
                &ui,
                &user,
                &back_params,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let reason = get("reason");
    let actor = &user.principal.actor;
    let mut changed = 0usize;
    let mut failed = Vec::new();
    for key in &keys {
        let result = apply(&mesa, actor, key, &action, &reason).await;
        match result {
            Ok(()) => changed += 1,
            Err(e) if super::is_user_error(&e) => failed.push(format!("{key}: {e}")),
            Err(e) => return Err(e.into()),
        }
    }
    let mut summary = format!(
        "{}: {changed} of {} updated.",
        action.describe(),
        keys.len()
    );
    if !failed.is_empty() {
        summary.push_str(" Not changed: ");
        summary.push_str(&failed.join("; "));
    }
    let target = ListParams {
        cursor: None,
        bulk: None,
        ..back_params
    }
    .url(&[("bulk", &summary)]);
    Ok(Redirect::to(&target).into_response())
}

/// The selected keys and the action of a bulk form, or what is wrong with it.
fn selection(
    pairs: &[(String, String)],
    action: &str,
) -> Result<(Vec<IssueKey>, BulkAction), String> {
    let action = BulkAction::parse(action).ok_or("Choose an action for the selected issues.")?;
    let mut keys = Vec::new();
    for (k, v) in pairs {
        if k == "keys" {
            let key =
                IssueKey::parse(v.trim()).map_err(|_| format!("{v:?} is not an issue key."))?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    if keys.is_empty() {
        return Err("Select at least one issue (by its checkbox).".to_owned());
    }
    if keys.len() > MAX_BULK {
        return Err(format!("Select at most {MAX_BULK} issues at once."));
    }
    Ok((keys, action))
}

/// One bulk action on one issue, through mesa-core as the board.
async fn apply(
    mesa: &Mesa,
    actor: &mesa_core::domain::Actor,
    key: &IssueKey,
    action: &BulkAction,
    reason: &str,
) -> Result<(), mesa_core::CoreError> {
    let reason = (!reason.is_empty()).then(|| reason.to_owned());
    let patch = match action {
        BulkAction::Block(id) => {
            mesa.add_issue_to_block(actor, *id, key).await?;
            return Ok(());
        }
        BulkAction::Status(s) => IssuePatch {
            status: Some(s.as_str().to_owned()),
            // Blocking and the review decisions that need one get the reason (or a note).
            comment: Some(
                reason.unwrap_or_else(|| "Status set by the board (bulk action).".to_owned()),
            ),
            ..IssuePatch::default()
        },
        BulkAction::Priority(p) => IssuePatch {
            priority: Some(*p),
            ..IssuePatch::default()
        },
        BulkAction::Assign(slug) => IssuePatch {
            assignee: Some(Some(slug.clone())),
            ..IssuePatch::default()
        },
        BulkAction::Cancel => IssuePatch {
            status: Some("cancel".to_owned()),
            cancellation_reason: Some(
                reason.unwrap_or_else(|| "Cancelled by the board (bulk action).".to_owned()),
            ),
            ..IssuePatch::default()
        },
    };
    mesa.update_issue(actor, key, patch).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_repeated_and_comma_separated_statuses() {
        let pairs: Vec<(String, String)> = [
            ("status", "todo,blocked"),
            ("status", "done"),
            ("q", " login "),
            ("view", "board"),
            ("junk", "x"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let p = ListParams::from_pairs(&pairs);
        assert_eq!(p.statuses, vec!["todo", "blocked", "done"]);
        assert_eq!(p.q, "login");
        assert!(p.board);
        assert_eq!(
            p.url(&[("cursor", "a b")]),
            "/issues?status=todo&status=blocked&status=done&q=login&view=board&cursor=a+b"
        );
    }

    #[test]
    fn bulk_actions_parse_or_refuse() {
        assert_eq!(
            BulkAction::parse("status:done"),
            Some(BulkAction::Status(IssueStatus::Done))
        );
        assert_eq!(
            BulkAction::parse("assign:ceo"),
            Some(BulkAction::Assign("ceo".to_owned()))
        );
        assert_eq!(BulkAction::parse("cancel"), Some(BulkAction::Cancel));
        assert_eq!(BulkAction::parse("priority:9"), None);
        assert_eq!(BulkAction::parse("status:nope"), None);
        assert_eq!(BulkAction::parse(""), None);
    }
}
