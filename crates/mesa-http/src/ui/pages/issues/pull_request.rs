//! `GET /issues/{key}/pull-request`: the "Pull request" panel of the issue page (SPEC §11.4),
//! a fragment the page loads with htmx after it is shown (`hx-trigger="load"`), so the page's
//! own server time never includes GitHub. The branch is the issue's (`mesa/<KEY>` until a run
//! sets one). A GitHub failure is a quiet note in the panel, never an error page.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use mesa_core::Mesa;
use mesa_core::domain::IssueKey;
use minijinja::context;

use crate::integrations::github::{GithubClient, GithubConfig, Lookup};
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// The panel's fragment.
pub(super) async fn fragment(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Extension(github): Extension<Arc<GithubClient>>,
    Board(_user): Board,
    Path(key): Path<String>,
) -> Result<Response, UiError> {
    let key = IssueKey::parse(&key.to_ascii_uppercase())
        .map_err(|_| UiError::not_found(format!("there is no issue {key}")))?;
    let issue = mesa.issue(&key).await?.issue;
    let branch = issue
        .branch
        .clone()
        .unwrap_or_else(|| format!("mesa/{}", issue.key));
    let lookup = match GithubConfig::from_settings(&mesa).await {
        Some(cfg) => Some((github.pull_request(&cfg, &branch).await, cfg.repo)),
        None => None,
    };
    let (lookup, repo) = match lookup {
        Some((l, repo)) => (Some(l), repo),
        None => (None, String::new()),
    };
    let html = ui.render(
        "partials/issue_pr.html",
        &context! {
            branch => branch,
            repo => repo,
            configured => lookup.is_some(),
            lookup => view(&lookup.unwrap_or(Lookup::None)),
        },
    )?;
    Ok(html.into_response())
}
