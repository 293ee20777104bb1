//! [`ApiError`]: every failure of the JSON API as `{"error": {"code", "message", ...details}}`
//! with the status SPEC §9.2 gives it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesa_core::store::StoreError;
use mesa_core::workflow::WorkflowError;
use mesa_core::{AuthFailure, CoreError, ErrorKind};
use serde_json::{Map, Value, json};

/// An API error: status, stable snake_case code, human message, and details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Map<String, Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
        }
    }

    /// Adds a detail field to the body.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// A 422 on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with("field", field)
    }

    /// A 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// A 403.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", reason)
    }

    /// A 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(self.code));
        body.insert("message".into(), Value::from(self.message));
        body.extend(self.details);
        let mut response = (self.status, axum::Json(json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme to use, and why the token was refused.
            let challenge = match self.code {
                "invalid_token" => r#"Bearer realm="mesa", error="invalid_token""#,
                _ => r#"Bearer realm="mesa""#,
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        let code = match f {
            AuthFailure::Missing => "unauthenticated",
            AuthFailure::Invalid => "invalid_token",
        };
        Self::new(StatusCode::UNAUTHORIZED, code, f.to_string())
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        let kind = err.kind();
        let message = err.to_string();
        match kind {
            ErrorKind::Invalid => Self::invalid(err.field().unwrap_or("body"), message),
            ErrorKind::Forbidden => Self::forbidden(message),
            ErrorKind::NotFound => Self::not_found(message),
            ErrorKind::StaleVersion => {
                let mut e = Self::new(StatusCode::PRECONDITION_FAILED, "version_conflict", message);
                if let CoreError::Store(StoreError::StaleVersion { actual, .. }) = &err {
                    e = e.with("current_version", actual.0);
                }
                e
            }
            ErrorKind::BudgetExceeded => {
                Self::new(StatusCode::CONFLICT, "budget_exceeded", message)
            }
            ErrorKind::Conflict => conflict(&err, &message),
            ErrorKind::Unavailable => {
                tracing::error!(error = ?err, "storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; try again",
                )
            }
            ErrorKind::Internal => {
                tracing::error!(error = ?err, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

fn conflict(err: &CoreError, message: &str) -> ApiError {
    let e = |code| ApiError::new(StatusCode::CONFLICT, code, message);
    match err {
        CoreError::Store(StoreError::DuplicateTitle { existing_key }) => {
            e("duplicate").with("existing_key", existing_key.as_str())
        }
        CoreError::Store(StoreError::CheckoutConflict { status, .. }) => {
            e("checkout_conflict").with("status", status.as_str())
        }
        CoreError::Workflow(w) => {
            let mut out = e(w.code());
            match w {
                WorkflowError::IllegalTransition { from, allowed, .. }
                | WorkflowError::IllegalTarget { from, allowed, .. } => {
                    out = out.with("from", from.as_str()).with(
                        "allowed",
                        allowed.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    );
                    if let WorkflowError::IllegalTarget { to, .. } = w {
                        out = out.with("to", to.as_str());
                    }
                }
                WorkflowError::CheckoutConflict { status, .. } => {
                    out = out.with("status", status.as_str())
                }
                WorkflowError::OpenChildren { keys } => {
                    out = out.with(
                        "open_children",
                        keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                    );
                }
                WorkflowError::RequiresForce => out = out.with("requires_force", true),
                _ => {}
            }
            out
        }
        CoreError::Refused { code, .. } => e(code),
        _ => e("conflict"),
    }
}
