//! Who may call what (SPEC §9.1), the per-token rate limit and `Idempotency-Key` (SPEC §9.2).
//!
//! [`RIGHTS`] is the one table of every API route and the coarse access level it needs. The
//! middleware `enforce` runs before every `/api/v1` handler:
//!
//! 1. it finds the route's entry (by axum's matched route template and the method);
//! 2. unless the route is [`Access::Public`] or [`Access::Signed`], it authenticates the
//!    bearer token once (401 `unauthenticated` / `invalid_token`) and stores the [`Principal`] in the request's
//!    extensions, where the [`Auth`] extractor finds it;
//! 3. it applies the rate limit of agent tokens (setting `rate_limit_per_minute`, default
//!    6,000, 0 = off; never the board): 429 `rate_limited` with `Retry-After`;
//! 4. it refuses callers the table does not admit (403 `forbidden`);
//! 5. for writes with an `Idempotency-Key`, it answers a retry with the first response.
//!
//! Finer rules (an agent may delete only its own wiki pages, resolve only approvals addressed to
//! it, ...) stay with the handlers and the core; the table says which routes have them
//! ([`Access::Own`], [`Access::CeoOrBoard`]) so tests can expect the handler's 403.
//!
//! The idempotency memory is in-process: it does not survive a restart and is not shared
//! between processes; entries live 24 hours at most and the oldest are dropped first when the
//! memory holds more than [`IDEMPOTENCY_MAX_ENTRIES`] responses or [`IDEMPOTENCY_MAX_BYTES`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::ApiKeyId;
use mesa_core::{Mesa, Principal};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::Auth;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// No bearer token: the handler authenticates the request by its HMAC signature (incoming
    /// webhooks, SPEC §11.3) and answers 401 `bad_signature` itself.
    Signed,
    /// The board and every agent (run and agent keys).
    AnyPrincipal,
    /// The board and agents, but agents only on their own things (their wiki pages, approvals
    /// addressed to them, issues assigned to them or awaiting their review). The middleware
    /// admits every principal; the handler answers 403 for another agent's things.
    Own,
    /// The board, and of the agents only the CEO (and, where the handler says so, the auditor).
    /// The middleware admits every principal; the handler answers 403 for other agents.
    CeoOrBoard,
    /// Board tokens only; agents get 403 before the handler runs.
    BoardOnly,
    /// Agents only (a board token has no agent); the board gets 403 before the handler runs.
    AgentOnly,
    /// The board, and agents only on their own things with no exception for the CEO (another
    /// agent's run log, SPEC §9.1). The middleware admits every principal; the handler answers
    /// 403 for every other agent.
    OwnStrict,
}

use Access::{AgentOnly, AnyPrincipal, BoardOnly, CeoOrBoard, Own, OwnStrict, Signed};

