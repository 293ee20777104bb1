//! Sections 3 and 4: the context every agent gets (work block, directives, skills, reflections)
//! and the CEO's view of the organization (roster, decisions, approvals, backlog).

use mesa_domain::RunMode;

use super::input::{OrgContext, PromptInput, ReflectionNote, RosterEntry, SkillRef, WorkBlockCard};
use super::subject::{approvals, issue_line};
use super::text::{self, Budget};

const GOAL_CAP: usize = 2_000;
const MAX_MEMBERS: usize = 40;
const MAX_DIRECTIVES: usize = 20;
const DIRECTIVE_CAP: usize = 400;
const MAX_SKILLS: usize = 10;
const MAX_REFLECTIONS: usize = 5;
/// All reflections together (SPEC §4.3: at most 5, at most 2,000 characters).
const REFLECTIONS_CAP: usize = 2_000;
const MAX_ROSTER: usize = 60;
const MAX_DECISIONS: usize = 25;
const BACKLOG_CAP: usize = 8 * 1024;

/// `## Context`, or nothing when there is none.
pub(super) fn section(input: &PromptInput, budget: &mut Budget) -> Option<String> {
    let parts: Vec<String> = [
        input.work_block.as_ref().map(|b| work_block(b, budget)),
        directives(&input.directives, budget),
        skills(&input.skills, budget),
        reflections(&input.reflections, budget),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!("## Context\n\n{}", parts.join("\n\n")))
}

fn work_block(block: &WorkBlockCard, budget: &mut Budget) -> String {
    let mut parts = vec![format!(
        "### Active work block: {} ({})",
        text::one_line(&block.title, 200),
        block.status
    )];
    let goal = text::block(budget, &block.goal, GOAL_CAP, "");
    if !goal.is_empty() {
        parts.push(format!("Goal:\n\n{}", text::quote(&goal)));
    }
    if let Some(ns) = &block.north_star {
        let current = ns.current.map_or("not measured yet".to_owned(), |v| {
            format!("now {}", text::number(v))
        });
        let target = ns
            .target
            .map(|v| format!(", target {}", text::number(v)))
            .unwrap_or_default();
        parts.push(format!(
            "North star: {} — {current}{target}.",
            text::one_line(&ns.metric, 200)
        ));
    }
    if !block.issues.is_empty() {
        let lines = block.issues.iter().map(|i| format!("{})", issue_line(i)));
        let lines = text::bounded_lines(budget, lines, MAX_MEMBERS, "issues");
        parts.push(format!("Issues in the block:\n\n{}", lines.join("\n")));
    }
    parts.join("\n\n")
}

fn directives(directives: &[String], budget: &mut Budget) -> Option<String> {
    let items: Vec<_> = directives
        .iter()
        .map(|d| text::one_line(d, DIRECTIVE_CAP))
        .filter(|d| !d.is_empty())
        .map(|d| format!("- {d}"))
        .collect();
    if items.is_empty() {
        return None;
    }
    let lines = text::bounded_lines(budget, items.into_iter(), MAX_DIRECTIVES, "directives");
    Some(format!(
        "### Directives from the board (always apply)\n\n{}",
        lines.join("\n")
    ))
}

fn skills(skills: &[SkillRef], budget: &mut Budget) -> Option<String> {
    if skills.is_empty() {
        return None;
    }
    let lines = skills.iter().map(skill_line);
    let lines = text::bounded_lines(budget, lines, MAX_SKILLS, "skills");
    Some(format!(
        "### Skills that may help (read the ones that fit before you start)\n\n{}",
        lines.join("\n")
    ))
}

fn skill_line(skill: &SkillRef) -> String {
    let slug = text::url_safe(&skill.slug);
    let title = text::one_line(&skill.title, 200);
    let api = format!("`GET $MESA_API_URL/api/v1/skills/{slug}`");
    let how = match skill.path.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(path) => format!("read {} (or {api})", text::code(path, 256)),
        _ => api,
    };
    format!("- **{title}** (`{slug}`): {how}")
}

