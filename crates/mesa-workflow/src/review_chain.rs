//! Reporting lines and the review chain (SPEC §4.1).
//!
//! The reviewer of agent A is A's `reviewer_id` if set; else A's manager (`reports_to`); else the
//! CEO; never A itself (skip to the next up the chain); if the chain runs out, the board.
//!
//! The caller builds an [`Org`] (a small map of who reports to whom) from storage; everything
//! here is a pure function of it. Inactive agents are skipped: they cannot run, so a review
//! addressed to them would wait forever.

use std::collections::{BTreeMap, BTreeSet};

use mesa_domain::entity::{Agent, Approver};
use mesa_domain::{AgentId, ValidationError};

use crate::{Result, WorkflowError};

/// Who reviews an agent's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reviewer {
    /// An agent up the chain.
    Agent(AgentId),
    /// Nobody is left: the board decides (`board_review`).
    Board,
}

impl Reviewer {
    /// The reviewing agent, if it is not the board.
    pub const fn agent(self) -> Option<AgentId> {
        match self {
            Reviewer::Agent(id) => Some(id),
            Reviewer::Board => None,
        }
    }
}

impl From<Reviewer> for Approver {
    fn from(reviewer: Reviewer) -> Self {
        match reviewer {
            Reviewer::Agent(id) => Approver::Agent(id),
            Reviewer::Board => Approver::Board,
        }
    }
}

/// What the chain needs to know about one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgMember {
    /// Manager.
    pub reports_to: Option<AgentId>,
    /// Explicit reviewer, overriding the manager.
    pub reviewer_id: Option<AgentId>,
    /// Follows the `ceo` archetype.
    pub is_ceo: bool,
    /// Inactive agents are never chosen as reviewers.
    pub active: bool,
}

impl OrgMember {
    /// An active, non-CEO member.
    pub const fn new(reports_to: Option<AgentId>, reviewer_id: Option<AgentId>) -> Self {
        OrgMember {
            reports_to,
            reviewer_id,
            is_ceo: false,
            active: true,
        }
    }

    /// The same member, as the CEO.
    #[must_use]
    pub const fn ceo(mut self) -> Self {
        self.is_ceo = true;
        self
    }

    /// The same member, deactivated.
    #[must_use]
    pub const fn inactive(mut self) -> Self {
        self.active = false;
        self
    }
}

/// The org chart as the review chain sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    members: BTreeMap<AgentId, OrgMember>,
}

impl Org {
    /// An empty org.
    pub fn new() -> Self {
        Org::default()
    }

    /// Builds the org from agent records.
    pub fn from_agents<'a>(agents: impl IntoIterator<Item = &'a Agent>) -> Self {
        let mut org = Org::new();
        for agent in agents {
            org.insert(
                agent.id,
                OrgMember {
                    reports_to: agent.config.reports_to,
                    reviewer_id: agent.config.reviewer_id,
                    is_ceo: agent.is_ceo(),
                    active: agent.config.active,
                },
            );
        }
        org
    }

    /// Adds or replaces a member.
    pub fn insert(&mut self, id: AgentId, member: OrgMember) {
        self.members.insert(id, member);
    }

    /// The same org with one more member.
    #[must_use]
    pub fn with(mut self, id: AgentId, member: OrgMember) -> Self {
        self.insert(id, member);
        self
    }

    /// A member.
    pub fn get(&self, id: AgentId) -> Option<&OrgMember> {
        self.members.get(&id)
    }

    /// The CEO: the first active CEO by id, else the first CEO at all.
    pub fn ceo(&self) -> Option<AgentId> {
        let ceos = || self.members.iter().filter(|(_, m)| m.is_ceo);
        ceos()
            .find(|(_, m)| m.active)
            .or_else(|| ceos().next())
            .map(|(id, _)| *id)
    }

    fn is_active(&self, id: AgentId) -> bool {
        self.members.get(&id).is_some_and(|m| m.active)
    }
}

/// Agent `agent`'s review chain, nearest first: its `reviewer_id`, its manager and the managers
/// above, then the CEO. Never the agent itself, no duplicates, only active members; safe on an
/// org with a cycle. The first entry is the agent's reviewer.
pub fn reviewer_chain(org: &Org, agent: AgentId) -> Vec<AgentId> {
    let mut candidates = Vec::new();
    let member = org.get(agent);
    if let Some(reviewer) = member.and_then(|m| m.reviewer_id) {
        candidates.push(reviewer);
    }
    let mut seen = BTreeSet::from([agent]);
    let mut next = member.and_then(|m| m.reports_to);
    while let Some(manager) = next {
        if !seen.insert(manager) {
            break;
        }
        candidates.push(manager);
        next = org.get(manager).and_then(|m| m.reports_to);
    }
    candidates.extend(org.ceo());

    let mut chain = Vec::new();
    let mut taken = BTreeSet::new();
    for candidate in candidates {
        if candidate != agent && org.is_active(candidate) && taken.insert(candidate) {
            chain.push(candidate);
        }
    }
    chain
}

/// The reviewer of `agent` (SPEC §4.1), skipping anyone in `exclude` (the submitter, the
/// assignee): the first of [`reviewer_chain`] not excluded, or the board when none is left.
pub fn resolve_reviewer(org: &Org, agent: AgentId, exclude: &[AgentId]) -> Reviewer {
    reviewer_chain(org, agent)
        .into_iter()
        .find(|candidate| !exclude.contains(candidate))
        .map_or(Reviewer::Board, Reviewer::Agent)
}

/// Checks that `agent` may report to `new_manager`: not itself, a known agent, and no cycle
/// through `reports_to`. `None` (no manager) is always fine. Errors name the field `reports_to`.
pub fn validate_reports_to(org: &Org, agent: AgentId, new_manager: Option<AgentId>) -> Result<()> {
    let Some(manager) = new_manager else {
        return Ok(());
    };
    let invalid =
        |message: String| WorkflowError::Invalid(ValidationError::new("reports_to", message));
    if manager == agent {
        return Err(invalid(
            "reports_to must not be the agent itself".to_owned(),
        ));
    }
    if org.get(manager).is_none() {
        return Err(invalid(format!(
            "reports_to names an unknown agent {manager}"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut next = Some(manager);
    while let Some(current) = next {
        if current == agent {
            return Err(invalid(format!(
                "reports_to would create a cycle: agent {manager} already reports, directly or \
                 not, to agent {agent}"
            )));
        }
        if !seen.insert(current) {
            // The existing org already has a cycle above the new manager; it does not pass
            // through `agent`, so this edge adds none.
            break;
        }
        next = org.get(current).and_then(|m| m.reports_to);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
