//! The auditor loop (SPEC §4.3): the figures Mesa computes for an audit, the audit's start
//! (figures stored, status `running`) and its end (findings: the auditor's final message and
//! what its run proposed; status `finished` or `failed`).
//!
//! An Audit belongs to one run. `POST /audits` records it with its queued run; a run that
//! audits without one (an auditor's cron run, or an audit run re-queued after a crash) gets
//! one when it starts. What the run proposed is attributed by its agent and the run's time
//! span: the archetype patches it proposed, the skills it promoted and the issues it created
//! between the run's start and end. Patches proposed during an audit also carry the audit's id.

mod figures;

use mesa_domain::entity::{Agent, Audit, Run};
use mesa_domain::{
    Actor, AgentId, AuditId, AuditStatus, RunMode, RunStatus, Timestamp, ValidationError,
};
use mesa_store::{ProposedInWindow, RunFilter, TimeWindow};

use crate::error::Result;
use crate::mesa::Mesa;
pub(crate) use figures::render as render_figures;
use figures::{AgentRow, ArchetypeRow, AuditFigures, BlockedRow, Drift, SkillRow};

/// How many days an audit's figures look back unless the request says otherwise.
pub const DEFAULT_AUDIT_WINDOW_DAYS: u32 = 14;
/// The longest window an audit request may ask for, in days.
pub const MAX_AUDIT_WINDOW_DAYS: u32 = 90;
/// How many blocked issues the figures list (all are counted).
const BLOCKED_LISTED: u32 = 20;
/// How many drifting issues the figures name (all are counted).
const DRIFT_LISTED: u32 = 10;
/// The longest final message kept in an audit's findings, in characters.
const FINDINGS_CHARS: usize = 16_000;
/// The audit focus of runs that got none.
pub(crate) const DEFAULT_FOCUS: &str =
    "Audit the organization's recent work and propose improvements.";

/// Checks an audit request's window: whole days in `1..=90`; none is the default 14.
pub fn parse_window_days(days: Option<i64>) -> Result<u32, ValidationError> {
    match days {
        None => Ok(DEFAULT_AUDIT_WINDOW_DAYS),
        Some(d) if (1..=i64::from(MAX_AUDIT_WINDOW_DAYS)).contains(&d) => {
            Ok(u32::try_from(d).unwrap_or(DEFAULT_AUDIT_WINDOW_DAYS))
        }
        Some(_) => Err(ValidationError::new(
            "window_days",
            format!("window_days must be a whole number of days from 1 to {MAX_AUDIT_WINDOW_DAYS}"),
        )),
    }
}

/// True when `run` of `agent` audits: an audit run, or a cron run of an auditor.
fn audits(agent_archetype: &str, run: &Run) -> bool {
    run.mode == RunMode::Audit || (run.mode == RunMode::Cron && agent_archetype == "auditor")
}

