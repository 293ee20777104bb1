//! Dashboard pages: issues (SPEC §10 "Issues" and "Issue detail", §2 lifecycle).
//!
//! - [`list`]: `GET /issues` (list and `?view=board`), `POST /issues/bulk`.
//! - [`create`]: `GET /issues/new`, `POST /issues` (also the command palette's target).
//! - [`detail`]: `GET /issues/{key}`, edit in place, comments and the board's §2 actions.
//! - [`pull_request`]: `GET /issues/{key}/pull-request`, the GitHub panel (SPEC §11.4).

use std::collections::HashMap;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mesa_core::domain::{IssueStatus, IssueType};
use mesa_core::workflow::issue::{CommandKind, Party, TABLE};
use mesa_core::{CoreError, ErrorKind, Mesa};
use serde_json::{Value as Json, json};

use crate::AppState;
use crate::ui::error::UiError;

mod create;
mod detail;
mod list;
mod pull_request;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/issues", get(list::page).post(create::submit))
        .route("/issues/new", get(create::form))
        .route("/issues/bulk", post(list::bulk))
        .route("/issues/{key}", get(detail::page).post(detail::save))
        .route("/issues/{key}/edit", get(detail::edit))
        .route("/issues/{key}/comments", post(detail::comment))
        .route("/issues/{key}/action", post(detail::action))
        .route(
            "/issues/{key}/pull-request",
            get(pull_request::fragment).layer(axum::Extension(std::sync::Arc::new(
                crate::integrations::github::GithubClient::default(),
            ))),
        )
}

/// Statuses that have a board column, in workflow order.
pub(crate) const BOARD_COLUMNS: &[IssueStatus] = &[
    IssueStatus::Todo,
    IssueStatus::InProgress,
    IssueStatus::Blocked,
    IssueStatus::InReview,
    IssueStatus::BoardReview,
    IssueStatus::Done,
];

/// Human names of the priorities, index = priority.
const PRIORITIES: &[&str] = &["No priority", "Urgent", "High", "Medium", "Low"];

/// A board action on an issue: a §2 command the board may give from the issue's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoardAction {
    /// The command.
    pub(crate) command: CommandKind,
    /// Where it leads (the first row's target; `submit`-like forks do not apply to the board).
    pub(crate) to: IssueStatus,
}

impl BoardAction {
    /// True when the table requires a comment (the reason) for this command.
    pub(crate) fn needs_comment(&self) -> bool {
        matches!(
            self.command,
            CommandKind::Block
                | CommandKind::RequestChanges
                | CommandKind::Reject
                | CommandKind::Cancel
        )
    }

    /// The button text.
    pub(crate) fn label(&self) -> &'static str {
        match self.command {
            CommandKind::Start => "Start",
            CommandKind::Block => "Block",
            CommandKind::Unblock => "Unblock",
            CommandKind::Requeue => "Back to todo",
            CommandKind::Release => "Release",
            CommandKind::Approve => "Approve",
            CommandKind::RequestChanges => "Request changes",
            CommandKind::Escalate => "Escalate to board review",
            CommandKind::Reject => "Reject (won't do)",
            CommandKind::Cancel => "Cancel",
            CommandKind::Reopen => "Reopen",
            CommandKind::Create | CommandKind::Checkout | CommandKind::Submit => "",
        }
    }

    /// As a template value.
    pub(crate) fn view(&self) -> Json {
        json!({
            "command": self.command.as_str(),
            "to": self.to.as_str(),
            "label": self.label(),
            "needs_comment": self.needs_comment(),
            "danger": matches!(self.command, CommandKind::Cancel | CommandKind::Reject),
        })
    }
}

/// The §2 commands the board may give to an issue in `status`, in table order, one per
/// command (checkout and submit are the assignee's, never the board's).
pub(crate) fn board_actions(status: IssueStatus) -> Vec<BoardAction> {
    let mut out: Vec<BoardAction> = Vec::new();
    for row in TABLE {
        if row.from == Some(status)
            && row.who.contains(&Party::Board)
            && !matches!(row.command, CommandKind::Checkout | CommandKind::Submit)
            && !out.iter().any(|a| a.command == row.command)
        {
            out.push(BoardAction {
                command: row.command,
                to: row.to,
            });
        }
    }
    out
}

/// `[value, label]` pairs of every status.
fn status_options() -> Vec<[&'static str; 2]> {
    IssueStatus::ALL
        .iter()
        .map(|s| [s.as_str(), status_label(*s)])
        .collect()
}

/// A status as people read it.
pub(crate) fn status_label(s: IssueStatus) -> &'static str {
    match s {
        IssueStatus::Todo => "Todo",
        IssueStatus::InProgress => "In progress",
        IssueStatus::Blocked => "Blocked",
        IssueStatus::InReview => "In review",
        IssueStatus::BoardReview => "Board review",
        IssueStatus::Done => "Done",
        IssueStatus::WontDo => "Won't do",
        IssueStatus::Cancelled => "Cancelled",
    }
}

