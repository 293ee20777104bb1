//! Gathering the snapshot a run's prompt is built from (SPEC §7.3) — the building itself is
//! `mesa_runner::prompt::build`, one pure function.
//!
//! Relevance (SPEC §4.3): every active directive; the skills `skills.rs` chose for the run;
//! the agent's reflections chosen by `Mesa::prompt_reflections` (same issue first, then by
//! full-text relevance to the issue, then the newest; at most 5 and 2,000 characters).

use mesa_domain::entity::{Agent, Issue, Run, WorkBlock};
use mesa_domain::entity::{Approval, Approver, Requester};
use mesa_domain::{Actor, ApprovalStatus, CommentKind, IssueStatus, RunMode, RunStatus, Timestamp};
use mesa_runner::prompt::{
    AgentCard, ApprovalLine, CommentLine, DecisionItem, HeartbeatContext, InboxItem, IssueCard,
    JobContext, MemberIssue, NorthStar, OrgContext, ParentSummary, PromptInput, ReflectionNote,
    ReviewContext, RosterEntry, SkillRef, WorkBlockCard, Workspace as PromptWorkspace,
};
use mesa_runner::worktree::Workspace;
use mesa_store::{InboxOwner, IssueFilter, PageRequest, RunFilter};

use crate::mesa::Mesa;

/// A built prompt.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The prompt.
    pub(crate) prompt: String,
    /// The system prompt (the archetype), for runners that take one.
    pub(crate) system: Option<String>,
    /// The backlog sections the run was handed (a CEO run), moved to the done file when the
    /// run succeeds (`backlog.rs`).
    pub(crate) backlog: Option<String>,
}

/// How many issues of a work block or an inbox a prompt lists.
const LIST_WINDOW: u32 = 30;
/// How many agents the CEO's roster lists.
const ROSTER_WINDOW: usize = 100;

/// Builds the prompt of `run` for `agent` in `workspace`, listing `skills` (from
/// `skills::prepare`).
pub(crate) async fn build(
    mesa: &Mesa,
    agent: &Agent,
    run: &Run,
    workspace: &Workspace,
    skills: Vec<SkillRef>,
) -> crate::Result<Built> {
    let input = gather(mesa, agent, run, workspace, skills).await?;
    let built = mesa_runner::prompt::build(&input);
    Ok(Built {
        prompt: built.prompt,
        system: built.system,
        backlog: input.org.and_then(|o| o.backlog),
    })
}

async fn gather(
    mesa: &Mesa,
    agent: &Agent,
    run: &Run,
    workspace: &Workspace,
    skills: Vec<SkillRef>,
) -> crate::Result<PromptInput> {
    let store = &mesa.inner.store;
    let roster = mesa.roster().await?;
    let slug_of = |id| roster.get(id).map(|a: &Agent| a.slug.to_string());
    let archetype = store.archetype(&agent.config.archetype).await?;
    let issue = match &run.issue_key {
        Some(key) if matches!(run.mode, RunMode::Task | RunMode::Review) => {
            Some(mesa.issue(key).await?)
        }
        _ => None,
    };
    let card = match &issue {
        Some(view) => Some(issue_card(mesa, &view.issue, view.warnings.clone(), &slug_of).await?),
        None => None,
    };
    let prompt_workspace = match workspace {
        Workspace::Isolated {
            path,
            branch,
            read_only: true,
            ..
        } => PromptWorkspace::ReviewCheckout {
            path: path.clone(),
            branch: branch.clone().unwrap_or_else(|| "HEAD".to_owned()),
        },
        Workspace::Isolated {
            path,
            branch: Some(branch),
            ..
        } => PromptWorkspace::Worktree {
            path: path.clone(),
            branch: branch.clone(),
        },
        other => PromptWorkspace::InPlace {
            path: other.path().to_path_buf(),
        },
    };
    let work_block = work_block(mesa, agent, issue.as_ref().map(|v| &v.issue), &slug_of).await?;
    let directives = store
        .list_directives()
        .await?
        .into_iter()
        .filter(|d| d.active)
        .map(|d| d.text)
        .collect();
    let reflections = reflections(mesa, agent, run, card.as_ref()).await?;
    let approvals = pending_approvals(mesa, agent, &slug_of).await?;
    let org = if agent.is_ceo() && !matches!(run.mode, RunMode::Review | RunMode::Audit) {
        Some(org_context(mesa, agent, approvals.clone()).await?)
    } else {
        None
    };
    let review = match (&run.mode, &issue) {
        (RunMode::Review, Some(view)) => Some(review_context(mesa, &view.issue, &slug_of).await?),
        _ => None,
    };
    let heartbeat = if run.mode == RunMode::Heartbeat {
        Some(heartbeat_context(mesa, agent, approvals).await?)
    } else {
        None
    };
    let job = job_context(mesa, agent, run).await?;
    Ok(PromptInput {
        mode: run.mode,
        runner: agent.config.runner,
        now: mesa.now(),
        triggers: run.triggers.clone(),
        agent: AgentCard {
            name: agent.config.name.to_string(),
            slug: agent.slug.to_string(),
            role: archetype.title.to_string(),
            archetype: agent.config.archetype.to_string(),
            archetype_body: archetype.body.to_string(),
        },
        issue: card,
        workspace: prompt_workspace,
        work_block,
        directives,
        skills,
        reflections,
        org,
        review,
        heartbeat,
        job,
        client_installed: false,
    })
}

