//! The dashboard's line diff (agent revisions, archetype versions and patches, wiki
//! revisions): the longest common subsequence of lines, as rows the templates mark
//! `.diff-add`, `.diff-del` or `.diff-ctx`.

use serde::Serialize;

/// Above this many line pairs the diff gives up on alignment and shows the whole old text as
/// removed and the new one as added (bounded time and memory on huge pages).
const MAX_CELLS: usize = 4_000_000;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DiffLine {
    /// `add`, `del` or `ctx`.
    pub(crate) kind: &'static str,
    /// The line's text, without its newline.
    pub(crate) text: String,
}

impl DiffLine {
    fn new(kind: &'static str, text: &str) -> Self {
        DiffLine {
            kind,
            text: text.to_owned(),
        }
    }
}

/// The lines of `new` against `old`: unchanged lines as `ctx`, removed as `del`, added as `add`.
pub(crate) fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return a
            .iter()
            .map(|l| DiffLine::new("del", l))
            .chain(b.iter().map(|l| DiffLine::new("add", l)))
            .collect();
    }
    let table = lcs_table(&a, &b);
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(DiffLine::new("ctx", a[i]));
            i += 1;
            j += 1;
        } else if table[(i + 1) * (b.len() + 1) + j] >= table[i * (b.len() + 1) + j + 1] {
            out.push(DiffLine::new("del", a[i]));
            i += 1;
        } else {
            out.push(DiffLine::new("add", b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| DiffLine::new("del", l)));
    out.extend(b[j..].iter().map(|l| DiffLine::new("add", l)));
    out
}

/// True when the diff changes nothing.
pub(crate) fn is_empty(diff: &[DiffLine]) -> bool {
    diff.iter().all(|l| l.kind == "ctx")
}

/// `t[i][j]` = length of the longest common subsequence of `a[i..]` and `b[j..]`, flattened.
fn lcs_table(a: &[&str], b: &[&str]) -> Vec<u32> {
    let w = b.len() + 1;
    let mut t = vec![0_u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i * w + j] = if a[i] == b[j] {
                t[(i + 1) * w + j + 1] + 1
            } else {
                t[(i + 1) * w + j].max(t[i * w + j + 1])
            };
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(d: &[DiffLine]) -> Vec<(&str, &str)> {
        d.iter().map(|l| (l.kind, l.text.as_str())).collect()
    }

    #[test]
    fn changed_lines_are_removed_then_added_around_context() {
        let d = line_diff("a\nb\nc", "a\nB\nc\nd");
        assert_eq!(
            kinds(&d),
            vec![
                ("ctx", "a"),
                ("del", "b"),
                ("add", "B"),
                ("ctx", "c"),
                ("add", "d")
            ]
        );
    }

    #[test]
    fn identical_and_empty_texts() {
        assert!(line_diff("", "").is_empty());
        assert_eq!(kinds(&line_diff("x", "x")), vec![("ctx", "x")]);
        assert_eq!(kinds(&line_diff("", "new")), vec![("add", "new")]);
        assert!(is_empty(&line_diff("x\ny", "x\ny")));
        assert!(!is_empty(&line_diff("x", "y")));
    }
}
