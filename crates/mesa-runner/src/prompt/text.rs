//! Text helpers: one-line fields, bounded blocks with a trim marker, bounded lists, fences,
//! numbers and times. Every piece of variable text is charged to one [`Budget`], so a prompt
//! stays bounded however large its input is.

use mesa_domain::Timestamp;

/// The bytes of variable text one prompt may hold in all.
pub(super) const TOTAL_BUDGET: usize = 64 * 1024;

/// What is left of the variable-text allowance of one prompt.
#[derive(Debug)]
pub(super) struct Budget {
    left: usize,
}

impl Budget {
    /// A fresh allowance of `bytes`.
    pub(super) fn new(bytes: usize) -> Self {
        Budget { left: bytes }
    }

    /// Bytes still available.
    pub(super) fn left(&self) -> usize {
        self.left
    }

    /// Charges `bytes` (saturating).
    pub(super) fn spend(&mut self, bytes: usize) {
        self.left = self.left.saturating_sub(bytes);
    }
}

/// `text` on one line (whitespace runs become one space), at most `max` bytes, with `…` when cut.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= max {
        return joined;
    }
    let cut = floor_boundary(&joined, max.saturating_sub('…'.len_utf8()));
    format!("{}…", joined[..cut].trim_end())
}

/// The largest char boundary of `text` at or below `max`.
pub(super) fn floor_boundary(text: &str, max: usize) -> usize {
    if max >= text.len() {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

/// Where to cut `text` to keep at most `max` bytes: at a line end when one is in the last
/// quarter of the window, else at a char boundary.
fn cut_point(text: &str, max: usize) -> usize {
    let hard = floor_boundary(text, max);
    match text[..hard].rfind('\n') {
        Some(nl) if nl >= hard - hard / 4 => nl,
        _ => hard,
    }
}

/// `text` without its leading blank lines and trailing whitespace (a first line's indentation
/// is kept: it may matter to Markdown).
fn trim_blank_lines(text: &str) -> &str {
    let text = text.trim_end();
    match text.find(|c: char| !c.is_whitespace()) {
        None => "",
        Some(i) => {
            let start = text[..i].rfind('\n').map_or(0, |n| n + 1);
            &text[start..]
        }
    }
}

/// Multi-line `text` (line endings normalized, outer blank lines dropped), at most `cap` bytes
/// and what the budget allows. When cut, a marker says how many characters were left out and
/// `hint` (", read it with ...") says where to find them. Charges the budget.
pub(super) fn block(budget: &mut Budget, text: &str, cap: usize, hint: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = trim_blank_lines(&text);
    let max = cap.min(budget.left());
    let out = if text.len() <= max {
        text.to_owned()
    } else {
        let cut = cut_point(text, max);
        let omitted = text[cut..].chars().count();
        let kept = text[..cut].trim_end();
        let marker = format!("[… {} more characters trimmed{hint}]", thousands(omitted));
        if kept.is_empty() {
            marker
        } else {
            format!("{kept}\n{marker}")
        }
    };
    budget.spend(out.len());
    out
}

/// Up to `max_items` rendered lines, while the budget lasts; a last line says how many more
/// were left out (`… and 3 more {what}`). Charges the budget.
pub(super) fn bounded_lines<I>(
    budget: &mut Budget,
    items: I,
    max_items: usize,
    what: &str,
) -> Vec<String>
where
    I: ExactSizeIterator<Item = String>,
{
    let total = items.len();
    let mut out = Vec::new();
    for line in items.take(max_items) {
        if line.len() > budget.left() {
            break;
        }
        budget.spend(line.len() + 1);
        out.push(line);
    }
    if out.len() < total {
        out.push(format!(
            "- … and {} more {what} not shown",
            thousands(total - out.len())
        ));
    }
    out
}

/// `text`, or `fallback` when it is empty.
pub(super) fn non_empty(text: String, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_owned()
    } else {
        text
    }
}

/// `text` on one line as an inline code span (`` `ada` ``); backticks inside become `'` so the
/// span cannot break.
pub(super) fn code(text: &str, max: usize) -> String {
    format!("`{}`", one_line(&text.replace('`', "'"), max))
}

/// `text` with its Markdown headings (outside code fences) moved `levels` deeper (at most
/// `######`), so the headings of a description nest under the prompt's own.
pub(super) fn demote_headings(text: &str, levels: usize) -> String {
    let mut in_fence = false;
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                in_fence = !in_fence;
                return line.to_owned();
            }
            let hashes = line.bytes().take_while(|b| *b == b'#').count();
            let is_heading = (1..=6).contains(&hashes)
                && line[hashes..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace);
            if in_fence || !is_heading {
                return line.to_owned();
            }
            let level = (hashes + levels).min(6);
            format!("{}{}", "#".repeat(level), &line[hashes..])
        })
        .collect();
    lines.join("\n")
}

/// `text` as a quote: each line prefixed with `> ` (so it cannot pass for our own headings).
pub(super) fn quote(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                ">".to_owned()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` in a fenced code block whose fence is longer than any backtick run inside it.
pub(super) fn fenced(lang: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{text}\n{fence}")
}

/// `12345` as `12,345`.
pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A time as `2026-11-25 13:31 UTC`.
pub(super) fn when(t: Timestamp) -> String {
    let d = t.to_offset_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}

/// A measured value without a useless `.0` (`12`, `0.35`).
pub(super) fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Only the characters safe in a URL path segment and a shell word (`[A-Za-z0-9._-]`), so a
/// value pasted into a command line can never inject anything.
pub(super) fn url_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(128)
        .collect()
}
