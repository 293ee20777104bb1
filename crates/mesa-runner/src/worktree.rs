//! Workspace isolation (SPEC §7.1): one git worktree per run, under `<data_dir>/worktrees/<run-id>`.
//!
//! A task run of issue `K` works on branch `mesa/K` (created from the repository's HEAD the first
//! time, continued by later runs); a review run gets a detached checkout of that branch's tip.
//! After the run, [`Worktrees::finish`] records the diff from the base commit to the worktree's
//! state (committed, staged, unstaged and untracked changes) and removes the worktree; the branch
//! stays. Mesa never commits anything itself.
//!
//! Every git2 call runs on tokio's blocking pool. Git metadata changes of one repository
//! (pruning, branch and worktree creation) are serialized inside a [`Worktrees`], so concurrent
//! runs never see each other's half-made worktrees.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use git2::{
    BranchType, Commit, Diff, DiffFindOptions, DiffFormat, DiffOptions, DiffStatsFormat, ErrorCode,
    Oid, Reference, Repository, WorktreeAddOptions,
};
use mesa_domain::RunId;

use crate::{Result, RunnerError};

/// The most patch text kept for one run, truncation note included (SPEC §7.1).
pub const DIFF_CAP: usize = 1024 * 1024;

/// Prefix of the branches Mesa works on: `mesa/<issue-key>`.
pub const BRANCH_PREFIX: &str = "mesa/";

/// Prefix of the short-lived branch a review checkout is made from before it is detached.
const REVIEW_PREFIX: &str = "mesa-review/";

/// Width of the `--stat` summary, as git uses for a terminal of 80 columns.
const STAT_WIDTH: usize = 80;

/// Files larger than this are summarised like binary files instead of being diffed line by line
/// (a huge untracked log or build output must not cost a full text diff).
const MAX_TEXT_DIFF_SIZE: i64 = 16 * 1024 * 1024;

/// Longest issue key accepted in a branch name.
const MAX_KEY_LEN: usize = 100;

/// Creates and removes the per-run worktrees under one root directory.
#[derive(Debug, Clone)]
pub struct Worktrees {
    root: PathBuf,
    locks: RepoLocks,
}

/// What a run may do with its branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A task run: works and commits on the issue's branch.
    Write,
    /// A review run: a detached checkout of the branch under review.
    ReadOnly,
}

/// Where a run's process works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workspace {
    /// A git worktree of the run's own.
    Isolated {
        /// The worktree directory, `<root>/<run-id>`.
        path: PathBuf,
        /// The repository the worktree belongs to (the agent's working directory).
        repo: PathBuf,
        /// The branch: `mesa/<key>` for a task run; for a review, the branch under review, or
        /// `None` when it does not exist and the repository's HEAD was checked out instead.
        branch: Option<String>,
        /// The commit the worktree started from (full hex id); the diff is taken from it.
        base_commit: String,
        /// A detached checkout for a review run.
        read_only: bool,
    },
    /// Not isolated: the working directory is used as it is (not a git repository, a repository
    /// without commits, or a run without an issue).
    InPlace {
        /// The working directory.
        path: PathBuf,
    },
}

impl Workspace {
    /// The directory the process runs in.
    pub fn path(&self) -> &Path {
        match self {
            Self::Isolated { path, .. } | Self::InPlace { path } => path,
        }
    }

    /// Whether the run has a worktree of its own.
    pub fn is_isolated(&self) -> bool {
        matches!(self, Self::Isolated { .. })
    }

    /// The branch checked out (task runs) or under review (review runs).
    pub fn branch(&self) -> Option<&str> {
        match self {
            Self::Isolated { branch, .. } => branch.as_deref(),
            Self::InPlace { .. } => None,
        }
    }

    /// The commit the worktree started from.
    pub fn base_commit(&self) -> Option<&str> {
        match self {
            Self::Isolated { base_commit, .. } => Some(base_commit),
            Self::InPlace { .. } => None,
        }
    }

    /// Whether this is a detached review checkout.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Self::Isolated {
                read_only: true,
                ..
            }
        )
    }
}

