//! The self-improvement loop and the board's operational levers (SPEC §4.3, §6, §9.3):
//! reflections, skills, memory, directives, crons, scheduler pause, and the run and audit reads.

use mesa_domain::entity::{Audit, Cron, Directive, MemoryItem, Reflection, Run, Setting, Skill};
use mesa_domain::{
    Actor, AgentId, Body, CronId, DirectiveId, DomainEvent, IssueKey, ReflectionId,
    ReflectionOutcome, RunId, RunMode, RunStatus, Slug, Title, ValidationError, Version, WikiSlug,
};
use mesa_store::{Created, Page, PageRequest, RunFilter, Versioned};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;
use crate::settings::Settings;

/// The setting that holds the scheduler's pause switch.
pub const SCHEDULER_PAUSED: &str = "scheduler_paused";

/// Longest tag, and most tags on a skill or memory item.
const MAX_TAG_CHARS: usize = 64;
const MAX_TAGS: usize = 20;
/// Longest directive text.
const MAX_DIRECTIVE_CHARS: usize = 2000;

/// A new skill (SPEC §1 Skill).
#[derive(Debug, Clone)]
pub struct NewSkill {
    /// Unique slug.
    pub slug: Slug,
    /// Title.
    pub title: Title,
    /// Markdown.
    pub body: Body,
    /// Tags for relevance.
    pub tags: Vec<String>,
    /// `reflection:<id>`, `wiki:<slug>`, `board` or `agent`; default `board` for the board and
    /// `agent` for agents.
    pub source: Option<String>,
}

/// A promotion to a skill whose title and body may come from its source (SPEC §4.3): a
/// reflection (`reflection:<id>`: its body, its first line as the title) or a wiki page
/// (`wiki:<slug>`: its content and title). What is given wins over the source.
#[derive(Debug, Clone)]
pub struct SkillPromotion {
    /// Unique slug.
    pub slug: Slug,
    /// Title; from the source when omitted.
    pub title: Option<Title>,
    /// Markdown; from the source when omitted.
    pub body: Option<Body>,
    /// Tags for relevance.
    pub tags: Vec<String>,
    /// `reflection:<id>`, `wiki:<slug>`, `board` or `agent` (see [`NewSkill::source`]).
    pub source: Option<String>,
}

/// At most this many reflections go into a prompt (SPEC §4.3).
pub(crate) const PROMPT_REFLECTIONS: usize = 5;
/// ... and at most this many characters of them (the prompt builder trims the last one).
pub(crate) const PROMPT_REFLECTION_CHARS: usize = 2_000;
/// At most this many skills go into a prompt.
pub(crate) const PROMPT_SKILLS: u32 = 5;
/// Longest reflection taken from a run's output.
const MAX_EXTRACTED_REFLECTION: usize = 4_000;
/// Longest title made from a reflection's first line.
const MAX_DERIVED_TITLE: usize = 120;

/// The text an issue is matched on for relevance: title first (the store keeps the first
/// words when there are too many), then the labels, then the description.
pub(crate) fn relevance_text(title: &str, labels: &[String], description: &str) -> String {
    format!("{title}\n{}\n{description}", labels.join(" "))
}

/// The reflections for a prompt (SPEC §4.3): those on the same issue first, then the most
/// relevant to it, then the most recent; each once; at most [`PROMPT_REFLECTIONS`]; no more
/// once [`PROMPT_REFLECTION_CHARS`] characters are taken.
pub(crate) fn pick_reflections(
    same_issue: Vec<Reflection>,
    relevant: Vec<Reflection>,
    recent: Vec<Reflection>,
) -> Vec<Reflection> {
    let mut out: Vec<Reflection> = Vec::new();
    let mut chars = 0;
    for r in same_issue.into_iter().chain(relevant).chain(recent) {
        if out.len() == PROMPT_REFLECTIONS || chars >= PROMPT_REFLECTION_CHARS {
            break;
        }
        if r.body.trim().is_empty() || out.iter().any(|o| o.id == r.id) {
            continue;
        }
        chars += r.body.chars().count();
        out.push(r);
    }
    out
}

