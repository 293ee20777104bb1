//! The audit log, settings and incoming webhook deliveries.

use crate::{ActivityId, ApiKeyId, Timestamp, WebhookDeliveryId, WebhookStatus};

/// One row of the append-only, hash-chained audit log (SPEC §1 ActivityEvent).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivityEvent {
    /// Monotonic position.
    pub id: ActivityId,
    /// When.
    pub at: Timestamp,
    /// Actor string.
    pub actor: String,
    /// What happened, e.g. `issue.created`, `issue.transition`.
    pub action: String,
    /// `issue`, `agent`, `work_block`...
    pub entity_type: String,
    /// Issue key or entity id.
    pub entity_id: String,
    /// One human line.
    pub summary: String,
    /// Details.
    pub data: serde_json::Value,
    /// Hash of the previous row (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over this row's content and `prev_hash`.
    pub hash: String,
}

/// An activity row before it is appended: the store assigns `id`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    /// When.
    pub at: Timestamp,
    /// Actor string.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// Entity type.
    pub entity_type: String,
    /// Entity id or key.
    pub entity_id: String,
    /// One human line.
    pub summary: String,
    /// Details.
    pub data: serde_json::Value,
}

/// The hash of the row before the first one.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl NewActivity {
    /// The bytes hashed for this row in the chain: every field, length-prefixed so that no two
    /// different rows share an encoding, followed by the previous hash.
    pub fn chain_input(&self, id: ActivityId, prev_hash: &str) -> Vec<u8> {
        let data = self.data.to_string();
        let fields: [&str; 8] = [
            &id.0.to_string(),
            &self.at.as_millis().to_string(),
            &self.actor,
            &self.action,
            &self.entity_type,
            &self.entity_id,
            &self.summary,
            &data,
        ];
        let mut out = Vec::with_capacity(256);
        for f in fields {
            out.extend_from_slice(f.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(f.as_bytes());
        }
        out.extend_from_slice(prev_hash.as_bytes());
        out
    }
}

impl ActivityEvent {
    /// The row's content as a [`NewActivity`], to recompute its hash.
    pub fn content(&self) -> NewActivity {
        NewActivity {
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            entity_type: self.entity_type.clone(),
            entity_id: self.entity_id.clone(),
            summary: self.summary.clone(),
            data: self.data.clone(),
        }
    }
}

/// One setting (SPEC §1 Setting).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// Key, `[a-z0-9_]`.
    pub key: String,
    /// Value as text.
    pub value: String,
    /// Write-only in the UI and API when true.
    pub secret: bool,
    /// Last update.
    pub updated_at: Timestamp,
}

/// An incoming webhook delivery (SPEC §1 WebhookDelivery).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookDelivery {
    /// Identity.
    pub id: WebhookDeliveryId,
    /// The configured source.
    pub source: String,
    /// The event name.
    pub event: String,
    /// The sender's delivery id (idempotency).
    pub delivery_id: String,
    /// What became of it.
    pub status: WebhookStatus,
    /// Notes (errors, created issue).
    pub note: Option<String>,
    /// The payload, capped.
    pub payload: String,
    /// When received.
    pub created_at: Timestamp,
}

/// A dashboard login (SPEC §14): a server-side session opened with a board token, or a
/// one-time login link that opens one. Only the SHA-256 of the cookie value (or link code)
/// is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 hex of the raw session id or link code.
    pub hash: String,
    /// True for a one-time login link not yet used; false for an open session.
    pub one_time: bool,
    /// The board token the session acts for; revoking it ends the session.
    pub key_id: ApiKeyId,
    /// The CSRF token every state-changing request of this session must carry.
    pub csrf: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// When the session (or link) stops working unless renewed.
    pub expires_at: Timestamp,
    /// Last request seen (kept to a coarse granularity).
    pub last_seen_at: Timestamp,
}

/// A link from an issue at an incoming webhook's sender (e.g. a GitHub issue's URL) to the Mesa
/// issue created from it (SPEC §11.3), so later deliveries about it reach the same issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLink {
    /// The webhook source.
    pub source: String,
    /// The sender's URL of the issue.
    pub url: String,
    /// The Mesa issue.
    pub issue_key: crate::IssueKey,
    /// When linked.
    pub created_at: Timestamp,
}
