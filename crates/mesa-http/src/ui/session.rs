//! Who is signed in, and the guard on every state-changing dashboard request (SPEC §14):
//! the session cookie names a server-side session; a POST (form or HTMX) must carry the
//! session's CSRF token (`_csrf` form field or `X-CSRF-Token` header) and must not come from
//! a foreign `Origin`. A refused request changes nothing: the guard runs before the handler.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use mesa_core::{Mesa, SessionUser};

use super::error::UiError;
use crate::AppState;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mesa_session";

/// The signed-in board member. A page without a session redirects to the login page (HTMX
/// requests get `HX-Redirect`, so the whole page moves, not a fragment).
#[derive(Debug, Clone)]
pub(crate) struct Board(pub(crate) SessionUser);

/// The session cookie's value, if the request has one.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Where to send someone who must sign in first.
fn to_login(parts_uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    let next = parts_uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let target = if next == "/" {
        "/login".to_owned()
    } else {
        format!(
            "/login?next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )
    };
    if headers.contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = target.parse() {
            response.headers_mut().insert("hx-redirect", v);
        }
        response
    } else {
        Redirect::to(&target).into_response()
    }
}

impl FromRequestParts<AppState> for Board {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(user) = parts.extensions.get::<SessionUser>() {
            return Ok(Board(user.clone()));
        }
        match lookup(&state.mesa, &parts.headers).await {
            Some(user) => {
                parts.extensions.insert(user.clone());
                Ok(Board(user))
            }
            None => Err(to_login(&parts.uri, &parts.headers)),
        }
    }
}

async fn lookup(mesa: &Mesa, headers: &HeaderMap) -> Option<SessionUser> {
    mesa.session_user(cookie(headers)?).await
}

/// The origins this server answers as: its `Host` (http and https) and the configured public URL.
fn origin_allowed(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
    else {
        // Browsers send Origin on every POST; a request without one is not cross-site
        // browser traffic, and still needs the session's CSRF token.
        return true;
    };
    let origin_of = |url: &str| -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split('/').next()?;
        Some(format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        ))
    };
    let Some(origin) = origin_of(origin) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(host) = host
        && (origin == format!("http://{host}") || origin == format!("https://{host}"))
    {
        return true;
    }
    public_url.and_then(origin_of).is_some_and(|p| p == origin)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Paths that take a POST without a session (signing in).
fn is_login(path: &str) -> bool {
    path == "/login" || path == "/login/link"
}

/// The guard: `Origin` on every state-changing request, then the session and its CSRF token
/// (except for signing in). Safe methods pass untouched.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if !origin_allowed(req.headers(), state.config.public_url.as_deref()) {
        return UiError::forbidden("this request came from another site").into_response();
    }
    if is_login(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(user) = lookup(&state.mesa, req.headers()).await else {
        return to_login(req.uri(), req.headers());
    };
    let (parts, body) = req.into_parts();
    let header_token = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (token, body) = match header_token {
        Some(token) => (Some(token), body),
        None => {
            let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
                return UiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form is larger than 1 MiB",
                )
                .into_response();
            };
            let token = form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "_csrf")
                .map(|(_, v)| v.into_owned());
            (token, Body::from(bytes))
        }
    };
    if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), user.csrf.as_bytes())) {
        return UiError::forbidden(
            "the form's security token is missing or stale; reload the page",
        )
        .into_response();
    }
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(user);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("valid header"));
        }
        h
    }

    #[test]
    fn same_host_and_public_url_origins_pass_others_fail() {
        let local = headers(&[
            ("host", "127.0.0.1:7777"),
            ("origin", "http://127.0.0.1:7777"),
        ]);
        assert!(origin_allowed(&local, None));
        let foreign = headers(&[
            ("host", "127.0.0.1:7777"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!origin_allowed(&foreign, None));
        let proxied = headers(&[
            ("host", "10.0.0.5:7777"),
            ("origin", "https://mesa.example.org"),
        ]);
        assert!(origin_allowed(&proxied, Some("https://mesa.example.org/")));
        assert!(!origin_allowed(&proxied, None));
        let null = headers(&[("host", "127.0.0.1:7777"), ("origin", "null")]);
        assert!(!origin_allowed(&null, None));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "theme=dark; mesa_session=mesa_ses_abc; x=1")]);
        assert_eq!(cookie(&h), Some("mesa_ses_abc"));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }
}
