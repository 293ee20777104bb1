//! `GET /palette?q=`: the command palette's results (SPEC §10, Cmd/Ctrl+K), an HTML fragment:
//! pages whose name matches, issues (by key or text), agents, wiki pages, and an action to
//! create an issue titled with the query.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use mesa_core::Mesa;
use mesa_core::store::{IssueFilter, PageRequest};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::ui::error::UiError;
use crate::ui::session::Board;
use crate::ui::{Ui, view};

/// The pages the palette can jump to: (name, path, shortcut).
pub(crate) const PAGES: &[(&str, &str, &str)] = &[
    ("Dashboard", "/", "g d"),
    ("Issues", "/issues", "g i"),
    ("Runs", "/runs", "g r"),
    ("Work blocks", "/blocks", "g b"),
    ("Strategy", "/strategy", "g s"),
    ("Agents", "/agents", "g a"),
    ("Approvals", "/approvals", "g p"),
    ("Governance", "/governance", ""),
    ("Wiki", "/wiki", "g w"),
    ("Activity", "/activity", "g v"),
    ("Costs", "/costs", "g c"),
    ("Observability", "/observability", ""),
    ("Settings", "/settings", "g t"),
];

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/palette", get(results))
}

#[derive(Debug, Deserialize)]
struct PaletteQuery {
    #[serde(default)]
    q: String,
}

/// Subsequence match, case-insensitive ("gov" matches "Governance", "wb" "Work blocks").
fn fuzzy(needle: &str, hay: &str) -> bool {
    let mut hay = hay.chars().flat_map(char::to_lowercase);
    needle
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .all(|n| hay.any(|h| h == n))
}

async fn results(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    Board(user): Board,
    Query(q): Query<PaletteQuery>,
) -> Result<Html<String>, UiError> {
    let query = q.q.trim();
    let pages: Vec<_> = PAGES
        .iter()
        .filter(|(name, _, _)| query.is_empty() || fuzzy(query, name))
        .map(|(name, path, keys)| json!({ "name": name, "path": path, "keys": keys }))
        .collect();
    let (issues, agents, wiki) = if query.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let mut issues = Vec::new();
        if let Ok(key) = mesa_core::domain::IssueKey::parse(&query.to_ascii_uppercase())
            && let Ok(view) = mesa.issue(&key).await
        {
            let issue = &view.issue;
            issues.push(
                json!({ "key": issue.key.to_string(), "title": issue.title.to_string(),
                "status": issue.status.as_str() }),
            );
        }
        // Full-text search wants words; skip it for one or two characters.
        if query.chars().count() >= 3 {
            let found = mesa
                .issues(
                    &IssueFilter {
                        text: Some(query.to_owned()),
                        ..IssueFilter::default()
                    },
                    &PageRequest::new(Some(8), None),
                )
                .await?;
            issues.extend(found.items.iter().map(|v| {
                json!({ "key": v.issue.key.to_string(), "title": v.issue.title.to_string(),
                    "status": v.issue.status.as_str() })
            }));
        }
        issues.dedup_by(|a, b| a["key"] == b["key"]);
        let agents: Vec<_> = mesa
            .agents()
            .await?
            .iter()
            .filter(|a| fuzzy(query, a.slug.as_str()) || fuzzy(query, a.config.name.as_str()))
            .take(6)
            .map(|a| json!({ "slug": a.slug.to_string(), "name": a.config.name.to_string() }))
            .collect();
        let wiki: Vec<_> = if query.chars().count() >= 2 {
            mesa.search_wiki(query, 5)
                .await?
                .iter()
                .map(|(p, _)| json!({ "slug": p.slug.to_string(), "title": p.title.to_string() }))
                .collect()
        } else {
            Vec::new()
        };
        (issues, agents, wiki)
    };
    ui.render(
        "partials/palette.html",
        &context! {
            q => query,
            csrf => user.csrf.as_str(),
            pages => view(&pages),
            issues => view(&issues),
            agents => view(&agents),
            wiki => view(&wiki),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::fuzzy;

    #[test]
    fn fuzzy_matches_subsequences_only() {
        assert!(fuzzy("gov", "Governance"));
        assert!(fuzzy("wb", "Work blocks"));
        assert!(!fuzzy("zz", "Work blocks"));
        assert!(fuzzy("", "anything"));
    }
}