fn member(issue: &Issue, slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>) -> MemberIssue {
    MemberIssue {
        key: issue.key.clone(),
        title: issue.title.to_string(),
        status: issue.status,
        assignee: issue.assignee_id.and_then(slug_of),
    }
}

fn comment_line(c: mesa_domain::entity::Comment) -> CommentLine {
    CommentLine {
        author: c.author,
        kind: c.kind,
        at: c.created_at,
        body: c.body,
    }
}

async fn issue_card(
    mesa: &Mesa,
    issue: &Issue,
    warnings: Vec<String>,
    slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>,
) -> crate::Result<IssueCard> {
    let store = &mesa.inner.store;
    let mut comments = store
        .recent_comments(&issue.key, mesa_runner::prompt::MAX_COMMENTS as u32)
        .await?;
    comments.sort_by_key(|c| c.created_at);
    let parent = match &issue.parent_key {
        Some(key) => match store.issue(key).await {
            Ok(p) => Some(ParentSummary {
                key: p.key.clone(),
                title: p.title.to_string(),
                status: p.status,
                summary: p.description.to_string().chars().take(600).collect(),
            }),
            Err(_) => None,
        },
        None => None,
    };
    let labels = if issue.labels.is_empty() {
        Vec::new()
    } else {
        let all = store.list_labels().await?;
        all.into_iter()
            .filter(|l| issue.labels.contains(&l.id))
            .map(|l| l.name.to_string())
            .collect()
    };
    Ok(IssueCard {
        key: issue.key.clone(),
        title: issue.title.to_string(),
        issue_type: issue.issue_type,
        priority: issue.priority,
        status: issue.status,
        assignee: issue.assignee_id.and_then(slug_of),
        labels,
        description: issue.description.to_string(),
        stages: issue.stages.as_slice().to_vec(),
        warnings,
        parent,
        comments: comments.into_iter().map(comment_line).collect(),
        earlier_comments: 0,
    })
}

/// The active block, for the CEO and for members of it.
async fn work_block(
    mesa: &Mesa,
    agent: &Agent,
    issue: Option<&Issue>,
    slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>,
) -> crate::Result<Option<WorkBlockCard>> {
    let store = &mesa.inner.store;
    let Some(block) = store.active_work_block().await? else {
        return Ok(None);
    };
    let member_of = issue.is_some_and(|i| i.work_block_id == Some(block.id));
    if !agent.is_ceo() && !member_of {
        return Ok(None);
    }
    let issues = store
        .list_issues(
            &IssueFilter {
                work_block: Some(block.id),
                ..IssueFilter::default()
            },
            &PageRequest::new(Some(LIST_WINDOW), None),
        )
        .await?
        .items;
    Ok(Some(block_card(&block, &issues, slug_of)))
}

fn block_card(
    block: &WorkBlock,
    issues: &[Issue],
    slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>,
) -> WorkBlockCard {
    WorkBlockCard {
        title: block.title.to_string(),
        status: block.status,
        goal: block.goal.to_string(),
        north_star: block.north_star_metric.clone().map(|metric| NorthStar {
            metric,
            target: block.north_star_target,
            current: block.north_star_current,
        }),
        issues: issues.iter().map(|i| member(i, slug_of)).collect(),
    }
}