/// Every API route (method, template as in `/api/openapi.json`) and who may call it. A route
/// missing here fails CI (the rights test compares this table with the OpenAPI document).
pub const RIGHTS: &[(Method, &str, Access)] = &[
    // issues
    (Method::GET, "/api/v1/inbox", AnyPrincipal),
    (Method::GET, "/api/v1/issues", AnyPrincipal),
    (Method::POST, "/api/v1/issues", AnyPrincipal),
    (Method::GET, "/api/v1/issues/{key}", AnyPrincipal),
    (Method::PATCH, "/api/v1/issues/{key}", AnyPrincipal),
    (Method::POST, "/api/v1/issues/{key}/checkout", AgentOnly),
    (Method::POST, "/api/v1/issues/{key}/release", Own),
    (Method::POST, "/api/v1/issues/{key}/review", Own),
    (Method::GET, "/api/v1/issues/{key}/comments", AnyPrincipal),
    (Method::POST, "/api/v1/issues/{key}/comments", AnyPrincipal),
    (Method::POST, "/api/v1/issues/similar", AnyPrincipal),
    (Method::DELETE, "/api/v1/issues/{key}", BoardOnly),
    // agents
    (Method::GET, "/api/v1/agents", AnyPrincipal),
    (Method::POST, "/api/v1/agents", BoardOnly),
    (Method::GET, "/api/v1/agents/me", AgentOnly),
    (Method::GET, "/api/v1/agents/{slug}", AnyPrincipal),
    (Method::PATCH, "/api/v1/agents/{slug}", BoardOnly),
    (Method::DELETE, "/api/v1/agents/{slug}", BoardOnly),
    (Method::GET, "/api/v1/agents/{slug}/revisions", BoardOnly),
    (Method::POST, "/api/v1/agents/{slug}/rollback", BoardOnly),
    (Method::POST, "/api/v1/agents/{slug}/keys", BoardOnly),
    (Method::PUT, "/api/v1/agents/{slug}/budget", BoardOnly),
    (Method::POST, "/api/v1/agents/{slug}/wake", BoardOnly),
    (Method::DELETE, "/api/v1/keys/{id}", BoardOnly),
    (Method::GET, "/api/v1/tokens", BoardOnly),
    (Method::POST, "/api/v1/tokens", BoardOnly),
    (Method::DELETE, "/api/v1/tokens/{id}", BoardOnly),
    // budgets and usage
    (Method::GET, "/api/v1/budget", BoardOnly),
    (Method::PUT, "/api/v1/budget", BoardOnly),
    (Method::GET, "/api/v1/usage", AnyPrincipal),
    (Method::POST, "/api/v1/usage/report", AgentOnly),
    // approvals
    (Method::GET, "/api/v1/approvals", AnyPrincipal),
    (Method::POST, "/api/v1/approvals", AnyPrincipal),
    (Method::GET, "/api/v1/approvals/{id}", AnyPrincipal),
    (Method::POST, "/api/v1/approvals/{id}/resolve", Own),
    // blocks and strategy
    (Method::GET, "/api/v1/work-blocks", AnyPrincipal),
    (Method::POST, "/api/v1/work-blocks", AnyPrincipal),
    (Method::GET, "/api/v1/work-blocks/{id}", AnyPrincipal),
    (Method::PATCH, "/api/v1/work-blocks/{id}", CeoOrBoard),
    (
        Method::POST,
        "/api/v1/work-blocks/{id}/issues",
        AnyPrincipal,
    ),
    (
        Method::DELETE,
        "/api/v1/work-blocks/{id}/issues/{key}",
        AnyPrincipal,
    ),
    (Method::GET, "/api/v1/apex-blocks", AnyPrincipal),
    (Method::POST, "/api/v1/apex-blocks", BoardOnly),
    (Method::GET, "/api/v1/apex-blocks/{id}", AnyPrincipal),
    (Method::PATCH, "/api/v1/apex-blocks/{id}", BoardOnly),
    (Method::GET, "/api/v1/strategy", AnyPrincipal),
    // archetypes
    (Method::GET, "/api/v1/archetypes", AnyPrincipal),
    (Method::GET, "/api/v1/archetypes/{slug}", AnyPrincipal),
    (Method::PATCH, "/api/v1/archetypes/{slug}", BoardOnly),
    (
        Method::POST,
        "/api/v1/archetypes/{slug}/rollback",
        BoardOnly,
    ),
    (Method::GET, "/api/v1/archetype-patches", AnyPrincipal),
    (Method::POST, "/api/v1/archetype-patches", AnyPrincipal),
    (
        Method::POST,
        "/api/v1/archetype-patches/{id}/approve",
        BoardOnly,
    ),
    (
        Method::POST,
        "/api/v1/archetype-patches/{id}/reject",
        BoardOnly,
    ),
    // labels
    (Method::GET, "/api/v1/labels", AnyPrincipal),
    (Method::POST, "/api/v1/labels", BoardOnly),
    (Method::PATCH, "/api/v1/labels/{id}", BoardOnly),
    (Method::DELETE, "/api/v1/labels/{id}", BoardOnly),
    // wiki
    (Method::GET, "/api/v1/wiki", AnyPrincipal),
    (Method::POST, "/api/v1/wiki", AnyPrincipal),
    (Method::GET, "/api/v1/wiki/search", AnyPrincipal),
    (Method::GET, "/api/v1/wiki/{slug}", AnyPrincipal),
    (Method::PATCH, "/api/v1/wiki/{slug}", AnyPrincipal),
    (Method::DELETE, "/api/v1/wiki/{slug}", Own),
    (Method::GET, "/api/v1/wiki/{slug}/revisions", AnyPrincipal),
    // learning
    (Method::POST, "/api/v1/reflections", AgentOnly),
    (Method::GET, "/api/v1/skills", AnyPrincipal),
    (Method::POST, "/api/v1/skills", CeoOrBoard),
    (Method::GET, "/api/v1/skills/{slug}", AnyPrincipal),
    (Method::POST, "/api/v1/memory", AnyPrincipal),
    (Method::GET, "/api/v1/memory/recall", AnyPrincipal),
    // operations
    (Method::GET, "/api/v1/activity", AnyPrincipal),
    (Method::GET, "/api/v1/runs", AnyPrincipal),
    (Method::GET, "/api/v1/runs/{id}", AnyPrincipal),
    (Method::GET, "/api/v1/runs/{id}/log", OwnStrict),
    (Method::GET, "/api/v1/runs/{id}/evaluation", AnyPrincipal),
    (Method::GET, "/api/v1/observability", AnyPrincipal),
    (Method::POST, "/api/v1/runs/{id}/cancel", BoardOnly),
    (Method::GET, "/api/v1/settings", BoardOnly),
    (Method::PATCH, "/api/v1/settings", BoardOnly),
    (Method::GET, "/api/v1/scheduler", BoardOnly),
    (Method::POST, "/api/v1/scheduler/pause", BoardOnly),
    (Method::POST, "/api/v1/scheduler/resume", BoardOnly),
    (Method::GET, "/api/v1/crons", BoardOnly),
    (Method::POST, "/api/v1/crons", BoardOnly),
    (Method::PATCH, "/api/v1/crons/{id}", BoardOnly),
    (Method::DELETE, "/api/v1/crons/{id}", BoardOnly),
    (Method::GET, "/api/v1/directives", BoardOnly),
    (Method::POST, "/api/v1/directives", BoardOnly),
    (Method::PATCH, "/api/v1/directives/{id}", BoardOnly),
    (Method::DELETE, "/api/v1/directives/{id}", BoardOnly),
    (Method::GET, "/api/v1/audits", BoardOnly),
    (Method::POST, "/api/v1/audits", BoardOnly),
    // events (SSE, SPEC §9.4: board tokens)
    (Method::GET, "/api/v1/events", BoardOnly),
    // incoming webhooks (SPEC §11.3: HMAC-signed, no bearer token)
    (Method::POST, "/api/v1/webhooks/{source}/issues", Signed),
    (Method::POST, "/api/v1/webhooks/{source}/comments", Signed),
    // outgoing webhooks and the delivery log (SPEC §11.2)
    (Method::GET, "/api/v1/outgoing-webhooks", BoardOnly),
    (Method::POST, "/api/v1/outgoing-webhooks", BoardOnly),
    (Method::GET, "/api/v1/outgoing-webhooks/{id}", BoardOnly),
    (Method::PATCH, "/api/v1/outgoing-webhooks/{id}", BoardOnly),
    (Method::DELETE, "/api/v1/outgoing-webhooks/{id}", BoardOnly),
    (
        Method::GET,
        "/api/v1/outgoing-webhooks/{id}/deliveries",
        BoardOnly,
    ),
    (
        Method::POST,
        "/api/v1/outgoing-webhooks/{id}/test",
        BoardOnly,
    ),
    (Method::GET, "/api/v1/outbox", BoardOnly),
    (Method::GET, "/api/v1/outbox/{id}", BoardOnly),
];

