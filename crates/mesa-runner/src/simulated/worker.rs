//! The scripts of everyone but the CEO: a task run checks out, comments, commits its work in
//! the worktree, posts evidence and submits; a review run approves, or requests changes at most
//! once per issue; a heartbeat reads the inbox.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Sim;
use super::api::{SimError, is_settled, items, text};

/// Percent of first reviews that request changes, unless `MESA_SIM_CHANGES_PERCENT` says.
pub(super) const CHANGES_PERCENT: u64 = 20;
/// Identity of the commits the simulated agents make.
pub(super) const GIT_NAME: &str = "Mesa Simulated";
/// Email of that identity.
pub(super) const GIT_EMAIL: &str = "sim@mesa.local";

impl Sim {
    /// A worker's task run: check out, say so, do the work (a file committed in the worktree),
    /// post evidence, submit. After a review asked for changes, the work addresses them.
    pub(super) async fn work(&mut self, key: &str, workdir: &Path) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let status = text(&detail["issue"], "status");
        if is_settled(&status) {
            return Ok(format!("{key} is {status}: nothing to do"));
        }
        if !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        let title = text(&detail["issue"], "title");
        let request = pending_change_request(&detail["comments"], &self.me);
        self.think("planning the work").await;
        let progress = match &request {
            Some(r) => format!("Addressing the review of {key}: {r}"),
            None => format!(
                "Picked up {key}. Plan: {}",
                self.rng.pick(PLANS_OF_WORK).to_owned()
            ),
        };
        self.comment(key, "comment", &progress).await?;
        self.think("making the change").await;
        let done = self
            .commit(workdir, key, &title, request.as_deref())
            .await?;
        self.think("running the checks").await;
        let passed = self.rng.between(6, 48);
        let evidence = format!(
            "Evidence for {key}:\n- {done}\n- checks: {passed} passed, 0 failed ({} ms)",
            self.rng.between(300, 4_000)
        );
        self.comment(key, "evidence", &evidence).await?;
        let now = self.submit(key, request.is_some()).await?;
        Ok(format!("worked on {key} and submitted it ({now})"))
    }

    /// Submits the issue for review (`PATCH` with the `submit` command); returns its status.
    async fn submit(&mut self, key: &str, rework: bool) -> Result<String, SimError> {
        let path = format!("/api/v1/issues/{key}");
        let summary = if rework {
            "Changes made as requested; ready for another look."
        } else {
            "Ready for review: the change, its checks and the evidence are in."
        };
        let issue = self
            .api
            .patch(&path, &json!({ "status": "submit", "comment": summary }))
            .await?;
        let now = text(&issue, "status");
        self.say(format!("submitted {key}: now {now}")).await;
        Ok(now)
    }

    /// Writes the work into the worktree and commits it when it is a git repository.
    async fn commit(
        &mut self,
        workdir: &Path,
        key: &str,
        title: &str,
        request: Option<&str>,
    ) -> Result<String, SimError> {
        let rel = PathBuf::from("sim").join(format!("{}.md", key.to_lowercase()));
        let mut section = match request {
            None => format!("# {key}: {title}\n\nDone by {} (simulated).\n", self.me),
            Some(r) => format!("\n## Revision after review\n\n{r}\n"),
        };
        for _ in 0..self.rng.between(2, 5) {
            section.push_str(&format!("- {}\n", self.rng.pick(WORK_LINES)));
        }
        let message = match request {
            None => format!("{key}: {title}"),
            Some(_) => format!("{key}: address review"),
        };
        let dir = workdir.to_path_buf();
        let file = rel.clone();
        let sha =
            tokio::task::spawn_blocking(move || write_and_commit(&dir, &file, &section, &message))
                .await
                .map_err(|e| SimError::Git(e.to_string()))?
                .map_err(SimError::Git)?;
        let shown = rel.display();
        Ok(match sha {
            Some(sha) => {
                self.say(format!("committed {sha} ({shown})")).await;
                format!("commit `{sha}` updates `{shown}`")
            }
            None => format!("wrote `{shown}` (the working directory is not a git repository)"),
        })
    }

    /// A review run: approve mostly; request changes at most once per issue.
    pub(super) async fn review(&mut self, key: &str) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let status = text(&detail["issue"], "status");
        if status != "in_review" {
            return Ok(format!("{key} is {status}: nothing to review"));
        }
        self.think("reading the diff and the evidence").await;
        let asked_before = change_requests(&detail["comments"]) > 0;
        let (decision, comment) = if !asked_before && self.rng.chance(self.changes_percent) {
            ("request_changes", *self.rng.pick(CHANGE_REQUESTS))
        } else {
            ("approve", *self.rng.pick(APPROVALS))
        };
        let path = format!("/api/v1/issues/{key}/review");
        let issue = self
            .api
            .post(&path, &json!({ "decision": decision, "comment": comment }))
            .await?;
        let now = text(&issue, "status");
        self.say(format!("{decision} on {key}: now {now}")).await;
        Ok(format!("reviewed {key}: {decision}"))
    }

    /// A heartbeat of anyone but the CEO: look at the inbox, touch nothing.
    pub(super) async fn heartbeat(&mut self) -> Result<String, SimError> {
        self.think("reading my inbox").await;
        let inbox = items(&self.api.get("/api/v1/inbox?limit=100").await?);
        self.say(format!("{} issues in my inbox", inbox.len()))
            .await;
        Ok(format!("heartbeat: {} issues in the inbox", inbox.len()))
    }
}