/// What a run changed, from its base commit to the worktree's final state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Unified patch text, at most [`DIFF_CAP`] bytes (binary files summarised in one line).
    pub diff: String,
    /// A `git diff --stat`-like summary: one `path | N +-` line per file and a totals line.
    pub diff_stat: String,
    /// The patch was cut at [`DIFF_CAP`] and ends with a note saying so.
    pub truncated: bool,
}

impl Worktrees {
    /// Worktrees live under `root`, normally `<data_dir>/worktrees`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            locks: RepoLocks::default(),
        }
    }

    /// The directory the worktrees live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Prepares the workspace of run `run_id` in `working_dir` (see the module documentation).
    /// A working directory that is not a git repository with at least one commit, or a run
    /// without an issue, runs in place. Fails when the issue key cannot name a branch or when
    /// the branch is checked out in another live worktree.
    pub async fn prepare(
        &self,
        working_dir: &Path,
        run_id: RunId,
        issue_key: Option<&str>,
        access: Access,
    ) -> Result<Workspace> {
        let this = self.clone();
        let working_dir = working_dir.to_path_buf();
        let key = issue_key.map(str::to_owned);
        blocking(move || this.prepare_blocking(&working_dir, run_id, key.as_deref(), access)).await
    }

    /// Records what the run changed and removes its worktree (directory and git metadata); the
    /// branch stays. An in-place workspace yields empty changes and nothing is removed. The
    /// worktree is removed even when the diff cannot be computed; a path that is not a worktree
    /// directly under the root is refused untouched.
    pub async fn finish(&self, ws: &Workspace) -> Result<Changes> {
        let Workspace::Isolated {
            path,
            repo,
            base_commit,
            ..
        } = ws
        else {
            return Ok(Changes::default());
        };
        self.ensure_under_root(path)?;
        let locks = self.locks.clone();
        let (path, repo, base) = (path.clone(), repo.clone(), base_commit.clone());
        blocking(move || {
            let changes = collect_changes(&path, &base);
            let removed = remove_worktree(&locks, &repo, &path);
            let changes = changes?;
            removed?;
            Ok(changes)
        })
        .await
    }

    /// Crash recovery: removes every run worktree under the root whose run is not in `keep`,
    /// and prunes its metadata from its repository. Returns how many were removed. Entries
    /// that are not named after a run are left alone.
    pub async fn remove_orphans(&self, keep: &HashSet<RunId>) -> Result<usize> {
        let this = self.clone();
        let keep = keep.clone();
        blocking(move || this.remove_orphans_blocking(&keep)).await
    }

    /// Refuses to touch a directory that is not one of this root's worktrees.
    fn ensure_under_root(&self, path: &Path) -> Result<()> {
        let root = std::path::absolute(&self.root)?;
        if path.parent() == Some(root.as_path()) && worktree_name(path).is_ok() {
            Ok(())
        } else {
            Err(RunnerError::Workspace(format!(
                "refusing to remove {}: not a worktree under {}",
                path.display(),
                root.display()
            )))
        }
    }

    fn prepare_blocking(
        &self,
        working_dir: &Path,
        run_id: RunId,
        issue_key: Option<&str>,
        access: Access,
    ) -> Result<Workspace> {
        let in_place = || Workspace::InPlace {
            path: working_dir.to_path_buf(),
        };
        let Some(key) = issue_key else {
            return Ok(in_place());
        };
        let branch = branch_name(key)?;
        let Some(repo) = open_repository(working_dir)? else {
            return Ok(in_place());
        };
        let Some(head) = head_commit(&repo)? else {
            return Ok(in_place());
        };
        let path = std::path::absolute(self.root.join(run_id.to_string()))?;
        if path.exists() {
            return Err(RunnerError::Workspace(format!(
                "worktree directory {} already exists",
                path.display()
            )));
        }
        std::fs::create_dir_all(&self.root)?;
        let lock = self.locks.get(repo.commondir());
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        prune_stale(&repo);
        // libgit2 creates this directory without tolerating a concurrent creator.
        std::fs::create_dir_all(repo.commondir().join("worktrees"))?;
        let name = run_id.to_string();
        let (branch, base, read_only) = match access {
            Access::Write => {
                let base = add_on_branch(&repo, &name, &path, &branch, &head)?;
                (Some(branch), base, false)
            }
            Access::ReadOnly => {
                let (branch, base) = add_detached(&repo, &name, &path, &branch, &head)?;
                (branch, base, true)
            }
        };
        tracing::debug!(run = %run_id, path = %path.display(), ?branch, %base, "worktree ready");
        Ok(Workspace::Isolated {
            path,
            repo: working_dir.to_path_buf(),
            branch,
            base_commit: base.to_string(),
            read_only,
        })
    }

    fn remove_orphans_blocking(&self, keep: &HashSet<RunId>) -> Result<usize> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let Some(run_id) = run_dir_id(&entry) else {
                continue;
            };
            if keep.contains(&run_id) {
                continue;
            }
            match self.remove_orphan(&entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a left-over worktree");
                }
            }
        }
        Ok(removed)
    }

    fn remove_orphan(&self, path: &Path) -> Result<()> {
        // Find the repository before the directory (and its `.git` link) is gone.
        let commondir = Repository::open(path)
            .ok()
            .map(|repo| repo.commondir().to_path_buf());
        remove_tree(path)?;
        if let Some(commondir) = commondir {
            let repo = Repository::open(&commondir)?;
            prune_named(&self.locks, &repo, &worktree_name(path)?)?;
        }
        Ok(())
    }
}