/// The access level of `method` on the route `template`, if the table has it (`HEAD` is
/// answered by the `GET` handler, so it has the `GET` entry).
pub fn access_of(method: &Method, template: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    RIGHTS
        .iter()
        .find(|(m, t, _)| m == method && *t == template)
        .map(|(_, _, a)| *a)
}

/// The default of the setting `rate_limit_per_minute`.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6_000;
/// At most this many remembered responses to writes with an `Idempotency-Key`.
pub const IDEMPOTENCY_MAX_ENTRIES: usize = 10_000;
/// At most this many bytes of remembered response bodies.
pub const IDEMPOTENCY_MAX_BYTES: usize = 64 * 1024 * 1024;
/// How long a response is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Responses larger than this are not remembered (a retry runs again).
const IDEMPOTENCY_MAX_BODY: usize = 2 * 1024 * 1024;

/// State of the middleware: the core, the rate limiter and the idempotency memory (one per
/// router).
#[derive(Clone)]
pub(crate) struct Guard {
    mesa: Mesa,
    limiter: Arc<Mutex<RateLimiter>>,
    replies: Arc<Mutex<Replies>>,
}

impl Guard {
    pub(crate) fn new(mesa: Mesa) -> Self {
        Guard {
            mesa,
            limiter: Arc::new(Mutex::new(RateLimiter::default())),
            replies: Arc::new(Mutex::new(Replies::default())),
        }
    }
}

