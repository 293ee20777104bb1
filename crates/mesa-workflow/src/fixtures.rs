//! Test fixtures shared by the modules' tests: agents, keys and ids by number.

use mesa_domain::{Actor, AgentId, IssueKey, Slug, WorkBlockId};

/// Agent number `n`.
pub(crate) fn agent_id(n: u32) -> AgentId {
    AgentId::parse(&format!("00000000-0000-7000-8000-{n:012}")).unwrap()
}

/// Agent number `n` as an actor, slug `agent-<n>`.
pub(crate) fn agent(n: u32) -> Actor {
    Actor::Agent {
        id: agent_id(n),
        slug: Slug::parse(&format!("agent-{n}")).unwrap(),
    }
}

/// Issue `MESA-<n>`.
pub(crate) fn key(n: u64) -> IssueKey {
    IssueKey::parse(&format!("MESA-{n}")).unwrap()
}

/// Work block number `n`.
pub(crate) fn block_id(n: u32) -> WorkBlockId {
    WorkBlockId::parse(&format!("10000000-0000-7000-8000-{n:012}")).unwrap()
}
