//! The harness: a bootstrapped Mesa on a temporary SQLite file, its router, a board token, and
//! a request helper that returns status, headers and JSON.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use mesa_core::domain::{Actor, Name, WorkingDir};
use mesa_core::{CoreConfig, Mesa};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) struct TestApp {
    pub(crate) mesa: Mesa,
    pub(crate) router: axum::Router,
    pub(crate) board: String,
    _dir: tempfile::TempDir,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
}

impl TestApp {
    /// A `startup` org with a board token.
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = CoreConfig::new(
            dir.path(),
            WorkingDir::parse(&dir.path().to_string_lossy()).unwrap(),
        );
        let mesa = Mesa::builder()
            .sqlite(dir.path().join("mesa.db"))
            .config(config)
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty().await.unwrap();
        let board = mesa
            .create_board_token(&Actor::board("setup"), Name::parse("test").unwrap(), None)
            .await
            .unwrap()
            .raw;
        let router = mesa_http::router(mesa_http::AppState::new(mesa.clone()));
        TestApp {
            mesa,
            router,
            board,
            _dir: dir,
        }
    }

    /// A `startup` org with a board token whose time is `clock` (tests that need time to pass).
    pub(crate) async fn with_clock(clock: mesa_core::FakeClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = CoreConfig::new(
            dir.path(),
            WorkingDir::parse(&dir.path().to_string_lossy()).unwrap(),
        );
        let mesa = Mesa::builder()
            .sqlite(dir.path().join("mesa.db"))
            .config(config)
            .clock(std::sync::Arc::new(clock))
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty().await.unwrap();
        let board = mesa
            .create_board_token(&Actor::board("setup"), Name::parse("test").unwrap(), None)
            .await
            .unwrap()
            .raw;
        let router = mesa_http::router(mesa_http::AppState::new(mesa.clone()));
        TestApp {
            mesa,
            router,
            board,
            _dir: dir,
        }
    }

    /// An agent key for `slug`.
    pub(crate) async fn agent_key(&self, slug: &str) -> String {
        self.mesa
            .create_agent_key(&Actor::board("setup"), slug, None, None)
            .await
            .unwrap()
            .raw
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// Sends a prepared request.
    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    /// Rows in the audit log.
    pub(crate) async fn activity_rows(&self) -> u64 {
        self.mesa.verify_activity().await.unwrap().checked
    }
}