/// The middleware of every `/api/v1` route (installed with `route_layer`, so the matched route
/// template is known).
pub(crate) async fn enforce(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    match check(&guard, req, next).await {
        Ok(r) | Err(r) => r,
    }
}

async fn check(guard: &Guard, req: Request, next: Next) -> Result<Response, Response> {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    // A route without an entry still needs a valid token; its handler decides the rest.
    let access = template
        .as_deref()
        .and_then(|t| access_of(&method, t))
        .unwrap_or(AnyPrincipal);
    if matches!(access, Access::Public | Access::Signed) {
        return Ok(next.run(req).await);
    }
    let (mut parts, body) = req.into_parts();
    let Auth(principal) = Auth::from_request_parts(&mut parts, &guard.mesa)
        .await
        .map_err(IntoResponse::into_response)?;
    if !principal.is_board() {
        let limit = rate_limit(&guard.mesa).await;
        let verdict = lock(&guard.limiter).take(principal.key_id, limit, Instant::now());
        if let Err(retry_after) = verdict {
            return Err(ApiError::rate_limited(retry_after).into_response());
        }
    }
    admit(
        access,
        &principal,
        &method,
        template.as_deref().unwrap_or(""),
    )
    .map_err(IntoResponse::into_response)?;
    let req = Request::from_parts(parts, body);
    let is_write = matches!(
        method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    let idem = req.headers().get("idempotency-key").cloned();
    match idem {
        Some(value) if is_write => replay_or_run(guard, &principal, &value, req, next).await,
        _ => Ok(next.run(req).await),
    }
}

/// The coarse check of the table.
fn admit(access: Access, p: &Principal, method: &Method, template: &str) -> Result<(), ApiError> {
    match access {
        Access::BoardOnly if !p.is_board() => Err(ApiError::forbidden(format!(
            "only the board may call {method} {template}"
        ))
        .with("required", "board")),
        Access::AgentOnly if p.is_board() => Err(ApiError::forbidden(format!(
            "{method} {template} is for agents; a board token belongs to no agent"
        ))
        .with("required", "agent")),
        _ => Ok(()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- rate limit ----

/// `rate_limit_per_minute` (default 6,000; 0 = off).
async fn rate_limit(mesa: &Mesa) -> u32 {
    mesa.setting_value("rate_limit_per_minute")
        .await
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE)
}

/// A token bucket per key: `limit` requests at once, refilled at `limit` per minute.
#[derive(Default)]
struct RateLimiter {
    buckets: HashMap<ApiKeyId, Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// Takes one request from `key`'s bucket, or says in how many seconds to retry.
    fn take(&mut self, key: ApiKeyId, limit: u32, now: Instant) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let capacity = f64::from(limit);
        let per_sec = capacity / 60.0;
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
        }
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * per_sec;
        b.tokens = (b.tokens + refill).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / per_sec;
            // Whole seconds, at least 1 (Retry-After has no fractions).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let secs = wait.ceil().max(1.0) as u64;
            Err(secs)
        }
    }
}

// ---- idempotency ----

/// Remembered responses per (key id, `Idempotency-Key`), oldest first out.
#[derive(Default)]
struct Replies {
    map: HashMap<(ApiKeyId, String), Entry>,
    order: VecDeque<((ApiKeyId, String), u64)>,
    bytes: usize,
    seq: u64,
}

