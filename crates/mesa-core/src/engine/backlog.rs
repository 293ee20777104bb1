//! Backlog intake (SPEC §7.3 item 4): the board writes ideas into
//! `<CEO working_dir>/artifact-docs/backlog.md`; a CEO run is handed its first sections, and
//! once that run succeeds exactly those sections are moved to `artifact-docs/backlog.done.md`.
//! Nothing is ever silently dropped: the done file is appended (and synced) before the backlog
//! is rewritten, so a crash in between leaves a section in both files, never in neither; a
//! backlog edited during the run keeps every byte the run did not see.
//!
//! A section starts at a level-1 or level-2 heading (`# ` or `## ` at the start of a line);
//! text before the first heading is a section of its own, and a file without headings is one
//! section. A run is handed whole sections up to [`CAP`] bytes (at least the first one).

use std::path::{Path, PathBuf};

use mesa_domain::{RunId, Timestamp};
use tokio::io::AsyncWriteExt;

/// The most a run is handed at once, in bytes (the prompt quotes up to the same size).
pub(crate) const CAP: usize = 8 * 1024;

/// `artifact-docs/backlog.md` under `working_dir`.
pub(crate) fn backlog_path(working_dir: &Path) -> PathBuf {
    working_dir.join("artifact-docs").join("backlog.md")
}

/// `artifact-docs/backlog.done.md` under `working_dir`.
pub(crate) fn done_path(working_dir: &Path) -> PathBuf {
    working_dir.join("artifact-docs").join("backlog.done.md")
}

/// The byte offsets where sections start (always 0 first).
fn section_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && (line.starts_with("# ") || line.starts_with("## ")) {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
}

/// The whole sections at the start of `text` that a run is handed: as many as fit in `cap`
/// bytes, and at least the first. `None` when the backlog holds nothing but whitespace.
pub(crate) fn take(text: &str, cap: usize) -> Option<&str> {
    if text.trim().is_empty() {
        return None;
    }
    let starts = section_starts(text);
    let mut end = starts.get(1).copied().unwrap_or(text.len());
    for next in starts.iter().skip(2).copied().chain([text.len()]) {
        if next > cap {
            break;
        }
        end = next;
    }
    Some(&text[..end])
}

/// `current` without the first occurrence of `processed` (normally its start; the board may
/// have edited the file during the run). `None` when `processed` is no longer in it.
pub(crate) fn remove(current: &str, processed: &str) -> Option<String> {
    if processed.is_empty() {
        return None;
    }
    let at = current.find(processed)?;
    let mut rest = String::with_capacity(current.len() - processed.len());
    rest.push_str(&current[..at]);
    rest.push_str(&current[at + processed.len()..]);
    Some(rest)
}

/// What became of a run's backlog sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Appended to the done file and removed from the backlog.
    Moved,
    /// The backlog no longer holds them (edited by hand meanwhile): nothing was changed.
    Gone,
}