/// The choices the issue forms and filters offer: types, priorities, agents, labels, work
/// blocks, as `[value, label]` pairs, plus lookups from ids to names.
pub(crate) struct Choices {
    /// Issue types.
    pub(crate) types: Vec<[String; 2]>,
    /// Priorities 0..4.
    pub(crate) priorities: Vec<[String; 2]>,
    /// Agents by slug.
    pub(crate) agents: Vec<[String; 2]>,
    /// Labels by id.
    pub(crate) labels: Vec<[String; 2]>,
    /// Work blocks by id (open ones: proposed, active, ready).
    pub(crate) blocks: Vec<[String; 2]>,
    /// Agent id → slug.
    pub(crate) agent_slugs: HashMap<String, String>,
    /// Label id → name.
    pub(crate) label_names: HashMap<String, String>,
    /// Work block id → title (every block).
    pub(crate) block_titles: HashMap<String, String>,
}

impl Choices {
    /// Loads the choices (agents come from the roster cache; labels and blocks are small).
    pub(crate) async fn load(mesa: &Mesa) -> Result<Self, UiError> {
        let agents = mesa.agents().await?;
        let labels = mesa.labels().await?;
        let blocks = mesa.work_blocks(None).await?;
        Ok(Choices {
            types: IssueType::ALL
                .iter()
                .map(|t| [t.as_str().to_owned(), capitalize(t.as_str())])
                .collect(),
            priorities: PRIORITIES
                .iter()
                .enumerate()
                .map(|(i, name)| [i.to_string(), (*name).to_owned()])
                .collect(),
            agents: agents
                .iter()
                .map(|a| {
                    [
                        a.slug.to_string(),
                        format!("{} (@{})", a.config.name, a.slug),
                    ]
                })
                .collect(),
            labels: labels
                .iter()
                .map(|l| [l.id.to_string(), l.name.to_string()])
                .collect(),
            blocks: blocks
                .iter()
                .filter(|b| !b.status.is_terminal())
                .map(|b| [b.id.to_string(), b.title.to_string()])
                .collect(),
            agent_slugs: agents
                .iter()
                .map(|a| (a.id.to_string(), a.slug.to_string()))
                .collect(),
            label_names: labels
                .iter()
                .map(|l| (l.id.to_string(), l.name.to_string()))
                .collect(),
            block_titles: blocks
                .iter()
                .map(|b| (b.id.to_string(), b.title.to_string()))
                .collect(),
        })
    }

    /// As a template value.
    pub(crate) fn view(&self) -> Json {
        json!({
            "statuses": status_options(),
            "types": self.types,
            "priorities": self.priorities,
            "agents": self.agents,
            "labels": self.labels,
            "blocks": self.blocks,
            "agent_slugs": self.agent_slugs,
            "label_names": self.label_names,
            "block_titles": self.block_titles,
        })
    }
}

fn capitalize(s: &str) -> String {
    if s == "api" {
        return "API".to_owned();
    }
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// The HTTP status a refused core call answers with on a re-rendered form.
pub(crate) fn status_of(err: &CoreError) -> StatusCode {
    match err.kind() {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::BudgetExceeded | ErrorKind::StaleVersion => {
            StatusCode::CONFLICT
        }
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// True when a refused core call is something the person can fix (shown next to the form),
/// false for server faults (shown as an error page).
pub(crate) fn is_user_error(err: &CoreError) -> bool {
    !matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Internal)
}

/// A same-site path to go back to after a form: only `/issues…` paths, never another
/// origin; anything else falls back to `fallback`.
pub(crate) fn back_to(back: Option<&str>, fallback: &str) -> String {
    match back {
        Some(b)
            if b.starts_with("/issues")
                && !b.contains("//")
                && !b.contains('\\')
                && !b.chars().any(char::is_control) =>
        {
            b.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_gets_the_review_decisions_in_board_review() {
        let commands: Vec<_> = board_actions(IssueStatus::BoardReview)
            .iter()
            .map(|a| a.command)
            .collect();
        assert_eq!(
            commands,
            vec![
                CommandKind::Approve,
                CommandKind::RequestChanges,
                CommandKind::Reject,
                CommandKind::Cancel
            ]
        );
    }

    #[test]
    fn the_board_never_submits_or_checks_out() {
        for s in IssueStatus::ALL {
            assert!(
                board_actions(*s)
                    .iter()
                    .all(|a| !matches!(a.command, CommandKind::Submit | CommandKind::Checkout))
            );
        }
        let done: Vec<_> = board_actions(IssueStatus::Done)
            .iter()
            .map(|a| a.command)
            .collect();
        assert_eq!(done, vec![CommandKind::Reopen]);
    }

    #[test]
    fn back_links_stay_on_the_issues_pages() {
        assert_eq!(
            back_to(Some("/issues?view=board"), "/x"),
            "/issues?view=board"
        );
        assert_eq!(back_to(Some("//evil.test/issues"), "/x"), "/x");
        assert_eq!(back_to(Some("https://evil.test"), "/x"), "/x");
        assert_eq!(back_to(Some("/issues//evil"), "/x"), "/x");
        assert_eq!(back_to(None, "/x"), "/x");
    }
}
