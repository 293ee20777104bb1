//! What agents learn and share: reflections, skills, memory, the wiki (SPEC §1, §4.3, §13).

use crate::{
    AgentId, IssueKey, MemoryItemId, ReflectionId, ReflectionOutcome, RunId, SkillId, Slug,
    Timestamp, Title, Version, WikiPageId, WikiSlug,
};

/// What an agent learned from a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reflection {
    /// Identity.
    pub id: ReflectionId,
    /// The agent.
    pub agent_id: AgentId,
    /// The run it reflects on.
    pub run_id: Option<RunId>,
    /// The issue of that run.
    pub issue_key: Option<IssueKey>,
    /// How the run ended.
    pub outcome: ReflectionOutcome,
    /// Markdown.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

/// A reusable, promoted practice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skill {
    /// Identity.
    pub id: SkillId,
    /// Unique slug.
    pub slug: Slug,
    /// Title.
    pub title: Title,
    /// Markdown.
    pub body: String,
    /// Tags for relevance.
    pub tags: Vec<String>,
    /// `reflection:<id>`, `wiki:<slug>` or `board`.
    pub source: String,
    /// Actor string of the promoter.
    pub promoted_by: String,
    /// Runs that used it.
    pub uses: i64,
    /// Those of them whose issue ended `done`.
    pub successes: i64,
    /// Inactive skills are not offered.
    pub active: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// An agent's (or shared) memory item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryItem {
    /// Identity.
    pub id: MemoryItemId,
    /// Owner; `None` = shared.
    pub agent_id: Option<AgentId>,
    /// What to remember.
    pub content: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// How often recalled.
    pub recalled_count: i64,
    /// Last recall.
    pub last_recalled_at: Option<Timestamp>,
}

/// A wiki page (SPEC §1 WikiPage, §13).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WikiPage {
    /// Identity.
    pub id: WikiPageId,
    /// Unique slug.
    pub slug: WikiSlug,
    /// Title.
    pub title: Title,
    /// Markdown.
    pub content: String,
    /// Actor string of the creator.
    pub created_by: String,
    /// Actor string of the last editor.
    pub updated_by: String,
    /// The creating agent, if an agent (agents may delete only their own pages).
    pub created_by_agent: Option<AgentId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version; also the revision number.
    pub version: Version,
}

/// One kept edit of a wiki page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WikiRevision {
    /// The page.
    pub page_id: WikiPageId,
    /// Revision number = the page version it produced.
    pub version: Version,
    /// Title at that revision.
    pub title: Title,
    /// Content at that revision.
    pub content: String,
    /// Actor string of the editor.
    pub edited_by: String,
    /// When.
    pub created_at: Timestamp,
}
