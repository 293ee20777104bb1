//! The prompt builder (SPEC §7.3): one pure function from a [`PromptInput`] snapshot to the text
//! an agent CLI is started with. No IO, no clock, deterministic; `docs/prompts.md` shows the
//! layout.
//!
//! Sections, in order, each left out when it has nothing to say:
//! 1. the archetype body (first in the prompt when the runner has no system prompt), then the
//!    identity line;
//! 2. the run's subject: the task, the review, the heartbeat's inbox, or the cron/audit job, with
//!    the workspace (branch and worktree, or a note that the run is not isolated);
//! 3. context: active work block, directives, skills, reflections;
//! 4. for the CEO: roster, issues needing decisions, pending approvals, backlog input;
//! 5. rules; 6. the API reference (curl lines with `$MESA_API_URL` and `$MESA_API_KEY`, and the
//!    `mesa` client commands when installed).
//!
//! Every piece of variable text is bounded (per item, and all together by one budget), and cut
//! text carries a marker saying what was left out, so a prompt stays well under 100 KiB.

mod api;
mod context;
mod input;
mod subject;
mod text;

#[cfg(test)]
mod tests;

use mesa_domain::{RunMode, RunnerKind};

pub use input::{
    AgentCard, ApprovalLine, ChangeLine, CommentLine, DecisionItem, HeartbeatContext, InboxItem,
    IssueCard, JobContext, MemberIssue, NorthStar, OrgContext, ParentSummary, PromptInput,
    ReflectionNote, ReviewContext, RosterEntry, SkillRef, WorkBlockCard, Workspace,
};

use text::Budget;

/// At most this many of the latest comments are shown.
pub const MAX_COMMENTS: usize = 10;

/// Longest archetype body kept, in bytes.
const ARCHETYPE_CAP: usize = 12 * 1024;

/// A built prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPrompt {
    /// The system prompt (the archetype body) for runners that take one; `None` otherwise, the
    /// body then opens `prompt`.
    pub system: Option<String>,
    /// The prompt.
    pub prompt: String,
}

/// Whether `runner` takes a separate system prompt (Claude Code's
/// `--append-system-prompt-file`); the others get the archetype body first in the prompt.
pub fn supports_system_prompt(runner: RunnerKind) -> bool {
    matches!(runner, RunnerKind::ClaudeCode)
}

/// Builds the prompt of one run from its snapshot.
pub fn build(input: &PromptInput) -> BuiltPrompt {
    let mut budget = Budget::new(text::TOTAL_BUDGET);
    let as_system = supports_system_prompt(input.runner);
    let body = if as_system {
        input.agent.archetype_body.clone()
    } else {
        text::demote_headings(&input.agent.archetype_body, 1)
    };
    let archetype = text::block(
        &mut budget,
        &body,
        ARCHETYPE_CAP,
        " from the role description",
    );
    let mut sections = Vec::new();
    if !as_system && !archetype.is_empty() {
        sections.push(format!("# Your role\n\n{archetype}\n\n---"));
    }
    sections.push(identity(input));
    sections.extend(subject::section(input, &mut budget));
    sections.extend(context::section(input, &mut budget));
    sections.extend(context::org_section(input, &mut budget));
    sections.push(api::rules(input));
    sections.push(api::reference(input));
    let mut prompt = sections.join("\n\n");
    prompt.push('\n');
    BuiltPrompt {
        system: (as_system && !archetype.is_empty()).then_some(archetype),
        prompt,
    }
}

/// The identity line: who the agent is, what run this is, what woke it, and when.
fn identity(input: &PromptInput) -> String {
    let agent = &input.agent;
    let name = text::non_empty(text::one_line(&agent.name, 100), "an agent");
    let slug = text::code(
        &text::non_empty(text::one_line(&agent.slug, 64), "unknown"),
        64,
    );
    let role = text::one_line(&agent.role, 100);
    let role = if role.is_empty() {
        String::new()
    } else {
        format!(", the {role}")
    };
    let subject = match (&input.issue, input.mode) {
        (Some(issue), RunMode::Task | RunMode::Review) => {
            format!(" on {}", issue.key)
        }
        _ => String::new(),
    };
    let woken = if input.triggers.is_empty() {
        String::new()
    } else {
        let names: Vec<_> = input.triggers.iter().map(|t| t.as_str()).collect();
        format!(" (woken by: {})", names.join(", "))
    };
    format!(
        "You are {name} ({slug}){role}, an AI agent of a team run by Mesa. This is {mode} \
         run{subject}{woken}. Now: {now}.",
        mode = match input.mode {
            RunMode::Audit => "an audit",
            RunMode::Task => "a task",
            RunMode::Review => "a review",
            RunMode::Heartbeat => "a heartbeat",
            RunMode::Cron => "a cron",
        },
        now = text::when(input.now),
    )
}
