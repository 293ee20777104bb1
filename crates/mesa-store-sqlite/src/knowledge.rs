//! [`KnowledgeStore`]: reflections, skills, memory and the wiki (SPEC §4.3, §13).
//!
//! Search never passes user text to FTS5 as syntax: a query is cut into words (letters and
//! digits, as the `unicode61` tokenizer sees them), each word becomes a quoted prefix term
//! `"word"*`, and the terms are joined by implicit AND (wiki) or `OR` (skills, ranked by bm25).
//! Wiki snippets are HTML-escaped text in which only the `<mark>`…`</mark>` highlights are tags.
//! When full-text search finds no page, [`fuzzy_rank`] matches titles and slugs fzf-style.
//!
//! Relevance for prompts (SPEC §4.3, docs/governance.md): [`relevance_terms`] keeps the telling
//! words of an issue's text; reflections are searched in `reflections_fts` (migration 0007,
//! stemmed, one agent's newest [`REFLECTION_WINDOW`] only), skills in `skills_fts` (active only).
//! A skill's `uses` and `successes` are counted from `skill_uses` when it is read.

use async_trait::async_trait;
use mesa_domain::entity::{MemoryItem, NewActivity, Reflection, Skill, WikiPage, WikiRevision};
use mesa_domain::{
    AgentId, IssueKey, MemoryItemId, ReflectionId, ReflectionOutcome, RunId, SkillId, Slug,
    Timestamp, Title, ValidationError, Version, WikiPageId, WikiSlug,
};
use mesa_store::{
    Created, KnowledgeStore, Page, PageRequest, Result, StoreError, Versioned, WikiWrite,
};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::agents::stale_or_missing;
use crate::error::{backend, map_err};
use crate::rows::{decode_cursor, encode_cursor, json, ms_opt, parse, to_json, ts, ts_opt};

/// At most this many words of a query are searched for.
const MAX_TERMS: usize = 16;
/// Highlight delimiters handed to FTS5 `snippet()`: private-use characters, replaced by
/// `<mark>` tags after the snippet is HTML-escaped.
const MARK_OPEN: &str = "\u{e000}";
const MARK_CLOSE: &str = "\u{e001}";
/// Tokens around a match in a wiki snippet.
const SNIPPET_TOKENS: i64 = 24;
/// Characters of content shown for a page found by the fuzzy fallback.
const PREVIEW_CHARS: usize = 160;

// ---------------------------------------------------------------------------------------------
// Reflections

#[derive(sqlx::FromRow)]
struct ReflectionRow {
    id: String,
    agent_id: String,
    run_id: Option<String>,
    issue_key: Option<String>,
    outcome: String,
    body: String,
    created_at: i64,
}

/// The columns of a [`ReflectionRow`] from `reflections r`.
macro_rules! reflection_columns {
    () => {
        "r.id, r.agent_id, r.run_id, r.issue_key, r.outcome, r.body, r.created_at"
    };
}

/// How many of an agent's newest reflections a relevance search ranks.
const REFLECTION_WINDOW: i64 = 500;

/// The agent's token in `reflections_fts` (migration 0007): `a` and the id's hex digits.
fn agent_token(agent: AgentId) -> String {
    format!("a{}", agent.to_string().replace('-', ""))
}

/// At most this many words of an issue's text are looked up for relevance.
const MAX_RELEVANCE_TERMS: usize = 24;

/// Words too common to say what a text is about: never relevance terms.
const STOP_WORDS: &[&str] = &[
    "about", "after", "again", "all", "also", "and", "any", "are", "been", "before", "being",
    "but", "can", "could", "did", "does", "each", "every", "for", "from", "had", "has", "have",
    "how", "into", "its", "just", "may", "more", "most", "must", "not", "now", "once", "only",
    "other", "our", "out", "over", "should", "some", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "under", "very", "was", "were",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
];