/// The agent's reflections for this run, matched on the issue's title, labels and description.
async fn reflections(
    mesa: &Mesa,
    agent: &Agent,
    run: &Run,
    card: Option<&IssueCard>,
) -> crate::Result<Vec<ReflectionNote>> {
    let relevance =
        card.map(|c| crate::learning::relevance_text(&c.title, &c.labels, &c.description));
    let picked = mesa
        .prompt_reflections(agent.id, run.issue_key.as_ref(), relevance.as_deref())
        .await?;
    Ok(picked
        .into_iter()
        .map(|r| ReflectionNote {
            issue_key: r.issue_key,
            outcome: r.outcome,
            at: r.created_at,
            body: r.body,
        })
        .collect())
}

async fn pending_approvals(
    mesa: &Mesa,
    agent: &Agent,
    slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>,
) -> crate::Result<Vec<ApprovalLine>> {
    let pending = mesa
        .inner
        .store
        .list_approvals(
            Some(ApprovalStatus::Pending),
            &PageRequest::new(Some(50), None),
        )
        .await?
        .items;
    let line = |a: Approval| ApprovalLine {
        id: a.id.to_string(),
        kind: a.kind,
        title: a.title.to_string(),
        requested_by: match a.requested_by {
            Requester::Board => Actor::board("board").to_string(),
            Requester::Agent(id) => slug_of(id).unwrap_or_else(|| id.to_string()),
        },
        addressed_to_you: a.approver == Approver::Agent(agent.id),
        created_at: a.created_at,
    };
    Ok(pending
        .into_iter()
        .filter(|a| {
            agent.is_ceo()
                || a.approver == Approver::Agent(agent.id)
                || a.requested_by == Requester::Agent(agent.id)
        })
        .map(line)
        .collect())
}

async fn org_context(
    mesa: &Mesa,
    ceo: &Agent,
    approvals: Vec<ApprovalLine>,
) -> crate::Result<OrgContext> {
    let store = &mesa.inner.store;
    let roster = mesa.roster().await?;
    let running = store
        .list_runs(
            &RunFilter {
                statuses: vec![RunStatus::Running, RunStatus::Queued],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(500), None),
        )
        .await?
        .items;
    let now = mesa.now();
    let mut entries = Vec::new();
    for a in roster.to_vec().into_iter().take(ROSTER_WINDOW) {
        let open = store
            .inbox(InboxOwner::Agent(a.id), &PageRequest::new(Some(100), None))
            .await?
            .items
            .len();
        let unavailable = if !a.config.active {
            Some("deactivated".to_owned())
        } else if a.paused_until.is_some_and(|t| t > now) {
            Some(format!(
                "paused: {}",
                a.pause_reason
                    .clone()
                    .unwrap_or_else(|| "paused".to_owned())
            ))
        } else {
            None
        };
        entries.push(RosterEntry {
            slug: a.slug.to_string(),
            name: a.config.name.to_string(),
            role: a.config.archetype.to_string(),
            reports_to: a
                .config
                .reports_to
                .and_then(|id| roster.get(id).map(|m| m.slug.to_string())),
            open_issues: u32::try_from(open).unwrap_or(u32::MAX),
            runs_in_flight: u32::try_from(running.iter().filter(|r| r.agent_id == a.id).count())
                .unwrap_or(u32::MAX),
            unavailable,
        });
    }
    let slug_of = |id| roster.get(id).map(|a: &Agent| a.slug.to_string());
    let mut needs_decision = Vec::new();
    for (status, reason) in [
        (IssueStatus::Blocked, "blocked"),
        (IssueStatus::BoardReview, "waiting for the board"),
    ] {
        let issues = store
            .list_issues(
                &IssueFilter {
                    statuses: vec![status],
                    ..IssueFilter::default()
                },
                &PageRequest::new(Some(10), None),
            )
            .await?
            .items;
        needs_decision.extend(issues.iter().map(|i| DecisionItem {
            issue: member(i, &slug_of),
            reason: reason.to_owned(),
        }));
    }
    let backlog =
        super::backlog::backlog_path(std::path::Path::new(ceo.config.working_dir.as_str()));
    let backlog = tokio::fs::read_to_string(&backlog)
        .await
        .ok()
        .and_then(|t| super::backlog::take(&t, super::backlog::CAP).map(str::to_owned));
    Ok(OrgContext {
        roster: entries,
        needs_decision,
        approvals,
        backlog,
    })
}

