//! Dashboard pages: knowledge (SPEC §10 "Wiki" and "Activity"): the wiki with search,
//! revisions and line diffs, and the hash-chained audit log with its verification status.

use axum::Router;
use axum::http::StatusCode;
use mesa_core::{CoreError, ErrorKind};

use crate::AppState;

mod activity;
mod wiki;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(wiki::routes())
        .merge(activity::routes())
}

/// A refused core call shown next to a form: the field it names (or `form`) and its message,
/// or `None` for a server fault, which becomes an error page instead.
fn form_error(err: &CoreError) -> Option<(StatusCode, String, String)> {
    let status = match err.kind() {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::BudgetExceeded | ErrorKind::StaleVersion => {
            StatusCode::CONFLICT
        }
        ErrorKind::Unavailable | ErrorKind::Internal => return None,
    };
    let field = match err {
        CoreError::Invalid(v) => v.field.to_string(),
        CoreError::UnknownReference { field, .. } => (*field).to_owned(),
        _ => "form".to_owned(),
    };
    Some((status, field, err.to_string()))
}