/// The final `REFLECTION:` block of a run's output (SPEC §4.3): the text after the last line
/// that starts with `REFLECTION:` (after optional Markdown heading, emphasis or quote marks),
/// to the end, trimmed and cut at 4,000 characters. `None` without such a line or when the
/// block is empty.
pub fn parse_reflection_block(text: &str) -> Option<String> {
    const MARKER: &str = "REFLECTION:";
    let lines: Vec<&str> = text.lines().collect();
    let (at, rest) = lines.iter().enumerate().rev().find_map(|(i, line)| {
        let line = line.trim_start_matches(|c: char| c.is_whitespace() || "#*_>".contains(c));
        line.strip_prefix(MARKER).map(|rest| (i, rest))
    })?;
    let first = rest.trim_start_matches(|c: char| "*_".contains(c)).trim();
    let mut block = String::from(first);
    for line in &lines[at + 1..] {
        block.push('\n');
        block.push_str(line);
    }
    let block = block.trim();
    if block.is_empty() {
        return None;
    }
    Some(block.chars().take(MAX_EXTRACTED_REFLECTION).collect())
}

/// A skill title from a reflection: its first non-empty line without Markdown marks, at most
/// 120 characters.
fn title_from(text: &str) -> Option<Title> {
    let line = text
        .lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || "#*_>-`".contains(c)))
        .find(|l| !l.is_empty())?;
    let mut title: String = line.chars().take(MAX_DERIVED_TITLE).collect();
    if line.chars().count() > MAX_DERIVED_TITLE {
        title.push('…');
    }
    Title::parse(&title).ok()
}

/// A new cron (SPEC §1 Cron, §6.4).
#[derive(Debug, Clone)]
pub struct NewCron {
    /// Agent slug or id.
    pub agent: String,
    /// The prompt.
    pub task: Body,
    /// A 5-field cron expression or an interval (`20m`, `1h`, `1d`).
    pub schedule: String,
    /// Default true.
    pub active: bool,
}

/// Changes to a cron; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct CronPatch {
    /// Agent slug or id.
    pub agent: Option<String>,
    /// The prompt.
    pub task: Option<Body>,
    /// New schedule.
    pub schedule: Option<String>,
    /// On or off.
    pub active: Option<bool>,
    /// The version the change was made on.
    pub expected: Option<Version>,
}

/// Cleans a tag list: trimmed, non-empty, at most 64 characters each and 20 in all.
pub fn parse_tags(field: &'static str, tags: &[String]) -> Result<Vec<String>, ValidationError> {
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::new(
            field,
            format!("{field} may hold at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS || t.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                format!("{field}: each tag must be 1..{MAX_TAG_CHARS} characters on one line"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Checks a schedule: a 5-field cron expression (`*/15 * * * 1-5`) or an interval of a whole
/// number of minutes, hours or days (`20m`, `1h`, `1d`). Returns the interval in seconds for
/// intervals.
pub fn parse_schedule(text: &str) -> Result<Option<i64>, ValidationError> {
    let t = text.trim();
    let bad = || {
        ValidationError::new(
            "schedule",
            format!(
                "schedule must be a 5-field cron expression or an interval such as 20m, 1h, 1d, got {:?}",
                t.chars().take(40).collect::<String>()
            ),
        )
    };
    if let Some(unit) = t.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd')) {
        let n: i64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
        let per = match unit {
            'm' => 60,
            'h' => 3600,
            _ => 86_400,
        };
        return if (1..=366 * 24 * 60).contains(&n) && n * per <= 366 * 86_400 {
            Ok(Some(n * per))
        } else {
            Err(bad())
        };
    }
    let fields: Vec<&str> = t.split_whitespace().collect();
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    if fields.len() != 5 {
        return Err(bad());
    }
    for (field, (lo, hi)) in fields.iter().zip(ranges) {
        if !cron_field_ok(field, lo, hi) {
            return Err(bad());
        }
    }
    Ok(None)
}

fn cron_field_ok(field: &str, lo: u32, hi: u32) -> bool {
    let num = |s: &str| s.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n));
    field.split(',').all(|part| {
        let range = match part.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(s) if s >= 1 && s <= hi.max(1) => r,
                _ => return false,
            },
            None => part,
        };
        if range == "*" {
            return true;
        }
        match range.split_once('-') {
            Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
            None => num(range).is_some(),
        }
    })
}

fn parse_source(source: Option<&str>, actor: &Actor) -> Result<String, ValidationError> {
    let bad = |m: &str| ValidationError::new("source", m.to_owned());
    let Some(s) = source.map(str::trim) else {
        return Ok(if actor.is_board() { "board" } else { "agent" }.to_owned());
    };
    if s == "board" || s == "agent" {
        return Ok(s.to_owned());
    }
    if let Some(id) = s.strip_prefix("reflection:") {
        ReflectionId::parse(id).map_err(|_| bad("source reflection:<id> needs a reflection id"))?;
        return Ok(s.to_owned());
    }
    if let Some(slug) = s.strip_prefix("wiki:") {
        WikiSlug::parse(slug).map_err(|_| bad("source wiki:<slug> needs a wiki page slug"))?;
        return Ok(s.to_owned());
    }
    Err(bad(
        "source must be board, agent, reflection:<id> or wiki:<slug>",
    ))
}

