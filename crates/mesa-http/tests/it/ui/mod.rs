//! The dashboard over the real router: sessions, CSRF and `Origin` guards, pages, fragments,
//! static files. [`Browser`] plays a signed-in browser: it keeps the session cookie and sends
//! the CSRF token and a same-site `Origin` with every form, as a real page would.

mod agents;
mod auth;
mod blocks;
mod crawl;
mod github;
mod governance;
mod issues;
mod knowledge;
mod observability;
mod outgoing;
mod pages;
mod runs;
mod settings;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::TestApp;

/// The origin the test router is "served" at.
pub(crate) const ORIGIN: &str = "http://mesa.test";

/// A response as a browser sees it.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    /// The `Location` header (redirects).
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A signed-in browser.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// Sends `req` through the router.
pub(crate) async fn fetch(app: &TestApp, req: Request<Body>) -> Page {
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The `<main>` element of a page, for snapshots of what a page shows (the layout around it
/// is the same on every page).
pub(crate) fn main_of(html: &str) -> String {
    let start = html.find("<main id=\"main\"").expect("a main element");
    let end = html[start..].find("</main>").expect("main is closed") + start + "</main>".len();
    html[start..end].to_owned()
}

/// Form-encodes pairs.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The CSRF token a rendered page carries (its hidden `_csrf` inputs).
pub(crate) fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Signs in with the app's board token through the login form.
pub(crate) async fn login(app: &TestApp) -> Browser<'_> {
    let page = fetch(
        app,
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", ORIGIN)
            .header("host", "mesa.test")
            .body(Body::from(form(&[("token", &app.board), ("next", "/")])))
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let set = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let mut browser = Browser {
        app,
        cookie,
        csrf: String::new(),
    };
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    browser.csrf = csrf_of(&home.body).expect("pages carry the CSRF token");
    browser
}

impl Browser<'_> {
    /// `GET path` with the session.
    pub(crate) async fn get(&self, path: &str) -> Page {
        fetch(
            self.app,
            Request::get(path)
                .header("cookie", &self.cookie)
                .header("host", "mesa.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// `GET path` as htmx sends it (a fragment request).
    pub(crate) async fn get_htmx(&self, path: &str) -> Page {
        fetch(
            self.app,
            Request::get(path)
                .header("cookie", &self.cookie)
                .header("host", "mesa.test")
                .header("hx-request", "true")
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A form post as the page sends it: the session, its CSRF token, a same-site `Origin`.
    pub(crate) async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Page {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post_raw(path, &form(&all), Some(ORIGIN)).await
    }

    /// A form post with exactly this body and `Origin` (for the guard's tests).
    pub(crate) async fn post_raw(&self, path: &str, body: &str, origin: Option<&str>) -> Page {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("cookie", &self.cookie)
            .header("host", "mesa.test")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        fetch(self.app, req.body(Body::from(body.to_owned())).unwrap()).await
    }
}
