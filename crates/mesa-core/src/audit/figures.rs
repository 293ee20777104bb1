//! The auditor's figures as data, and the one pure function that renders them as compact
//! Markdown for the prompt and the Audit record (SPEC §4.3).

use mesa_domain::{IssueKey, MicroUsd, Timestamp};
use mesa_store::AgentWindowFigures;

/// Longest table cell, in characters (titles, reasons and directives are cut with `…`).
const CELL_CHARS: usize = 80;
/// Longest directive line, in characters.
const DIRECTIVE_CHARS: usize = 300;

/// One agent's row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentRow {
    /// The agent's slug.
    pub(crate) slug: String,
    /// Its archetype.
    pub(crate) archetype: String,
    /// What the store counted.
    pub(crate) figures: AgentWindowFigures,
}

/// A blocked issue's row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockedRow {
    pub(crate) key: IssueKey,
    pub(crate) title: String,
    pub(crate) assignee: Option<String>,
    pub(crate) since: Timestamp,
}

/// Drift (SPEC §3.2) over the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Drift {
    /// Open (non-terminal) issues.
    pub(crate) open: u64,
    /// Of them, rolling up to an active apex block.
    pub(crate) aligned: u64,
    /// Some unaligned open issues, newest first.
    pub(crate) unaligned: Vec<IssueKey>,
    /// Run cost in the window.
    pub(crate) spend: MicroUsd,
    /// Of it, on work that rolls up to an active apex block.
    pub(crate) aligned_spend: MicroUsd,
}

/// An archetype in use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArchetypeRow {
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) version: i64,
    /// Slugs of the agents with this archetype.
    pub(crate) agents: Vec<String>,
}

/// An active skill.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SkillRow {
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) uses: i64,
    pub(crate) successes: i64,
}

/// Everything an audit's figures show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditFigures {
    /// The window's first instant.
    pub(crate) since: Timestamp,
    /// Its end (the audit's start).
    pub(crate) until: Timestamp,
    /// Its length in days.
    pub(crate) days: u32,
    /// Agents with work in the window, by slug.
    pub(crate) agents: Vec<AgentRow>,
    /// Blocked issues now (all of them).
    pub(crate) blocked_total: u64,
    /// The longest-blocked ones.
    pub(crate) blocked: Vec<BlockedRow>,
    /// Drift.
    pub(crate) drift: Drift,
    /// Archetypes in use, by slug.
    pub(crate) archetypes: Vec<ArchetypeRow>,
    /// Active directives, oldest first.
    pub(crate) directives: Vec<String>,
    /// Active skills, by slug.
    pub(crate) skills: Vec<SkillRow>,
}

/// A table cell: one line, pipes escaped, at most [`CELL_CHARS`] characters.
pub(crate) fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = if one_line.chars().count() > CELL_CHARS {
        let mut s: String = one_line.chars().take(CELL_CHARS - 1).collect();
        s.push('…');
        s
    } else {
        one_line
    };
    cut.replace('\\', "\\\\").replace('|', "\\|")
}

/// Dollars with four decimals, computed in integers so figures never drift by rounding.
pub(crate) fn usd(amount: MicroUsd) -> String {
    let m = amount.0.max(0);
    format!("${}.{:04}", m / 1_000_000, (m % 1_000_000) / 100)
}

/// `part` of `whole` as a whole percentage, or `n/a` with nothing to measure.
fn percent(part: u64, whole: u64) -> String {
    (part.saturating_mul(100).saturating_add(whole / 2))
        .checked_div(whole)
        .map_or_else(|| "n/a".to_owned(), |p| format!("{p}%"))
}