fn directive_text(text: &str) -> Result<String, ValidationError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_DIRECTIVE_CHARS || t.contains('\0') {
        return Err(ValidationError::new(
            "text",
            format!("text must be 1..{MAX_DIRECTIVE_CHARS} characters"),
        ));
    }
    Ok(t.to_owned())
}

impl Mesa {
    /// Posts a reflection (SPEC §4.3). Only agents reflect; with a run key the reflection is
    /// bound to that run and its issue. Without an `outcome`, a finished run's status decides it
    /// (failed, timed out or cancelled → `failed`), otherwise `succeeded`.
    pub async fn post_reflection(
        &self,
        actor: &Actor,
        run_id: Option<RunId>,
        body: Body,
        outcome: Option<ReflectionOutcome>,
    ) -> Result<Reflection> {
        let Some(agent_id) = actor.agent_id() else {
            return Err(CoreError::Forbidden(
                "only agents post reflections, about their own runs".into(),
            ));
        };
        let run = match run_id {
            Some(id) => {
                let run = self.inner.store.run(id).await?;
                if run.agent_id != agent_id {
                    return Err(CoreError::Forbidden(
                        "a reflection is about one of your own runs".into(),
                    ));
                }
                Some(run)
            }
            None => None,
        };
        let outcome = outcome.unwrap_or(match run.as_ref().map(|r| r.status) {
            Some(RunStatus::Failed | RunStatus::TimedOut | RunStatus::Cancelled) => {
                ReflectionOutcome::Failed
            }
            _ => ReflectionOutcome::Succeeded,
        });
        let reflection = Reflection {
            id: Self::new_id(),
            agent_id,
            run_id,
            issue_key: run.and_then(|r| r.issue_key),
            outcome,
            body: body.into_string(),
            created_at: self.now(),
        };
        let activity = self.activity(
            actor,
            "reflection.created",
            "reflection",
            reflection.id.to_string(),
            format!("{actor} reflected ({})", outcome.as_str()),
            serde_json::json!({
                "run_id": reflection.run_id.map(|r| r.to_string()),
                "issue_key": reflection.issue_key.as_ref().map(|k| k.as_str().to_owned()),
                "outcome": outcome.as_str(),
            }),
        );
        let stored = self
            .inner
            .store
            .create_reflection(Created::new(reflection, vec![activity]))
            .await?;
        Ok(stored)
    }

    /// Recent reflections of an agent, newest first.
    pub async fn reflections(
        &self,
        agent: mesa_domain::AgentId,
        limit: u32,
    ) -> Result<Vec<Reflection>> {
        Ok(self
            .inner
            .store
            .reflections(agent, limit.clamp(1, 500))
            .await?)
    }

    /// Promotes a practice to a skill: the board, the CEO or an auditor (SPEC §4.3).
    pub async fn create_skill(&self, actor: &Actor, new: NewSkill) -> Result<Skill> {
        self.require_skill_promoter(actor).await?;
        let tags = parse_tags("tags", &new.tags)?;
        let source = parse_source(new.source.as_deref(), actor)?;
        if let Some(id) = source.strip_prefix("reflection:") {
            self.source_reflection(id).await?;
        }
        if let Some(slug) = source.strip_prefix("wiki:") {
            let slug = WikiSlug::parse_field("source", slug)?;
            match self.inner.store.wiki_page(&slug).await {
                Err(mesa_store::StoreError::NotFound { .. }) => {
                    return Err(CoreError::unknown(
                        "source",
                        format!("no wiki page named {slug}"),
                    ));
                }
                other => {
                    other?;
                }
            }
        }
        let now = self.now();
        let skill = Skill {
            id: Self::new_id(),
            slug: new.slug,
            title: new.title,
            body: new.body.into_string(),
            tags,
            source,
            promoted_by: actor.to_string(),
            uses: 0,
            successes: 0,
            active: true,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "skill.created",
            "skill",
            skill.slug.as_str(),
            format!("promoted skill {}", skill.slug),
            serde_json::json!({ "title": skill.title, "source": skill.source }),
        );
        Ok(self
            .inner
            .store
            .create_skill(Created::new(skill, vec![activity]))
            .await?)
    }

