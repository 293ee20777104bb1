//! Agents: create, reconfigure (every change a revision), roll back, list (SPEC §1 Agent, §4.1).

use mesa_domain::entity::{Agent, AgentConfig, AgentRevision};
use mesa_domain::{Actor, AgentId, DomainEvent, Slug, Version};
use mesa_store::{AgentWrite, NewAgentRecord, StoreError};
use mesa_workflow::review_chain::{Org, validate_reports_to};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// A new agent: its slug and configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAgent {
    /// Unique slug.
    pub slug: Slug,
    /// Configuration.
    pub config: AgentConfig,
}

/// An agent with its manager and reviewer named by slug, as front ends show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// The agent.
    pub agent: Agent,
    /// Slug of `reports_to`.
    pub reports_to: Option<Slug>,
    /// Slug of `reviewer_id`.
    pub reviewer: Option<Slug>,
}

impl Mesa {
    /// All agents, in creation order.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        Ok(self.roster().await?.to_vec())
    }

    /// All agents with manager and reviewer slugs.
    pub async fn agent_views(&self) -> Result<Vec<AgentView>> {
        let agents = self.agents().await?;
        let slug_of = |id: Option<AgentId>| {
            id.and_then(|id| agents.iter().find(|a| a.id == id))
                .map(|a| a.slug.clone())
        };
        Ok(agents
            .iter()
            .map(|a| AgentView {
                agent: a.clone(),
                reports_to: slug_of(a.config.reports_to),
                reviewer: slug_of(a.config.reviewer_id),
            })
            .collect())
    }

    /// One agent by slug or id (API fields accept either, SPEC §9.3.1).
    pub async fn find_agent(&self, slug_or_id: &str) -> Result<Agent> {
        if let Ok(id) = AgentId::parse(slug_or_id) {
            return Ok(self.inner.store.agent(id).await?);
        }
        let slug = Slug::parse(slug_or_id)?;
        Ok(self.inner.store.agent_by_slug(&slug).await?)
    }

    /// Resolves an agent reference given in request field `field`; unknown → 422 on that field.
    pub async fn resolve_agent(&self, field: &'static str, slug_or_id: &str) -> Result<Agent> {
        match self.find_agent(slug_or_id).await {
            Ok(agent) => Ok(agent),
            Err(CoreError::Store(StoreError::NotFound { .. })) | Err(CoreError::Invalid(_)) => Err(
                CoreError::unknown(field, format!("{field} names no agent: {slug_or_id:?}")),
            ),
            Err(other) => Err(other),
        }
    }

    /// The agent with the `ceo` archetype, if any (the first one).
    pub async fn ceo(&self) -> Result<Option<Agent>> {
        Ok(self
            .agents()
            .await?
            .into_iter()
            .find(|a| a.is_ceo() && a.config.active))
    }

    /// Creates an agent (board only) with revision 1.
    pub async fn create_agent(&self, actor: &Actor, new: NewAgent) -> Result<Agent> {
        Self::require_board(actor, "create agents")?;
        self.check_config(None, &new.config).await?;
        let now = self.now();
        let agent = Agent {
            id: Self::new_id(),
            slug: new.slug,
            config: new.config,
            paused_until: None,
            pause_reason: None,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "agent.created",
            "agent",
            agent.slug.as_str(),
            format!("created agent {} ({})", agent.slug, agent.config.archetype),
            serde_json::json!({ "archetype": agent.config.archetype, "runner": agent.config.runner }),
        );
        let agent = self
            .inner
            .store
            .create_agent(NewAgentRecord {
                agent,
                changed_by: actor.to_string(),
                reason: "created".to_owned(),
                activity: vec![activity],
            })
            .await?;
        self.forget_roster().await;
        self.publish([DomainEvent::AgentUpdated(Box::new(agent.clone()))]);
        Ok(agent)
    }

    /// Replaces an agent's configuration (board only), storing a revision. `expected` is the
    /// version the caller saw (optimistic concurrency); `None` uses the current one.
    pub async fn update_agent_config(
        &self,
        actor: &Actor,
        slug_or_id: &str,
        config: AgentConfig,
        expected: Option<Version>,
        reason: &str,
    ) -> Result<Agent> {
        Self::require_board(actor, "change agents")?;
        let current = self.find_agent(slug_or_id).await?;
        self.check_config(Some(current.id), &config).await?;
        self.write_agent_config(actor, current, config, expected, reason, "agent.updated")
            .await
    }

    /// Restores revision `number` of an agent as a new revision (board only).
    pub async fn rollback_agent(
        &self,
        actor: &Actor,
        slug_or_id: &str,
        number: i64,
    ) -> Result<Agent> {
        Self::require_board(actor, "roll back agents")?;
        let current = self.find_agent(slug_or_id).await?;
        let revision = self.inner.store.agent_revision(current.id, number).await?;
        self.check_config(Some(current.id), &revision.config)
            .await?;
        let reason = format!("rollback to revision {number}");
        self.write_agent_config(
            actor,
            current,
            revision.config,
            None,
            &reason,
            "agent.rolled_back",
        )
        .await
    }

    /// Revisions of an agent, newest first.
    pub async fn agent_revisions(&self, slug_or_id: &str) -> Result<Vec<AgentRevision>> {
        let agent = self.find_agent(slug_or_id).await?;
        Ok(self.inner.store.agent_revisions(agent.id).await?)
    }

    pub(crate) async fn write_agent_config(
        &self,
        actor: &Actor,
        current: Agent,
        config: AgentConfig,
        expected: Option<Version>,
        reason: &str,
        action: &str,
    ) -> Result<Agent> {
        let expected = expected.unwrap_or(current.version);
        let slug = current.slug.clone();
        let updated = Agent {
            config,
            updated_at: self.now(),
            ..current
        };
        let activity = self.activity(
            actor,
            action,
            "agent",
            slug.as_str(),
            format!("{reason}: agent {slug}"),
            serde_json::json!({ "reason": reason }),
        );
        let agent = self
            .inner
            .store
            .update_agent(AgentWrite {
                agent: updated,
                expected,
                revision: Some((actor.to_string(), reason.to_owned())),
                activity: vec![activity],
            })
            .await?;
        self.forget_roster().await;
        self.publish([DomainEvent::AgentUpdated(Box::new(agent.clone()))]);
        Ok(agent)
    }

    /// Checks references of a configuration: the archetype exists, manager and reviewer exist,
    /// are not the agent itself, and reporting lines stay a tree; the working directory exists.
    async fn check_config(&self, agent: Option<AgentId>, config: &AgentConfig) -> Result<()> {
        let store = &self.inner.store;
        if let Err(StoreError::NotFound { .. }) = store.archetype(&config.archetype).await {
            return Err(CoreError::unknown(
                "archetype",
                format!(
                    "archetype names no archetype: {:?}",
                    config.archetype.as_str()
                ),
            ));
        }
        let agents = self.roster().await?;
        for (field, id) in [
            ("reports_to", config.reports_to),
            ("reviewer", config.reviewer_id),
        ] {
            if let Some(id) = id {
                if Some(id) == agent {
                    return Err(CoreError::unknown(
                        field,
                        format!("an agent cannot name itself as {field}"),
                    ));
                }
                if !agents.iter().any(|a| a.id == id) {
                    return Err(CoreError::unknown(
                        field,
                        format!("{field} names no agent: {id}"),
                    ));
                }
            }
        }
        if let Some(id) = agent {
            let org = Org::from_agents(agents.iter());
            validate_reports_to(&org, id, config.reports_to)?;
        }
        let dir = std::path::Path::new(config.working_dir.as_str());
        if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(CoreError::unknown(
                "working_dir",
                format!(
                    "working_dir must be an existing directory: {}",
                    dir.display()
                ),
            ));
        }
        Ok(())
    }
}
