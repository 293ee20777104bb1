//! Native skills (SPEC §4.3): Claude Code reads `.claude/skills/<name>/SKILL.md` in its working
//! directory, so the skills relevant to a run are written into the run's worktree before the
//! CLI starts.
//!
//! Safety rules, because a worktree holds whatever the repository tracks:
//! - a skill's directory name is its slug, checked again here (`[a-z0-9-]{1,64}`), so it can
//!   never name a path outside `.claude/skills`;
//! - `.claude` and `.claude/skills` must be real directories when they exist (a symbolic link
//!   committed to the repository could point anywhere): otherwise nothing is written;
//! - a skill whose directory already exists (the repository has a skill of that name) is
//!   skipped: a tracked file is never overwritten, and files are created with `create_new`;
//! - each written directory holds a `.gitignore` of `*`, so git (and `git add -A` by the agent)
//!   ignores the files: they never show in the run's diff and are never committed.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::{Result, RunnerError};

/// Where Claude Code looks for project skills, relative to its working directory.
pub const SKILLS_DIR: &str = ".claude/skills";

/// Longest description Claude Code accepts in a skill's front matter.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Longest skill name Claude Code accepts (and the longest Mesa slug).
const MAX_NAME_CHARS: usize = 64;

/// A skill to write as a native skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeSkill {
    /// Its slug: the directory name and the `name` in the front matter.
    pub slug: String,
    /// Its title (the start of the `description`).
    pub title: String,
    /// Its tags (the rest of the `description`).
    pub tags: Vec<String>,
    /// Its Markdown body.
    pub body: String,
}

/// The file of the skill named `slug`, relative to the working directory.
pub fn skill_file(slug: &str) -> String {
    format!("{SKILLS_DIR}/{slug}/SKILL.md")
}

