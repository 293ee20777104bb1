//! The skills a run is given (SPEC §4.3): the active skills relevant to its issue (full-text
//! relevance over title, labels and description), listed in the prompt; for `claude_code` runs
//! in a worktree of their own, also written as native skills
//! (`.claude/skills/<slug>/SKILL.md`, see `mesa_runner::skills`) before the CLI starts. Every
//! skill given is recorded as a use of it.
//!
//! A skill that cannot be written, or a failed lookup, never fails the run: the prompt still
//! points at `GET /api/v1/skills/{slug}`.

use mesa_domain::entity::{Agent, Run, Skill};
use mesa_domain::{RunMode, RunnerKind};
use mesa_runner::prompt::SkillRef;
use mesa_runner::skills::{NativeSkill, skill_file, write_native_skills_async};
use mesa_runner::worktree::Workspace;

use crate::learning::relevance_text;
use crate::mesa::Mesa;

/// The skills for `run`'s prompt, best first, with the file of each one written natively.
pub(crate) async fn prepare(
    mesa: &Mesa,
    agent: &Agent,
    run: &Run,
    workspace: &Workspace,
) -> Vec<SkillRef> {
    let skills = match relevant(mesa, run).await {
        Ok(skills) => skills,
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "could not look up the run's skills");
            return Vec::new();
        }
    };
    if skills.is_empty() {
        return Vec::new();
    }
    let written = if writes_native_skills(agent.config.runner, workspace) {
        let natives = skills.iter().map(native).collect();
        match write_native_skills_async(workspace.path().to_path_buf(), natives).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "could not write native skills");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if let Err(e) = mesa.record_skill_uses(run.id, &skills).await {
        tracing::warn!(run = %run.id, error = %e, "could not record the skills' uses");
    }
    skills
        .into_iter()
        .map(|s| {
            let slug = s.slug.to_string();
            SkillRef {
                path: written.contains(&slug).then(|| skill_file(&slug)),
                title: s.title.to_string(),
                slug,
            }
        })
        .collect()
}

/// Whether skills are written as files for this runner in this workspace: Claude Code reads
/// them natively, and only a worktree of the run's own may receive them (never the agent's
/// working directory in place).
fn writes_native_skills(runner: RunnerKind, workspace: &Workspace) -> bool {
    runner == RunnerKind::ClaudeCode && workspace.is_isolated()
}

/// The active skills relevant to the issue of a task or review run.
async fn relevant(mesa: &Mesa, run: &Run) -> crate::Result<Vec<Skill>> {
    let Some(key) = &run.issue_key else {
        return Ok(Vec::new());
    };
    if !matches!(run.mode, RunMode::Task | RunMode::Review) {
        return Ok(Vec::new());
    }
    let store = &mesa.inner.store;
    let issue = store.issue(key).await?;
    let labels: Vec<String> = if issue.labels.is_empty() {
        Vec::new()
    } else {
        store
            .list_labels()
            .await?
            .into_iter()
            .filter(|l| issue.labels.contains(&l.id))
            .map(|l| l.name.to_string())
            .collect()
    };
    let text = relevance_text(issue.title.as_str(), &labels, issue.description.as_ref());
    mesa.prompt_skills(&text).await
}

fn native(skill: &Skill) -> NativeSkill {
    NativeSkill {
        slug: skill.slug.to_string(),
        title: skill.title.to_string(),
        tags: skill.tags.clone(),
        body: skill.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn only_claude_code_in_its_own_worktree_gets_files() {
        let worktree = Workspace::Isolated {
            path: PathBuf::from("/data/worktrees/r"),
            repo: PathBuf::from("/srv/p"),
            branch: Some("mesa/MESA-1".to_owned()),
            base_commit: "0".repeat(40),
            read_only: false,
        };
        let in_place = Workspace::InPlace {
            path: PathBuf::from("/srv/p"),
        };
        assert!(writes_native_skills(RunnerKind::ClaudeCode, &worktree));
        assert!(!writes_native_skills(RunnerKind::ClaudeCode, &in_place));
        assert!(!writes_native_skills(RunnerKind::Codex, &worktree));
        assert!(!writes_native_skills(RunnerKind::Command, &worktree));
    }
}
