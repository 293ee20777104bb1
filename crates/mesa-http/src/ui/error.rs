//! [`UiError`]: a dashboard failure as an HTML page (or, for HTMX requests, the same markup,
//! which the client script shows as a toast). Server faults are logged and shown generically.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::{CoreError, ErrorKind};

use super::assets;

/// A failed dashboard request: its status and a message safe to show.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    /// A new error.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            message: message.into(),
        }
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 403.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A template that failed to render (a bug): logged, shown as a 500.
    pub(crate) fn render(err: &minijinja::Error) -> Self {
        tracing::error!(error = %format!("{err:#}"), "template render failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this page failed to render",
        )
    }
}

impl From<CoreError> for UiError {
    fn from(err: CoreError) -> Self {
        let message = err.to_string();
        let status = match err.kind() {
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict | ErrorKind::BudgetExceeded => StatusCode::CONFLICT,
            ErrorKind::StaleVersion => StatusCode::PRECONDITION_FAILED,
            ErrorKind::Unavailable => {
                tracing::error!(error = ?err, "storage unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; try again",
                );
            }
            ErrorKind::Internal => {
                tracing::error!(error = ?err, "internal error");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        Self::new(status, message)
    }
}

impl From<crate::api::error::ApiError> for UiError {
    fn from(err: crate::api::error::ApiError) -> Self {
        Self::new(err.status(), err.message())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        // Rendered without the template engine, so an error page never fails itself.
        let css = assets::url("app.css").unwrap_or_default();
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · Mesa</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
             <body class=\"error-page\"><main id=\"main\" class=\"error-card\" role=\"alert\">\
             <h1>{status} {title}</h1><p class=\"error-message\">{message}</p>\
             <p><a href=\"/\">Back to the dashboard</a></p></main></body></html>",
            status = self.status.as_u16(),
            message = escape(&self.message),
        );
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}