/// The minute of a timestamp, `2026-11-25 09:30 UTC`.
fn minute(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

/// The day of a timestamp, `2026-11-25`.
fn day(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    text.get(..10).unwrap_or(&text).to_owned()
}

fn table(header: &[&str], align: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = vec![
        format!("| {} |", header.join(" | ")),
        format!("|{}|", align.join("|")),
    ];
    out.extend(rows.into_iter().map(|r| format!("| {} |", r.join(" | "))));
    out.join("\n")
}

fn agents_section(f: &AuditFigures) -> String {
    if f.agents.is_empty() {
        return "### Agents\n\nNo runs and no review rejections in the window.".to_owned();
    }
    let rows = f
        .agents
        .iter()
        .map(|a| {
            let g = &a.figures;
            let finished = g.succeeded + g.failed + g.cancelled;
            let retries = g.issue_runs.saturating_sub(g.issues);
            let per_issue = (retries.saturating_mul(100).saturating_add(g.issues / 2))
                .checked_div(g.issues)
                .map_or_else(
                    || "n/a".to_owned(),
                    |hundredths| format!("{}.{:02}", hundredths / 100, hundredths % 100),
                );
            let reasons = if g.failure_reasons.is_empty() {
                "–".to_owned()
            } else {
                g.failure_reasons
                    .iter()
                    .map(|(r, n)| format!("{} ×{n}", cell(r)))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            vec![
                cell(&a.slug),
                cell(&a.archetype),
                g.runs.to_string(),
                format!(
                    "{} ({}/{finished})",
                    percent(g.succeeded, finished),
                    g.succeeded
                ),
                g.failed.to_string(),
                g.changes_requested.to_string(),
                format!("{per_issue} ({} issues)", g.issues),
                usd(g.cost),
                g.tokens.to_string(),
                reasons,
            ]
        })
        .collect();
    let table = table(
        &[
            "agent",
            "archetype",
            "runs",
            "success",
            "failed",
            "changes requested",
            "retries per issue",
            "cost",
            "tokens",
            "common failure reasons",
        ],
        &[
            "---", "---", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "---",
        ],
        rows,
    );
    format!(
        "### Agents\n\n{table}\n\nSuccess counts finished runs (failed includes timed out). \
         Changes requested are review rejections of the issues assigned to the agent. \
         Retries per issue are task runs beyond the first on each issue worked."
    )
}

fn blocked_section(f: &AuditFigures) -> String {
    if f.blocked_total == 0 {
        return "### Blocked issues\n\nNone.".to_owned();
    }
    let rows = f
        .blocked
        .iter()
        .map(|b| {
            vec![
                b.key.to_string(),
                cell(&b.title),
                b.assignee.as_deref().map_or_else(|| "–".to_owned(), cell),
                day(b.since),
            ]
        })
        .collect();
    let more = f.blocked_total.saturating_sub(f.blocked.len() as u64);
    let tail = if more > 0 {
        format!("\n\n{more} more blocked issues are not listed.")
    } else {
        String::new()
    };
    format!(
        "### Blocked issues ({})\n\n{}{tail}",
        f.blocked_total,
        table(
            &["issue", "title", "assignee", "blocked since"],
            &["---", "---", "---", "---"],
            rows
        )
    )
}

fn drift_section(f: &AuditFigures) -> String {
    let d = &f.drift;
    let drifting = d.open.saturating_sub(d.aligned);
    let mut work = format!(
        "- Work alignment: {} of {} open issues roll up to an active apex block",
        percent(d.aligned, d.open),
        d.open
    );
    if drifting > 0 {
        let keys: Vec<String> = d.unaligned.iter().map(ToString::to_string).collect();
        let more = drifting.saturating_sub(keys.len() as u64);
        work.push_str(&format!("; {drifting} drift: {}", keys.join(", ")));
        if more > 0 {
            work.push_str(&format!(" and {more} more"));
        }
    }
    work.push('.');
    let spend_whole = u64::try_from(d.spend.0.max(0)).unwrap_or(0);
    let spend_part = u64::try_from(d.aligned_spend.0.max(0)).unwrap_or(0);
    let unaligned = MicroUsd(d.spend.0.saturating_sub(d.aligned_spend.0));
    let spend = format!(
        "- Spend alignment: {} of {} spent in the window; {} unaligned.",
        percent(spend_part, spend_whole),
        usd(d.spend),
        usd(unaligned)
    );
    format!("### Drift\n\n{work}\n{spend}")
}

fn archetypes_section(f: &AuditFigures) -> String {
    if f.archetypes.is_empty() {
        return "### Archetypes in use\n\nNone.".to_owned();
    }
    let rows = f
        .archetypes
        .iter()
        .map(|a| {
            vec![
                cell(&a.slug),
                cell(&a.title),
                a.version.to_string(),
                cell(&a.agents.join(", ")),
            ]
        })
        .collect();
    format!(
        "### Archetypes in use\n\n{}",
        table(
            &["archetype", "title", "version", "agents"],
            &["---", "---", "--:", "---"],
            rows
        )
    )
}

fn directives_section(f: &AuditFigures) -> String {
    if f.directives.is_empty() {
        return "### Active directives\n\nNone.".to_owned();
    }
    let lines: Vec<String> = f
        .directives
        .iter()
        .map(|d| {
            let line = d.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut: String = line.chars().take(DIRECTIVE_CHARS).collect();
            format!("- {cut}")
        })
        .collect();
    format!("### Active directives\n\n{}", lines.join("\n"))
}

fn skills_section(f: &AuditFigures) -> String {
    if f.skills.is_empty() {
        return "### Active skills\n\nNone.".to_owned();
    }
    let rows = f
        .skills
        .iter()
        .map(|s| {
            vec![
                cell(&s.slug),
                cell(&s.title),
                s.uses.to_string(),
                s.successes.to_string(),
            ]
        })
        .collect();
    format!(
        "### Active skills\n\n{}",
        table(
            &["skill", "title", "uses", "successes"],
            &["---", "---", "--:", "--:"],
            rows
        )
    )
}

/// Renders the figures as Markdown: the window, then one section each for agents, blocked
/// issues, drift, archetypes, directives and skills. Pure: the same figures give the same text.
pub(crate) fn render(f: &AuditFigures) -> String {
    [
        format!(
            "Window: {} to {} ({} days).",
            minute(f.since),
            minute(f.until),
            f.days
        ),
        agents_section(f),
        blocked_section(f),
        drift_section(f),
        archetypes_section(f),
        directives_section(f),
        skills_section(f),
    ]
    .join("\n\n")
}

#[cfg(test)]
mod tests;
