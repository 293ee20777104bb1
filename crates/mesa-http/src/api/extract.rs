//! Request extractors that answer in the API's error format: strict JSON bodies, bearer auth,
//! `If-Match`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use mesa_core::domain::Version;
use mesa_core::{Mesa, Principal};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Syntax errors are 400 `malformed_json`; unknown fields, wrong types and missing
/// fields are 422 `validation_failed` naming the field; bodies over 1 MiB are 413.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// A JSON body that may be left out: an empty (or all-whitespace) body is `T::default()`;
/// anything else is read exactly as [`Json`] reads it.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 1 MiB",
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(OptionalJson(value))
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            let text =
                std::error::Error::source(e).map_or_else(|| e.body_text(), ToString::to_string);
            let (field, message) = describe_data_error(&text);
            ApiError::invalid(&field, message)
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 1 MiB",
            )
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", other.body_text()),
    }
}

/// Turns serde's message into `(field, message)`. serde_path_to_error is not used; serde's
/// messages name unknown and missing fields, and the path prefix names the others.
fn describe_data_error(text: &str) -> (String, String) {
    // axum formats data errors as "<path>: <serde message> at line L column C".
    let (path, rest) = match text.split_once(": ") {
        Some((p, r)) if !p.contains(' ') => (p.to_owned(), r.to_owned()),
        _ => (String::new(), text.to_owned()),
    };
    let message = rest.split(" at line ").next().unwrap_or(&rest).to_owned();
    let quoted = |m: &str| m.split('`').nth(1).map(str::to_owned);
    let field = if message.starts_with("unknown field") || message.starts_with("missing field") {
        let name = quoted(&message).unwrap_or_default();
        if path.is_empty() || path == "." {
            name
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            format!("{path}.{name}")
        }
    } else if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path
    };
    (field.clone(), format!("{field}: {message}"))
}

/// The authenticated caller (`Authorization: Bearer <token>`).
pub struct Auth(pub Principal);

impl<S> FromRequestParts<S> for Auth
where
    Mesa: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Auth(p.clone()));
        }
        let mesa = Mesa::from_ref(state);
        let header = parts.headers.get(axum::http::header::AUTHORIZATION);
        let token = match header {
            None => None,
            Some(v) => {
                let v = v.to_str().map_err(|_| mesa_core::AuthFailure::Invalid)?;
                let (scheme, token) = v.split_once(' ').ok_or(mesa_core::AuthFailure::Invalid)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(mesa_core::AuthFailure::Invalid.into());
                }
                Some(token)
            }
        };
        let principal = mesa.authenticate(token).await?;
        parts.extensions.insert(principal.clone());
        Ok(Auth(principal))
    }
}

/// The version from `If-Match` (`"7"` or `7`), if given.
pub struct IfMatch(pub Option<Version>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = v
            .to_str()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"');
        text.parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| IfMatch(Some(Version(n))))
            .ok_or_else(|| {
                ApiError::invalid("If-Match", "If-Match must be a version such as \"7\"")
            })
    }
}

/// Query parameters; unknown or malformed ones are 422 naming the parameter.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => {
                let text = e.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let quoted = text.split('`').nth(1).unwrap_or("query").to_owned();
                Err(ApiError::invalid(&quoted, format!("query: {text}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_name_the_field() {
        let (f, _) = describe_data_error(
            "unknown field `titel`, expected one of `title` at line 1 column 9",
        );
        assert_eq!(f, "titel");
        let (f, _) = describe_data_error(
            "priority: invalid type: string \"x\", expected i64 at line 1 column 15",
        );
        assert_eq!(f, "priority");
        let (f, _) = describe_data_error("missing field `title` at line 1 column 2");
        assert_eq!(f, "title");
        let (f, _) = describe_data_error("stages[0]: unknown field `x` at line 1 column 30");
        assert_eq!(f, "stages[0].x");
    }
}
