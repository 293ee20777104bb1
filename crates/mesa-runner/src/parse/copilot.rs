//! GitHub Copilot CLI (`copilot -p`): no structured output. The result is the tail of stdout
//! (its last [`MAX_TEXT`](super::MAX_TEXT) bytes, trimmed); usage is unknown and stays zero;
//! stderr is where failures and quota messages show.

use std::collections::VecDeque;

use mesa_domain::Timestamp;

use super::quota::QuotaScan;
use super::{MAX_TEXT, OutputParser, Parsed};
use crate::Stream;

/// Parser of Copilot CLI's plain-text output.
#[derive(Debug, Default)]
pub struct CopilotParser {
    /// The last stdout lines, at most [`MAX_TEXT`] bytes in all.
    tail: VecDeque<String>,
    tail_bytes: usize,
    quota: QuotaScan,
}

impl CopilotParser {
    fn stdout(&mut self, line: &str) {
        let line = if line.len() > MAX_TEXT {
            super::clip(line)
        } else {
            line.to_owned()
        };
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > MAX_TEXT {
            match self.tail.pop_front() {
                Some(old) => self.tail_bytes -= old.len() + 1,
                None => break,
            }
        }
    }
}

impl OutputParser for CopilotParser {
    fn line(&mut self, stream: Stream, line: &str) {
        match stream {
            Stream::Stdout => self.stdout(line),
            Stream::Stderr => {
                self.quota.text(line);
            }
        }
    }

    fn finish(&mut self, now: Timestamp) -> Parsed {
        let lines: Vec<String> = self.tail.drain(..).collect();
        self.tail_bytes = 0;
        let text = lines.join("\n");
        let text = text.trim();
        Parsed {
            result_text: (!text.is_empty()).then(|| text.to_owned()),
            quota: self.quota.resolve(now),
            ..Parsed::default()
        }
    }
}