    /// Promotes a reflection, a wiki page or a given text to a skill (SPEC §4.3): title and
    /// body default to the source's (see [`SkillPromotion`]). Same rights as
    /// [`Mesa::create_skill`].
    pub async fn promote_skill(&self, actor: &Actor, p: SkillPromotion) -> Result<Skill> {
        self.require_skill_promoter(actor).await?;
        let source = parse_source(p.source.as_deref(), actor)?;
        let (title, body) = match (p.title, p.body) {
            (Some(title), Some(body)) => (title, body),
            (title, body) => {
                let (from_title, from_body) = self.skill_source_text(&source).await?;
                (title.unwrap_or(from_title), body.unwrap_or(from_body))
            }
        };
        self.create_skill(
            actor,
            NewSkill {
                slug: p.slug,
                title,
                body,
                tags: p.tags,
                source: Some(source),
            },
        )
        .await
    }

    /// The title and body a skill takes from its source.
    async fn skill_source_text(&self, source: &str) -> Result<(Title, Body)> {
        if let Some(id) = source.strip_prefix("reflection:") {
            let r = self.source_reflection(id).await?;
            let title = title_from(&r.body).ok_or_else(|| {
                ValidationError::new("title", "the reflection has no line to make a title of")
            })?;
            return Ok((title, Body::parse(&r.body)?));
        }
        if let Some(slug) = source.strip_prefix("wiki:") {
            let slug = WikiSlug::parse_field("source", slug)?;
            let page = match self.inner.store.wiki_page(&slug).await {
                Err(mesa_store::StoreError::NotFound { .. }) => {
                    return Err(CoreError::unknown(
                        "source",
                        format!("no wiki page named {slug}"),
                    ));
                }
                other => other?,
            };
            return Ok((page.title, Body::parse(&page.content)?));
        }
        Err(ValidationError::new(
            "body",
            "title and body are required unless the source is a reflection or a wiki page",
        )
        .into())
    }

    /// The reflection named by a `reflection:<id>` source.
    async fn source_reflection(&self, id: &str) -> Result<Reflection> {
        let id = ReflectionId::parse(id)
            .map_err(|_| ValidationError::new("source", "source reflection:<id> needs an id"))?;
        match self.inner.store.reflection(id).await {
            Err(mesa_store::StoreError::NotFound { .. }) => {
                Err(CoreError::unknown("source", format!("no reflection {id}")))
            }
            other => Ok(other?),
        }
    }

    /// The reflections a run of `agent` is shown (SPEC §4.3, [`pick_reflections`]): with an
    /// issue, those on it, then those matching `relevance` (the issue's text), then the newest.
    pub(crate) async fn prompt_reflections(
        &self,
        agent: AgentId,
        issue: Option<&IssueKey>,
        relevance: Option<&str>,
    ) -> Result<Vec<Reflection>> {
        let store = &self.inner.store;
        let n = PROMPT_REFLECTIONS as u32;
        let same_issue = match issue {
            Some(key) => store.reflections_on_issue(agent, key, n).await?,
            None => Vec::new(),
        };
        let relevant = match relevance {
            Some(text) if same_issue.len() < PROMPT_REFLECTIONS => {
                store.search_reflections(agent, text, n).await?
            }
            _ => Vec::new(),
        };
        let recent = if same_issue.len() + relevant.len() < PROMPT_REFLECTIONS {
            store.reflections(agent, 2 * n).await?
        } else {
            Vec::new()
        };
        Ok(pick_reflections(same_issue, relevant, recent))
    }

    /// The active skills relevant to an issue's text, best first, at most [`PROMPT_SKILLS`].
    pub(crate) async fn prompt_skills(&self, relevance: &str) -> Result<Vec<Skill>> {
        Ok(self
            .inner
            .store
            .relevant_skills(relevance, PROMPT_SKILLS)
            .await?)
    }

    /// Records that `run` was given `skills` (their uses; see docs/governance.md).
    pub(crate) async fn record_skill_uses(&self, run: RunId, skills: &[Skill]) -> Result<()> {
        let ids: Vec<_> = skills.iter().map(|s| s.id).collect();
        Ok(self
            .inner
            .store
            .record_skill_uses(run, &ids, self.now())
            .await?)
    }

