//! Labels and the wiki (SPEC §1 Label, WikiPage; §13).

use mesa_domain::entity::{Label, WikiPage, WikiRevision};
use mesa_domain::{Actor, Color, LabelId, Name, Title, Version, WikiSlug};
use mesa_store::{Created, Page, PageRequest, StoreError, Versioned};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

impl Mesa {
    /// All labels.
    pub async fn labels(&self) -> Result<Vec<Label>> {
        Ok(self.inner.store.list_labels().await?)
    }

    /// Creates a label (board only).
    pub async fn create_label(&self, actor: &Actor, name: Name, color: Color) -> Result<Label> {
        Self::require_board(actor, "create labels")?;
        let now = self.now();
        let label = Label {
            id: Self::new_id(),
            name,
            color,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "label.created",
            "label",
            label.id.to_string(),
            format!("created label {}", label.name),
            serde_json::json!({ "name": label.name, "color": label.color.as_str() }),
        );
        Ok(self
            .inner
            .store
            .create_label(Created::new(label, vec![activity]))
            .await?)
    }

    /// Renames or recolors a label (board only).
    pub async fn update_label(
        &self,
        actor: &Actor,
        id: LabelId,
        name: Option<Name>,
        color: Option<Color>,
        expected: Option<Version>,
    ) -> Result<Label> {
        Self::require_board(actor, "change labels")?;
        let current = self.inner.store.label(id).await?;
        let expected = expected.unwrap_or(current.version);
        let row = Label {
            name: name.unwrap_or(current.name),
            color: color.unwrap_or(current.color),
            updated_at: self.now(),
            ..current
        };
        let activity = self.activity(
            actor,
            "label.updated",
            "label",
            id.to_string(),
            format!("changed label {}", row.name),
            serde_json::json!({ "name": row.name, "color": row.color.as_str() }),
        );
        Ok(self
            .inner
            .store
            .update_label(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?)
    }

    /// Deletes a label and detaches it from every issue (board only).
    pub async fn delete_label(&self, actor: &Actor, id: LabelId) -> Result<()> {
        Self::require_board(actor, "delete labels")?;
        let label = self.inner.store.label(id).await?;
        let activity = self.activity(
            actor,
            "label.deleted",
            "label",
            id.to_string(),
            format!("deleted label {}", label.name),
            serde_json::json!({}),
        );
        Ok(self.inner.store.delete_label(id, vec![activity]).await?)
    }

    /// Wiki pages by title.
    pub async fn wiki_pages(&self, page: &PageRequest) -> Result<Page<WikiPage>> {
        Ok(self.inner.store.list_wiki_pages(page).await?)
    }

    /// One wiki page.
    pub async fn wiki_page(&self, slug: &WikiSlug) -> Result<WikiPage> {
        Ok(self.inner.store.wiki_page(slug).await?)
    }

    /// Revisions of a page, newest first.
    pub async fn wiki_revisions(&self, slug: &WikiSlug) -> Result<Vec<WikiRevision>> {
        Ok(self.inner.store.wiki_revisions(slug).await?)
    }

    /// Full-text search with snippets, fuzzy fallback (SPEC §13).
    pub async fn search_wiki(&self, query: &str, limit: u32) -> Result<Vec<(WikiPage, String)>> {
        Ok(self
            .inner
            .store
            .search_wiki(query, limit.clamp(1, 100))
            .await?)
    }

    /// Creates a page. Without a slug one is derived from the title; a derived slug that is
    /// taken gets `-2`, `-3`... (SPEC §13). An explicit slug that is taken is a conflict.
    pub async fn create_wiki_page(
        &self,
        actor: &Actor,
        slug: Option<WikiSlug>,
        title: Title,
        content: mesa_domain::Markdown,
    ) -> Result<WikiPage> {
        let explicit = slug.is_some();
        let base = slug.unwrap_or_else(|| WikiSlug::from_title(title.as_str()));
        for attempt in 1..=50_u32 {
            let slug = if attempt == 1 {
                base.clone()
            } else {
                let suffix = format!("-{attempt}");
                let mut stem = base.as_str().to_owned();
                stem.truncate(128 - suffix.len());
                WikiSlug::parse(&format!("{}{suffix}", stem.trim_end_matches('-')))?
            };
            let now = self.now();
            let page = WikiPage {
                id: Self::new_id(),
                slug: slug.clone(),
                title: title.clone(),
                content: content.as_str().to_owned(),
                created_by: actor.to_string(),
                updated_by: actor.to_string(),
                created_by_agent: actor.agent_id(),
                created_at: now,
                updated_at: now,
                version: Version::FIRST,
            };
            let activity = self.activity(
                actor,
                "wiki.created",
                "wiki",
                slug.as_str(),
                format!("created wiki page {slug}"),
                serde_json::json!({ "title": title }),
            );
            match self
                .inner
                .store
                .create_wiki_page(Created::new(page, vec![activity]))
                .await
            {
                Err(StoreError::Conflict { .. }) if !explicit => continue,
                other => return Ok(other?),
            }
        }
        Err(CoreError::Conflict(format!(
            "too many pages named like {base}"
        )))
    }

    /// Edits a page, keeping a revision. `expected` is the version the edit was made on.
    pub async fn update_wiki_page(
        &self,
        actor: &Actor,
        slug: &WikiSlug,
        title: Option<Title>,
        content: Option<mesa_domain::Markdown>,
        expected: Option<Version>,
    ) -> Result<WikiPage> {
        let current = self.wiki_page(slug).await?;
        let expected = expected.unwrap_or(current.version);
        let row = WikiPage {
            title: title.unwrap_or(current.title.clone()),
            content: content.map_or(current.content.clone(), |c| c.as_str().to_owned()),
            updated_by: actor.to_string(),
            updated_at: self.now(),
            ..current
        };
        let activity = self.activity(
            actor,
            "wiki.updated",
            "wiki",
            slug.as_str(),
            format!("edited wiki page {slug}"),
            serde_json::json!({ "version": expected.next() }),
        );
        Ok(self
            .inner
            .store
            .update_wiki_page(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?)
    }

    /// Deletes a page: the board any page, an agent only pages it created.
    pub async fn delete_wiki_page(&self, actor: &Actor, slug: &WikiSlug) -> Result<()> {
        let page = self.wiki_page(slug).await?;
        let allowed = actor.is_board()
            || (actor.agent_id().is_some() && actor.agent_id() == page.created_by_agent);
        if !allowed {
            return Err(CoreError::Forbidden(
                "agents may delete only wiki pages they created".into(),
            ));
        }
        let activity = self.activity(
            actor,
            "wiki.deleted",
            "wiki",
            slug.as_str(),
            format!("deleted wiki page {slug}"),
            serde_json::json!({}),
        );
        Ok(self
            .inner
            .store
            .delete_wiki_page(slug, vec![activity])
            .await?)
    }
}
