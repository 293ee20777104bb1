//! Section 2: what the run is about: the task, the review, the heartbeat's inbox, or the job of
//! a cron or audit run, closed by the workspace.

use mesa_domain::{IssueKey, RunMode, StageStatus};

use super::MAX_COMMENTS;
use super::input::{
    ApprovalLine, CommentLine, HeartbeatContext, IssueCard, JobContext, MemberIssue, PromptInput,
    ReviewContext, Workspace,
};
use super::text::{self, Budget};

const TITLE_CAP: usize = 200;
const DESCRIPTION_CAP: usize = 12 * 1024;
const COMMENT_CAP: usize = 1_500;
const MAX_STAGES: usize = 40;
const MAX_WARNINGS: usize = 10;
const PARENT_SUMMARY_CAP: usize = 800;
const DIFF_STAT_CAP: usize = 4 * 1024;
const DIFF_CAP: usize = 16 * 1024;
const MAX_EVIDENCE: usize = 5;
const EVIDENCE_CAP: usize = 2_000;
const MAX_INBOX: usize = 30;
const MAX_CHANGES: usize = 40;
const MAX_APPROVALS: usize = 20;
const INSTRUCTIONS_CAP: usize = 8 * 1024;
const FIGURES_CAP: usize = 24 * 1024;
const PATH_CAP: usize = 512;

/// The section for the run's mode.
pub(super) fn section(input: &PromptInput, budget: &mut Budget) -> Option<String> {
    let body = match input.mode {
        RunMode::Task => task(input, budget),
        RunMode::Review => review(input, budget),
        RunMode::Heartbeat => heartbeat(input.heartbeat.as_ref(), budget),
        RunMode::Cron | RunMode::Audit => job(input.mode, input.job.as_ref(), budget)?,
    };
    Some(format!("{body}\n\n{}", workspace(input)))
}

fn task(input: &PromptInput, budget: &mut Budget) -> String {
    match &input.issue {
        Some(issue) => format!(
            "## Task: {}\n\n{}",
            headline(issue),
            issue_details(issue, budget)
        ),
        None => "## Task\n\nThis run was given no issue: look at your inbox \
                 (`GET /api/v1/inbox`) and take the first issue you can move forward."
            .to_owned(),
    }
}

fn review(input: &PromptInput, budget: &mut Budget) -> String {
    let Some(issue) = &input.issue else {
        return "## Review\n\nThis review run was given no issue: look at your inbox \
                (`GET /api/v1/inbox`) for the issues awaiting your review."
            .to_owned();
    };
    let mut parts = vec![format!("## Review: {}", headline(issue))];
    let none = ReviewContext::default();
    let ctx = input.review.as_ref().unwrap_or(&none);
    if let Some(by) = ctx.submitted_by.as_deref().map(|s| text::code(s, 64)) {
        parts.push(format!(
            "Submitted for your review by {by}. Decide whether it meets its description and \
             acceptance criteria."
        ));
    }
    parts.push(issue_details(issue, budget));
    parts.extend(changes(ctx, &issue.key, budget));
    parts.extend(evidence(&ctx.evidence, &issue.key, budget));
    parts.join("\n\n")
}

/// `MESA-12 — Title`.
fn headline(issue: &IssueCard) -> String {
    format!(
        "{} — {}",
        issue.key,
        text::one_line(&issue.title, TITLE_CAP)
    )
}

/// Facts line, description, stages, warnings, parent, comments.
fn issue_details(issue: &IssueCard, budget: &mut Budget) -> String {
    let mut parts = vec![facts(issue)];
    let hint = format!("; read it in full with GET /api/v1/issues/{}", issue.key);
    let description = text::demote_headings(&issue.description, 3);
    let description = text::block(budget, &description, DESCRIPTION_CAP, &hint);
    if !description.is_empty() {
        parts.push(format!("### Description\n\n{description}"));
    }
    parts.extend(stages(issue, budget));
    parts.extend(warnings(&issue.warnings, budget));
    parts.extend(parent(issue, budget));
    parts.extend(comments(issue, budget));
    parts.join("\n\n")
}

