//! Worktree isolation (SPEC §7.1) against real repositories made in temporary directories.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use git2::{BranchType, Oid, Repository, Signature};
use mesa_domain::RunId;
use mesa_runner::RunnerError;
use mesa_runner::worktree::{Access, DIFF_CAP, Workspace, Worktrees};
use tempfile::TempDir;

/// A repository with one commit (`README.md`, `src/lib.rs`) and a worktree root, side by side.
struct Fixture {
    _tmp: TempDir,
    repo_dir: PathBuf,
    root: PathBuf,
    worktrees: Worktrees,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo_dir = tmp.path().join("repo");
        let root = tmp.path().join("data").join("worktrees");
        Repository::init(&repo_dir).unwrap();
        write(&repo_dir, "README.md", "hello\n");
        write(
            &repo_dir,
            "src/lib.rs",
            "pub fn answer() -> u32 {\n    42\n}\n",
        );
        commit_all(&repo_dir, "initial");
        Self {
            _tmp: tmp,
            worktrees: Worktrees::new(&root),
            repo_dir,
            root,
        }
    }

    fn repo(&self) -> Repository {
        Repository::open(&self.repo_dir).unwrap()
    }

    fn head(&self) -> Oid {
        self.repo().head().unwrap().peel_to_commit().unwrap().id()
    }

    fn tip(&self, branch: &str) -> Option<Oid> {
        let repo = self.repo();
        let found = repo.find_branch(branch, BranchType::Local).ok()?;
        Some(found.get().peel_to_commit().unwrap().id())
    }

    fn linked_worktrees(&self) -> Vec<String> {
        let names = self.repo().worktrees().unwrap();
        names
            .iter()
            .map(|n| n.unwrap().unwrap().to_owned())
            .collect()
    }

    async fn prepare(&self, run: RunId, key: Option<&str>, access: Access) -> Workspace {
        self.worktrees
            .prepare(&self.repo_dir, run, key, access)
            .await
            .unwrap()
    }
}

