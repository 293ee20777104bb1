//! Who did something: the subject of every command and every activity row.

use std::fmt;

use crate::{AgentId, Slug};

/// The one who issues a command. Rendered as the activity log's actor string (SPEC §1):
/// `board:<token name>`, an agent slug, `system`, `webhook:<source>`, `telegram:<user>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A person or script with a board token; `token_name` is the token's name (`env` for
    /// `MESA_BOARD_TOKEN`).
    Board {
        /// The board token's name.
        token_name: String,
    },
    /// An agent, through a run key or an agent key.
    Agent {
        /// The agent.
        id: AgentId,
        /// Its slug, for the log.
        slug: Slug,
    },
    /// Mesa itself (scheduler, guards, automatic transitions).
    System,
    /// An incoming webhook from `source`.
    Webhook {
        /// The configured source name.
        source: String,
    },
    /// A board member acting from Telegram.
    Telegram {
        /// The Telegram user name or id.
        user: String,
    },
}

impl Actor {
    /// A board actor with the given token name.
    pub fn board(token_name: impl Into<String>) -> Self {
        Actor::Board {
            token_name: token_name.into(),
        }
    }

    /// True for people with board rights (board tokens and allowed Telegram users).
    pub const fn is_board(&self) -> bool {
        matches!(self, Actor::Board { .. } | Actor::Telegram { .. })
    }

    /// The agent behind this actor, if any.
    pub const fn agent_id(&self) -> Option<AgentId> {
        match self {
            Actor::Agent { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The `created_by` value for rows this actor creates: an agent id, `board`, or
    /// `webhook:<source>` (SPEC §1 Issue).
    pub fn created_by(&self) -> String {
        match self {
            Actor::Agent { id, .. } => id.to_string(),
            Actor::Board { .. } | Actor::Telegram { .. } => "board".to_owned(),
            Actor::System => "system".to_owned(),
            Actor::Webhook { source } => format!("webhook:{source}"),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Board { token_name } => write!(f, "board:{token_name}"),
            Actor::Agent { slug, .. } => f.write_str(slug.as_str()),
            Actor::System => f.write_str("system"),
            Actor::Webhook { source } => write!(f, "webhook:{source}"),
            Actor::Telegram { user } => write!(f, "telegram:{user}"),
        }
    }
}