/// Whether `slug` can name a skill directory: 1..64 of `[a-z0-9-]`.
pub fn is_safe_name(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_NAME_CHARS
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The text of `SKILL.md`: YAML front matter (`name`, `description`) and the body under the
/// title.
pub fn render(skill: &NativeSkill) -> String {
    let mut description = skill.title.split_whitespace().collect::<Vec<_>>().join(" ");
    if !skill.tags.is_empty() {
        description.push_str(&format!(" (tags: {})", skill.tags.join(", ")));
    }
    description.push_str(&format!(
        ". A practice this organization promoted; also at GET /api/v1/skills/{}.",
        skill.slug
    ));
    let description: String = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
    format!(
        "---\nname: {}\ndescription: {}\n---\n\n# {}\n\n{}\n",
        skill.slug,
        yaml_quoted(&description),
        skill.title.trim(),
        skill.body.trim_end()
    )
}

/// `text` as a YAML double-quoted scalar on one line.
fn yaml_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `skills` into `workdir` (see the module documentation). Returns the slugs written,
/// in order; skills that cannot be written safely are skipped (and logged). Fails, writing
/// nothing, when `.claude` or `.claude/skills` is not a real directory.
pub fn write_native_skills(workdir: &Path, skills: &[NativeSkill]) -> Result<Vec<String>> {
    if skills.is_empty() {
        return Ok(Vec::new());
    }
    let root = workdir.join(SKILLS_DIR);
    ensure_real_dir(&workdir.join(".claude"))?;
    ensure_real_dir(&root)?;
    let mut written = Vec::new();
    for skill in skills {
        match write_one(&root, skill) {
            Ok(true) => written.push(skill.slug.clone()),
            Ok(false) => {
                tracing::info!(skill = %skill.slug, "the worktree has a skill of that name; not written");
            }
            Err(e) => {
                tracing::warn!(skill = %skill.slug, error = %e, "could not write a native skill");
            }
        }
    }
    Ok(written)
}

/// Same as [`write_native_skills`], off the async executor.
pub async fn write_native_skills_async(
    workdir: PathBuf,
    skills: Vec<NativeSkill>,
) -> Result<Vec<String>> {
    tokio::task::spawn_blocking(move || write_native_skills(&workdir, &skills))
        .await
        .map_err(|e| RunnerError::Task(e.to_string()))?
}

/// Creates `path` as a directory unless it is one already; refuses anything else that is
/// there (a file, a symbolic link).
fn ensure_real_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(RunnerError::Workspace(format!(
            "{} is not a directory (a link or a file); no skills written",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ensure_real_dir(path),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Writes one skill under `root`; `Ok(false)` when its directory exists already.
fn write_one(root: &Path, skill: &NativeSkill) -> Result<bool> {
    if !is_safe_name(&skill.slug) {
        return Err(RunnerError::Workspace(format!(
            "{:?} cannot name a skill directory",
            skill.slug
        )));
    }
    let dir = root.join(&skill.slug);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    create_new(
        &dir.join(".gitignore"),
        "# Written by Mesa for one run; never commit it.\n*\n",
    )?;
    create_new(&dir.join("SKILL.md"), &render(skill))?;
    Ok(true)
}

/// Writes a new file; never replaces (or follows) anything already at `path`.
fn create_new(path: &Path, text: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(slug: &str) -> NativeSkill {
        NativeSkill {
            slug: slug.to_owned(),
            title: "Writing \"SQL\" migrations: the rules".to_owned(),
            tags: vec!["database".to_owned(), "sql".to_owned()],
            body: "Never edit an applied migration.\n".to_owned(),
        }
    }

    #[test]
    fn front_matter_names_and_describes_the_skill() {
        let text = render(&skill("sql-migrations"));
        assert_eq!(
            text,
            "---\nname: sql-migrations\ndescription: \"Writing \\\"SQL\\\" migrations: the rules \
             (tags: database, sql). A practice this organization promoted; also at GET \
             /api/v1/skills/sql-migrations.\"\n---\n\n# Writing \"SQL\" migrations: the \
             rules\n\nNever edit an applied migration.\n"
        );
        assert_eq!(yaml_quoted("a\\b\u{7}\nc"), "\"a\\\\b\\u0007\\nc\"");
        let long = NativeSkill {
            title: "x".repeat(5000),
            ..skill("long")
        };
        let text = render(&long);
        let description = text.lines().nth(2).unwrap();
        assert!(description.chars().count() <= MAX_DESCRIPTION_CHARS + 15);
    }

    #[test]
    fn names_are_slugs_only() {
        assert!(is_safe_name("sql-migrations-2"));
        for bad in ["", "..", "a/b", "A", "a b", "a.b", "../x", &"a".repeat(65)] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn skills_are_written_once_and_never_over_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join(".claude/skills/own");
        fs::create_dir_all(&own).unwrap();
        fs::write(own.join("SKILL.md"), "the repository's own").unwrap();
        let written = write_native_skills(
            dir.path(),
            &[skill("sql-migrations"), skill("own"), skill("../escape")],
        )
        .unwrap();
        assert_eq!(written, ["sql-migrations"]);
        let file = dir.path().join(skill_file("sql-migrations"));
        assert!(
            fs::read_to_string(&file)
                .unwrap()
                .starts_with("---\nname: sql-migrations\n")
        );
        assert_eq!(
            fs::read_to_string(own.join("SKILL.md")).unwrap(),
            "the repository's own"
        );
        assert!(!dir.path().join(".claude/escape").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join(".claude/skills/sql-migrations/.gitignore"))
                .unwrap()
                .lines()
                .last(),
            Some("*")
        );
        // A second time: the directory exists, nothing is replaced.
        fs::write(&file, "changed").unwrap();
        assert!(
            write_native_skills(dir.path(), &[skill("sql-migrations")])
                .unwrap()
                .is_empty()
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "changed");
        assert!(write_native_skills(dir.path(), &[]).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn front_matter_stays_two_lines_of_yaml(
            title in "\\PC{0,80}",
            tags in proptest::collection::vec("\\PC{0,12}", 0..4),
            body in "(\\PC|\n){0,200}",
        ) {
            let text = render(&NativeSkill { slug: "s-1".to_owned(), title, tags, body });
            let lines: Vec<&str> = text.lines().collect();
            proptest::prop_assert_eq!(lines[0], "---");
            proptest::prop_assert_eq!(lines[1], "name: s-1");
            let d = lines[2].strip_prefix("description: \"").and_then(|d| d.strip_suffix('"'));
            proptest::prop_assert!(d.is_some(), "{}", lines[2]);
            // Inside the quotes every quote and backslash is escaped, nothing is a control.
            let inner = d.unwrap_or_default();
            proptest::prop_assert!(!inner.chars().any(char::is_control));
            proptest::prop_assert!(!inner.replace("\\\\", "").replace("\\\"", "").contains('"'));
            proptest::prop_assert_eq!(lines[3], "---");
        }

        #[test]
        fn nothing_is_written_outside_the_skills_directory(
            slugs in proptest::collection::vec("[a-z./-]{0,8}", 1..5),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let work = dir.path().join("work");
            fs::create_dir(&work).unwrap();
            let skills: Vec<NativeSkill> = slugs.iter().map(|s| skill(s)).collect();
            let written = write_native_skills(&work, &skills).unwrap();
            for slug in &written {
                proptest::prop_assert!(is_safe_name(slug));
            }
            // Only `work/.claude/skills/<safe name>` directories exist.
            proptest::prop_assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
            proptest::prop_assert_eq!(fs::read_dir(work.join(".claude")).unwrap().count(), 1);
            for entry in fs::read_dir(work.join(SKILLS_DIR)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                proptest::prop_assert!(is_safe_name(&name), "{}", name);
            }
        }
    }

    #[test]
    fn a_linked_skills_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".claude")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".claude/skills")).unwrap();
        assert!(matches!(
            write_native_skills(dir.path(), &[skill("a")]),
            Err(RunnerError::Workspace(_))
        ));
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);

        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".claude")).unwrap();
        assert!(write_native_skills(dir.path(), &[skill("a")]).is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
