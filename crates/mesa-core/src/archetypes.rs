//! Archetypes and their versions (SPEC §1 Archetype, §5): edit, roll back, list.

use mesa_domain::entity::{Archetype, ArchetypeSource, ArchetypeVersion};
use mesa_domain::{Actor, Markdown, Slug, Title};
use mesa_store::ArchetypeVersionWrite;

use crate::error::Result;
use crate::mesa::Mesa;

impl Mesa {
    /// All archetypes (current versions).
    pub async fn archetypes(&self) -> Result<Vec<Archetype>> {
        Ok(self.inner.store.list_archetypes().await?)
    }

    /// One archetype's current version.
    pub async fn archetype(&self, slug: &Slug) -> Result<Archetype> {
        Ok(self.inner.store.archetype(slug).await?)
    }

    /// Versions of an archetype, newest first.
    pub async fn archetype_versions(&self, slug: &Slug) -> Result<Vec<ArchetypeVersion>> {
        Ok(self.inner.store.archetype_versions(slug).await?)
    }

    /// The board edits an archetype: a new version. `expected` is the version the edit was
    /// made on (`None`: the current one).
    pub async fn edit_archetype(
        &self,
        actor: &Actor,
        slug: &Slug,
        title: Option<Title>,
        body: Markdown,
        expected: Option<i64>,
    ) -> Result<Archetype> {
        Self::require_board(actor, "edit archetypes")?;
        let current = self.archetype(slug).await?;
        let write = ArchetypeVersionWrite {
            slug: slug.clone(),
            title: title.unwrap_or(current.title),
            body,
            source: ArchetypeSource::Board,
            expected_version: Some(expected.unwrap_or(current.version)),
            at: self.now(),
            approve_patch: None,
            activity: vec![self.activity(
                actor,
                "archetype.edited",
                "archetype",
                slug.as_str(),
                format!("edited archetype {slug} (version {})", current.version + 1),
                serde_json::json!({ "version": current.version + 1 }),
            )],
        };
        Ok(self.inner.store.write_archetype_version(write).await?)
    }

    /// Restores version `version` of an archetype as a new version (board only).
    pub async fn rollback_archetype(
        &self,
        actor: &Actor,
        slug: &Slug,
        version: i64,
    ) -> Result<Archetype> {
        Self::require_board(actor, "roll back archetypes")?;
        let current = self.archetype(slug).await?;
        let old = self.inner.store.archetype_version(slug, version).await?;
        let write = ArchetypeVersionWrite {
            slug: slug.clone(),
            title: old.title,
            body: old.body,
            source: ArchetypeSource::Rollback(version),
            expected_version: Some(current.version),
            at: self.now(),
            approve_patch: None,
            activity: vec![self.activity(
                actor,
                "archetype.rolled_back",
                "archetype",
                slug.as_str(),
                format!("rolled archetype {slug} back to version {version}"),
                serde_json::json!({ "restored": version, "version": current.version + 1 }),
            )],
        };
        Ok(self.inner.store.write_archetype_version(write).await?)
    }
}
