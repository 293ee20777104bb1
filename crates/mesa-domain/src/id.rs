//! Identifier newtypes. Every entity has its own, so an `AgentId` can never be passed where an
//! `IssueId` is expected. IDs are UUIDv7 made by the caller (this crate never reads the clock).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::ValidationError;

macro_rules! uuid_id {
    ($($(#[$meta:meta])* $name:ident => $field:literal;)*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID made by the caller (normally `Uuid::now_v7()` in `mesa-core`).
            pub const fn from_uuid(uuid: Uuid) -> Self { Self(uuid) }
            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid { self.0 }
            /// Parses the hyphenated text form, naming the field on error.
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                Uuid::parse_str(text.trim()).map(Self).map_err(|_| {
                    ValidationError::new($field, format!("{} must be a UUID, got {:?}", $field, crate::value::clip(text)))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self { Self(uuid) }
        }
    )*};
}

uuid_id! {
    /// An [`crate::entity::Agent`].
    AgentId => "agent_id";
    /// An [`crate::entity::Issue`].
    IssueId => "issue_id";
    /// A [`crate::entity::Comment`].
    CommentId => "comment_id";
    /// A [`crate::entity::Label`].
    LabelId => "label_id";
    /// A [`crate::entity::Run`].
    RunId => "run_id";
    /// An [`crate::entity::ApiKey`].
    ApiKeyId => "key_id";
    /// A [`crate::entity::CostEvent`].
    CostEventId => "cost_event_id";
    /// A [`crate::entity::BudgetPolicy`].
    BudgetPolicyId => "budget_policy_id";
    /// A [`crate::entity::WorkBlock`].
    WorkBlockId => "work_block_id";
    /// An [`crate::entity::ApexBlock`].
    ApexBlockId => "apex_block_id";
    /// An [`crate::entity::Approval`].
    ApprovalId => "approval_id";
    /// An [`crate::entity::ArchetypePatch`].
    ArchetypePatchId => "patch_id";
    /// A [`crate::entity::Reflection`].
    ReflectionId => "reflection_id";
    /// A [`crate::entity::Skill`].
    SkillId => "skill_id";
    /// A [`crate::entity::MemoryItem`].
    MemoryItemId => "memory_id";
    /// An [`crate::entity::Audit`].
    AuditId => "audit_id";
    /// A [`crate::entity::Directive`].
    DirectiveId => "directive_id";
    /// A [`crate::entity::Cron`].
    CronId => "cron_id";
    /// A [`crate::entity::WikiPage`].
    WikiPageId => "wiki_page_id";
    /// A [`crate::entity::WebhookDelivery`].
    WebhookDeliveryId => "delivery_id";
    /// An [`crate::entity::OutboxItem`]: one outgoing delivery (also its `X-Mesa-Delivery`).
    OutboxId => "outbox_id";
    /// An [`crate::entity::OutgoingWebhook`] subscription.
    WebhookId => "webhook_id";
}

/// The monotonic id of an [`crate::entity::ActivityEvent`] (its position in the log).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ActivityId(pub i64);

impl fmt::Display for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Optimistic-concurrency version of an updatable row (SPEC §9.2). Starts at 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Version(pub i64);

impl Version {
    /// The version of a freshly created row.
    pub const FIRST: Version = Version(1);

    /// The version after one more update.
    #[must_use]
    pub const fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