    /// The reflection of a finished task or review run taken from the final `REFLECTION:`
    /// block of its output ([`parse_reflection_block`]), when the agent did not post one for
    /// the run itself. The outcome follows the run's status. Returns what was stored.
    pub async fn reflect_from_output(
        &self,
        run_id: RunId,
        output: Option<&str>,
    ) -> Result<Option<Reflection>> {
        let Some(body) = output.and_then(parse_reflection_block) else {
            return Ok(None);
        };
        let store = &self.inner.store;
        let run = store.run(run_id).await?;
        if !matches!(run.mode, RunMode::Task | RunMode::Review)
            || store.run_has_reflection(run_id).await?
        {
            return Ok(None);
        }
        let outcome = match run.status {
            RunStatus::Succeeded => ReflectionOutcome::Succeeded,
            _ => ReflectionOutcome::Failed,
        };
        let reflection = Reflection {
            id: Self::new_id(),
            agent_id: run.agent_id,
            run_id: Some(run_id),
            issue_key: run.issue_key.clone(),
            outcome,
            body: Body::parse(&body)?.into_string(),
            created_at: self.now(),
        };
        let activity = self.activity(
            &Actor::System,
            "reflection.created",
            "reflection",
            reflection.id.to_string(),
            format!(
                "took a reflection ({}) from the run's output",
                outcome.as_str()
            ),
            serde_json::json!({
                "run_id": run_id.to_string(),
                "issue_key": reflection.issue_key.as_ref().map(|k| k.as_str().to_owned()),
                "outcome": outcome.as_str(),
                "extracted": true,
            }),
        );
        Ok(Some(
            store
                .create_reflection(Created::new(reflection, vec![activity]))
                .await?,
        ))
    }

    async fn require_skill_promoter(&self, actor: &Actor) -> Result<()> {
        if actor.is_board() || matches!(actor, Actor::System) {
            return Ok(());
        }
        if let Some(id) = actor.agent_id() {
            let roster = self.roster().await?;
            if roster
                .iter()
                .any(|a| a.id == id && matches!(a.config.archetype.as_str(), "ceo" | "auditor"))
            {
                return Ok(());
            }
        }
        Err(CoreError::Forbidden(
            "only the board, the CEO or an auditor may promote skills".into(),
        ))
    }

    /// Skills by slug; with a query, full-text matches best first.
    pub async fn skills(&self, query: Option<&str>) -> Result<Vec<Skill>> {
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        Ok(self.inner.store.list_skills(query).await?)
    }

    /// One skill.
    pub async fn skill(&self, slug: &Slug) -> Result<Skill> {
        Ok(self.inner.store.skill(slug).await?)
    }

    /// Stores a memory item: an agent's own, or shared (`shared`, and always for the board).
    pub async fn store_memory(
        &self,
        actor: &Actor,
        content: Body,
        tags: &[String],
        shared: bool,
    ) -> Result<MemoryItem> {
        let tags = parse_tags("tags", tags)?;
        let owner = if shared { None } else { actor.agent_id() };
        let item = MemoryItem {
            id: Self::new_id(),
            agent_id: owner,
            content: content.into_string(),
            tags,
            created_at: self.now(),
            recalled_count: 0,
            last_recalled_at: None,
        };
        let activity = self.activity(
            actor,
            "memory.stored",
            "memory",
            item.id.to_string(),
            if owner.is_some() {
                format!("{actor} stored a memory")
            } else {
                format!("{actor} stored a shared memory")
            },
            serde_json::json!({ "shared": owner.is_none(), "tags": item.tags }),
        );
        Ok(self
            .inner
            .store
            .create_memory(Created::new(item, vec![activity]))
            .await?)
    }

    /// Recalls the caller's memory and shared memory matching every word of `query`, newest
    /// first, counting the recall (the board recalls shared memory only).
    pub async fn recall_memory(
        &self,
        actor: &Actor,
        query: &str,
        limit: u32,
    ) -> Result<Vec<MemoryItem>> {
        if query.trim().is_empty() {
            return Err(ValidationError::new("q", "q must not be empty").into());
        }
        Ok(self
            .inner
            .store
            .recall_memory(actor.agent_id(), query, limit.clamp(1, 100), self.now())
            .await?)
    }

    /// Directives, oldest first.
    pub async fn directives(&self) -> Result<Vec<Directive>> {
        Ok(self.inner.store.list_directives().await?)
    }

    /// Adds a directive (board only).
    pub async fn create_directive(
        &self,
        actor: &Actor,
        text: &str,
        active: bool,
    ) -> Result<Directive> {
        Self::require_board(actor, "give directives")?;
        let text = directive_text(text)?;
        let now = self.now();
        let d = Directive {
            id: Self::new_id(),
            text,
            active,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "directive.created",
            "directive",
            d.id.to_string(),
            "added a directive",
            serde_json::json!({ "text": d.text, "active": d.active }),
        );
        Ok(self
            .inner
            .store
            .create_directive(Created::new(d, vec![activity]))
            .await?)
    }

