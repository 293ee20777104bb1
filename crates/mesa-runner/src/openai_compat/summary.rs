//! Bounded text: one-line summaries for run events, and head+tail capture for tool output.

use std::collections::VecDeque;

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// `text` on one line (line breaks shown as `⏎`), cut to at most `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let joined = text.trim().replace("\r\n", "\n").replace('\n', " ⏎ ");
    clip(&joined, max)
}

/// Keeps the first and the last `half` bytes of a byte stream and counts what falls between.
#[derive(Debug)]
pub(crate) struct HeadTail {
    half: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: u64,
}

impl HeadTail {
    /// Keeps at most `cap` bytes in all.
    pub(crate) fn new(cap: usize) -> Self {
        let half = (cap / 2).max(1);
        Self {
            half,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
        }
    }

    /// Appends bytes.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        let room = self.half - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() > self.half {
            let skip = bytes.len() - self.half;
            self.omitted += (self.tail.len() + skip) as u64;
            self.tail.clear();
            bytes = &bytes[skip..];
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
        self.tail.drain(..overflow);
        self.omitted += overflow as u64;
        self.tail.extend(bytes);
    }

    /// Bytes left out.
    pub(crate) fn omitted(&self) -> u64 {
        self.omitted
    }

    /// The kept text (invalid UTF-8 replaced), with a marker where bytes were left out.
    pub(crate) fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted > 0 {
            out.push_str(&format!("\n[... {} bytes omitted ...]\n", self.omitted));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = a.to_vec();
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\nb\r\nc\n", 100), "a ⏎ b ⏎ c");
    }

    #[test]
    fn head_tail_keeps_everything_under_the_cap() {
        let mut buf = HeadTail::new(10);
        buf.push(b"abc");
        buf.push(b"defg");
        assert_eq!(buf.text(), "abcdefg");
        assert_eq!(buf.omitted(), 0);
    }

    #[test]
    fn head_tail_keeps_both_ends_of_long_output() {
        let mut buf = HeadTail::new(8);
        for chunk in [&b"0123"[..], b"45", b"6789abcdef", b"ghij"] {
            buf.push(chunk);
        }
        // 20 bytes, 4 kept at each end.
        assert_eq!(buf.omitted(), 12);
        assert_eq!(buf.text(), "0123\n[... 12 bytes omitted ...]\nghij");
    }

    #[test]
    fn head_tail_byte_by_byte_matches_one_push() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut one = HeadTail::new(50);
        one.push(&data);
        let mut many = HeadTail::new(50);
        for b in &data {
            many.push(std::slice::from_ref(b));
        }
        assert_eq!(one.text(), many.text());
        assert_eq!(one.omitted(), 150);
    }
}
