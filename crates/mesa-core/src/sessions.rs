//! Dashboard sessions (SPEC §14): a board token opens a server-side session whose random id
//! travels in an HttpOnly cookie; every state-changing request of the session carries its CSRF
//! token. The first start of an instance mints an owner token and prints a one-time login link
//! that opens a session without typing the token. Only SHA-256 hashes of session ids and link
//! codes are stored, so a copy of the database opens no session.

use mesa_domain::entity::Session;
use mesa_domain::{Actor, ApiKeyKind, Timestamp};

use crate::auth::{AuthFailure, Principal, hash_key};
use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// A session ends after this long without a request (7 days).
pub const SESSION_IDLE_MS: i64 = 7 * 24 * 3_600_000;
/// A login link works for this long (24 hours), once.
pub const LINK_TTL_MS: i64 = 24 * 3_600_000;
/// A session's expiry is moved at most this often (10 minutes), so reading pages costs no write.
const TOUCH_GRANULARITY_MS: i64 = 10 * 60_000;

const SESSION_PREFIX: &str = "mesa_ses_";
const LINK_PREFIX: &str = "mesa_lnk_";

/// A session just opened: the raw id for the cookie (shown once, never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedSession {
    /// The cookie value.
    pub raw: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When it ends unless used.
    pub expires_at: Timestamp,
}

/// The board member behind a session cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUser {
    /// Acts as the board token the session was opened with.
    pub principal: Principal,
    /// The token every state-changing request must carry.
    pub csrf: String,
    /// SHA-256 of the cookie value (identifies the session in logs without revealing it).
    pub session_hash: String,
}

fn random_hex() -> Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CoreError::Io {
        what: "the operating system's random source failed".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex::encode(bytes))
}

fn after(now: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(now.as_millis().saturating_add(ms))
}

impl Mesa {
    /// Opens a dashboard session with a board token. Agent and run keys are refused.
    pub async fn open_session(
        &self,
        token: &str,
    ) -> std::result::Result<OpenedSession, AuthFailure> {
        let principal = self.authenticate(Some(token)).await?;
        if !principal.is_board() {
            return Err(AuthFailure::Invalid);
        }
        self.new_session(principal.key_id).await.map_err(|err| {
            tracing::warn!(error = ?err, "could not open a session");
            AuthFailure::Invalid
        })
    }

    async fn new_session(&self, key_id: mesa_domain::ApiKeyId) -> Result<OpenedSession> {
        let raw = format!("{SESSION_PREFIX}{}", random_hex()?);
        let csrf = random_hex()?;
        let now = self.now();
        let expires_at = after(now, SESSION_IDLE_MS);
        self.inner
            .store
            .create_session(Session {
                hash: hash_key(&raw),
                one_time: false,
                key_id,
                csrf: csrf.clone(),
                created_at: now,
                expires_at,
                last_seen_at: now,
            })
            .await?;
        Ok(OpenedSession {
            raw,
            csrf,
            expires_at,
        })
    }

    /// The board member behind a session cookie, if the session is open and its board token
    /// still live. Moves the session's expiry (at most every ten minutes).
    pub async fn session_user(&self, raw: &str) -> Option<SessionUser> {
        if !raw.starts_with(SESSION_PREFIX) {
            return None;
        }
        let hash = hash_key(raw);
        let session = match self.inner.store.session_by_hash(&hash).await {
            Ok(Some(s)) if !s.one_time => s,
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(error = ?err, "session lookup failed");
                return None;
            }
        };
        let now = self.now();
        if session.expires_at <= now {
            return None;
        }
        let key = self.inner.store.key(session.key_id).await.ok()??;
        if key.kind != ApiKeyKind::Board || !key.is_live(now) {
            return None;
        }
        if now.as_millis() - session.last_seen_at.as_millis() >= TOUCH_GRANULARITY_MS
            && let Err(err) = self
                .inner
                .store
                .touch_session(&hash, now, after(now, SESSION_IDLE_MS))
                .await
        {
            tracing::debug!(error = ?err, "could not record session use");
        }
        Some(SessionUser {
            principal: Principal {
                actor: Actor::board(key.name.clone()),
                kind: ApiKeyKind::Board,
                key_id: key.id,
                agent: None,
                run_id: None,
            },
            csrf: session.csrf,
            session_hash: hash,
        })
    }

    /// Ends a session (logout). Ending an unknown session is not an error.
    pub async fn close_session(&self, raw: &str) -> Result<()> {
        self.inner.store.take_session(&hash_key(raw)).await?;
        Ok(())
    }

    /// Opens a session with a one-time login link code; the code stops working at once.
    pub async fn open_session_with_link(
        &self,
        code: &str,
    ) -> std::result::Result<OpenedSession, AuthFailure> {
        if !code.starts_with(LINK_PREFIX) {
            return Err(AuthFailure::Invalid);
        }
        let link = match self.inner.store.take_session(&hash_key(code)).await {
            Ok(Some(link)) if link.one_time => link,
            Ok(_) => return Err(AuthFailure::Invalid),
            Err(err) => {
                tracing::warn!(error = ?err, "login link lookup failed");
                return Err(AuthFailure::Invalid);
            }
        };
        if link.expires_at <= self.now() {
            return Err(AuthFailure::Invalid);
        }
        self.new_session(link.key_id).await.map_err(|err| {
            tracing::warn!(error = ?err, "could not open a session");
            AuthFailure::Invalid
        })
    }

    /// On an instance without any board token (its first start), mints the owner's board token
    /// and returns a one-time login link code for it; otherwise `None`.
    pub async fn first_start_login_code(&self) -> Result<Option<String>> {
        let keys = self.inner.store.list_keys(None).await?;
        if keys.iter().any(|k| k.kind == ApiKeyKind::Board) {
            return Ok(None);
        }
        let minted = self
            .mint(&Actor::System, ApiKeyKind::Board, "owner", None, None, None)
            .await?;
        self.login_code(minted.key.id).await.map(Some)
    }

    /// A fresh one-time login link code for board token `key_id` (valid 24 hours).
    pub async fn login_code(&self, key_id: mesa_domain::ApiKeyId) -> Result<String> {
        let code = format!("{LINK_PREFIX}{}", random_hex()?);
        let now = self.now();
        self.inner
            .store
            .create_session(Session {
                hash: hash_key(&code),
                one_time: true,
                key_id,
                csrf: String::new(),
                created_at: now,
                expires_at: after(now, LINK_TTL_MS),
                last_seen_at: now,
            })
            .await?;
        Ok(code)
    }

    /// Removes expired sessions and links; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64> {
        Ok(self.inner.store.purge_sessions(self.now()).await?)
    }
}
