//! Secret scrubbing (SPEC §7.5): every line of output, failure reason and final text goes
//! through a [`Scrubber`] before it is stored or sent anywhere.
//!
//! Two kinds of secret are recognized:
//! - the exact values a run knows about (the run key, provider keys, secret settings), given to
//!   [`Scrubber::new`]; values shorter than [`MIN_SECRET_LEN`] are ignored, because redacting
//!   every `abc` in a log would destroy it and such values protect nothing anyway;
//! - common token shapes, whatever their value: OpenAI/Anthropic keys (`sk-...`, `sk-ant-...`,
//!   `sk-proj-...`), GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`),
//!   Slack tokens (`xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-`), AWS access key ids (`AKIA`,
//!   `ASIA` + 16 characters) and JWTs (three base64url parts, the first starting with `eyJ`).

use std::borrow::Cow;

use regex::Regex;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Exact secret values shorter than this many bytes are not scrubbed.
pub const MIN_SECRET_LEN: usize = 8;

/// The token shapes scrubbed whatever their value. Each starts at an ASCII word boundary so that
/// ordinary words (`task-...`) do not match.
const TOKEN_PATTERNS: &[&str] = &[
    // OpenAI and Anthropic API keys, including `sk-ant-api03-...` and `sk-proj-...`.
    r"(?-u:\b)sk-[A-Za-z0-9_\-]{20,}",
    // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
    r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{20,}",
    // GitHub fine-grained personal access tokens.
    r"(?-u:\b)github_pat_[A-Za-z0-9_]{20,}",
    // Slack tokens.
    r"(?-u:\b)xox[abprs]-[A-Za-z0-9\-]{10,}",
    // AWS access key ids (long-term and temporary).
    r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
    // JSON Web Tokens: header.payload.signature, base64url.
    r"(?-u:\b)eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]+",
];

/// Replaces secrets in text with [`REDACTED`].
#[derive(Debug, Clone)]
pub struct Scrubber {
    /// One alternation of the exact values (longest first) and the token patterns.
    pattern: Regex,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber::new(&[])
    }
}

impl Scrubber {
    /// A scrubber for these exact values plus the common token patterns.
    pub fn new(secrets: &[String]) -> Self {
        let mut values: Vec<&str> = secrets
            .iter()
            .map(String::as_str)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a value that contains another is replaced whole.
        values.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        let alternatives: Vec<String> = values
            .into_iter()
            .map(regex::escape)
            .chain(TOKEN_PATTERNS.iter().map(|p| (*p).to_owned()))
            .collect();
        let pattern = Regex::new(&alternatives.join("|"))
            .expect("escaped literals and fixed token patterns form a valid regex");
        Scrubber { pattern }
    }

