//! Credentials (SPEC §9.1): board tokens, agent keys, run keys. Raw keys are shown once and never
//! stored; only their SHA-256 is kept, and the comparison is constant time.

use std::sync::Arc;

use mesa_domain::entity::{Agent, ApiKey};
use mesa_domain::{Actor, ApiKeyId, ApiKeyKind, Name, RunId, RunStatus, Timestamp};
use mesa_store::NewApiKey;
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;
use crate::read_cache::Depends;

/// Who a request is, after its bearer token was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The actor commands run as.
    pub actor: Actor,
    /// The kind of credential.
    pub kind: ApiKeyKind,
    /// The key row.
    pub key_id: ApiKeyId,
    /// The agent, for run and agent keys.
    pub agent: Option<Agent>,
    /// The run, for run keys.
    pub run_id: Option<RunId>,
}

impl Principal {
    /// True for board tokens.
    pub fn is_board(&self) -> bool {
        self.kind == ApiKeyKind::Board
    }

    /// True when the principal is the CEO agent.
    pub fn is_ceo(&self) -> bool {
        self.agent.as_ref().is_some_and(Agent::is_ceo)
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No token was given (401 `unauthenticated`).
    #[error("an Authorization: Bearer token is required")]
    Missing,
    /// The token is unknown, malformed, revoked or expired, or its run has finished
    /// (401 `invalid_token`).
    #[error("the token is unknown, revoked or expired")]
    Invalid,
}

/// What authentication reads from the store for one key hash.
#[derive(Debug)]
struct StoredKey {
    /// The key row.
    key: ApiKey,
    /// For a run key: its run is queued or running.
    run_live: bool,
}

/// A newly minted credential: the row and the raw key, shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct MintedKey {
    /// The stored row (hash only).
    pub key: ApiKey,
    /// The raw key; never stored.
    pub raw: String,
}

fn prefix_of(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Board => "mesa_brd_",
        ApiKeyKind::Agent => "mesa_agt_",
        ApiKeyKind::Run => "mesa_run_",
    }
}

/// How fresh a key's `last_used_at` is kept (milliseconds).
const KEY_USE_GRANULARITY_MS: i64 = 60_000;

/// SHA-256 hex of a raw key.
pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_key(kind: ApiKeyKind) -> Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CoreError::Io {
        what: "the operating system's random source failed".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(format!("{}{}", prefix_of(kind), hex::encode(bytes)))
}