/// One mutex per repository (keyed by its common git directory).
#[derive(Debug, Clone, Default)]
struct RepoLocks(Arc<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>);

impl RepoLocks {
    fn get(&self, commondir: &Path) -> Arc<Mutex<()>> {
        let key = commondir
            .canonicalize()
            .unwrap_or_else(|_| commondir.to_path_buf());
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key).or_default())
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RunnerError::Task(e.to_string()))?
}

/// `mesa/<key>`, after checking the key cannot escape or break the ref namespace.
fn branch_name(key: &str) -> Result<String> {
    let invalid = |why: &str| {
        Err(RunnerError::Workspace(format!(
            "issue key {key:?} cannot name a branch: {why}"
        )))
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("it is too long");
    }
    if key.contains(['/', '\\']) || key.contains("..") {
        return invalid("it contains a path separator or '..'");
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains whitespace");
    }
    let branch = format!("{BRANCH_PREFIX}{key}");
    if !Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return invalid("it is not a valid git ref name");
    }
    Ok(branch)
}

/// The repository at `dir` (not searching parent directories), or `None` when it is not one.
fn open_repository(dir: &Path) -> Result<Option<Repository>> {
    match Repository::open(dir) {
        Ok(repo) => Ok(Some(repo)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The commit HEAD points at, or `None` in a repository without commits.
fn head_commit(repo: &Repository) -> Result<Option<Commit<'_>>> {
    match repo.head() {
        Ok(head) => Ok(Some(head.peel_to_commit()?)),
        Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Prunes the repository's worktrees whose directories are gone (unless locked), as
/// `git worktree prune` does. Failures are logged: a stale entry is not worth failing a run.
fn prune_stale(repo: &Repository) {
    let names = match repo.worktrees() {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error = %e, "could not list worktrees");
            return;
        }
    };
    for name in names.iter().filter_map(|n| n.ok().flatten()) {
        let Ok(wt) = repo.find_worktree(name) else {
            continue;
        };
        if wt.validate().is_ok() || !wt.is_prunable(None).unwrap_or(false) {
            continue;
        }
        match wt.prune(None) {
            Ok(()) => tracing::info!(worktree = name, "pruned a stale worktree"),
            Err(e) => {
                tracing::warn!(worktree = name, error = %e, "could not prune a stale worktree")
            }
        }
    }
}

/// Adds worktree `name` at `path` on `branch`, creating the branch from `head` the first time.
/// Returns the branch tip the worktree starts from.
fn add_on_branch(
    repo: &Repository,
    name: &str,
    path: &Path,
    branch: &str,
    head: &Commit<'_>,
) -> Result<Oid> {
    let local = match repo.find_branch(branch, BranchType::Local) {
        Ok(local) => local,
        Err(e) if e.code() == ErrorCode::NotFound => repo.branch(branch, head, false)?,
        Err(e) => return Err(e.into()),
    };
    let tip = local.get().peel_to_commit()?.id();
    ensure_not_checked_out(repo, branch)?;
    let mut opts = WorktreeAddOptions::new();
    opts.reference(Some(local.get()));
    if let Err(e) = repo.worktree(name, path, Some(&opts)) {
        discard_failed(repo, name, path);
        return Err(e.into());
    }
    Ok(tip)
}

/// Adds worktree `name` at `path`, detached at the tip of `branch` (or at `head` when the
/// branch does not exist). libgit2 only adds worktrees on a branch, so the worktree is made on
/// a short-lived branch at that commit, detached, and the branch deleted.
fn add_detached(
    repo: &Repository,
    name: &str,
    path: &Path,
    branch: &str,
    head: &Commit<'_>,
) -> Result<(Option<String>, Oid)> {
    let (reviewed, target) = match repo.find_branch(branch, BranchType::Local) {
        Ok(local) => (Some(branch.to_owned()), local.get().peel_to_commit()?),
        Err(e) if e.code() == ErrorCode::NotFound => (None, head.clone()),
        Err(e) => return Err(e.into()),
    };
    let temp_name = format!("{REVIEW_PREFIX}{name}");
    let temp = repo.branch(&temp_name, &target, false)?;
    let added = (|| -> Result<()> {
        let mut opts = WorktreeAddOptions::new();
        opts.reference(Some(temp.get()));
        repo.worktree(name, path, Some(&opts))?;
        Repository::open(path)?.set_head_detached(target.id())?;
        Ok(())
    })();
    if added.is_err() {
        discard_failed(repo, name, path);
    }
    if let Err(e) = repo
        .find_branch(&temp_name, BranchType::Local)
        .and_then(|mut b| b.delete())
    {
        tracing::warn!(branch = temp_name, error = %e, "could not delete a temporary review branch");
    }
    added.map(|()| (reviewed, target.id()))
}

/// Fails when `branch` is checked out in the main working tree or in a live linked worktree.
fn ensure_not_checked_out(repo: &Repository, branch: &str) -> Result<()> {
    let refname = format!("refs/heads/{branch}");
    let mut holders = Vec::new();
    let main = Repository::open(repo.commondir())?;
    if let Some(workdir) = main.workdir()
        && head_target(&main).as_deref() == Some(refname.as_str())
    {
        holders.push(workdir.to_path_buf());
    }
    for name in repo.worktrees()?.iter().filter_map(|n| n.ok().flatten()) {
        let Ok(wt) = repo.find_worktree(name) else {
            continue;
        };
        if wt.validate().is_err() {
            continue;
        }
        let Ok(linked) = Repository::open_from_worktree(&wt) else {
            continue;
        };
        if head_target(&linked).as_deref() == Some(refname.as_str()) {
            holders.push(wt.path().to_path_buf());
        }
    }
    match holders.first() {
        None => Ok(()),
        Some(holder) => Err(RunnerError::Workspace(format!(
            "branch {branch} is already checked out in {}; remove that worktree (or wait for its \
             run to finish) first",
            holder.display()
        ))),
    }
}

/// The ref HEAD points to, when HEAD is symbolic.
fn head_target(repo: &Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    head.symbolic_target().ok().flatten().map(str::to_owned)
}

/// Cleans up after a failed `git worktree add`: its directory and its metadata.
fn discard_failed(repo: &Repository, name: &str, path: &Path) {
    if let Err(e) = remove_tree(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a half-made worktree");
    }
    if let Ok(wt) = repo.find_worktree(name)
        && let Err(e) = wt.prune(Some(git2::WorktreePruneOptions::new().valid(true)))
    {
        tracing::warn!(worktree = name, error = %e, "could not prune a half-made worktree");
    }
}

/// Removes the worktree at `path` and its metadata in the repository at `repo_dir`.
fn remove_worktree(locks: &RepoLocks, repo_dir: &Path, path: &Path) -> Result<()> {
    remove_tree(path)?;
    let repo = Repository::open(repo_dir)?;
    prune_named(locks, &repo, &worktree_name(path)?)
}

/// Prunes the metadata of worktree `name` once its directory is gone; absent metadata is fine.
fn prune_named(locks: &RepoLocks, repo: &Repository, name: &str) -> Result<()> {
    let lock = locks.get(repo.commondir());
    let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
    match repo.find_worktree(name) {
        Ok(wt) => Ok(wt.prune(None)?),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The worktree's name: the last component of its path (the run id).
fn worktree_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            RunnerError::Workspace(format!("{} does not name a worktree", path.display()))
        })
}

/// The run a directory entry under the root belongs to, when it is named after one.
fn run_dir_id(entry: &std::fs::DirEntry) -> Option<RunId> {
    let name = entry.file_name();
    let name = name.to_str()?;
    let id = RunId::parse(name).ok()?;
    let is_dir = entry.file_type().ok()?.is_dir();
    (is_dir && id.to_string() == name).then_some(id)
}

/// Removes a directory tree; a missing one is fine. Directories the agent made read-only
/// (module caches do) are made writable and the removal retried.
fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// Gives the owner full access to every directory under `path` (symbolic links not followed).
fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = std::fs::set_permissions(path, perms);
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}