/// The words of a text that say what it is about, as quoted FTS5 terms (`"word"`, or the
/// prefix term `"word"*` with `prefix`): lowercase, at least three characters, no stop word,
/// each once, the first [`MAX_RELEVANCE_TERMS`] in order (so an issue's title, given first,
/// always counts). No character of the text is ever read as FTS5 syntax.
fn relevance_terms(text: &str, prefix: bool) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.chars().count() < 3 || STOP_WORDS.contains(&w.as_str()) || words.contains(&w) {
            continue;
        }
        words.push(w);
        if words.len() == MAX_RELEVANCE_TERMS {
            break;
        }
    }
    let star = if prefix { "*" } else { "" };
    words
        .into_iter()
        .map(|w| format!("\"{w}\"{star}"))
        .collect()
}

fn decode_reflection(row: ReflectionRow) -> Result<Reflection> {
    const E: &str = "reflection";
    Ok(Reflection {
        id: parse(E, ReflectionId::parse(&row.id))?,
        agent_id: parse(E, AgentId::parse(&row.agent_id))?,
        run_id: parse(E, row.run_id.as_deref().map(RunId::parse).transpose())?,
        issue_key: parse(E, row.issue_key.as_deref().map(IssueKey::parse).transpose())?,
        outcome: parse(E, ReflectionOutcome::parse(&row.outcome))?,
        body: row.body,
        created_at: ts(row.created_at),
    })
}

// ---------------------------------------------------------------------------------------------
// Skills