impl Mesa {
    /// Checks a bearer token. Records its use (at most once a minute per key).
    pub async fn authenticate(
        &self,
        raw: Option<&str>,
    ) -> std::result::Result<Principal, AuthFailure> {
        let raw = raw
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or(AuthFailure::Missing)?;
        let kind = [ApiKeyKind::Board, ApiKeyKind::Agent, ApiKeyKind::Run]
            .into_iter()
            .find(|k| raw.starts_with(prefix_of(*k)))
            .ok_or(AuthFailure::Invalid)?;
        let hash = hash_key(raw);
        let stored = match self.stored_key(&hash).await {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(error = ?err, "key lookup failed");
                return Err(AuthFailure::Invalid);
            }
        };
        let Some(StoredKey { key, run_live }) = stored.as_ref() else {
            return Err(AuthFailure::Invalid);
        };
        let now = self.now();
        if !constant_time_eq(key.hash.as_bytes(), hash.as_bytes())
            || key.kind != kind
            || !key.is_live(now)
        {
            return Err(AuthFailure::Invalid);
        }
        let agent = match key.agent_id {
            Some(id) => match self.roster().await {
                Ok(roster) => Some(roster.get(id).cloned().ok_or(AuthFailure::Invalid)?),
                Err(_) => return Err(AuthFailure::Invalid),
            },
            None => None,
        };
        // A run key dies with its run, even before the revocation is written.
        if key.run_id.is_some() && !run_live {
            return Err(AuthFailure::Invalid);
        }
        let actor = match (&agent, kind) {
            (Some(a), ApiKeyKind::Agent | ApiKeyKind::Run) => Actor::Agent {
                id: a.id,
                slug: a.slug.clone(),
            },
            (None, ApiKeyKind::Board) => Actor::board(key.name.clone()),
            _ => return Err(AuthFailure::Invalid),
        };
        // `last_used_at` is kept to the minute: most requests find it fresh in the row they
        // just read and write nothing.
        let stale = key
            .last_used_at
            .is_none_or(|last| now.as_millis() - last.as_millis() >= KEY_USE_GRANULARITY_MS);
        if stale && let Err(err) = self.inner.store.touch_key(key.id, now).await {
            tracing::debug!(error = ?err, "could not record key use");
        }
        Ok(Principal {
            actor,
            kind,
            key_id: key.id,
            agent,
            run_id: key.run_id,
        })
    }

    /// The key stored under `hash` and whether its run (for a run key) is queued or running.
    /// Kept in the read cache while neither the key's row nor (for a run key) any run can have
    /// changed: only this store's own narrow writes (checkouts, issue creations, other keys'
    /// uses) keep it; a revocation, a run's end or any other write, by any path or process, is
    /// seen by the very next request.
    async fn stored_key(
        &self,
        hash: &str,
    ) -> std::result::Result<Arc<Option<StoredKey>>, mesa_store::StoreError> {
        let store = &self.inner.store;
        self.read_through(
            format!("auth\u{0}{hash}"),
            |_| std::mem::size_of::<StoredKey>() + 256,
            |stored: &Option<StoredKey>| Depends::Key {
                id: stored.as_ref().map(|s| s.key.id),
                run: stored.as_ref().is_some_and(|s| s.key.run_id.is_some()),
            },
            || async {
                let Some(key) = store.key_by_hash(hash).await? else {
                    return Ok(None);
                };
                let run_live = match key.run_id {
                    Some(run_id) => store.run(run_id).await.is_ok_and(|run| {
                        matches!(run.status, RunStatus::Queued | RunStatus::Running)
                    }),
                    None => false,
                };
                Ok(Some(StoredKey { key, run_live }))
            },
        )
        .await
    }

    /// Creates a board token (board only). The raw token is returned once.
    pub async fn create_board_token(
        &self,
        actor: &Actor,
        name: Name,
        expires_at: Option<Timestamp>,
    ) -> Result<MintedKey> {
        Self::require_board(actor, "create tokens")?;
        self.mint(
            actor,
            ApiKeyKind::Board,
            name.as_str(),
            None,
            None,
            expires_at,
        )
        .await
    }

    /// Creates a long-lived key for an agent that runs outside Mesa (board only).
    pub async fn create_agent_key(
        &self,
        actor: &Actor,
        agent: &str,
        name: Option<Name>,
        expires_at: Option<Timestamp>,
    ) -> Result<MintedKey> {
        Self::require_board(actor, "create agent keys")?;
        let agent = self.resolve_agent("agent", agent).await?;
        let name = name.map_or_else(|| format!("{} key", agent.slug), |n| n.to_string());
        self.mint(
            actor,
            ApiKeyKind::Agent,
            &name,
            Some(agent.id),
            None,
            expires_at,
        )
        .await
    }

    /// Board tokens and agent keys, newest first (never the raw values).
    pub async fn keys(&self, agent: Option<&str>) -> Result<Vec<ApiKey>> {
        let agent = match agent {
            Some(a) => Some(self.resolve_agent("agent", a).await?.id),
            None => None,
        };
        Ok(self.inner.store.list_keys(agent).await?)
    }

    /// Revokes a token or key (board only).
    pub async fn revoke_key(&self, actor: &Actor, id: ApiKeyId) -> Result<()> {
        Self::require_board(actor, "revoke keys")?;
        let activity = self.activity(
            actor,
            "key.revoked",
            "key",
            id.to_string(),
            format!("revoked key {id}"),
            serde_json::json!({}),
        );
        Ok(self
            .inner
            .store
            .revoke_key(id, self.now(), vec![activity])
            .await?)
    }

    /// Makes `raw` a board token named `env` (SPEC §9.3.1: `MESA_BOARD_TOKEN`), unless a key with
    /// that hash already exists. Refuses a token without the board prefix or shorter than 32
    /// characters after it.
    pub async fn ensure_env_board_token(&self, raw: &str) -> Result<()> {
        let raw = raw.trim();
        let body = raw
            .strip_prefix(prefix_of(ApiKeyKind::Board))
            .unwrap_or_default();
        if body.len() < 32 {
            return Err(mesa_domain::ValidationError::new(
                "MESA_BOARD_TOKEN",
                "MESA_BOARD_TOKEN must start with mesa_brd_ followed by at least 32 characters",
            )
            .into());
        }
        if self
            .inner
            .store
            .key_by_hash(&hash_key(raw))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let key = self.key_row(ApiKeyKind::Board, raw, "env", None, None, None);
        let activity = self.activity(
            &Actor::System,
            "key.created",
            "key",
            key.id.to_string(),
            "board token env set from MESA_BOARD_TOKEN",
            serde_json::json!({ "kind": "board", "name": "env" }),
        );
        self.inner
            .store
            .create_key(NewApiKey {
                key,
                activity: vec![activity],
            })
            .await?;
        Ok(())
    }

    /// Mints a run key for `run` of `agent` (used by the scheduler when it starts a run).
    pub async fn mint_run_key(&self, agent: &Agent, run: RunId) -> Result<MintedKey> {
        self.mint(
            &Actor::System,
            ApiKeyKind::Run,
            &format!("run {run}"),
            Some(agent.id),
            Some(run),
            None,
        )
        .await
    }

    pub(crate) async fn mint(
        &self,
        actor: &Actor,
        kind: ApiKeyKind,
        name: &str,
        agent: Option<mesa_domain::AgentId>,
        run: Option<RunId>,
        expires_at: Option<Timestamp>,
    ) -> Result<MintedKey> {
        if expires_at.is_some_and(|t| t <= self.now()) {
            return Err(mesa_domain::ValidationError::new(
                "expires_at",
                "expires_at must be in the future",
            )
            .into());
        }
        let raw = random_key(kind)?;
        let key = self.key_row(kind, &raw, name, agent, run, expires_at);
        let activity = self.activity(
            actor,
            "key.created",
            "key",
            key.id.to_string(),
            format!("created {kind} key {name} ({})", key.prefix),
            serde_json::json!({ "kind": kind, "name": name }),
        );
        let key = self
            .inner
            .store
            .create_key(NewApiKey {
                key,
                activity: if kind == ApiKeyKind::Run {
                    Vec::new()
                } else {
                    vec![activity]
                },
            })
            .await?;
        Ok(MintedKey { key, raw })
    }

    fn key_row(
        &self,
        kind: ApiKeyKind,
        raw: &str,
        name: &str,
        agent: Option<mesa_domain::AgentId>,
        run: Option<RunId>,
        expires_at: Option<Timestamp>,
    ) -> ApiKey {
        ApiKey {
            id: Self::new_id(),
            kind,
            prefix: raw.chars().take(12).collect(),
            hash: hash_key(raw),
            agent_id: agent,
            run_id: run,
            name: name.to_owned(),
            scopes: Vec::new(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
            created_at: self.now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_comparison() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"short", b"longer"));
        let k = random_key(ApiKeyKind::Run).unwrap();
        assert!(k.starts_with("mesa_run_") && k.len() == 9 + 64);
    }
}