/// Review comments that asked for changes.
pub(super) fn change_requests(comments: &Value) -> usize {
    comments
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|c| text(c, "kind") == "review")
                .filter(|c| text(c, "body").starts_with("Changes requested"))
                .count()
        })
        .unwrap_or(0)
}

/// The text of a change request newer than my last evidence, if any (comments oldest first).
pub(super) fn pending_change_request(comments: &Value, me: &str) -> Option<String> {
    let mut pending = None;
    for c in comments.as_array().into_iter().flatten() {
        let body = text(c, "body");
        if text(c, "kind") == "review" && body.starts_with("Changes requested") {
            let asked = body
                .split_once(':')
                .map_or(body.as_str(), |(_, rest)| rest)
                .trim()
                .to_owned();
            pending = Some(asked);
        } else if text(c, "kind") == "evidence" && text(c, "author") == me {
            pending = None;
        }
    }
    pending
}

/// Writes `section` to `rel` under `dir` (appending when the file exists) and commits it on
/// the current branch when `dir` is a git repository. Returns the short commit id.
pub(super) fn write_and_commit(
    dir: &Path,
    rel: &Path,
    section: &str,
    message: &str,
) -> std::result::Result<Option<String>, String> {
    use std::io::Write;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(section.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let Ok(repo) = git2::Repository::open(dir) else {
        return Ok(None);
    };
    commit_path(&repo, rel, message)
        .map(Some)
        .map_err(|e| e.message().to_owned())
}

fn commit_path(repo: &git2::Repository, rel: &Path, message: &str) -> Result<String, git2::Error> {
    let mut index = repo.index()?;
    index.add_path(rel)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now(GIT_NAME, GIT_EMAIL)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
    let full = oid.to_string();
    Ok(full[..full.len().min(10)].to_owned())
}

const PLANS_OF_WORK: &[&str] = &[
    "read the context, make the change, run the checks, post evidence.",
    "reproduce first, then fix, then add a regression test.",
    "sketch the interface, implement it, cover the edge cases.",
    "small steps: one commit, checks green, evidence, submit.",
];

const WORK_LINES: &[&str] = &[
    "handled the empty input",
    "covered the error path with a test",
    "kept the public interface unchanged",
    "added a note to the changelog",
    "measured it: no regression",
    "removed a dead branch found on the way",
    "documented the new option",
];

const APPROVALS: &[&str] = &[
    "Looks good: the evidence covers the acceptance criteria.",
    "Checked the change and the checks; ship it.",
    "Clean and well evidenced. Approved.",
    "Does what the issue asks, with tests. Approved.",
];

const CHANGE_REQUESTS: &[&str] = &[
    "Please cover the error path with a test and show it in the evidence.",
    "The evidence does not show the empty case; please add it.",
    "Naming differs from the rest of the module; please align it and resubmit.",
];