fn facts(issue: &IssueCard) -> String {
    let mut facts = vec![
        format!("Type: {}", issue.issue_type),
        format!("Priority: {}", issue.priority.label()),
        format!("Status: {}", issue.status),
    ];
    if let Some(a) = &issue.assignee {
        facts.push(format!("Assignee: {}", text::code(a, 64)));
    }
    let labels: Vec<_> = issue
        .labels
        .iter()
        .take(20)
        .map(|l| text::one_line(l, 64))
        .filter(|l| !l.is_empty())
        .collect();
    if !labels.is_empty() {
        facts.push(format!("Labels: {}", labels.join(", ")));
    }
    facts.join(" · ")
}

fn stages(issue: &IssueCard, budget: &mut Budget) -> Option<String> {
    if issue.stages.is_empty() {
        return None;
    }
    let done = issue
        .stages
        .iter()
        .filter(|s| s.status == StageStatus::Done)
        .count();
    let current = issue
        .stages
        .iter()
        .position(|s| s.status == StageStatus::Todo);
    let lines = issue.stages.iter().enumerate().map(|(i, s)| {
        let mark = if s.status == StageStatus::Done {
            "x"
        } else {
            " "
        };
        let here = if Some(i) == current {
            " ← current"
        } else {
            ""
        };
        format!(
            "- [{mark}] {}. {}{here}",
            i + 1,
            text::one_line(&s.title, TITLE_CAP)
        )
    });
    let lines = text::bounded_lines(budget, lines, MAX_STAGES, "stages");
    Some(format!(
        "### Stages ({done} of {} done)\n\n{}",
        issue.stages.len(),
        lines.join("\n")
    ))
}

fn warnings(warnings: &[String], budget: &mut Budget) -> Option<String> {
    let items: Vec<_> = warnings
        .iter()
        .map(|w| text::one_line(w, 300))
        .filter(|w| !w.is_empty())
        .map(|w| format!("- {w}"))
        .collect();
    if items.is_empty() {
        return None;
    }
    let lines = text::bounded_lines(budget, items.into_iter(), MAX_WARNINGS, "warnings");
    Some(format!(
        "### Acceptance-criteria warnings\n\n{}\n\nSettle these first: add the missing criteria in \
         a comment, or ask and block if you cannot.",
        lines.join("\n")
    ))
}

fn parent(issue: &IssueCard, budget: &mut Budget) -> Option<String> {
    let p = issue.parent.as_ref()?;
    let head = format!(
        "### Parent issue\n\n{} — {} ({})",
        p.key,
        text::one_line(&p.title, TITLE_CAP),
        p.status
    );
    let hint = format!("; see GET /api/v1/issues/{}", p.key);
    let summary = text::block(budget, &p.summary, PARENT_SUMMARY_CAP, &hint);
    Some(if summary.is_empty() {
        head
    } else {
        format!("{head}\n\n{}", text::quote(&summary))
    })
}

fn comments(issue: &IssueCard, budget: &mut Budget) -> Option<String> {
    if issue.comments.is_empty() {
        return None;
    }
    let start = issue.comments.len().saturating_sub(MAX_COMMENTS);
    let shown = &issue.comments[start..];
    let older = start + issue.earlier_comments;
    let rendered = render_newest_first(shown, &issue.key, COMMENT_CAP, budget);
    let heading = if older == 0 {
        "### Comments (newest last)".to_owned()
    } else {
        format!(
            "### Comments (the last {} of {}, newest last)",
            shown.len(),
            text::thousands(shown.len() + older)
        )
    };
    Some(format!("{heading}\n\n{}", rendered.join("\n\n")))
}