async fn review_context(
    mesa: &Mesa,
    issue: &Issue,
    slug_of: &impl Fn(mesa_domain::AgentId) -> Option<String>,
) -> crate::Result<ReviewContext> {
    let store = &mesa.inner.store;
    // The latest finished task run on the issue carries the branch's diff.
    let task = store
        .list_runs(
            &RunFilter {
                issue: Some(issue.key.clone()),
                statuses: vec![RunStatus::Succeeded, RunStatus::Failed, RunStatus::TimedOut],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(20), None),
        )
        .await?
        .items
        .into_iter()
        .find(|r| r.mode == RunMode::Task);
    let task = match task {
        Some(r) => Some(store.run(r.id).await?),
        None => None,
    };
    let evidence = store
        .comments(&issue.key, &PageRequest::new(Some(200), None))
        .await?
        .items
        .into_iter()
        .filter(|c| c.kind == CommentKind::Evidence)
        .map(comment_line)
        .collect();
    Ok(ReviewContext {
        submitted_by: issue.submitted_by.and_then(slug_of),
        base_commit: task.as_ref().and_then(|r| r.base_commit.clone()),
        diff_stat: task
            .as_ref()
            .and_then(|r| r.diff_stat.clone())
            .unwrap_or_default(),
        diff: task.and_then(|r| r.diff).unwrap_or_default(),
        evidence,
    })
}

async fn heartbeat_context(
    mesa: &Mesa,
    agent: &Agent,
    approvals: Vec<ApprovalLine>,
) -> crate::Result<HeartbeatContext> {
    let store = &mesa.inner.store;
    let inbox = store
        .inbox(
            InboxOwner::Agent(agent.id),
            &PageRequest::new(Some(LIST_WINDOW), None),
        )
        .await?
        .items;
    let roster = mesa.roster().await?;
    let slug_of = |id| roster.get(id).map(|a: &Agent| a.slug.to_string());
    let last_run_at = store
        .list_runs(
            &RunFilter {
                agent: Some(agent.id),
                statuses: vec![RunStatus::Succeeded, RunStatus::Failed],
                ..RunFilter::default()
            },
            &PageRequest::new(Some(1), None),
        )
        .await?
        .items
        .first()
        .and_then(|r| r.finished_at);
    Ok(HeartbeatContext {
        last_run_at,
        inbox: inbox
            .iter()
            .map(|i| InboxItem {
                issue: member(i, &slug_of),
                priority: i.priority,
                awaiting_your_review: i.status == IssueStatus::InReview
                    && i.reviewer_id == Some(agent.id),
            })
            .collect(),
        changes: Vec::new(),
        approvals: approvals
            .into_iter()
            .filter(|a| a.addressed_to_you)
            .collect(),
    })
}

/// A cron run's task (the agent's cron that fired last) or an audit's focus, with the audit's
/// figures when the run audits (an audit run, or an auditor's cron run): starting the audit
/// computes them and stores them on it (SPEC §4.3).
async fn job_context(mesa: &Mesa, agent: &Agent, run: &Run) -> crate::Result<Option<JobContext>> {
    let store = &mesa.inner.store;
    match run.mode {
        RunMode::Cron => {
            let cron = store
                .list_crons()
                .await?
                .into_iter()
                .filter(|c| c.agent_id == agent.id)
                .max_by_key(|c| c.last_run_at.unwrap_or(Timestamp::EPOCH));
            let Some(cron) = cron else {
                return Ok(None);
            };
            let audit = mesa.begin_audit(agent, run, Some(&cron.task)).await?;
            Ok(Some(JobContext {
                instructions: cron.task,
                figures: audit.and_then(|a| a.figures).unwrap_or_default(),
            }))
        }
        RunMode::Audit => {
            let audit = mesa.begin_audit(agent, run, None).await?;
            let (focus, figures) = audit.map_or((None, None), |a| (a.focus, a.figures));
            Ok(Some(JobContext {
                instructions: focus.unwrap_or_else(|| crate::audit::DEFAULT_FOCUS.to_owned()),
                figures: figures.unwrap_or_default(),
            }))
        }
        _ => Ok(None),
    }
}
