//! Signing in and out (SPEC §14): the login page takes a board token and opens a server-side
//! session; the one-time link printed at first start opens one without typing a token; logout
//! ends the session on the server and clears the cookie.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use mesa_core::{Mesa, OpenedSession, SESSION_IDLE_MS};
use minijinja::context;
use serde::Deserialize;

use super::Ui;
use super::error::UiError;
use super::session::{COOKIE, cookie};
use crate::{AppState, HttpConfig};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/link", get(link_page).post(link_login))
        .route("/logout", post(logout))
}

/// A local path to return to after signing in; anything else (another host, `//x`, `/\x`)
/// becomes the dashboard.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn session_cookie(config: &HttpConfig, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn signed_in(config: &HttpConfig, opened: &OpenedSession, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(config, &opened.raw, SESSION_IDLE_MS / 1000),
    );
    response
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = safe_next(q.next.as_deref());
    if let Some(raw) = cookie(&headers)
        && mesa.session_user(raw).await.is_some()
    {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(ui
        .render(
            "pages/login.html",
            &context! { next => next, version => env!("CARGO_PKG_VERSION") },
        )?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn login(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    State(config): State<Arc<HttpConfig>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let next = safe_next(form.next.as_deref());
    match mesa.open_session(form.token.trim()).await {
        Ok(opened) => Ok(signed_in(&config, &opened, &next)),
        Err(_) => {
            let page = ui.render(
                "pages/login.html",
                &context! {
                    next => next,
                    version => env!("CARGO_PKG_VERSION"),
                    error => "That is not a live board token.",
                },
            )?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    #[serde(default)]
    code: String,
}

/// The one-time link shows a button; only its POST uses the code, so a link previewer that
/// fetches the URL does not spend it.
async fn link_page(
    State(ui): State<Arc<Ui>>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, UiError> {
    Ok(ui
        .render(
            "pages/login_link.html",
            &context! { code => q.code, version => env!("CARGO_PKG_VERSION") },
        )?
        .into_response())
}

async fn link_login(
    State(mesa): State<Mesa>,
    State(ui): State<Arc<Ui>>,
    State(config): State<Arc<HttpConfig>>,
    Form(form): Form<LinkQuery>,
) -> Result<Response, UiError> {
    match mesa.open_session_with_link(form.code.trim()).await {
        Ok(opened) => Ok(signed_in(&config, &opened, "/")),
        Err(_) => {
            let page = ui.render(
                "pages/login.html",
                &context! {
                    next => "/",
                    version => env!("CARGO_PKG_VERSION"),
                    error => "That login link was already used or has expired. Sign in with a board token.",
                },
            )?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

async fn logout(
    State(mesa): State<Mesa>,
    State(config): State<Arc<HttpConfig>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    if let Some(raw) = cookie(&headers) {
        mesa.close_session(raw).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&config, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/issues?status=todo")),
            "/issues?status=todo"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