/// Renders comments, charging the budget newest first (so the newest survive a tight budget),
/// and returns them oldest first.
fn render_newest_first(
    comments: &[CommentLine],
    key: &IssueKey,
    cap: usize,
    budget: &mut Budget,
) -> Vec<String> {
    let hint = format!("; read it in full with GET /api/v1/issues/{key}/comments");
    let mut out: Vec<String> = comments
        .iter()
        .rev()
        .map(|c| {
            let body = text::block(budget, &c.body, cap, &hint);
            format!(
                "**{}** · {} · {}\n{}",
                text::non_empty(text::one_line(&c.author, 64), "unknown"),
                c.kind,
                text::when(c.at),
                text::quote(&text::non_empty(body, "(empty)"))
            )
        })
        .collect();
    out.reverse();
    out
}

fn changes(ctx: &ReviewContext, key: &IssueKey, budget: &mut Budget) -> Option<String> {
    let from = match ctx.base_commit.as_deref().map(text::url_safe) {
        Some(base) if !base.is_empty() => format!("`git diff {base}`"),
        _ => "`git diff` against the branch's base".to_owned(),
    };
    let hint = format!("; see the whole diff with {from} in your working directory");
    let stat = text::block(budget, &ctx.diff_stat, DIFF_STAT_CAP, &hint);
    let diff = text::block(budget, &ctx.diff, DIFF_CAP, &hint);
    if stat.is_empty() && diff.is_empty() {
        return Some(format!(
            "### Changes\n\nMesa recorded no change on the branch of {key}: check the branch \
             yourself ({from}) before deciding."
        ));
    }
    let mut parts = vec!["### Changes".to_owned()];
    if !stat.is_empty() {
        parts.push(text::fenced("", &stat));
    }
    if !diff.is_empty() {
        parts.push(text::fenced("diff", &diff));
    }
    Some(parts.join("\n\n"))
}

fn evidence(evidence: &[CommentLine], key: &IssueKey, budget: &mut Budget) -> Option<String> {
    if evidence.is_empty() {
        return Some(
            "### Evidence\n\nNo `kind: evidence` comment was posted: weigh that in your decision."
                .to_owned(),
        );
    }
    let start = evidence.len().saturating_sub(MAX_EVIDENCE);
    let rendered = render_newest_first(&evidence[start..], key, EVIDENCE_CAP, budget);
    let heading = if start == 0 {
        "### Evidence".to_owned()
    } else {
        format!(
            "### Evidence (the last {MAX_EVIDENCE} of {})",
            evidence.len()
        )
    };
    Some(format!("{heading}\n\n{}", rendered.join("\n\n")))
}

fn heartbeat(ctx: Option<&HeartbeatContext>, budget: &mut Budget) -> String {
    let none = HeartbeatContext::default();
    let ctx = ctx.unwrap_or(&none);
    let since = match ctx.last_run_at {
        Some(t) => format!("Your previous run started {}.", text::when(t)),
        None => "This is your first run.".to_owned(),
    };
    let mut parts = vec![format!(
        "## Heartbeat\n\nThis run has no issue of its own: see what needs you. {since}"
    )];
    parts.push(inbox(ctx, budget));
    if !ctx.changes.is_empty() {
        let lines = ctx.changes.iter().map(|c| {
            format!(
                "- {} — {}",
                text::when(c.at),
                text::one_line(&c.summary, 300)
            )
        });
        let lines = text::bounded_lines(budget, lines, MAX_CHANGES, "changes");
        parts.push(format!("### Since your last run\n\n{}", lines.join("\n")));
    }
    parts.extend(approvals(
        "### Approvals waiting for your decision",
        &ctx.approvals,
        budget,
    ));
    parts.join("\n\n")
}

fn inbox(ctx: &HeartbeatContext, budget: &mut Budget) -> String {
    if ctx.inbox.is_empty() {
        return "### Your inbox\n\nYour inbox is empty.".to_owned();
    }
    let lines = ctx.inbox.iter().map(|item| {
        let why = if item.awaiting_your_review {
            ", awaiting your review".to_owned()
        } else {
            format!(", priority {}", item.priority.label())
        };
        format!("{}{why})", issue_line(&item.issue))
    });
    let lines = text::bounded_lines(budget, lines, MAX_INBOX, "issues");
    format!(
        "### Your inbox ({})\n\n{}",
        text::thousands(ctx.inbox.len()),
        lines.join("\n")
    )
}