/// The changes of the worktree at `path` since `base`: committed, staged, unstaged and
/// untracked (ignored files excepted).
fn collect_changes(path: &Path, base: &str) -> Result<Changes> {
    let repo = Repository::open(path)?;
    let base_tree = repo.find_commit(Oid::from_str(base)?)?.tree()?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        .ignore_submodules(true)
        .max_size(MAX_TEXT_DIFF_SIZE);
    let mut diff = repo.diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut opts))?;
    diff.find_similar(Some(DiffFindOptions::new().renames(true)))?;
    let stats = diff.stats()?;
    let diff_stat = if stats.files_changed() == 0 {
        String::new()
    } else {
        let buf = stats.to_buf(DiffStatsFormat::FULL, STAT_WIDTH)?;
        String::from_utf8_lossy(&buf).into_owned()
    };
    let (diff, truncated) = patch_text(&diff, DIFF_CAP)?;
    Ok(Changes {
        diff,
        diff_stat,
        truncated,
    })
}

/// The note ending a patch cut at the cap.
fn truncation_note(cap: usize) -> String {
    format!(
        "\n[diff truncated: the patch exceeds {} KiB; the stat lists every changed file]\n",
        cap / 1024
    )
}

/// The unified patch text of `diff`, cut so that text and note fit in `cap` bytes.
fn patch_text(diff: &Diff<'_>, cap: usize) -> Result<(String, bool)> {
    let note = truncation_note(cap);
    let budget = cap.saturating_sub(note.len());
    let mut out = String::new();
    let mut truncated = false;
    let printed = diff.print(DiffFormat::Patch, |_, _, line| {
        let mut piece = String::new();
        if matches!(line.origin(), '+' | '-' | ' ') {
            piece.push(line.origin());
        }
        piece.push_str(&String::from_utf8_lossy(line.content()));
        if out.len() + piece.len() > budget {
            let room = budget - out.len();
            out.push_str(&piece[..floor_char_boundary(&piece, room)]);
            truncated = true;
            return false;
        }
        out.push_str(&piece);
        true
    });
    match printed {
        Ok(()) => {}
        // Stopping the print from the callback is reported as an error.
        Err(_) if truncated => {}
        Err(e) => return Err(e.into()),
    }
    if truncated {
        out.push_str(&note);
    }
    Ok((out, truncated))
}

/// The largest char boundary of `s` not above `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_come_from_valid_keys_only() {
        assert_eq!(branch_name("MESA-12").unwrap(), "mesa/MESA-12");
        for bad in [
            "", "a/b", "..", "A..B", "A B", "A\tB", "a\\b", "A-1.lock", "A@{1", "A~1", "A:1",
            ".A-1", "A-1\n",
        ] {
            assert!(
                matches!(branch_name(bad), Err(RunnerError::Workspace(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(branch_name(&"K".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn char_boundaries_never_split_a_character() {
        let s = "aé€";
        assert_eq!(floor_char_boundary(s, 0), 0);
        assert_eq!(floor_char_boundary(s, 2), 1);
        assert_eq!(floor_char_boundary(s, 3), 3);
        assert_eq!(floor_char_boundary(s, 5), 3);
        assert_eq!(floor_char_boundary(s, 99), s.len());
    }
}