    /// Changes a directive's text or switches it (board only).
    pub async fn update_directive(
        &self,
        actor: &Actor,
        id: DirectiveId,
        text: Option<&str>,
        active: Option<bool>,
        expected: Option<Version>,
    ) -> Result<Directive> {
        Self::require_board(actor, "change directives")?;
        let text = text.map(directive_text).transpose()?;
        let current = self.directive(id).await?;
        let expected = expected.unwrap_or(current.version);
        let row = Directive {
            text: text.unwrap_or(current.text),
            active: active.unwrap_or(current.active),
            updated_at: self.now(),
            ..current
        };
        let activity = self.activity(
            actor,
            "directive.updated",
            "directive",
            id.to_string(),
            "changed a directive",
            serde_json::json!({ "text": row.text, "active": row.active }),
        );
        Ok(self
            .inner
            .store
            .update_directive(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?)
    }

    /// Removes a directive (board only).
    pub async fn delete_directive(&self, actor: &Actor, id: DirectiveId) -> Result<()> {
        Self::require_board(actor, "remove directives")?;
        let d = self.directive(id).await?;
        let activity = self.activity(
            actor,
            "directive.deleted",
            "directive",
            id.to_string(),
            "removed a directive",
            serde_json::json!({ "text": d.text }),
        );
        Ok(self
            .inner
            .store
            .delete_directive(id, vec![activity])
            .await?)
    }

    async fn directive(&self, id: DirectiveId) -> Result<Directive> {
        self.directives()
            .await?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| mesa_store::StoreError::not_found("directive", &id).into())
    }

    /// Crons, oldest first.
    pub async fn crons(&self) -> Result<Vec<Cron>> {
        Ok(self.inner.store.list_crons().await?)
    }

    /// Schedules a task for an agent (board only).
    pub async fn create_cron(&self, actor: &Actor, new: NewCron) -> Result<Cron> {
        Self::require_board(actor, "schedule crons")?;
        let interval = parse_schedule(&new.schedule)?;
        let agent = self.resolve_agent("agent", &new.agent).await?;
        let now = self.now();
        let cron = Cron {
            id: Self::new_id(),
            agent_id: agent.id,
            task: new.task.into_string(),
            schedule: new.schedule.trim().to_owned(),
            active: new.active,
            last_run_at: None,
            next_run_at: interval.map(|s| now + std::time::Duration::from_secs(s.unsigned_abs())),
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "cron.created",
            "cron",
            cron.id.to_string(),
            format!("scheduled {} for {}", cron.schedule, agent.slug),
            serde_json::json!({ "agent": agent.slug, "schedule": cron.schedule, "active": cron.active }),
        );
        Ok(self
            .inner
            .store
            .create_cron(Created::new(cron, vec![activity]))
            .await?)
    }

    /// Changes a cron (board only).
    pub async fn update_cron(&self, actor: &Actor, id: CronId, patch: CronPatch) -> Result<Cron> {
        Self::require_board(actor, "change crons")?;
        let interval = patch.schedule.as_deref().map(parse_schedule).transpose()?;
        let agent = match &patch.agent {
            Some(a) => Some(self.resolve_agent("agent", a).await?),
            None => None,
        };
        let current = self.cron(id).await?;
        let expected = patch.expected.unwrap_or(current.version);
        let now = self.now();
        let next_run_at = match (&patch.schedule, interval) {
            (Some(_), Some(Some(secs))) => {
                Some(now + std::time::Duration::from_secs(secs.unsigned_abs()))
            }
            (Some(_), _) => None,
            (None, _) => current.next_run_at,
        };
        let row = Cron {
            agent_id: agent.as_ref().map_or(current.agent_id, |a| a.id),
            task: patch.task.map_or(current.task.clone(), Body::into_string),
            schedule: patch
                .schedule
                .as_deref()
                .map_or(current.schedule.clone(), |s| s.trim().to_owned()),
            active: patch.active.unwrap_or(current.active),
            next_run_at,
            updated_at: now,
            ..current
        };
        let activity = self.activity(
            actor,
            "cron.updated",
            "cron",
            id.to_string(),
            format!("changed cron {}", row.schedule),
            serde_json::json!({ "schedule": row.schedule, "active": row.active }),
        );
        Ok(self
            .inner
            .store
            .update_cron(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?)
    }

    /// Deletes a cron (board only).
    pub async fn delete_cron(&self, actor: &Actor, id: CronId) -> Result<()> {
        Self::require_board(actor, "delete crons")?;
        let c = self.cron(id).await?;
        let activity = self.activity(
            actor,
            "cron.deleted",
            "cron",
            id.to_string(),
            format!("deleted cron {}", c.schedule),
            serde_json::json!({}),
        );
        Ok(self.inner.store.delete_cron(id, vec![activity]).await?)
    }

    /// One cron.
    pub async fn cron(&self, id: CronId) -> Result<Cron> {
        self.crons()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| mesa_store::StoreError::not_found("cron", &id).into())
    }