/// Moves `processed` from the backlog under `working_dir` to the done file, with a line naming
/// the run and the time.
pub(crate) async fn move_processed(
    working_dir: &Path,
    processed: &str,
    run: RunId,
    now: Timestamp,
) -> std::io::Result<Moved> {
    let backlog = backlog_path(working_dir);
    let current = match tokio::fs::read_to_string(&backlog).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Moved::Gone),
        Err(e) => return Err(e),
    };
    let Some(rest) = remove(&current, processed) else {
        return Ok(Moved::Gone);
    };
    let mut entry = format!("<!-- processed by run {run} at {now} -->\n{processed}");
    if !entry.ends_with('\n') {
        entry.push('\n');
    }
    entry.push('\n');
    let mut done = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(done_path(working_dir))
        .await?;
    done.write_all(entry.as_bytes()).await?;
    done.sync_all().await?;
    let staged = backlog.with_extension("md.tmp");
    let mut file = tokio::fs::File::create(&staged).await?;
    file.write_all(rest.as_bytes()).await?;
    file.sync_all().await?;
    tokio::fs::rename(&staged, &backlog).await?;
    Ok(Moved::Moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BACKLOG: &str = "Ideas from the board.\n\n## Export invoices\nAs CSV.\n\n\
                           ## Status page\nPublic.\n\n## Magic links\nNo passwords.\n";

    #[test]
    fn a_run_is_handed_whole_sections_up_to_the_cap() {
        let all = take(BACKLOG, CAP).unwrap();
        assert_eq!(all, BACKLOG);
        let two = BACKLOG.find("## Status page").unwrap();
        let first = take(BACKLOG, two).unwrap();
        assert_eq!(
            first,
            "Ideas from the board.\n\n## Export invoices\nAs CSV.\n\n"
        );
        // At least the first section, however small the cap.
        assert_eq!(take(BACKLOG, 1).unwrap(), "Ideas from the board.\n\n");
        assert_eq!(take("  \n\n", CAP), None);
        assert_eq!(take("- one\n- two\n", 3), Some("- one\n- two\n"));
    }

    #[test]
    fn headings_inside_a_line_or_deeper_do_not_split() {
        let text = "## A\nsee # not a heading\n### detail\n## B\n";
        assert_eq!(section_starts(text), vec![0, text.find("## B").unwrap()]);
    }

    #[test]
    fn removal_finds_the_sections_even_after_an_edit_above_them() {
        let processed = "## Export invoices\nAs CSV.\n\n";
        let edited = format!("New idea at the top.\n{BACKLOG}");
        let rest = remove(&edited, processed).unwrap();
        assert!(!rest.contains("Export invoices"));
        assert!(rest.starts_with("New idea at the top.\nIdeas from the board."));
        assert_eq!(remove("## Other\n", processed), None);
        assert_eq!(remove(BACKLOG, ""), None);
    }

    #[tokio::test]
    async fn processed_sections_move_to_the_done_file_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("artifact-docs")).unwrap();
        std::fs::write(backlog_path(dir.path()), BACKLOG).unwrap();
        let two = BACKLOG.find("## Status page").unwrap();
        let processed = take(BACKLOG, two).unwrap().to_owned();
        let run = RunId::from(uuid::Uuid::now_v7());
        let moved = move_processed(dir.path(), &processed, run, Timestamp::EPOCH)
            .await
            .unwrap();
        assert_eq!(moved, Moved::Moved);
        let rest = std::fs::read_to_string(backlog_path(dir.path())).unwrap();
        assert_eq!(rest, &BACKLOG[two..]);
        let done = std::fs::read_to_string(done_path(dir.path())).unwrap();
        assert!(done.starts_with(&format!("<!-- processed by run {run} at")));
        assert!(done.contains(&processed));
        // A second run of the same sections finds them gone and changes nothing.
        let again = move_processed(dir.path(), &processed, run, Timestamp::EPOCH)
            .await
            .unwrap();
        assert_eq!(again, Moved::Gone);
        assert_eq!(
            std::fs::read_to_string(backlog_path(dir.path())).unwrap(),
            rest
        );
        assert_eq!(
            std::fs::read_to_string(done_path(dir.path())).unwrap(),
            done
        );
    }

    proptest! {
        /// Nothing is lost: what a run is handed plus what stays is the whole backlog, and
        /// what it is handed is whole sections.
        #[test]
        fn taking_and_removing_loses_nothing(
            parts in prop::collection::vec(("(# |## |### |)", "[a-z \n]{0,40}"), 1..8),
            cap in 0usize..200,
        ) {
            let text: String = parts.iter().map(|(h, b)| format!("{h}{b}\n")).collect();
            match take(&text, cap) {
                None => prop_assert!(text.trim().is_empty()),
                Some(taken) => {
                    prop_assert!(!taken.is_empty());
                    prop_assert!(text.starts_with(taken));
                    let rest = remove(&text, taken).unwrap();
                    prop_assert_eq!(format!("{taken}{rest}"), text.clone());
                    prop_assert!(
                        rest.is_empty() || rest.starts_with("# ") || rest.starts_with("## ")
                    );
                }
            }
        }
    }
}
