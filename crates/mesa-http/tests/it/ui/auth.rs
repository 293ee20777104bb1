//! Sign-in, sign-out, the session cookie, and the CSRF and `Origin` guards (SPEC §14).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mesa_core::domain::Actor;

use super::{ORIGIN, fetch, form, login};
use crate::support::TestApp;

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_the_login_page() {
    let app = TestApp::new().await;
    let page = fetch(
        &app,
        Request::get("/palette?q=todo").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?next=%2Fpalette%3Fq%3Dtodo");
    let htmx = fetch(
        &app,
        Request::get("/")
            .header("hx-request", "true")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(htmx.status, StatusCode::UNAUTHORIZED);
    assert_eq!(htmx.headers.get("hx-redirect").unwrap(), "/login");
    let login_page = fetch(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(login_page.status, StatusCode::OK);
    assert!(
        login_page.body.contains("name=\"token\""),
        "{}",
        login_page.body
    );
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_a_wrong_token_is_refused() {
    let app = TestApp::new().await;
    let ok = fetch(
        &app,
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", ORIGIN)
            .header("host", "mesa.test")
            .body(Body::from(form(&[
                ("token", &app.board),
                ("next", "/runs"),
            ])))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/runs");
    let cookie = ok.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("mesa_session=mesa_ses_"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let agent_key = app.agent_key("ceo").await;
    for token in ["mesa_brd_nope", agent_key.as_str(), ""] {
        let bad = fetch(
            &app,
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form(&[("token", token)])))
                .unwrap(),
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(bad.headers.get("set-cookie").is_none());
        assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    }
}

#[tokio::test]
async fn a_login_redirect_never_leaves_the_site() {
    let app = TestApp::new().await;
    let page = fetch(
        &app,
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form(&[
                ("token", &app.board),
                ("next", "//evil.example/x"),
            ])))
            .unwrap(),
    )
    .await;
    assert_eq!(page.location(), "/");
}

#[tokio::test]
async fn posts_without_the_csrf_token_or_from_a_foreign_origin_are_refused_and_change_nothing() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let before = app.activity_rows().await;
    // No token: logout is refused, the session still works.
    let no_token = browser.post_raw("/logout", "", Some(ORIGIN)).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    // A wrong token.
    let wrong = browser
        .post_raw("/logout", "_csrf=0000", Some(ORIGIN))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // The right token from another site.
    let body = form(&[("_csrf", &browser.csrf)]);
    let foreign = browser
        .post_raw("/logout", &body, Some("https://evil.example"))
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(
        browser.get("/").await.status,
        StatusCode::OK,
        "still signed in"
    );
    assert_eq!(app.activity_rows().await, before);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    let cleared = out.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer opens pages, even if a browser kept it.
    let after = browser.get("/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn revoking_the_board_token_ends_its_sessions() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let keys = app.mesa.keys(None).await.unwrap();
    let key = keys.iter().find(|k| k.name == "test").unwrap();
    app.mesa
        .revoke_key(&Actor::board("setup"), key.id)
        .await
        .unwrap();
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_one_time_login_link_works_once() {
    let app = TestApp::new().await;
    // An instance with a board token has had its first start: no link.
    assert_eq!(app.mesa.first_start_login_code().await.unwrap(), None);
    let key = app.mesa.keys(None).await.unwrap()[0].id;
    let code = app.mesa.login_code(key).await.unwrap();
    let shown = fetch(
        &app,
        Request::get(format!("/login/link?code={code}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains(&code), "the page posts the code");
    let post = || {
        Request::post("/login/link")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form(&[("code", &code)])))
            .unwrap()
    };
    let first = fetch(&app, post()).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(first.headers.get("set-cookie").is_some());
    let second = fetch(&app, post()).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn static_files_are_versioned_and_immutable_and_unknown_pages_are_404() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let home = browser.get("/").await;
    let at = home.body.find("/static/").unwrap();
    let url: String = home.body[at..].chars().take_while(|c| *c != '"').collect();
    let asset = fetch(&app, Request::get(&url).body(Body::empty()).unwrap()).await;
    assert_eq!(asset.status, StatusCode::OK, "{url}");
    assert!(
        asset
            .headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<html"), "{}", missing.body);
    let api_missing = fetch(
        &app,
        Request::get("/api/v1/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(api_missing.status, StatusCode::NOT_FOUND);
    assert!(
        api_missing.body.contains("\"not_found\""),
        "{}",
        api_missing.body
    );
}

#[tokio::test]
async fn pages_forbid_inline_scripts_and_framing() {
    let app = TestApp::new().await;
    let browser = login(&app).await;
    let home = browser.get("/").await;
    let csp = home
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!home.body.contains("<script>"), "no inline script");
    assert!(!home.body.contains(" onclick="), "no inline handlers");
}
