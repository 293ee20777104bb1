//! Secret scrubbing (SPEC §7.5). Being written.

use std::borrow::Cow;

/// Replaces secrets in text with `[REDACTED]`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {}

impl Scrubber {
    /// A scrubber for these exact values plus the common token patterns.
    pub fn new(_secrets: &[String]) -> Self {
        Scrubber {}
    }

    /// `text` with every secret replaced.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(text)
    }
}
