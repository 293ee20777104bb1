//! First start: archetypes and an org from a template (SPEC §4.4). Creates no issue and starts
//! no run. Every step is idempotent, so a bootstrap interrupted by a crash finishes on the next
//! start; the `org_template` setting, written last, marks it done.

use std::collections::{BTreeMap, BTreeSet};

use mesa_domain::entity::{AgentConfig, ArchetypeSource, Setting};
use mesa_domain::{Actor, AgentId, RunnerKind, Slug};
use mesa_store::{ArchetypeVersionWrite, StoreError};

use crate::agents::NewAgent;
use crate::catalog::{self, ArchetypeSpec, PlannedAgent};
use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// What a bootstrap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// The template used.
    pub template: String,
    /// Archetypes written as version 1.
    pub archetypes: usize,
    /// The agents, in creation order.
    pub agents: Vec<Slug>,
    /// The runner they were given.
    pub runner: RunnerKind,
}

impl Mesa {
    /// True until a bootstrap has completed on this database.
    pub async fn needs_bootstrap(&self) -> Result<bool> {
        Ok(self.inner.store.setting("org_template").await?.is_none())
    }

    /// Bootstraps from the configured template if the database has never been bootstrapped.
    pub async fn bootstrap_if_empty(&self) -> Result<Option<BootstrapReport>> {
        if !self.needs_bootstrap().await? {
            return Ok(None);
        }
        let template = self.config().template.clone();
        self.bootstrap(&template).await.map(Some)
    }

    /// Bootstraps from `template`; refuses (409) if the database was already bootstrapped.
    pub async fn bootstrap(&self, template: &str) -> Result<BootstrapReport> {
        if !self.needs_bootstrap().await? {
            return Err(CoreError::Conflict(
                "this database already holds an org; use a new database to start another".into(),
            ));
        }
        let system = Actor::System;
        let specs = self.archetype_specs().await?;
        let known: BTreeSet<String> = specs.iter().map(|s| s.slug.to_string()).collect();
        let plan = catalog::org_template(template, &known)?.plan(&known)?;

        for spec in &specs {
            let write = ArchetypeVersionWrite {
                slug: spec.slug.clone(),
                title: spec.title.clone(),
                body: spec.body.clone(),
                source: ArchetypeSource::Builtin,
                expected_version: None,
                at: self.now(),
                approve_patch: None,
                activity: vec![self.activity(
                    &system,
                    "archetype.created",
                    "archetype",
                    spec.slug.as_str(),
                    format!("installed archetype {} (version 1)", spec.slug),
                    serde_json::json!({ "version": 1 }),
                )],
            };
            match self.inner.store.write_archetype_version(write).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }

        let runner = self.config().bootstrap_runner();
        let existing: BTreeMap<String, AgentId> = self
            .agents()
            .await?
            .into_iter()
            .map(|a| (a.slug.to_string(), a.id))
            .collect();
        let mut ids = existing.clone();
        let mut created = Vec::new();
        for planned in creation_order(&plan)? {
            if existing.contains_key(planned.slug.as_str()) {
                created.push(planned.slug.clone());
                continue;
            }
            let lookup = |s: &Option<Slug>| s.as_ref().and_then(|s| ids.get(s.as_str()).copied());
            let mut config = AgentConfig::new(
                planned.name.clone(),
                planned.archetype.clone(),
                runner,
                self.config().workspace.clone(),
            );
            config.reports_to = lookup(&planned.reports_to);
            config.reviewer_id = lookup(&planned.reviewer);
            config.heartbeat_enabled = planned.heartbeat_enabled;
            let agent = self
                .create_agent(
                    &system,
                    NewAgent {
                        slug: planned.slug.clone(),
                        config,
                    },
                )
                .await?;
            ids.insert(agent.slug.to_string(), agent.id);
            created.push(agent.slug);
        }

        let now = self.now();
        let mut settings = vec![Setting {
            key: "org_template".into(),
            value: template.into(),
            secret: false,
            updated_at: now,
        }];
        if self.inner.store.setting("issue_prefix").await?.is_none() {
            settings.push(Setting {
                key: "issue_prefix".into(),
                value: "MESA".into(),
                secret: false,
                updated_at: now,
            });
        }
        let activity = self.activity(
            &system,
            "org.bootstrapped",
            "org",
            template,
            format!(
                "bootstrapped the {template} org: {} agents on {runner}",
                created.len()
            ),
            serde_json::json!({ "template": template, "agents": created, "runner": runner }),
        );
        let mut cache = self.inner.settings.write().await;
        self.inner
            .store
            .put_settings(settings, vec![activity])
            .await?;
        *cache = crate::settings::Settings::load(self.inner.store.as_ref()).await?;
        Ok(BootstrapReport {
            template: template.to_owned(),
            archetypes: specs.len(),
            agents: created,
            runner,
        })
    }

    /// Built-in archetypes, overridden and extended by `*.md` files of the configured directory.
    async fn archetype_specs(&self) -> Result<Vec<ArchetypeSpec>> {
        let mut by_slug: BTreeMap<String, ArchetypeSpec> = catalog::builtin_archetypes()?
            .into_iter()
            .map(|s| (s.slug.to_string(), s))
            .collect();
        if let Some(dir) = &self.config().archetypes_dir {
            let io = |what: String| move |source| CoreError::Io { what, source };
            let mut entries = tokio::fs::read_dir(dir).await.map_err(io(format!(
                "cannot read archetype directory {}",
                dir.display()
            )))?;
            while let Some(entry) = entries.next_entry().await.map_err(io(format!(
                "cannot read archetype directory {}",
                dir.display()
            )))? {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("md") {
                    continue;
                }
                let text = tokio::fs::read_to_string(&path)
                    .await
                    .map_err(io(format!("cannot read {}", path.display())))?;
                let spec = ArchetypeSpec::parse(&path.display().to_string(), &text)
                    .map_err(|e| CoreError::Conflict(e.to_string()))?;
                by_slug.insert(spec.slug.to_string(), spec);
            }
        }
        Ok(by_slug.into_values().collect())
    }
}

/// Orders planned agents so every manager and reviewer is created before those who name them.
fn creation_order(plan: &[PlannedAgent]) -> Result<Vec<&PlannedAgent>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(plan.len());
    while out.len() < plan.len() {
        let before = out.len();
        for agent in plan {
            if done.contains(agent.slug.as_str()) {
                continue;
            }
            let ready = [&agent.reports_to, &agent.reviewer]
                .into_iter()
                .flatten()
                .all(|dep| done.contains(dep.as_str()));
            if ready {
                done.insert(agent.slug.as_str());
                out.push(agent);
            }
        }
        if out.len() == before {
            return Err(CoreError::Embedded(
                "the template's reporting and review lines depend on each other in a loop".into(),
            ));
        }
    }
    Ok(out)
}
