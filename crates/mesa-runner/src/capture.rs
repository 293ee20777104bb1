//! Bounded capture of a run's output (SPEC §7.5): [`HeadTail`] keeps the first and the last part
//! of any amount of text in O(cap) memory, and [`LineSplitter`] cuts a byte stream into lines of
//! bounded length.

/// The SPEC's cap on a run's kept output: 8 MiB.
pub const RUN_OUTPUT_CAP: usize = 8 * 1024 * 1024;

/// The longest line kept whole, in bytes; the rest of a longer line is cut (see
/// [`LineSplitter`]).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A bounded text buffer: keeps the first half of its cap (the head) and the last half (the
/// tail) of everything pushed, and counts the bytes in between. Both parts end and start on
/// UTF-8 character boundaries, so a part may be a few bytes shorter than its half.
#[derive(Debug, Clone)]
pub struct HeadTail {
    /// Bytes the head may hold.
    head_cap: usize,
    /// Bytes the tail may hold.
    tail_cap: usize,
    /// The first bytes pushed.
    head: String,
    /// Set once a character did not fit in the head: everything after goes to the tail.
    head_closed: bool,
    /// The most recent bytes; up to twice `tail_cap` so that trimming is amortized, the kept
    /// tail being its last `tail_cap` bytes.
    tail: String,
    /// Bytes pushed in all.
    total: u64,
}

impl HeadTail {
    /// An empty buffer that keeps at most `cap` bytes (plus the marker).
    pub fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        HeadTail {
            head_cap,
            tail_cap: cap - head_cap,
            head: String::new(),
            head_closed: false,
            tail: String::new(),
            total: 0,
        }
    }

    /// Appends `text`.
    pub fn push(&mut self, text: &str) {
        self.total += text.len() as u64;
        let rest = if self.head_closed {
            text
        } else {
            let room = self.head_cap - self.head.len();
            let cut = floor_boundary(text, room);
            self.head.push_str(&text[..cut]);
            if cut < text.len() {
                self.head_closed = true;
            }
            &text[cut..]
        };
        if rest.is_empty() {
            return;
        }
        if rest.len() >= self.tail_cap {
            self.tail.clear();
            self.tail
                .push_str(&rest[ceil_boundary(rest, rest.len() - self.tail_cap)..]);
            return;
        }
        self.tail.push_str(rest);
        if self.tail.len() > self.tail_cap.saturating_mul(2) {
            let start = ceil_boundary(&self.tail, self.tail.len() - self.tail_cap);
            self.tail.drain(..start);
        }
    }

    /// Appends `line` and a newline.
    pub fn push_line(&mut self, line: &str) {
        self.push(line);
        self.push("\n");
    }

    /// The kept beginning of the text: a prefix of everything pushed.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The kept end of the text: a suffix of everything pushed (empty while everything fits in
    /// the head).
    pub fn tail(&self) -> &str {
        let start = ceil_boundary(&self.tail, self.tail.len().saturating_sub(self.tail_cap));
        &self.tail[start..]
    }

    /// Bytes pushed in all.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Bytes dropped between the head and the tail.
    pub fn elided(&self) -> u64 {
        self.total - self.head.len() as u64 - self.tail().len() as u64
    }

    /// The kept text: the head, then (if anything was dropped) a [`marker`] line, then the tail.
    /// Equal to everything pushed when nothing was dropped.
    pub fn to_text(&self) -> String {
        let elided = self.elided();
        let tail = self.tail();
        if elided == 0 {
            let mut out = String::with_capacity(self.head.len() + tail.len());
            out.push_str(&self.head);
            out.push_str(tail);
            return out;
        }
        let mark = marker(elided, self.head.ends_with('\n') || self.head.is_empty());
        let mut out = String::with_capacity(self.head.len() + mark.len() + tail.len());
        out.push_str(&self.head);
        out.push_str(&mark);
        out.push_str(tail);
        out
    }

    /// [`HeadTail::to_text`], consuming the buffer.
    pub fn into_string(self) -> String {
        if self.elided() == 0 {
            let mut head = self.head;
            let start = ceil_boundary(&self.tail, self.tail.len().saturating_sub(self.tail_cap));
            head.push_str(&self.tail[start..]);
            return head;
        }
        self.to_text()
    }
}