fn run_id(n: u64) -> RunId {
    RunId::parse(&format!("01900000-0000-7000-8000-{n:012}")).unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Stages everything in the working tree at `dir` and commits it on HEAD, like an agent would.
fn commit_all(dir: &Path, message: &str) -> Oid {
    let repo = Repository::open(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = Signature::now("Agent", "agent@example.com").unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

#[tokio::test]
async fn first_run_creates_the_issue_branch_from_head() {
    let f = Fixture::new();
    let head = f.head();
    assert_eq!(f.tip("mesa/MESA-1"), None);

    let ws = f.prepare(run_id(1), Some("MESA-1"), Access::Write).await;

    assert!(ws.is_isolated());
    assert!(!ws.is_read_only());
    assert_eq!(ws.path(), f.root.join(run_id(1).to_string()));
    assert_eq!(ws.branch(), Some("mesa/MESA-1"));
    assert_eq!(ws.base_commit(), Some(head.to_string().as_str()));
    assert_eq!(f.tip("mesa/MESA-1"), Some(head));
    // The files of HEAD are checked out, on the branch.
    let readme = std::fs::read_to_string(ws.path().join("README.md")).unwrap();
    assert_eq!(readme, "hello\n");
    let linked = Repository::open(ws.path()).unwrap();
    let linked_head = linked.head().unwrap();
    assert_eq!(linked_head.name().unwrap(), "refs/heads/mesa/MESA-1");
    // The repository's own checkout is untouched.
    let main = f.repo();
    let main_head = main.head().unwrap();
    assert_ne!(main_head.name().unwrap(), "refs/heads/mesa/MESA-1");
    assert_eq!(f.linked_worktrees(), vec![run_id(1).to_string()]);

    f.worktrees.finish(&ws).await.unwrap();
}

#[tokio::test]
async fn diff_covers_commits_modifications_and_untracked_files_then_the_worktree_goes() {
    let f = Fixture::new();
    let ws = f.prepare(run_id(2), Some("MESA-2"), Access::Write).await;
    let dir = ws.path().to_path_buf();
    // Committed by the agent.
    write(&dir, "src/feature.rs", "pub fn feature() {}\n");
    let agent_commit = commit_all(&dir, "add feature");
    // Modified but not committed.
    write(&dir, "README.md", "hello again\n");
    // Untracked, text (without a final newline) and binary.
    write(&dir, "notes/todo.txt", "ship it");
    std::fs::write(dir.join("logo.bin"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();

    let changes = f.worktrees.finish(&ws).await.unwrap();

    assert!(!changes.truncated);
    assert_eq!(
        changes.diff,
        concat!(
            "diff --git a/README.md b/README.md\n",
            "index ce01362..13ab7f7 100644\n",
            "--- a/README.md\n",
            "+++ b/README.md\n",
            "@@ -1 +1 @@\n",
            "-hello\n",
            "+hello again\n",
            "diff --git a/logo.bin b/logo.bin\n",
            "new file mode 100644\n",
            "index 0000000..04c685e\n",
            "Binary files /dev/null and b/logo.bin differ\n",
            "diff --git a/notes/todo.txt b/notes/todo.txt\n",
            "new file mode 100644\n",
            "index 0000000..de20668\n",
            "--- /dev/null\n",
            "+++ b/notes/todo.txt\n",
            "@@ -0,0 +1 @@\n",
            "+ship it\n",
            "\\ No newline at end of file\n",
            "diff --git a/src/feature.rs b/src/feature.rs\n",
            "new file mode 100644\n",
            "index 0000000..5a7c78a\n",
            "--- /dev/null\n",
            "+++ b/src/feature.rs\n",
            "@@ -0,0 +1 @@\n",
            "+pub fn feature() {}\n",
        )
    );
    assert_eq!(
        changes.diff_stat,
        concat!(
            " README.md      | 2 +-\n",
            " logo.bin       | Bin 0 -> 7 bytes\n",
            " notes/todo.txt | 1 +\n",
            " src/feature.rs | 1 +\n",
            " 4 files changed, 3 insertions(+), 1 deletion(-)\n",
        )
    );
    // The directory and its git metadata are gone; the branch stays, with the agent's commit.
    assert!(!dir.exists());
    assert!(f.linked_worktrees().is_empty());
    assert_eq!(f.tip("mesa/MESA-2"), Some(agent_commit));
    let repo = f.repo();
    let tree = repo.find_commit(agent_commit).unwrap().tree().unwrap();
    assert!(tree.get_path(Path::new("src/feature.rs")).is_ok());
    // Nothing uncommitted was committed by Mesa.
    assert!(tree.get_path(Path::new("notes/todo.txt")).is_err());
}

#[tokio::test]
async fn a_later_run_of_the_same_issue_continues_the_branch() {
    let f = Fixture::new();
    let first = f.prepare(run_id(3), Some("MESA-3"), Access::Write).await;
    write(first.path(), "step1.txt", "one\n");
    let step1 = commit_all(first.path(), "step 1");
    f.worktrees.finish(&first).await.unwrap();

    let second = f.prepare(run_id(4), Some("MESA-3"), Access::Write).await;

    assert_ne!(second.path(), first.path());
    assert_eq!(second.base_commit(), Some(step1.to_string().as_str()));
    let text = std::fs::read_to_string(second.path().join("step1.txt")).unwrap();
    assert_eq!(text, "one\n");
    // A run that changes nothing reports nothing.
    let changes = f.worktrees.finish(&second).await.unwrap();
    assert_eq!(changes.diff, "");
    assert_eq!(changes.diff_stat, "");
    assert!(!changes.truncated);
    assert_eq!(f.tip("mesa/MESA-3"), Some(step1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_different_issues_get_their_own_worktrees() {
    let f = Fixture::new();
    let (a, b) = tokio::join!(
        f.prepare(run_id(5), Some("MESA-5"), Access::Write),
        f.prepare(run_id(6), Some("MESA-6"), Access::Write),
    );

    assert_ne!(a.path(), b.path());
    assert_eq!(a.branch(), Some("mesa/MESA-5"));
    assert_eq!(b.branch(), Some("mesa/MESA-6"));
    write(a.path(), "only-a.txt", "a\n");
    assert!(!b.path().join("only-a.txt").exists());
    let mut linked = f.linked_worktrees();
    linked.sort();
    assert_eq!(linked, vec![run_id(5).to_string(), run_id(6).to_string()]);

    let (ca, cb) = tokio::join!(f.worktrees.finish(&a), f.worktrees.finish(&b));
    assert!(ca.unwrap().diff_stat.contains("only-a.txt"));
    assert_eq!(cb.unwrap().diff, "");
    assert!(f.linked_worktrees().is_empty());
}

#[tokio::test]
async fn a_review_run_is_detached_at_the_branch_tip() {
    let f = Fixture::new();
    let task = f.prepare(run_id(7), Some("MESA-7"), Access::Write).await;
    write(task.path(), "work.txt", "done\n");
    let tip = commit_all(task.path(), "work");
    // The task's worktree is still there: a detached review checkout does not conflict with it.
    let review = f.prepare(run_id(8), Some("MESA-7"), Access::ReadOnly).await;

    assert!(review.is_isolated());
    assert!(review.is_read_only());
    assert_eq!(review.branch(), Some("mesa/MESA-7"));
    assert_eq!(review.base_commit(), Some(tip.to_string().as_str()));
    let linked = Repository::open(review.path()).unwrap();
    assert!(linked.head_detached().unwrap());
    assert_eq!(linked.head().unwrap().target(), Some(tip));
    assert_eq!(
        std::fs::read_to_string(review.path().join("work.txt")).unwrap(),
        "done\n"
    );
    // No helper branch is left behind, and the issue branch did not move.
    let branches: Vec<String> = f
        .repo()
        .branches(Some(BranchType::Local))
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_owned())
        .collect();
    assert!(
        branches.iter().all(|b| !b.starts_with("mesa-review")),
        "{branches:?}"
    );
    assert_eq!(f.tip("mesa/MESA-7"), Some(tip));

    assert_eq!(f.worktrees.finish(&review).await.unwrap().diff, "");
    f.worktrees.finish(&task).await.unwrap();
    assert!(f.linked_worktrees().is_empty());
}

#[tokio::test]
async fn a_review_of_an_issue_without_a_branch_checks_out_head() {
    let f = Fixture::new();
    let review = f.prepare(run_id(9), Some("MESA-9"), Access::ReadOnly).await;

    assert!(review.is_read_only());
    assert_eq!(review.branch(), None);
    assert_eq!(review.base_commit(), Some(f.head().to_string().as_str()));
    assert!(
        Repository::open(review.path())
            .unwrap()
            .head_detached()
            .unwrap()
    );
    assert_eq!(f.tip("mesa/MESA-9"), None);
    f.worktrees.finish(&review).await.unwrap();
}

#[tokio::test]
async fn a_directory_that_is_not_a_repository_runs_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    write(&plain, "keep.txt", "keep\n");
    let worktrees = Worktrees::new(tmp.path().join("worktrees"));

    let ws = worktrees
        .prepare(&plain, run_id(10), Some("MESA-10"), Access::Write)
        .await
        .unwrap();

    assert_eq!(
        ws,
        Workspace::InPlace {
            path: plain.clone()
        }
    );
    assert!(!ws.is_isolated());
    assert_eq!(ws.branch(), None);
    assert_eq!(ws.base_commit(), None);
    let changes = worktrees.finish(&ws).await.unwrap();
    assert_eq!(changes, mesa_runner::worktree::Changes::default());
    assert!(plain.join("keep.txt").exists());
    assert!(!tmp.path().join("worktrees").exists());
}

#[tokio::test]
async fn runs_without_an_issue_or_in_a_repository_without_commits_run_in_place() {
    let f = Fixture::new();
    let ws = f.prepare(run_id(11), None, Access::Write).await;
    assert_eq!(
        ws,
        Workspace::InPlace {
            path: f.repo_dir.clone()
        }
    );

    let tmp = tempfile::tempdir().unwrap();
    Repository::init(tmp.path()).unwrap();
    let ws = f
        .worktrees
        .prepare(tmp.path(), run_id(12), Some("MESA-12"), Access::Write)
        .await
        .unwrap();
    assert!(!ws.is_isolated());
    assert!(f.linked_worktrees().is_empty());
}

#[tokio::test]
async fn a_large_diff_is_capped_with_a_note() {
    let f = Fixture::new();
    let ws = f.prepare(run_id(13), Some("MESA-13"), Access::Write).await;
    let line = "é".repeat(39) + "\n";
    write(ws.path(), "big.txt", &line.repeat(30_000));
    write(ws.path(), "small.txt", "small\n");

    let changes = f.worktrees.finish(&ws).await.unwrap();

    assert!(changes.truncated);
    assert!(changes.diff.len() <= DIFF_CAP, "{}", changes.diff.len());
    assert!(changes.diff.len() > DIFF_CAP - 1024);
    assert!(changes.diff.starts_with("diff --git a/big.txt b/big.txt"));
    assert!(changes.diff.ends_with(
        "[diff truncated: the patch exceeds 1024 KiB; the stat lists every changed file]\n"
    ));
    // The stat still lists every file.
    assert!(changes.diff_stat.contains(" big.txt   | 30000 +"));
    assert!(changes.diff_stat.contains(" small.txt |     1 +"));
    assert!(
        changes
            .diff_stat
            .ends_with("2 files changed, 30001 insertions(+)\n")
    );
}

#[tokio::test]
async fn remove_orphans_removes_left_overs_and_keeps_live_worktrees() {
    let f = Fixture::new();
    let orphan = f.prepare(run_id(14), Some("MESA-14"), Access::Write).await;
    let live = f.prepare(run_id(15), Some("MESA-15"), Access::Write).await;
    std::fs::create_dir_all(f.root.join("not-a-run")).unwrap();

    let keep = HashSet::from([run_id(15)]);
    let removed = f.worktrees.remove_orphans(&keep).await.unwrap();

    assert_eq!(removed, 1);
    assert!(!orphan.path().exists());
    assert!(live.path().join("README.md").exists());
    assert!(f.root.join("not-a-run").exists());
    assert_eq!(f.linked_worktrees(), vec![run_id(15).to_string()]);
    // The orphan's branch survives, and a new run of its issue can use it again.
    assert!(f.tip("mesa/MESA-14").is_some());
    let again = f.prepare(run_id(16), Some("MESA-14"), Access::Write).await;
    assert!(again.path().exists());
    // Nothing to do the second time.
    let keep = HashSet::from([run_id(15), run_id(16)]);
    assert_eq!(f.worktrees.remove_orphans(&keep).await.unwrap(), 0);
}

#[tokio::test]
async fn remove_orphans_without_a_root_removes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let worktrees = Worktrees::new(tmp.path().join("missing"));
    assert_eq!(worktrees.remove_orphans(&HashSet::new()).await.unwrap(), 0);
}

#[tokio::test]
async fn a_branch_checked_out_in_a_live_worktree_fails_clearly() {
    let f = Fixture::new();
    let first = f.prepare(run_id(17), Some("MESA-17"), Access::Write).await;

    let err = f
        .worktrees
        .prepare(&f.repo_dir, run_id(18), Some("MESA-17"), Access::Write)
        .await
        .unwrap_err();

    let RunnerError::Workspace(message) = &err else {
        panic!("unexpected error {err:?}");
    };
    assert!(message.contains("mesa/MESA-17"), "{message}");
    assert!(message.contains("already checked out"), "{message}");
    assert!(
        message.contains(&first.path().display().to_string()),
        "{message}"
    );
    assert!(!f.root.join(run_id(18).to_string()).exists());
    assert_eq!(f.linked_worktrees(), vec![run_id(17).to_string()]);
}

#[tokio::test]
async fn a_branch_checked_out_in_the_repository_itself_fails_clearly() {
    let f = Fixture::new();
    let repo = f.repo();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    repo.branch("mesa/MESA-19", &head, false).unwrap();
    repo.set_head("refs/heads/mesa/MESA-19").unwrap();

    let err = f
        .worktrees
        .prepare(&f.repo_dir, run_id(19), Some("MESA-19"), Access::Write)
        .await
        .unwrap_err();

    let RunnerError::Workspace(message) = &err else {
        panic!("unexpected error {err:?}");
    };
    assert!(
        message.contains("mesa/MESA-19 is already checked out"),
        "{message}"
    );
    let repo_dir = f.repo_dir.canonicalize().unwrap();
    assert!(
        message.contains(&repo_dir.display().to_string()),
        "{message}"
    );
    assert!(f.linked_worktrees().is_empty());
}

#[tokio::test]
async fn a_stale_worktree_whose_directory_is_gone_is_pruned() {
    let f = Fixture::new();
    let lost = f.prepare(run_id(20), Some("MESA-20"), Access::Write).await;
    write(lost.path(), "a.txt", "a\n");
    let tip = commit_all(lost.path(), "before the crash");
    std::fs::remove_dir_all(lost.path()).unwrap();

    let next = f.prepare(run_id(21), Some("MESA-20"), Access::Write).await;

    assert_eq!(next.base_commit(), Some(tip.to_string().as_str()));
    assert_eq!(f.linked_worktrees(), vec![run_id(21).to_string()]);
}

#[tokio::test]
async fn keys_that_cannot_name_a_branch_are_refused() {
    let f = Fixture::new();
    for key in ["../etc", "MESA 1", "a/b", "MESA-1.lock"] {
        let err = f
            .worktrees
            .prepare(&f.repo_dir, run_id(22), Some(key), Access::Write)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot name a branch"),
            "{key:?}: {err}"
        );
    }
    assert!(!f.root.exists() || std::fs::read_dir(&f.root).unwrap().next().is_none());
}

#[tokio::test]
async fn finish_removes_directories_the_agent_made_read_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::new();
    let ws = f.prepare(run_id(23), Some("MESA-23"), Access::Write).await;
    let cache = ws.path().join("cache");
    write(&cache, "pkg/mod.go", "package m\n");
    for dir in [cache.join("pkg"), cache.clone()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }

    let changes = f.worktrees.finish(&ws).await.unwrap();

    assert!(changes.diff_stat.contains("cache/pkg/mod.go"));
    assert!(!ws.path().exists());
    assert!(f.linked_worktrees().is_empty());
}

#[tokio::test]
async fn finish_refuses_a_path_outside_the_root() {
    let f = Fixture::new();
    let ws = Workspace::Isolated {
        path: f.repo_dir.clone(),
        repo: f.repo_dir.clone(),
        branch: None,
        base_commit: f.head().to_string(),
        read_only: false,
    };

    let err = f.worktrees.finish(&ws).await.unwrap_err();

    assert!(err.to_string().contains("refusing to remove"), "{err}");
    assert!(f.repo_dir.join("README.md").exists());
}

#[tokio::test]
async fn native_skills_stay_out_of_the_diff_and_out_of_commits() {
    use mesa_runner::skills::{NativeSkill, skill_file, write_native_skills};
    let f = Fixture::new();
    // The repository tracks a skill of its own.
    write(&f.repo_dir, ".claude/skills/house-rules/SKILL.md", "ours\n");
    commit_all(&f.repo_dir, "our skill");
    let ws = f.prepare(run_id(40), Some("MESA-40"), Access::Write).await;
    let skill = |slug: &str| NativeSkill {
        slug: slug.to_owned(),
        title: "Writing SQL migrations".to_owned(),
        tags: vec![],
        body: "Never edit an applied migration.".to_owned(),
    };
    let written =
        write_native_skills(ws.path(), &[skill("sql-migrations"), skill("house-rules")]).unwrap();
    assert_eq!(written, ["sql-migrations"]);
    assert!(ws.path().join(skill_file("sql-migrations")).is_file());
    assert_eq!(
        std::fs::read_to_string(ws.path().join(skill_file("house-rules"))).unwrap(),
        "ours\n"
    );
    // The agent stages everything and commits, as `git add -A` would.
    write(ws.path(), "notes.txt", "work\n");
    let commit = commit_all(ws.path(), "work");
    let repo = Repository::open(ws.path()).unwrap();
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    assert!(tree.get_path(Path::new("notes.txt")).is_ok());
    assert!(
        tree.get_path(Path::new(".claude/skills/sql-migrations"))
            .is_err(),
        "the skill was committed"
    );
    let changes = f.worktrees.finish(&ws).await.unwrap();
    assert!(changes.diff.contains("notes.txt"), "{}", changes.diff);
    assert!(
        !changes.diff.contains("SKILL.md") && !changes.diff.contains(".gitignore"),
        "{}",
        changes.diff
    );
}