#[derive(sqlx::FromRow)]
struct SkillRow {
    id: String,
    slug: String,
    title: String,
    body: String,
    tags: String,
    source: String,
    promoted_by: String,
    uses: i64,
    successes: i64,
    active: bool,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

/// The columns of a [`SkillRow`] from `skills s`. `uses` and `successes` are counted from
/// `skill_uses` on top of the stored figures (docs/governance.md): a use is a run the skill was
/// given to; a success is such a run that ended `succeeded` on an issue that is `done` now.
macro_rules! skill_columns {
    () => {
        "s.id, s.slug, s.title, s.body, s.tags, s.source, s.promoted_by, \
         s.uses + (SELECT COUNT(*) FROM skill_uses u WHERE u.skill_id = s.id) AS uses, \
         s.successes + (SELECT COUNT(*) FROM skill_uses u JOIN runs r ON r.id = u.run_id \
             JOIN issues i ON i.key = r.issue_key \
             WHERE u.skill_id = s.id AND r.status = 'succeeded' AND i.status = 'done') \
             AS successes, \
         s.active, s.created_at, s.updated_at, s.version"
    };
}

fn decode_skill(row: SkillRow) -> Result<Skill> {
    const E: &str = "skill";
    Ok(Skill {
        id: parse(E, SkillId::parse(&row.id))?,
        slug: parse(E, Slug::parse(&row.slug))?,
        title: parse(E, Title::parse(&row.title))?,
        body: row.body,
        tags: json(E, "tags", &row.tags)?,
        source: row.source,
        promoted_by: row.promoted_by,
        uses: row.uses,
        successes: row.successes,
        active: row.active,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

// ---------------------------------------------------------------------------------------------
// Memory

#[derive(sqlx::FromRow)]
struct MemoryRow {
    id: String,
    agent_id: Option<String>,
    content: String,
    tags: String,
    created_at: i64,
    recalled_count: i64,
    last_recalled_at: Option<i64>,
}

fn decode_memory(row: MemoryRow) -> Result<MemoryItem> {
    const E: &str = "memory_item";
    Ok(MemoryItem {
        id: parse(E, MemoryItemId::parse(&row.id))?,
        agent_id: parse(E, row.agent_id.as_deref().map(AgentId::parse).transpose())?,
        content: row.content,
        tags: json(E, "tags", &row.tags)?,
        created_at: ts(row.created_at),
        recalled_count: row.recalled_count,
        last_recalled_at: ts_opt(row.last_recalled_at),
    })
}

/// The words of a recall query as `LIKE` patterns (`%`, `_` and `\` escaped with `\`).
fn like_words(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .take(MAX_TERMS)
        .map(|w| {
            let mut out = String::with_capacity(w.len() + 2);
            for c in w.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Wiki

#[derive(sqlx::FromRow)]
struct WikiRow {
    id: String,
    slug: String,
    title: String,
    content: String,
    created_by: String,
    updated_by: String,
    created_by_agent: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

macro_rules! wiki_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "slug, ",
            $p,
            "title, ",
            $p,
            "content, ",
            $p,
            "created_by, ",
            $p,
            "updated_by, ",
            $p,
            "created_by_agent, ",
            $p,
            "created_at, ",
            $p,
            "updated_at, ",
            $p,
            "version"
        )
    };
}

fn decode_wiki(row: WikiRow) -> Result<WikiPage> {
    const E: &str = "wiki_page";
    Ok(WikiPage {
        id: parse(E, WikiPageId::parse(&row.id))?,
        slug: parse(E, WikiSlug::parse(&row.slug))?,
        title: parse(E, Title::parse(&row.title))?,
        content: row.content,
        created_by: row.created_by,
        updated_by: row.updated_by,
        created_by_agent: parse(
            E,
            row.created_by_agent
                .as_deref()
                .map(AgentId::parse)
                .transpose(),
        )?,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

#[derive(sqlx::FromRow)]
struct WikiHitRow {
    #[sqlx(flatten)]
    page: WikiRow,
    snippet: String,
}

#[derive(sqlx::FromRow)]
struct RevisionRow {
    page_id: String,
    version: i64,
    title: String,
    content: String,
    edited_by: String,
    created_at: i64,
}

fn decode_revision(row: RevisionRow) -> Result<WikiRevision> {
    const E: &str = "wiki_revision";
    Ok(WikiRevision {
        page_id: parse(E, WikiPageId::parse(&row.page_id))?,
        version: Version(row.version),
        title: parse(E, Title::parse(&row.title))?,
        content: row.content,
        edited_by: row.edited_by,
        created_at: ts(row.created_at),
    })
}

async fn insert_wiki_revision(
    conn: &mut SqliteConnection,
    page: &WikiPage,
    edited_by: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO wiki_revisions (page_id, version, title, content, edited_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(page.id.to_string())
    .bind(page.version.0)
    .bind(page.title.as_str())
    .bind(&page.content)
    .bind(edited_by)
    .bind(at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_err("wiki_revision", &page.slug))?;
    Ok(())
}

/// The words of a search query as FTS5 terms: each a quoted prefix term, so no character of
/// the input is ever read as FTS5 syntax.
fn fts_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect()
}

/// Escapes text for HTML (element content and attribute values).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An FTS5 snippet made with [`MARK_OPEN`]/[`MARK_CLOSE`] as safe HTML with `<mark>` tags.
fn snippet_html(raw: &str) -> String {
    escape_html(raw)
        .replace(MARK_OPEN, "<mark>")
        .replace(MARK_CLOSE, "</mark>")
}

/// The beginning of a page's content as safe HTML, for pages found without a text match.
fn preview_html(content: &str) -> String {
    let text: String = content.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut preview: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().nth(PREVIEW_CHARS).is_some() {
        preview.push('…');
    }
    escape_html(&preview)
}

/// How well `needle` (lowercase, no whitespace) matches `hay` as an in-order subsequence,
/// fzf-style: `None` when some character is missing; otherwise a key where smaller is better:
/// (characters skipped inside the tightest match, where it starts, length of `hay`).
fn fuzzy_score(needle: &[char], hay: &str) -> Option<(usize, usize, usize)> {
    let hay: Vec<char> = hay.chars().flat_map(char::to_lowercase).collect();
    let first = *needle.first()?;
    let mut best: Option<(usize, usize, usize)> = None;
    for start in (0..hay.len()).filter(|&i| hay[i] == first) {
        let mut want = 1;
        let mut end = start;
        for (i, c) in hay.iter().enumerate().skip(start + 1) {
            if want == needle.len() {
                break;
            }
            if *c == needle[want] {
                want += 1;
                end = i;
            }
        }
        if want < needle.len() {
            // No later start can match either: fewer characters remain.
            break;
        }
        let key = (end + 1 - start - needle.len(), start, hay.len());
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best
}

/// Ranks `(id, slug, title)` candidates by fuzzy match of `query` against title and slug, best
/// first, keeping at most `limit`. Ties keep title order.
fn fuzzy_rank(query: &str, candidates: Vec<(String, String, String)>, limit: usize) -> Vec<String> {
    let needle: Vec<char> = query
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if needle.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<((usize, usize, usize), String)> = candidates
        .into_iter()
        .filter_map(|(id, slug, title)| {
            let best = match (fuzzy_score(&needle, &title), fuzzy_score(&needle, &slug)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            best.map(|score| (score, id))
        })
        .collect();
    scored.sort_by_key(|a| a.0);
    scored.into_iter().take(limit).map(|(_, id)| id).collect()
}

/// Cursor of the wiki list (title order): the last page's id and title.
fn wiki_cursor(page: &WikiRow) -> String {
    encode_cursor(0, &format!("{}|{}", page.id, page.title))
}

fn decode_wiki_cursor(cursor: &str) -> Result<(String, String)> {
    let (_, rest) = decode_cursor(cursor)?;
    rest.split_once('|')
        .map(|(id, title)| (id.to_owned(), title.to_owned()))
        .ok_or_else(|| {
            StoreError::Invalid(ValidationError::new(
                "cursor",
                "cursor is not one this server issued",
            ))
        })
}

#[async_trait]
impl KnowledgeStore for SqliteStore {
    async fn create_reflection(&self, r: Created<Reflection>) -> Result<Reflection> {
        let Created { row: r, activity } = r;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO reflections (id, agent_id, run_id, issue_key, outcome, body, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id.to_string())
        .bind(r.agent_id.to_string())
        .bind(r.run_id.map(|id| id.to_string()))
        .bind(r.issue_key.as_ref().map(IssueKey::as_str))
        .bind(r.outcome.as_str())
        .bind(&r.body)
        .bind(r.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("reflection", &r.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(r)
    }

    async fn reflections(&self, agent: AgentId, limit: u32) -> Result<Vec<Reflection>> {
        let rows: Vec<ReflectionRow> = sqlx::query_as(
            "SELECT id, agent_id, run_id, issue_key, outcome, body, created_at FROM reflections \
             WHERE agent_id = $1 ORDER BY created_at DESC, id DESC LIMIT (SELECT $2)",
        )
        .bind(agent.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_reflection).collect()
    }

    async fn reflection(&self, id: ReflectionId) -> Result<Reflection> {
        let row: Option<ReflectionRow> = sqlx::query_as(concat!(
            "SELECT ",
            reflection_columns!(),
            " FROM reflections r WHERE r.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_reflection(row.ok_or_else(|| StoreError::not_found("reflection", &id))?)
    }

    async fn run_has_reflection(&self, run: RunId) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reflections WHERE run_id = $1)")
            .bind(run.to_string())
            .fetch_one(&self.reader)
            .await
            .map_err(backend)
    }

    async fn reflections_on_issue(
        &self,
        agent: AgentId,
        issue: &IssueKey,
        limit: u32,
    ) -> Result<Vec<Reflection>> {
        let rows: Vec<ReflectionRow> = sqlx::query_as(concat!(
            "SELECT ",
            reflection_columns!(),
            " FROM reflections r WHERE r.agent_id = $1 AND r.issue_key = $2 \
             ORDER BY r.created_at DESC, r.id DESC LIMIT (SELECT $3)"
        ))
        .bind(agent.to_string())
        .bind(issue.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_reflection).collect()
    }

    async fn search_reflections(
        &self,
        agent: AgentId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Reflection>> {
        let words = relevance_terms(query, false);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // The agent's token AND any word, among rowids from the agent's
        // REFLECTION_WINDOW-th newest reflection on: bm25 ranks at most that many rows.
        let expr = format!(
            "agent : \"{}\" AND body : ({})",
            agent_token(agent),
            words.join(" OR ")
        );
        let floor: Option<i64> = sqlx::query_scalar(
            "SELECT rowid FROM reflections WHERE agent_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $2",
        )
        .bind(agent.to_string())
        .bind(REFLECTION_WINDOW - 1)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        // The index is ranked first, on its own (a plain join may probe it once per row of
        // the agent); the agent check after it only guards against a token collision.
        let rows: Vec<ReflectionRow> = sqlx::query_as(concat!(
            "WITH hits AS MATERIALIZED (\
                 SELECT rowid, bm25(reflections_fts, 0.0, 1.0) AS score FROM reflections_fts \
                 WHERE reflections_fts MATCH $1 AND rowid >= $2 \
                 ORDER BY score LIMIT (SELECT $3)) \
             SELECT ",
            reflection_columns!(),
            " FROM hits CROSS JOIN reflections r ON r.rowid = hits.rowid \
             WHERE r.agent_id = $4 \
             ORDER BY hits.score, r.created_at DESC, r.id DESC"
        ))
        .bind(expr)
        .bind(floor.unwrap_or(0))
        .bind(i64::from(limit))
        .bind(agent.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_reflection).collect()
    }

    async fn create_skill(&self, s: Created<Skill>) -> Result<Skill> {
        let Created {
            row: mut s,
            activity,
        } = s;
        s.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO skills (id, slug, title, body, tags, source, promoted_by, uses, \
             successes, active, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)",
        )
        .bind(s.id.to_string())
        .bind(s.slug.as_str())
        .bind(s.title.as_str())
        .bind(&s.body)
        .bind(to_json(&s.tags))
        .bind(&s.source)
        .bind(&s.promoted_by)
        .bind(s.uses)
        .bind(s.successes)
        .bind(s.active)
        .bind(s.created_at.as_millis())
        .bind(s.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("skill", &s.slug))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(s)
    }

    async fn update_skill(&self, write: Versioned<Skill>) -> Result<Skill> {
        let Versioned {
            row: mut s,
            expected,
            activity,
        } = write;
        let id = s.id.to_string();
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE skills SET slug = $1, title = $2, body = $3, tags = $4, source = $5, \
             promoted_by = $6, active = $7, updated_at = $8, \
             version = version + 1 WHERE id = $9 AND version = $10 RETURNING version",
        )
        .bind(s.slug.as_str())
        .bind(s.title.as_str())
        .bind(&s.body)
        .bind(to_json(&s.tags))
        .bind(&s.source)
        .bind(&s.promoted_by)
        .bind(s.active)
        .bind(s.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("skill", &s.slug))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM skills WHERE id = $1",
                "skill",
                &id,
                expected,
            )
            .await);
        };
        s.version = Version(version);
        // The counts are not written (they are counted from `skill_uses`): read them back.
        let (uses, successes): (i64, i64) = sqlx::query_as(concat!(
            "SELECT ",
            skill_columns!(),
            " FROM skills s WHERE s.id = $1"
        ))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await
        .map(|row: SkillRow| (row.uses, row.successes))
        .map_err(backend)?;
        (s.uses, s.successes) = (uses, successes);
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(s)
    }

    async fn skill(&self, slug: &Slug) -> Result<Skill> {
        let row: Option<SkillRow> = sqlx::query_as(concat!(
            "SELECT ",
            skill_columns!(),
            " FROM skills s WHERE s.slug = $1"
        ))
        .bind(slug.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_skill(row.ok_or_else(|| StoreError::not_found("skill", slug))?)
    }

    async fn list_skills(&self, query: Option<&str>) -> Result<Vec<Skill>> {
        let terms = query.map(fts_terms).unwrap_or_default();
        let rows: Vec<SkillRow> = if terms.is_empty() {
            sqlx::query_as(concat!(
                "SELECT ",
                skill_columns!(),
                " FROM skills s ORDER BY s.slug"
            ))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
        } else {
            // Any word may match (relevance for prompts); bm25 puts the best first, weighting
            // title and tags above the body.
            sqlx::query_as(concat!(
                "SELECT ",
                skill_columns!(),
                " FROM skills_fts JOIN skills s ON s.rowid = skills_fts.rowid \
                 WHERE skills_fts MATCH $1 \
                 ORDER BY bm25(skills_fts, 4.0, 8.0, 1.0, 4.0), s.slug"
            ))
            .bind(terms.join(" OR "))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
        };
        rows.into_iter().map(decode_skill).collect()
    }

    async fn relevant_skills(&self, query: &str, limit: u32) -> Result<Vec<Skill>> {
        let terms = relevance_terms(query, true);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<SkillRow> = sqlx::query_as(concat!(
            "SELECT ",
            skill_columns!(),
            " FROM skills_fts CROSS JOIN skills s ON s.rowid = skills_fts.rowid \
             WHERE skills_fts MATCH $1 AND s.active = 1 \
             ORDER BY bm25(skills_fts, 4.0, 8.0, 1.0, 4.0), s.slug LIMIT (SELECT $2)"
        ))
        .bind(terms.join(" OR "))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_skill).collect()
    }

    async fn record_skill_uses(&self, run: RunId, skills: &[SkillId], at: Timestamp) -> Result<()> {
        if skills.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = skills.iter().map(ToString::to_string).collect();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO skill_uses (skill_id, run_id, created_at) \
             SELECT value, $2, $3 FROM json_each($1)",
        )
        .bind(to_json(&ids))
        .bind(run.to_string())
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("skill_use", &run))?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn create_memory(&self, m: Created<MemoryItem>) -> Result<MemoryItem> {
        let Created { row: m, activity } = m;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO memory_items (id, agent_id, content, tags, created_at, recalled_count, \
             last_recalled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(m.id.to_string())
        .bind(m.agent_id.map(|a| a.to_string()))
        .bind(&m.content)
        .bind(to_json(&m.tags))
        .bind(m.created_at.as_millis())
        .bind(m.recalled_count)
        .bind(ms_opt(m.last_recalled_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err("memory_item", &m.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(m)
    }

    async fn recall_memory(
        &self,
        agent: Option<AgentId>,
        query: &str,
        limit: u32,
        at: Timestamp,
    ) -> Result<Vec<MemoryItem>> {
        // Every word must occur in the content or the tags (case-insensitive for ASCII).
        // `agent_id = NULL` is never true, so without an agent only shared items match.
        let words = to_json(&like_words(query));
        let mut tx = self.write_tx().await?;
        let mut rows: Vec<MemoryRow> = sqlx::query_as(
            "UPDATE memory_items SET recalled_count = recalled_count + 1, last_recalled_at = $1 \
             WHERE id IN (\
                 SELECT m.id FROM memory_items m \
                 WHERE (m.agent_id IS NULL OR m.agent_id = $2) \
                   AND NOT EXISTS (SELECT 1 FROM json_each($3) w WHERE NOT (\
                       m.content LIKE '%' || w.value || '%' ESCAPE '\\' \
                       OR m.tags LIKE '%' || w.value || '%' ESCAPE '\\')) \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT (SELECT $4)) \
             RETURNING id, agent_id, content, tags, created_at, recalled_count, last_recalled_at",
        )
        .bind(at.as_millis())
        .bind(agent.map(|a| a.to_string()))
        .bind(&words)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        // RETURNING has no order of its own.
        rows.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        rows.into_iter().map(decode_memory).collect()
    }

    async fn create_wiki_page(&self, page: Created<WikiPage>) -> Result<WikiPage> {
        let Created {
            row: mut p,
            activity,
        } = page;
        p.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO wiki_pages (id, slug, title, content, created_by, updated_by, \
             created_by_agent, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
        )
        .bind(p.id.to_string())
        .bind(p.slug.as_str())
        .bind(p.title.as_str())
        .bind(&p.content)
        .bind(&p.created_by)
        .bind(&p.updated_by)
        .bind(p.created_by_agent.map(|a| a.to_string()))
        .bind(p.created_at.as_millis())
        .bind(p.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("wiki_page", &p.slug))?;
        insert_wiki_revision(&mut tx, &p, &p.created_by, p.created_at).await?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(p)
    }

    async fn update_wiki_page(&self, write: WikiWrite) -> Result<WikiPage> {
        let WikiWrite {
            row: mut p,
            expected,
            activity,
        } = write;
        let id = p.id.to_string();
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE wiki_pages SET slug = $1, title = $2, content = $3, updated_by = $4, \
             updated_at = $5, version = version + 1 WHERE id = $6 AND version = $7 \
             RETURNING version",
        )
        .bind(p.slug.as_str())
        .bind(p.title.as_str())
        .bind(&p.content)
        .bind(&p.updated_by)
        .bind(p.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("wiki_page", &p.slug))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM wiki_pages WHERE id = $1",
                "wiki_page",
                &id,
                expected,
            )
            .await);
        };
        p.version = Version(version);
        insert_wiki_revision(&mut tx, &p, &p.updated_by, p.updated_at).await?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(p)
    }

    async fn delete_wiki_page(&self, slug: &WikiSlug, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM wiki_revisions WHERE page_id IN \
             (SELECT id FROM wiki_pages WHERE slug = $1)",
        )
        .bind(slug.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err("wiki_revision", slug))?;
        let done = sqlx::query("DELETE FROM wiki_pages WHERE slug = $1")
            .bind(slug.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err("wiki_page", slug))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("wiki_page", slug));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn wiki_page(&self, slug: &WikiSlug) -> Result<WikiPage> {
        let row: Option<WikiRow> = sqlx::query_as(concat!(
            "SELECT ",
            wiki_columns!(""),
            " FROM wiki_pages WHERE slug = $1"
        ))
        .bind(slug.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_wiki(row.ok_or_else(|| StoreError::not_found("wiki_page", slug))?)
    }

    async fn list_wiki_pages(&self, page: &PageRequest) -> Result<Page<WikiPage>> {
        let after = page.cursor.as_deref().map(decode_wiki_cursor).transpose()?;
        let (after_id, after_title) = match after {
            Some((id, title)) => (Some(id), Some(title)),
            None => (None, None),
        };
        let mut rows: Vec<WikiRow> = sqlx::query_as(concat!(
            "SELECT ",
            wiki_columns!(""),
            " FROM wiki_pages \
             WHERE ($1 IS NULL OR title > $1 COLLATE NOCASE \
                    OR (title = $1 COLLATE NOCASE AND id > $2)) \
             ORDER BY title COLLATE NOCASE, id LIMIT (SELECT $3)"
        ))
        .bind(after_title)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(wiki_cursor)
        } else {
            None
        };
        let items = rows.into_iter().map(decode_wiki).collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn wiki_revisions(&self, slug: &WikiSlug) -> Result<Vec<WikiRevision>> {
        let rows: Vec<RevisionRow> = sqlx::query_as(
            "SELECT r.page_id, r.version, r.title, r.content, r.edited_by, r.created_at \
             FROM wiki_revisions r JOIN wiki_pages p ON p.id = r.page_id \
             WHERE p.slug = $1 ORDER BY r.version DESC",
        )
        .bind(slug.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        if rows.is_empty() {
            // Every page has revision 1, so no revisions means no page.
            return Err(StoreError::not_found("wiki_page", slug));
        }
        rows.into_iter().map(decode_revision).collect()
    }

    async fn search_wiki(&self, query: &str, limit: u32) -> Result<Vec<(WikiPage, String)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let terms = fts_terms(query);
        if !terms.is_empty() {
            let hits: Vec<WikiHitRow> = sqlx::query_as(concat!(
                "SELECT ",
                wiki_columns!("p."),
                ", snippet(wiki_fts, 2, $2, $3, '…', $4) AS snippet \
                 FROM wiki_fts JOIN wiki_pages p ON p.rowid = wiki_fts.rowid \
                 WHERE wiki_fts MATCH $1 \
                 ORDER BY bm25(wiki_fts, 5.0, 10.0, 1.0), p.title LIMIT (SELECT $5)"
            ))
            .bind(terms.join(" "))
            .bind(MARK_OPEN)
            .bind(MARK_CLOSE)
            .bind(SNIPPET_TOKENS)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
            if !hits.is_empty() {
                return hits
                    .into_iter()
                    .map(|hit| Ok((decode_wiki(hit.page)?, snippet_html(&hit.snippet))))
                    .collect();
            }
        }

        // Nothing found by words: fuzzy subsequence match over titles and slugs.
        let candidates: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, slug, title FROM wiki_pages ORDER BY title, id")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        let ids = fuzzy_rank(
            query,
            candidates,
            usize::try_from(limit).unwrap_or(usize::MAX),
        );
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<WikiRow> = sqlx::query_as(concat!(
            "SELECT ",
            wiki_columns!(""),
            " FROM wiki_pages WHERE id IN (SELECT value FROM json_each($1))"
        ))
        .bind(to_json(&ids))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let mut pages: Vec<(usize, WikiPage)> = rows
            .into_iter()
            .filter_map(|row| {
                let rank = ids.iter().position(|id| *id == row.id)?;
                Some(decode_wiki(row).map(|p| (rank, p)))
            })
            .collect::<Result<_>>()?;
        pages.sort_by_key(|(rank, _)| *rank);
        Ok(pages
            .into_iter()
            .map(|(_, p)| {
                let preview = preview_html(&p.content);
                (p, preview)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_terms_quote_everything() {
        assert_eq!(
            fts_terms(r#"dep "OR" NEAR(x* ^col:y) -z"#),
            [
                r#""dep"*"#,
                r#""OR"*"#,
                r#""NEAR"*"#,
                r#""x"*"#,
                r#""col"*"#,
                r#""y"*"#,
                r#""z"*"#
            ]
        );
        assert!(fts_terms("  ++ -- ").is_empty());
        assert_eq!(fts_terms("déploiement"), [r#""déploiement"*"#]);
    }

    #[test]
    fn snippets_are_escaped_except_marks() {
        let raw = format!("a <script>{MARK_OPEN}x{MARK_CLOSE} & \"b\"");
        assert_eq!(
            snippet_html(&raw),
            "a &lt;script&gt;<mark>x</mark> &amp; &quot;b&quot;"
        );
    }

    #[test]
    fn fuzzy_prefers_compact_matches() {
        let needle: Vec<char> = "dpl".chars().collect();
        assert_eq!(fuzzy_score(&needle, "Deploy"), Some((1, 0, 6)));
        assert_eq!(fuzzy_score(&needle, "lpd"), None);
        // The tightest window wins, not the first one.
        assert_eq!(fuzzy_score(&needle, "d x x p dpl"), Some((0, 8, 11)));
        let ranked = fuzzy_rank(
            "dpl",
            vec![
                ("1".into(), "d-p-l".into(), "Data pipeline".into()),
                ("2".into(), "deploy".into(), "Deploy".into()),
                ("3".into(), "other".into(), "Other".into()),
            ],
            10,
        );
        assert_eq!(ranked, ["2", "1"]);
    }

    #[test]
    fn relevance_terms_keep_the_telling_words() {
        assert_eq!(
            relevance_terms(
                "Add the DB migration for the migration \"runner\" (v2)",
                false
            ),
            [r#""add""#, r#""migration""#, r#""runner""#]
        );
        assert_eq!(relevance_terms("Déployer*", true), [r#""déployer"*"#]);
        assert!(relevance_terms("a an to of it is the and", true).is_empty());
        let long: String = (0..100).map(|i| format!("word{i} ")).collect();
        let terms = relevance_terms(&long, false);
        assert_eq!(terms.len(), MAX_RELEVANCE_TERMS);
        assert_eq!(terms[0], r#""word0""#);
    }

    #[test]
    fn like_words_escape_wildcards() {
        assert_eq!(like_words(r"50% a_b c\d"), [r"50\%", r"a\_b", r"c\\d"]);
    }
}