/// The findings stored on an audit when its run ends: why it failed (if it did), the
/// auditor's final message, and the list of what the run proposed.
pub(crate) fn findings(run: &Run, final_text: Option<&str>, proposed: &ProposedInWindow) -> String {
    let mut parts = Vec::new();
    if run.status != RunStatus::Succeeded {
        let why = run
            .failure_reason
            .as_deref()
            .map_or_else(String::new, |r| format!(": {r}"));
        parts.push(format!("The audit run ended {}{why}.", run.status));
    }
    match final_text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) if text.chars().count() > FINDINGS_CHARS => {
            let cut: String = text.chars().take(FINDINGS_CHARS).collect();
            parts.push(format!("{cut}\n\n(The final message was cut here.)"));
        }
        Some(text) => parts.push(text.to_owned()),
        None => parts.push("The auditor's run ended without a final message.".to_owned()),
    }
    let patches = if proposed.patches.is_empty() {
        "none".to_owned()
    } else {
        proposed
            .patches
            .iter()
            .map(|p| {
                format!(
                    "`{}` on version {} (patch {}, {})",
                    p.archetype_slug, p.base_version, p.id, p.status
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let skills = if proposed.skills.is_empty() {
        "none".to_owned()
    } else {
        proposed
            .skills
            .iter()
            .map(|(slug, title)| format!("`{slug}` ({})", figures::cell(title)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let issues = if proposed.issues.is_empty() {
        "none".to_owned()
    } else {
        proposed
            .issues
            .iter()
            .map(|(key, title)| format!("{key} ({})", figures::cell(title)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    parts.push(format!(
        "### Proposed during the run\n\n\
         - Archetype patches ({}): {patches}\n\
         - Skills promoted ({}): {skills}\n\
         - Issues created ({}): {issues}",
        proposed.patches.len(),
        proposed.skills.len(),
        proposed.issues.len()
    ));
    parts.join("\n\n")
}

impl Mesa {
    /// The figures of the `days` before now (SPEC §4.3), rendered as Markdown: per agent runs,
    /// success rate, review rejections, retries per issue, cost, tokens and common failure
    /// reasons; blocked issues; drift; the archetypes in use with their versions; active
    /// directives and skills.
    pub async fn audit_figures_text(&self, days: u32) -> Result<String> {
        Ok(render_figures(&self.audit_figures(days).await?))
    }

    async fn audit_figures(&self, days: u32) -> Result<AuditFigures> {
        let store = &self.inner.store;
        let until = self.now();
        let since = until - std::time::Duration::from_secs(u64::from(days) * 86_400);
        let window = TimeWindow { since, until };
        let counted = store.window_figures(window, BLOCKED_LISTED).await?;
        let roster = self.roster().await?;
        let slug = |id: AgentId| {
            roster
                .get(id)
                .map_or_else(|| id.to_string(), |a| a.slug.to_string())
        };
        let mut agents: Vec<AgentRow> = counted
            .agents
            .into_iter()
            .filter_map(|f| {
                let id = f.agent_id?;
                Some(AgentRow {
                    slug: slug(id),
                    archetype: roster
                        .get(id)
                        .map_or_else(String::new, |a| a.config.archetype.to_string()),
                    figures: f,
                })
            })
            .collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        let blocked = counted
            .blocked
            .into_iter()
            .map(|b| BlockedRow {
                key: b.key,
                title: b.title,
                assignee: b.assignee_id.map(slug),
                since: b.since,
            })
            .collect();
        let (open, aligned, unaligned) = store.work_alignment(DRIFT_LISTED).await?;
        let (spend, aligned_spend) = store.spend_alignment(since).await?;
        let mut archetypes = Vec::new();
        for a in store.list_archetypes().await? {
            let users: Vec<String> = roster
                .iter()
                .filter(|g| g.config.archetype == a.slug)
                .map(|g| g.slug.to_string())
                .collect();
            if !users.is_empty() {
                archetypes.push(ArchetypeRow {
                    slug: a.slug.to_string(),
                    title: a.title.to_string(),
                    version: a.version,
                    agents: users,
                });
            }
        }
        let directives = store
            .list_directives()
            .await?
            .into_iter()
            .filter(|d| d.active)
            .map(|d| d.text)
            .collect();
        let skills = store
            .list_skills(None)
            .await?
            .into_iter()
            .filter(|s| s.active)
            .map(|s| SkillRow {
                slug: s.slug.to_string(),
                title: s.title.to_string(),
                uses: s.uses,
                successes: s.successes,
            })
            .collect();
        Ok(AuditFigures {
            since,
            until,
            days,
            agents,
            blocked_total: counted.blocked_total,
            blocked,
            drift: Drift {
                open,
                aligned,
                unaligned,
                spend,
                aligned_spend,
            },
            archetypes,
            directives,
            skills,
        })
    }

    /// The audit a starting run performs, with its figures: the run's Audit moves from
    /// `queued` to `running` with the figures of its window stored on it. A run that audits
    /// without an Audit (an auditor's cron run, whose focus is `cron_task`, or a re-queued
    /// audit run) gets one. `None` for runs that do not audit.
    pub(crate) async fn begin_audit(
        &self,
        agent: &Agent,
        run: &Run,
        cron_task: Option<&str>,
    ) -> Result<Option<Audit>> {
        let store = &self.inner.store;
        let existing = store.audit_of_run(run.id).await?;
        if existing.is_none() && !audits(agent.config.archetype.as_str(), run) {
            return Ok(None);
        }
        match existing {
            Some(audit) if audit.status != AuditStatus::Queued => Ok(Some(audit)),
            Some(audit) => {
                let figures = self.audit_figures_text(audit.window_days).await?;
                let activity = self.activity(
                    &Actor::System,
                    "audit.started",
                    "audit",
                    audit.id.to_string(),
                    format!("audit by {} started", agent.slug),
                    serde_json::json!({ "run_id": run.id, "window_days": audit.window_days }),
                );
                let running = Audit {
                    status: AuditStatus::Running,
                    figures: Some(figures),
                    ..audit.clone()
                };
                let moved = store
                    .advance_audit(running, &[AuditStatus::Queued], vec![activity])
                    .await?;
                match moved {
                    Some(a) => Ok(Some(a)),
                    None => Ok(store.audit_of_run(run.id).await?),
                }
            }
            None => {
                let figures = self.audit_figures_text(DEFAULT_AUDIT_WINDOW_DAYS).await?;
                let audit = Audit {
                    id: Self::new_id(),
                    run_id: Some(run.id),
                    focus: cron_task.map(str::to_owned),
                    status: AuditStatus::Running,
                    findings: None,
                    figures: Some(figures),
                    window_days: DEFAULT_AUDIT_WINDOW_DAYS,
                    patches_proposed: 0,
                    issues_created: 0,
                    created_at: self.now(),
                    finished_at: None,
                };
                let activity = self.activity(
                    &Actor::System,
                    "audit.started",
                    "audit",
                    audit.id.to_string(),
                    format!("{} run of {} audits", run.mode, agent.slug),
                    serde_json::json!({ "run_id": run.id, "window_days": audit.window_days }),
                );
                Ok(Some(
                    store
                        .create_audit(mesa_store::Created::new(audit, vec![activity]))
                        .await?,
                ))
            }
        }
    }

    /// Ends the audit of a finished run: the findings (the run's final message, `final_text`,
    /// and what it proposed), the counts of patches proposed and issues created, and status
    /// `finished` (the run succeeded) or `failed`. An audit already ended is left alone.
    pub(crate) async fn settle_audit(
        &self,
        run: &Run,
        final_text: Option<&str>,
    ) -> Result<Option<Audit>> {
        if !matches!(run.mode, RunMode::Audit | RunMode::Cron) {
            return Ok(None);
        }
        let store = &self.inner.store;
        let Some(audit) = store.audit_of_run(run.id).await? else {
            return Ok(None);
        };
        if matches!(audit.status, AuditStatus::Finished | AuditStatus::Failed) {
            return Ok(None);
        }
        let agent = store.agent(run.agent_id).await?;
        let actor = Actor::Agent {
            id: agent.id,
            slug: agent.slug.clone(),
        };
        let end = run.finished_at.unwrap_or_else(|| self.now());
        let window = TimeWindow {
            since: run.started_at.unwrap_or(run.queued_at),
            until: Timestamp::from_millis(end.as_millis() + 1),
        };
        let proposed = store
            .proposed_in_window(agent.id, &actor.to_string(), window)
            .await?;
        let status = if run.status == RunStatus::Succeeded {
            AuditStatus::Finished
        } else {
            AuditStatus::Failed
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let ended = Audit {
            status,
            findings: Some(findings(run, final_text, &proposed)),
            patches_proposed: count(proposed.patches.len()),
            issues_created: count(proposed.issues.len()),
            finished_at: Some(end),
            ..audit
        };
        let activity = self.activity(
            &Actor::System,
            if status == AuditStatus::Finished {
                "audit.finished"
            } else {
                "audit.failed"
            },
            "audit",
            ended.id.to_string(),
            format!(
                "audit by {} {status}: {} patches, {} skills, {} issues proposed",
                agent.slug,
                proposed.patches.len(),
                proposed.skills.len(),
                proposed.issues.len()
            ),
            serde_json::json!({
                "run_id": run.id,
                "patches": proposed.patches.iter().map(|p| p.id.to_string()).collect::<Vec<_>>(),
                "skills": proposed.skills.iter().map(|s| s.0.to_string()).collect::<Vec<_>>(),
                "issues": proposed.issues.iter().map(|i| i.0.to_string()).collect::<Vec<_>>(),
            }),
        );
        Ok(store
            .advance_audit(
                ended,
                &[AuditStatus::Queued, AuditStatus::Running],
                vec![activity],
            )
            .await?)
    }

    /// The audit `agent` is running now, if any (for linking what it proposes).
    pub(crate) async fn audit_in_progress(&self, agent: AgentId) -> Result<Option<AuditId>> {
        let store = &self.inner.store;
        let running = store
            .list_runs(
                &RunFilter {
                    agent: Some(agent),
                    statuses: vec![RunStatus::Running],
                    ..RunFilter::default()
                },
                &mesa_store::PageRequest::new(Some(10), None),
            )
            .await?
            .items;
        for run in running
            .iter()
            .filter(|r| matches!(r.mode, RunMode::Audit | RunMode::Cron))
        {
            if let Some(audit) = store.audit_of_run(run.id).await?
                && audit.status == AuditStatus::Running
            {
                return Ok(Some(audit.id));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use mesa_domain::entity::TokenUsage;
    use mesa_domain::{ArchetypePatchId, IssueKey, PatchStatus, RunId, RunTrigger, RunnerKind};
    use mesa_store::PatchLine;

    use super::*;

    fn run(status: RunStatus, reason: Option<&str>) -> Run {
        Run {
            id: RunId::from_uuid(uuid::Uuid::nil()),
            agent_id: AgentId::from_uuid(uuid::Uuid::nil()),
            issue_key: None,
            mode: RunMode::Audit,
            status,
            triggers: vec![RunTrigger::Audit],
            runner: RunnerKind::ClaudeCode,
            model: String::new(),
            prompt: None,
            worktree_path: None,
            branch: None,
            base_commit: None,
            pid: None,
            pgid: None,
            exit_code: None,
            stdout: None,
            diff: None,
            diff_stat: None,
            usage: TokenUsage::default(),
            cost_usd: mesa_domain::MicroUsd::ZERO,
            cost_reserved_usd: mesa_domain::MicroUsd::ZERO,
            tokens_reserved: 0,
            num_turns: None,
            failure_reason: reason.map(str::to_owned),
            node_id: None,
            lease_expires_at: None,
            not_before: None,
            priority: 0,
            queued_at: Timestamp::from_millis(0),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn findings_hold_the_final_message_and_what_was_proposed() {
        let proposed = ProposedInWindow {
            patches: vec![PatchLine {
                id: ArchetypePatchId::from_uuid(uuid::Uuid::nil()),
                archetype_slug: mesa_domain::Slug::parse("qa").unwrap(),
                base_version: 1,
                status: PatchStatus::Pending,
            }],
            skills: Vec::new(),
            issues: vec![(
                IssueKey::parse("MESA-4").unwrap(),
                "Split | the\nsuite".to_owned(),
            )],
        };
        let text = findings(
            &run(RunStatus::Succeeded, None),
            Some("  QA bounces half of the backend work.\n"),
            &proposed,
        );
        assert_eq!(
            text,
            "QA bounces half of the backend work.\n\n### Proposed during the run\n\n\
             - Archetype patches (1): `qa` on version 1 (patch \
             00000000-0000-0000-0000-000000000000, pending)\n\
             - Skills promoted (0): none\n\
             - Issues created (1): MESA-4 (Split \\| the suite)"
        );
    }

    #[test]
    fn a_failed_run_says_why_and_a_silent_one_says_so() {
        let text = findings(
            &run(RunStatus::Failed, Some("quota")),
            None,
            &ProposedInWindow::default(),
        );
        assert!(
            text.starts_with("The audit run ended failed: quota.\n\n"),
            "{text}"
        );
        assert!(text.contains("without a final message"));
        assert!(text.contains("Archetype patches (0): none"));
        let long = "y".repeat(FINDINGS_CHARS + 10);
        let text = findings(
            &run(RunStatus::Succeeded, None),
            Some(&long),
            &ProposedInWindow::default(),
        );
        assert!(text.contains("(The final message was cut here.)"));
        assert!(!text.contains(&long));
    }

    #[test]
    fn window_days_are_checked() {
        assert_eq!(parse_window_days(None).unwrap(), 14);
        assert_eq!(parse_window_days(Some(1)).unwrap(), 1);
        assert_eq!(parse_window_days(Some(90)).unwrap(), 90);
        for bad in [0, -3, 91] {
            assert_eq!(
                parse_window_days(Some(bad)).unwrap_err().field,
                "window_days"
            );
        }
    }
}