/// `- MESA-3 — Title (in_progress, `ada`` (the closing parenthesis is the caller's).
pub(super) fn issue_line(issue: &MemberIssue) -> String {
    let who = issue
        .assignee
        .as_deref()
        .map(|a| format!(", {}", text::code(a, 64)))
        .unwrap_or_default();
    format!(
        "- {} — {} ({}{who}",
        issue.key,
        text::one_line(&issue.title, TITLE_CAP),
        issue.status
    )
}

/// A list of approvals under `heading`, or nothing.
pub(super) fn approvals(
    heading: &str,
    list: &[ApprovalLine],
    budget: &mut Budget,
) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let lines = list.iter().map(|a| {
        let yours = if a.addressed_to_you {
            ", yours to decide"
        } else {
            ""
        };
        format!(
            "- `{}` {} — {} (asked by {} on {}{yours})",
            text::url_safe(&a.id),
            a.kind,
            text::one_line(&a.title, TITLE_CAP),
            text::code(&a.requested_by, 64),
            text::when(a.created_at)
        )
    });
    let lines = text::bounded_lines(budget, lines, MAX_APPROVALS, "approvals");
    Some(format!("{heading}\n\n{}", lines.join("\n")))
}

fn job(mode: RunMode, job: Option<&JobContext>, budget: &mut Budget) -> Option<String> {
    let none = JobContext::default();
    let job = job.unwrap_or(&none);
    let heading = if mode == RunMode::Audit {
        "## Audit"
    } else {
        "## Scheduled task"
    };
    let instructions = text::demote_headings(&job.instructions, 3);
    let instructions = text::block(budget, &instructions, INSTRUCTIONS_CAP, "");
    let figures = text::demote_headings(&job.figures, 3);
    let figures = text::block(budget, &figures, FIGURES_CAP, "");
    let mut parts = vec![heading.to_owned()];
    if !instructions.is_empty() {
        parts.push(instructions);
    } else if mode == RunMode::Audit {
        parts.push("No focus was given: audit the whole organization.".to_owned());
    } else {
        return None;
    }
    if !figures.is_empty() {
        parts.push(format!("### Figures\n\n{figures}"));
    }
    Some(parts.join("\n\n"))
}

fn workspace(input: &PromptInput) -> String {
    let reads_only = input.mode == RunMode::Audit;
    let delegates = input.agent.is_ceo() && input.mode != RunMode::Review;
    let mut lines = match &input.workspace {
        Workspace::Worktree { path, branch } => vec![
            format!(
                "- Working directory: {}, a git worktree of your own.",
                path_text(path)
            ),
            format!("- Branch: {}.", text::code(branch, 256)),
        ],
        Workspace::ReviewCheckout { path, branch } => vec![format!(
            "- Working directory: {}, a detached checkout of {}, the work under review. Read \
             it and run the project's checks there; do not edit, commit or push anything.",
            path_text(path),
            text::code(branch, 256)
        )],
        Workspace::InPlace { path } => vec![
            format!("- Working directory: {}.", path_text(path)),
            "- This run is not isolated: it has no worktree of its own, and other runs may use \
             the same directory."
                .to_owned(),
        ],
    };
    let advice = match &input.workspace {
        _ if reads_only => Some("You only read here: change no file."),
        Workspace::ReviewCheckout { .. } => None,
        _ if delegates => Some("You delegate, so you change and commit nothing here."),
        Workspace::Worktree { .. } => Some(
            "Commit your work on this branch in small, described steps; Mesa records the diff \
             when the run ends. Never push to or merge into the main branch.",
        ),
        Workspace::InPlace { .. } => Some("Change only what your work needs."),
    };
    lines.extend(advice.map(|a| format!("- {a}")));
    format!("### Workspace\n\n{}", lines.join("\n"))
}

fn path_text(path: &std::path::Path) -> String {
    text::code(&path.display().to_string(), PATH_CAP)
}