    /// `text` with every secret replaced; borrowed, without copying, when there is none.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.pattern.replace_all(text, REDACTED)
    }

    /// Whether `text` holds anything this scrubber would replace.
    pub fn finds_secret(&self, text: &str) -> bool {
        self.pattern.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scrub(secrets: &[&str], text: &str) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        Scrubber::new(&secrets).scrub(text).into_owned()
    }

    #[test]
    fn exact_values_are_replaced_everywhere() {
        assert_eq!(
            scrub(
                &["hunter2hunter2"],
                "key=hunter2hunter2; again hunter2hunter2."
            ),
            "key=[REDACTED]; again [REDACTED]."
        );
    }

    #[test]
    fn short_and_empty_values_are_ignored() {
        assert_eq!(
            scrub(&["", "abc", "1234567"], "abc 1234567 x"),
            "abc 1234567 x"
        );
    }

    #[test]
    fn the_longer_of_overlapping_values_wins() {
        assert_eq!(
            scrub(
                &["password", "password-and-more"],
                "it is password-and-more!"
            ),
            "it is [REDACTED]!"
        );
    }

    #[test]
    fn values_with_regex_metacharacters_are_literal() {
        assert_eq!(
            scrub(&["a.b*c+d?(e)"], "x a.b*c+d?(e) aXbbbcd"),
            "x [REDACTED] aXbbbcd"
        );
    }

    #[test]
    fn token_shapes_are_replaced() {
        let cases = [
            ("sk-abcdefghijklmnopqrstuvwxyz0123", "[REDACTED]"),
            (
                "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz_0123",
                "[REDACTED]",
            ),
            ("sk-proj-AbCdEfGhIjKlMnOpQrStUvWxyz0123", "[REDACTED]"),
            ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]"),
            ("gho_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]"),
            ("ghs_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "[REDACTED]",
            ),
            ("xoxb-1234567890-abcdefghij", "[REDACTED]"),
            ("xoxp-1234567890-abcdefghij", "[REDACTED]"),
            ("AKIAIOSFODNN7EXAMPLE", "[REDACTED]"),
            ("ASIAIOSFODNN7EXAMPLE", "[REDACTED]"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                "[REDACTED]",
            ),
        ];
        for (token, want) in cases {
            assert_eq!(scrub(&[], token), want, "{token}");
            assert_eq!(
                scrub(&[], &format!("Authorization: Bearer {token} (end)")),
                format!("Authorization: Bearer {want} (end)"),
                "{token}"
            );
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "task-abcdefghijklmnopqrstuvwxyz is a branch",
            "sk-short",
            "AKIA is an acronym, AKIAIOSFODNN7EXAMPLEX is too long",
            "eyJ alone, or eyJabc.def",
            "ghp_ short",
            "",
        ] {
            assert_eq!(scrub(&[], text), text);
        }
    }

    #[test]
    fn nothing_to_scrub_borrows() {
        let s = Scrubber::new(&["supersecretvalue".to_owned()]);
        assert!(matches!(s.scrub("all clear here"), Cow::Borrowed(_)));
        assert!(matches!(s.scrub("a supersecretvalue"), Cow::Owned(_)));
        assert!(s.finds_secret("a supersecretvalue"));
        assert!(!s.finds_secret("all clear here"));
    }

    #[test]
    fn default_scrubs_token_shapes_only() {
        let s = Scrubber::default();
        assert_eq!(s.scrub("AKIAIOSFODNN7EXAMPLE"), "[REDACTED]");
        assert_eq!(s.scrub("plain words"), "plain words");
    }

    proptest! {
        #[test]
        fn an_inserted_secret_never_survives(
            before in any::<String>(),
            after in any::<String>(),
            secret in "[A-Za-z0-9_.~+/=-]{8,40}",
            other in "[A-Za-z0-9]{8,20}",
        ) {
            prop_assume!(!REDACTED.contains(&secret));
            let secrets = vec![other, secret.clone()];
            let text = format!("{before}{secret}{after}");
            let out = Scrubber::new(&secrets).scrub(&text).into_owned();
            prop_assert!(!out.contains(&secret), "{out:?}");
            prop_assert!(out.contains(REDACTED));
        }

        #[test]
        fn an_inserted_token_never_survives(
            before in "([ a-z,.:;=\"'\n]{0,40}[ ,:;=\"'\n])?",
            after in "([ ,:;=\"'\n][ a-z,.:;=\"'\n]{0,40})?",
            token in prop_oneof![
                "sk-(ant-api03-|proj-)?[A-Za-z0-9_-]{20,60}",
                "gh[pousr]_[A-Za-z0-9]{36}",
                "github_pat_[A-Za-z0-9_]{22,82}",
                "xox[abprs]-[0-9]{10,13}-[A-Za-z0-9]{10,32}",
                "(AKIA|ASIA)[0-9A-Z]{16}",
                "eyJ[A-Za-z0-9_-]{10,40}\\.eyJ[A-Za-z0-9_-]{10,80}\\.[A-Za-z0-9_-]{10,43}",
            ],
        ) {
            let text = format!("{before}{token}{after}");
            let out = Scrubber::new(&[]).scrub(&text).into_owned();
            prop_assert!(!out.contains(&token), "{out:?}");
            prop_assert_eq!(out, format!("{before}{REDACTED}{after}"));
        }

        #[test]
        fn text_without_secrets_is_unchanged(text in "[a-z0-9 .,:;!?()\n\té漢🦀]{0,300}") {
            let s = Scrubber::new(&["correct-horse-battery-staple".to_owned()]);
            prop_assert!(matches!(s.scrub(&text), Cow::Borrowed(t) if t == text));
        }

        #[test]
        fn arbitrary_text_is_unchanged_unless_it_holds_a_token(text in any::<String>()) {
            let s = Scrubber::new(&[]);
            let out = s.scrub(&text);
            if s.finds_secret(&text) {
                prop_assert!(out.contains(REDACTED));
            } else {
                prop_assert_eq!(out.as_ref(), text.as_str());
            }
        }
    }
}