    /// Whether the board paused the scheduler (setting `scheduler_paused`).
    pub async fn scheduler_paused(&self) -> bool {
        self.settings().await.flag(SCHEDULER_PAUSED)
    }

    /// Pauses or resumes the scheduler (board only). The switch is the setting
    /// `scheduler_paused`; a change writes an audit row and publishes `SchedulerPaused` or
    /// `SchedulerResumed` after the commit. Asking for the current state writes nothing.
    pub async fn set_scheduler_paused(&self, actor: &Actor, paused: bool) -> Result<bool> {
        let what = if paused {
            "pause the scheduler"
        } else {
            "resume the scheduler"
        };
        Self::require_board(actor, what)?;
        let mut cache = self.inner.settings.write().await;
        if cache.flag(SCHEDULER_PAUSED) == paused {
            return Ok(paused);
        }
        let (action, summary) = if paused {
            ("scheduler.paused", "paused the scheduler")
        } else {
            ("scheduler.resumed", "resumed the scheduler")
        };
        let activity = self.activity(
            actor,
            action,
            "scheduler",
            "scheduler",
            summary,
            serde_json::json!({ "paused": paused }),
        );
        let row = Setting {
            key: SCHEDULER_PAUSED.to_owned(),
            value: paused.to_string(),
            secret: false,
            updated_at: self.now(),
        };
        self.inner
            .store
            .put_settings(vec![row], vec![activity])
            .await?;
        *cache = Settings::load(self.inner.store.as_ref()).await?;
        drop(cache);
        self.publish([if paused {
            DomainEvent::SchedulerPaused
        } else {
            DomainEvent::SchedulerResumed
        }]);
        Ok(paused)
    }

    /// Runs matching the filter, newest first, without their large text fields.
    pub async fn runs(&self, filter: &RunFilter, page: &PageRequest) -> Result<Page<Run>> {
        Ok(self.inner.store.list_runs(filter, page).await?)
    }

    /// One run as `actor` may see it: an agent sees the captured output (`stdout`) only of its
    /// own runs (SPEC §9.1).
    pub async fn run_for(&self, actor: &Actor, id: RunId) -> Result<Run> {
        let mut run = self.inner.store.run(id).await?;
        let own = actor.agent_id() == Some(run.agent_id);
        if !(actor.is_board() || matches!(actor, Actor::System) || own) {
            run.stdout = None;
        }
        Ok(run)
    }