/// The line that stands for `elided` dropped bytes, with its own line ending, and a line break
/// before it unless the text before already ended a line.
pub fn marker(elided: u64, at_line_start: bool) -> String {
    let lead = if at_line_start { "" } else { "\n" };
    format!("{lead}[... {elided} bytes elided ...]\n")
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// The smallest char boundary of `text` at or above `at`.
fn ceil_boundary(text: &str, at: usize) -> usize {
    (at..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len())
}

/// Cuts a byte stream into lines without their line endings (`\n` or `\r\n`). A line longer
/// than its cap keeps its first bytes (up to the cap, on a character boundary) followed by a
/// marker saying how many bytes were cut; the rest is counted, not stored, so memory stays
/// bounded whatever the stream holds. Invalid UTF-8 becomes U+FFFD.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    /// Bytes kept of one line.
    cap: usize,
    /// The line being read.
    current: Vec<u8>,
    /// Bytes of the line being read that did not fit.
    cut: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    /// A splitter that keeps at most `cap` bytes of a line.
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            cap,
            current: Vec::new(),
            cut: 0,
        }
    }

    /// The next complete line in `input`, advancing `input` past it; `None` once `input` is
    /// used up (an unfinished line is kept for the next call).
    pub fn next_line(&mut self, input: &mut &[u8]) -> Option<String> {
        let (chunk, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], true),
            None => (&input[..], false),
        };
        let room = self.cap.saturating_sub(self.current.len());
        let kept = chunk.len().min(room);
        self.current.extend_from_slice(&chunk[..kept]);
        self.cut += chunk.len() - kept;
        *input = &input[chunk.len() + usize::from(complete)..];
        complete.then(|| self.take())
    }

    /// The unfinished last line, at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        (!self.current.is_empty() || self.cut > 0).then(|| self.take())
    }

    /// The line read so far, as text, leaving the splitter empty.
    fn take(&mut self) -> String {
        let mut bytes = std::mem::take(&mut self.current);
        let mut cut = std::mem::take(&mut self.cut);
        if cut == 0 {
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            return String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        // A character split by the cut is dropped whole rather than shown as U+FFFD.
        if let Err(e) = std::str::from_utf8(&bytes)
            && e.error_len().is_none()
        {
            cut += bytes.len() - e.valid_up_to();
            bytes.truncate(e.valid_up_to());
        }
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        line.push_str(&format!(" [... line cut: {cut} more bytes ...]"));
        line
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pushed(cap: usize, parts: &[&str]) -> HeadTail {
        let mut buf = HeadTail::new(cap);
        for p in parts {
            buf.push(p);
        }
        buf
    }

    #[test]
    fn small_input_is_kept_whole() {
        let buf = pushed(20, &["hello ", "world"]);
        assert_eq!(buf.elided(), 0);
        assert_eq!(buf.to_text(), "hello world");
        assert_eq!(buf.into_string(), "hello world");
    }

    #[test]
    fn exactly_the_cap_is_kept_whole() {
        let buf = pushed(10, &["0123456789"]);
        assert_eq!(buf.elided(), 0);
        assert_eq!(buf.to_text(), "0123456789");
    }

    #[test]
    fn the_middle_is_replaced_by_one_marker_line() {
        let mut buf = HeadTail::new(12);
        for i in 0..10 {
            buf.push_line(&format!("line{i}"));
        }
        assert_eq!(buf.head(), "line0\n");
        assert_eq!(buf.tail(), "line9\n");
        assert_eq!(buf.elided(), 60 - 12);
        assert_eq!(
            buf.into_string(),
            "line0\n[... 48 bytes elided ...]\nline9\n"
        );
    }

    #[test]
    fn the_marker_starts_a_line_after_a_complete_head() {
        let buf = pushed(8, &["abc\n", "xxxxxxxxxxxxxxxxxxxx", "end\n"]);
        assert_eq!(buf.head(), "abc\n");
        assert_eq!(buf.to_text(), "abc\n[... 20 bytes elided ...]\nend\n");
    }

    #[test]
    fn parts_stay_on_char_boundaries() {
        // Each 'é' is two bytes; a half of 5 bytes holds two of them.
        let buf = pushed(10, &["éééééééééé"]);
        assert_eq!(buf.head(), "éé");
        assert_eq!(buf.tail(), "éé");
        assert_eq!(buf.elided(), 12);
    }

    #[test]
    fn a_huge_push_keeps_memory_bounded() {
        let mut buf = HeadTail::new(1000);
        let big = "x".repeat(1_000_000);
        for _ in 0..20 {
            buf.push(&big);
        }
        assert_eq!(buf.total_bytes(), 20_000_000);
        assert!(buf.tail.capacity() <= 1_001_000, "{}", buf.tail.capacity());
        assert_eq!(buf.head().len() + buf.tail().len(), 1000);
    }

    #[test]
    fn many_small_pushes_keep_memory_bounded() {
        let mut buf = HeadTail::new(100);
        for i in 0..100_000 {
            buf.push_line(&i.to_string());
        }
        assert!(buf.tail.len() <= 100, "{}", buf.tail.len());
        assert!(buf.tail().ends_with("99999\n"));
    }

    fn split_all(cap: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(cap);
        let mut lines = Vec::new();
        for chunk in chunks {
            let mut input = *chunk;
            while let Some(line) = splitter.next_line(&mut input) {
                lines.push(line);
            }
            assert!(input.is_empty());
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn lines_are_split_across_chunks() {
        assert_eq!(
            split_all(100, &[b"one\ntw", b"o\r\n\nthr", b"ee"]),
            ["one", "two", "", "three"]
        );
    }

    #[test]
    fn no_trailing_line_after_a_final_newline() {
        assert_eq!(split_all(100, &[b"a\nb\n"]), ["a", "b"]);
        assert!(split_all(100, &[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        assert_eq!(
            split_all(4, &[b"abcdefgh\nij\n", b"klmnop"]),
            [
                "abcd [... line cut: 4 more bytes ...]",
                "ij",
                "klmn [... line cut: 2 more bytes ...]"
            ]
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(
            split_all(5, &["aaéé\n".as_bytes()]),
            ["aaé [... line cut: 2 more bytes ...]"]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split_all(100, &[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }

    proptest! {
        #[test]
        fn head_tail_invariants(
            parts in proptest::collection::vec("(?s).{0,40}", 0..40),
            cap in 0usize..200,
        ) {
            let input: String = parts.concat();
            let mut buf = HeadTail::new(cap);
            for p in &parts {
                buf.push(p);
            }
            let text = buf.to_text();
            let elided = buf.elided();
            prop_assert!(input.starts_with(buf.head()));
            prop_assert!(input.ends_with(buf.tail()));
            prop_assert_eq!(buf.total_bytes(), input.len() as u64);
            prop_assert_eq!(
                buf.head().len() as u64 + elided + buf.tail().len() as u64,
                input.len() as u64
            );
            prop_assert!(text.len() <= cap + marker(elided, false).len());
            if elided == 0 {
                prop_assert_eq!(&text, &input);
            } else {
                prop_assert!(text.contains(&marker(elided, true)));
                // Nothing is dropped that would have fit: each part is within one character
                // (at most 4 bytes) of its half.
                prop_assert!(buf.head().len() + 4 > cap / 2);
                prop_assert!(buf.tail().len() + 4 > cap - cap / 2);
            }
            prop_assert_eq!(buf.into_string(), text);
        }

        #[test]
        fn splitting_loses_nothing_below_the_cap(
            lines in proptest::collection::vec("[^\n\r]{0,30}", 0..20),
            chunk in 1usize..17,
        ) {
            let joined: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let chunks: Vec<&[u8]> = joined.as_bytes().chunks(chunk).collect();
            prop_assert_eq!(split_all(1000, &chunks), lines);
        }

        #[test]
        fn split_lines_are_bounded(text in "(?s).{0,300}", cap in 1usize..40) {
            for line in split_all(cap, &[text.as_bytes()]) {
                let kept = line.split(" [... line cut").next().unwrap_or_default();
                prop_assert!(kept.len() <= cap);
            }
        }
    }
}
