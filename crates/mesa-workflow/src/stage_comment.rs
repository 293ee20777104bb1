//! The stage comment protocol (SPEC §2, "Stages").
//!
//! Agents update an issue's checklist from a comment:
//! - a line `Stages: [Design], [Build], [Ship]` replaces the checklist (all stages `todo`);
//! - a line `Stage N: <anything> - Complete` marks stages 1..N done.
//!
//! Lines are applied in order, so a comment can replace the checklist and tick it at once.
//! Leading list markers and quotes (`- `, `* `, `> `) are ignored, and the keywords are
//! case-insensitive. A `Stages:` line without any `[` is prose, not a command.
//!
//! A bad line (N outside 1..count, an empty title) is a [`ValidationError`] on the field `body`,
//! and the caller stores nothing, not even the comment.

use mesa_domain::{Stages, ValidationError};

/// The result of a comment that updates stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageUpdate {
    /// The new checklist.
    pub stages: Stages,
    /// The new `current_stage`.
    pub current_stage: Option<u32>,
    /// The system comment to add after the author's comment, with the progress percentage.
    pub system_comment: String,
}

/// One recognized line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Directive {
    Replace(Vec<String>),
    Complete(i64),
}

const FIELD: &str = "body";

/// Applies the stage lines of a comment `body` to `stages`. `Ok(None)` when the comment has no
/// stage line (store it as an ordinary comment).
pub fn apply(stages: &Stages, body: &str) -> Result<Option<StageUpdate>, ValidationError> {
    let directives = parse(body)?;
    if directives.is_empty() {
        return Ok(None);
    }
    let mut current = stages.clone();
    let mut notes = Vec::new();
    for directive in directives {
        match directive {
            Directive::Replace(titles) => {
                current = Stages::from_titles(titles).map_err(|e| {
                    let message = format!("in the Stages: line, {}", e.message);
                    ValidationError::new(FIELD, message)
                })?;
                notes.push(format!("Stages set: {} stages.", current.len()));
            }
            Directive::Complete(n) => {
                current = current.complete_through(n, FIELD)?;
                let title = usize::try_from(n)
                    .ok()
                    .and_then(|n| current.as_slice().get(n - 1))
                    .map(|s| s.title.clone())
                    .unwrap_or_default();
                notes.push(format!("Stage {n} complete: {title}."));
            }
        }
    }
    let progress = format!(
        "Progress: {} of {} stages done ({}%).",
        current.done_count(),
        current.len(),
        current.progress_percent()
    );
    notes.push(progress);
    Ok(Some(StageUpdate {
        current_stage: current.current(),
        system_comment: notes.join(" "),
        stages: current,
    }))
}

fn parse(body: &str) -> Result<Vec<Directive>, ValidationError> {
    let mut out = Vec::new();
    for raw in body.lines() {
        let line = strip_markers(raw);
        if let Some(rest) = strip_prefix_ci(line, "stages:") {
            if rest.contains('[') {
                out.push(Directive::Replace(titles(rest)?));
            }
        } else if let Some(rest) = strip_prefix_ci(line, "stage ")
            && let Some(n) = completion(rest)?
        {
            out.push(Directive::Complete(n));
        }
    }
    Ok(out)
}

fn strip_markers(line: &str) -> &str {
    let mut line = line.trim();
    while let Some(rest) = ["- ", "* ", "+ ", "> "]
        .iter()
        .find_map(|m| line.strip_prefix(m))
    {
        line = rest.trim_start();
    }
    line
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `[A], [B], [C]` → titles. Anything but brackets, commas and spaces between items is an error.
fn titles(list: &str) -> Result<Vec<String>, ValidationError> {
    let bad = || {
        ValidationError::new(
            FIELD,
            "a Stages: line must list titles in brackets, like Stages: [Design], [Build], [Ship]",
        )
    };
    let mut titles = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(bad)?;
        let close = inner.find(']').ok_or_else(bad)?;
        titles.push(inner[..close].to_owned());
        rest = inner[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
            if rest.is_empty() {
                return Err(bad());
            }
        } else if !rest.is_empty() {
            return Err(bad());
        }
    }
    Ok(titles)
}

/// `N: ... - Complete` → N. Lines that do not end in `- Complete` are prose (`None`).
fn completion(rest: &str) -> Result<Option<i64>, ValidationError> {
    let Some((number, text)) = rest.split_once(':') else {
        return Ok(None);
    };
    // ASCII lowercasing keeps byte offsets, so the suffix test is safe on any text.
    let text = text.trim_end().trim_end_matches('.').to_ascii_lowercase();
    let ends_complete = text
        .strip_suffix("complete")
        .is_some_and(|before| before.trim_end().ends_with('-'));
    let number = number.trim();
    if !ends_complete || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    number
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ValidationError::new(FIELD, format!("stage {number} does not exist")))
}

#[cfg(test)]
mod tests;