    /// Audits, newest first.
    pub async fn audits(&self) -> Result<Vec<Audit>> {
        Ok(self.inner.store.list_audits().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(parse_schedule("20m").unwrap(), Some(1200));
        assert_eq!(parse_schedule("1h").unwrap(), Some(3600));
        assert_eq!(parse_schedule("1d").unwrap(), Some(86_400));
        assert_eq!(parse_schedule("*/15 * * * 1-5").unwrap(), None);
        assert_eq!(parse_schedule("0 9 1,15 * *").unwrap(), None);
        for bad in [
            "",
            "0m",
            "20x",
            "m",
            "* * * *",
            "61 * * * *",
            "* * * * * *",
            "a b c d e",
            "5-1 * * * *",
            "*/0 * * * *",
        ] {
            assert_eq!(parse_schedule(bad).unwrap_err().field, "schedule", "{bad}");
        }
    }

    #[test]
    fn reflection_blocks_are_taken_from_the_end() {
        assert_eq!(
            parse_reflection_block("Done.\n\nREFLECTION: Tests first.\nThen the code.\n")
                .as_deref(),
            Some("Tests first.\nThen the code.")
        );
        // Markdown around the marker; the last block wins; a block may start on the next line.
        assert_eq!(
            parse_reflection_block("REFLECTION: old\n## **REFLECTION:**\n- keep diffs small")
                .as_deref(),
            Some("- keep diffs small")
        );
        assert_eq!(
            parse_reflection_block("  > REFLECTION: quoted").as_deref(),
            Some("quoted")
        );
        for none in [
            "",
            "no block here",
            "REFLECTION:",
            "REFLECTION:   \n  \n",
            "My REFLECTION: x",
        ] {
            assert_eq!(parse_reflection_block(none), None, "{none:?}");
        }
        let long = format!("REFLECTION: {}", "é".repeat(10_000));
        assert_eq!(
            parse_reflection_block(&long).unwrap().chars().count(),
            MAX_EXTRACTED_REFLECTION
        );
    }

    #[test]
    fn titles_come_from_the_first_line() {
        assert_eq!(
            title_from("\n## Run the migrations first\nbecause...")
                .unwrap()
                .as_str(),
            "Run the migrations first"
        );
        let long = title_from(&"word ".repeat(100)).unwrap();
        assert!(long.as_str().ends_with('…'));
        assert!(title_from(" \n ** \n").is_none());
    }

    fn note(n: u8, issue: Option<&str>, chars: usize) -> Reflection {
        Reflection {
            id: ReflectionId::from_uuid(uuid::Uuid::from_u128(u128::from(n))),
            agent_id: AgentId::from_uuid(uuid::Uuid::from_u128(1)),
            run_id: None,
            issue_key: issue.map(|k| IssueKey::parse(k).unwrap()),
            outcome: ReflectionOutcome::Succeeded,
            body: "x".repeat(chars),
            created_at: mesa_domain::Timestamp::from_millis(i64::from(n)),
        }
    }

    #[test]
    fn picks_same_issue_then_relevant_then_recent() {
        let same = vec![note(1, Some("MESA-1"), 10)];
        let relevant = vec![note(2, None, 10), note(1, Some("MESA-1"), 10)];
        let recent = vec![note(3, None, 10), note(2, None, 10), note(4, None, 10)];
        let got: Vec<u8> = pick_reflections(same, relevant, recent)
            .iter()
            .map(|r| r.created_at.as_millis() as u8)
            .collect();
        assert_eq!(got, [1, 2, 3, 4]);
        // A long first reflection leaves no room for others.
        let got = pick_reflections(vec![note(1, None, 2_500)], vec![note(2, None, 5)], vec![]);
        assert_eq!(got.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn a_final_block_is_found_whatever_comes_before(
            before in "(\\PC|\n){0,300}",
            lesson in "[a-zA-Z ,.]{0,50}(\n[a-zA-Z ,.]{0,50}){0,3}",
        ) {
            let text = format!("{before}\nREFLECTION: {lesson}");
            let got = parse_reflection_block(&text);
            let want = lesson.trim();
            if want.is_empty() {
                // An empty final block: nothing, or an earlier block of `before`.
                proptest::prop_assert!(got.is_none() || before.contains("REFLECTION:"));
            } else {
                // The same words in the same lines (spaces at line ends may go).
                let words = |t: &str| -> Vec<Vec<String>> {
                    t.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
                };
                proptest::prop_assert_eq!(got.as_deref().map(words), Some(words(want)));
            }
            // Whatever the text, a block is trimmed, non-empty and bounded.
            if let Some(b) = parse_reflection_block(&before) {
                proptest::prop_assert!(!b.is_empty() && b.trim() == b);
                proptest::prop_assert!(b.chars().count() <= MAX_EXTRACTED_REFLECTION);
            }
        }

        #[test]
        fn picked_reflections_respect_the_caps(
            same in proptest::collection::vec((0u8..20, 0usize..900), 0..8),
            relevant in proptest::collection::vec((0u8..20, 0usize..900), 0..8),
            recent in proptest::collection::vec((0u8..20, 0usize..900), 0..12),
        ) {
            let make = |v: &[(u8, usize)]| -> Vec<Reflection> {
                v.iter().map(|&(n, c)| note(n, None, c)).collect()
            };
            let (same, relevant, recent) = (make(&same), make(&relevant), make(&recent));
            let got = pick_reflections(same.clone(), relevant.clone(), recent.clone());
            proptest::prop_assert!(got.len() <= PROMPT_REFLECTIONS);
            // Each once, never empty.
            for (i, r) in got.iter().enumerate() {
                proptest::prop_assert!(!r.body.is_empty());
                proptest::prop_assert!(got[..i].iter().all(|o| o.id != r.id));
            }
            // Everything but the last fits in the character budget.
            let before_last: usize = got.iter().rev().skip(1).map(|r| r.body.len()).sum();
            proptest::prop_assert!(before_last < PROMPT_REFLECTION_CHARS);
            // The same issue's come first, in order.
            let firsts: Vec<_> = same.iter().filter(|r| !r.body.is_empty()).fold(
                Vec::new(),
                |mut acc: Vec<ReflectionId>, r| {
                    if !acc.contains(&r.id) { acc.push(r.id); }
                    acc
                },
            );
            let n = firsts.len().min(got.len());
            let got_ids: Vec<_> = got.iter().map(|r| r.id).collect();
            proptest::prop_assert_eq!(&got_ids[..n], &firsts[..n]);
        }
    }

    #[test]
    fn tags_are_cleaned() {
        assert_eq!(
            parse_tags("tags", &[" rust ".into(), "rust".into()]).unwrap(),
            vec!["rust".to_owned()]
        );
        assert!(parse_tags("tags", &[String::new()]).is_err());
    }
}