fn reflections(notes: &[ReflectionNote], budget: &mut Budget) -> Option<String> {
    let mut own = Budget::new(REFLECTIONS_CAP);
    let mut items = Vec::new();
    for note in notes.iter().take(MAX_REFLECTIONS) {
        if own.left() == 0 {
            break;
        }
        let body = text::block(budget, &note.body, own.left(), "");
        own.spend(body.len());
        if body.is_empty() {
            continue;
        }
        let about = note
            .issue_key
            .as_ref()
            .map(|k| format!(" on {k}"))
            .unwrap_or_default();
        items.push(format!(
            "- {}{about} ({}):\n{}",
            text::when(note.at),
            note.outcome,
            indent(&text::quote(&body))
        ));
    }
    if items.is_empty() {
        return None;
    }
    Some(format!(
        "### What you learned before (your reflections)\n\n{}",
        items.join("\n")
    ))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `## Organization` for the CEO (task, heartbeat and cron runs), or nothing.
pub(super) fn org_section(input: &PromptInput, budget: &mut Budget) -> Option<String> {
    if !input.agent.is_ceo() || matches!(input.mode, RunMode::Review | RunMode::Audit) {
        return None;
    }
    let org = input.org.as_ref()?;
    let parts: Vec<String> = [
        roster(org, budget),
        decisions(org, budget),
        approvals("### Pending approvals", &org.approvals, budget),
        backlog(org, budget),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!("## Organization\n\n{}", parts.join("\n\n")))
}

fn roster(org: &OrgContext, budget: &mut Budget) -> Option<String> {
    if org.roster.is_empty() {
        return None;
    }
    let lines = org.roster.iter().map(roster_line);
    let lines = text::bounded_lines(budget, lines, MAX_ROSTER, "agents");
    Some(format!("### Team (assign by slug)\n\n{}", lines.join("\n")))
}

fn roster_line(a: &RosterEntry) -> String {
    let manager = a
        .reports_to
        .as_deref()
        .map(|m| format!("reports to {}", text::code(m, 64)))
        .unwrap_or_else(|| "reports to the board".to_owned());
    let unavailable = a
        .unavailable
        .as_deref()
        .map(|u| format!("; unavailable: {}", text::one_line(u, 120)))
        .unwrap_or_default();
    format!(
        "- {} — {}, {}; {manager}; load: {} open {}, {} {} in flight{unavailable}",
        text::code(&a.slug, 64),
        text::one_line(&a.name, 100),
        text::one_line(&a.role, 100),
        a.open_issues,
        plural(a.open_issues, "issue", "issues"),
        a.runs_in_flight,
        plural(a.runs_in_flight, "run", "runs"),
    )
}

fn plural<'a>(n: u32, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn decisions(org: &OrgContext, budget: &mut Budget) -> Option<String> {
    if org.needs_decision.is_empty() {
        return None;
    }
    let lines = org.needs_decision.iter().map(|d| {
        format!(
            "{}): {}",
            issue_line(&d.issue),
            text::one_line(&d.reason, 300)
        )
    });
    let lines = text::bounded_lines(budget, lines, MAX_DECISIONS, "issues");
    Some(format!(
        "### Issues that need your decision\n\n{}",
        lines.join("\n")
    ))
}

fn backlog(org: &OrgContext, budget: &mut Budget) -> Option<String> {
    let text = text::block(
        budget,
        org.backlog.as_deref().unwrap_or(""),
        BACKLOG_CAP,
        "; read the rest in artifact-docs/backlog.md",
    );
    if text.is_empty() {
        return None;
    }
    Some(format!(
        "### Backlog input (`artifact-docs/backlog.md`)\n\n{}\n\nTurn each new item into work \
         (search for similar issues first). When this run succeeds, Mesa moves the processed \
         section to `artifact-docs/backlog.done.md`.",
        text::quote(&text)
    ))
}