struct Entry {
    method: Method,
    path: String,
    /// SHA-256 of the request body: a retry must send the same body.
    body: [u8; 32],
    at: Instant,
    seq: u64,
    /// None while the first request is still running.
    reply: Option<Stored>,
}

#[derive(Clone)]
struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: axum::body::Bytes,
}

enum Lookup {
    /// Run the request; remember its answer.
    Run,
    Replay(Stored),
    InFlight,
    Mismatch {
        method: Method,
        path: String,
    },
    /// Same route, another body.
    OtherBody,
}

impl Replies {
    fn begin(
        &mut self,
        id: (ApiKeyId, String),
        method: &Method,
        path: &str,
        body: [u8; 32],
        now: Instant,
    ) -> Lookup {
        self.expire(now);
        if let Some(e) = self.map.get(&id) {
            if e.method != *method || e.path != path {
                return Lookup::Mismatch {
                    method: e.method.clone(),
                    path: e.path.clone(),
                };
            }
            if e.body != body {
                return Lookup::OtherBody;
            }
            return match &e.reply {
                Some(s) => Lookup::Replay(s.clone()),
                None => Lookup::InFlight,
            };
        }
        self.seq += 1;
        let seq = self.seq;
        self.order.push_back((id.clone(), seq));
        self.map.insert(
            id,
            Entry {
                method: method.clone(),
                path: path.to_owned(),
                body,
                at: now,
                seq,
                reply: None,
            },
        );
        Lookup::Run
    }

    fn finish(&mut self, id: &(ApiKeyId, String), stored: Option<Stored>) {
        match stored {
            Some(s) => {
                if let Some(e) = self.map.get_mut(id) {
                    self.bytes += s.body.len();
                    e.reply = Some(s);
                }
                self.evict();
            }
            None => {
                self.remove(id);
            }
        }
    }

    fn remove(&mut self, id: &(ApiKeyId, String)) {
        if let Some(e) = self.map.remove(id) {
            self.bytes -= e.reply.map_or(0, |s| s.body.len());
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((id, seq)) = self.order.front().cloned() {
            match self.map.get(&id) {
                Some(e) if e.seq == seq => {
                    if now.duration_since(e.at) < IDEMPOTENCY_TTL {
                        break;
                    }
                    self.remove(&id);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn evict(&mut self) {
        while self.map.len() > IDEMPOTENCY_MAX_ENTRIES || self.bytes > IDEMPOTENCY_MAX_BYTES {
            let Some((id, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&id).is_some_and(|e| e.seq == seq) {
                self.remove(&id);
            }
        }
        // Drop order entries of keys already gone, so the queue stays bounded too.
        if self.order.len() > 2 * IDEMPOTENCY_MAX_ENTRIES {
            let map = &self.map;
            self.order
                .retain(|(id, seq)| map.get(id).is_some_and(|e| e.seq == *seq));
        }
    }
}

async fn replay_or_run(
    guard: &Guard,
    principal: &Principal,
    value: &HeaderValue,
    req: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        })?
        .to_owned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // The body is read here (within the same 1 MiB limit the handlers apply) so that a retry
    // under the same key with another body is refused rather than answered with the first reply.
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 1 MiB",
        )
        .into_response()
    })?;
    let fingerprint: [u8; 32] = Sha256::digest(&bytes).into();
    let req = Request::from_parts(parts, Body::from(bytes));
    let id = (principal.key_id, key);
    let lookup =
        lock(&guard.replies).begin(id.clone(), &method, &path, fingerprint, Instant::now());
    match lookup {
        Lookup::Replay(s) => {
            let mut response = (s.status, s.body).into_response();
            *response.headers_mut() = s.headers;
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Lookup::InFlight => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a request with this Idempotency-Key is still in progress; retry later",
        )
        .into_response()),
        Lookup::Mismatch { method: m, path: p } => Err(ApiError::invalid(
            "Idempotency-Key",
            format!("this Idempotency-Key was used for {m} {p}; use a new key for another request"),
        )
        .into_response()),
        Lookup::OtherBody => Err(ApiError::invalid(
            "Idempotency-Key",
            "this Idempotency-Key was used with another body; use a new key for another request",
        )
        .into_response()),
        Lookup::Run => {
            // Forget the key if the handler panics or the client goes away mid-request.
            let mut pending = Pending {
                replies: &guard.replies,
                id: Some(id),
            };
            let response = next.run(req).await;
            if !response.status().is_success() {
                if let Some(id) = pending.id.take() {
                    lock(&guard.replies).finish(&id, None);
                }
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            // Write responses are small JSON objects; read it whole, remember it if small enough.
            let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
                return Ok(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the response could not be read",
                )
                .into_response());
            };
            if let Some(id) = pending.id.take() {
                let stored = (bytes.len() <= IDEMPOTENCY_MAX_BODY).then(|| Stored {
                    status: parts.status,
                    headers: parts.headers.clone(),
                    body: bytes.clone(),
                });
                lock(&guard.replies).finish(&id, stored);
            }
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Forgets an idempotency key whose first request never finished.
struct Pending<'a> {
    replies: &'a Mutex<Replies>,
    id: Option<(ApiKeyId, String)>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            lock(self.replies).finish(&id, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> ApiKeyId {
        ApiKeyId::parse(&format!("0190b1a2-0000-7000-8000-{n:012}")).unwrap()
    }

    #[test]
    fn the_table_is_looked_up_by_method_and_template() {
        assert_eq!(
            access_of(&Method::GET, "/api/v1/settings"),
            Some(Access::BoardOnly)
        );
        assert_eq!(
            access_of(&Method::HEAD, "/api/v1/settings"),
            Some(Access::BoardOnly)
        );
        assert_eq!(
            access_of(&Method::GET, "/api/v1/agents/me"),
            Some(Access::AgentOnly)
        );
        assert_eq!(access_of(&Method::PUT, "/api/v1/settings"), None);
    }

    #[test]
    fn bucket_allows_the_limit_then_says_when() {
        let mut l = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(key(1), 3, t0).is_ok());
        }
        assert_eq!(l.take(key(1), 3, t0), Err(20));
        assert!(l.take(key(2), 3, t0).is_ok(), "buckets are per key");
        assert!(l.take(key(1), 3, t0 + Duration::from_secs(20)).is_ok());
        assert!(l.take(key(1), 0, t0).is_ok(), "0 = off");
    }

    #[test]
    fn replies_expire_and_stay_bounded() {
        let mut r = Replies::default();
        let t0 = Instant::now();
        let id = (key(1), "a".to_owned());
        assert!(matches!(
            r.begin(id.clone(), &Method::POST, "/x", [0; 32], t0),
            Lookup::Run
        ));
        assert!(matches!(
            r.begin(id.clone(), &Method::POST, "/x", [0; 32], t0),
            Lookup::InFlight
        ));
        r.finish(
            &id,
            Some(Stored {
                status: StatusCode::CREATED,
                headers: HeaderMap::new(),
                body: "{}".into(),
            }),
        );
        assert!(matches!(
            r.begin(id.clone(), &Method::POST, "/x", [0; 32], t0),
            Lookup::Replay(_)
        ));
        assert!(matches!(
            r.begin(id.clone(), &Method::PATCH, "/x", [0; 32], t0),
            Lookup::Mismatch { .. }
        ));
        assert!(matches!(
            r.begin(id.clone(), &Method::POST, "/x", [1; 32], t0),
            Lookup::OtherBody
        ));
        let later = t0 + IDEMPOTENCY_TTL + Duration::from_secs(1);
        assert!(matches!(
            r.begin(id, &Method::PATCH, "/x", [0; 32], later),
            Lookup::Run
        ));
        assert_eq!(r.bytes, 0);
        for n in 0..(IDEMPOTENCY_MAX_ENTRIES + 5) {
            let id = (key(2), n.to_string());
            let _ = r.begin(id.clone(), &Method::POST, "/x", [0; 32], later);
            r.finish(
                &id,
                Some(Stored {
                    status: StatusCode::OK,
                    headers: HeaderMap::new(),
                    body: "1".into(),
                }),
            );
        }
        assert_eq!(r.map.len(), IDEMPOTENCY_MAX_ENTRIES);
        assert_eq!(r.bytes, IDEMPOTENCY_MAX_ENTRIES);
    }
}
