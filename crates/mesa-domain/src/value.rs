//! Value types with `parse` constructors (parse, don't validate).
//!
//! Each type can only hold a valid value; its `parse` names the field on error. Text values are
//! trimmed where surrounding whitespace has no meaning (titles, slugs, keys).

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use crate::ValidationError;

/// Shortens user input quoted back in an error message.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Declares a string newtype with `as_str`, `Display`, `AsRef<str>`, serde as a string, and a
/// `parse` that runs `$check(field, text) -> Result<String, ValidationError>`.
macro_rules! text_value {
    ($(#[$meta:meta])* $name:ident, $field:literal, $check:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses and normalizes `text`, reporting the default field name on error.
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                Self::parse_field($field, text)
            }

            /// Parses and normalizes `text`, reporting `field` on error.
            pub fn parse_field(field: &'static str, text: &str) -> Result<Self, ValidationError> {
                $check(field, text).map(Self)
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str { &self.0 }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_slug(field: &'static str, text: &str, max: usize) -> Result<String, ValidationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValidationError::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if t.len() > max {
        return Err(ValidationError::new(
            field,
            format!(
                "{field} must be at most {max} characters, got {}",
                t.chars().count()
            ),
        ));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ValidationError::new(
            field,
            format!(
                "{field} may contain only lowercase letters, digits and '-', got {:?}",
                clip(t)
            ),
        ));
    }
    Ok(t.to_owned())
}

fn check_agent_slug(field: &'static str, text: &str) -> Result<String, ValidationError> {
    check_slug(field, text, 64)
}

fn check_wiki_slug(field: &'static str, text: &str) -> Result<String, ValidationError> {
    check_slug(field, text, 128)
}

text_value! {
    /// An agent, archetype or skill slug: `[a-z0-9-]{1,64}` (SPEC §1).
    Slug, "slug", check_agent_slug
}

text_value! {
    /// A wiki page slug: `[a-z0-9-]{1,128}` (SPEC §1, §13).
    WikiSlug, "slug", check_wiki_slug
}

impl WikiSlug {
    /// Derives a slug from a title: lowercase, runs of other characters become one `-`,
    /// trimmed of `-`, cut to 128 characters; `page` when nothing is left (SPEC §13).
    pub fn from_title(title: &str) -> WikiSlug {
        let mut out = String::new();
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let mut slug = out.trim_matches('-').to_owned();
        slug.truncate(128);
        let slug = slug.trim_end_matches('-').to_owned();
        WikiSlug(if slug.is_empty() {
            "page".to_owned()
        } else {
            slug
        })
    }
}

fn check_title(field: &'static str, text: &str, max: usize) -> Result<String, ValidationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValidationError::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    let n = t.chars().count();
    if n > max {
        return Err(ValidationError::new(
            field,
            format!("{field} must be at most {max} characters, got {n}"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("{field} must not contain control characters or line breaks"),
        ));
    }
    Ok(t.to_owned())
}

fn check_title_200(field: &'static str, text: &str) -> Result<String, ValidationError> {
    check_title(field, text, 200)
}

fn check_name_100(field: &'static str, text: &str) -> Result<String, ValidationError> {
    check_title(field, text, 100)
}

text_value! {
    /// A title of an issue, work block, apex block, approval, wiki page or skill: 1..200
    /// characters after trimming, one line (SPEC §1).
    Title, "title", check_title_200
}

/// The title of an issue.
pub type IssueTitle = Title;

text_value! {
    /// A display name (agents, labels, tokens): 1..100 characters, one line.
    Name, "name", check_name_100
}

impl Title {
    /// The key used for the "unique among open issues" rule: trimmed, lowercased, inner
    /// whitespace collapsed (SPEC §2).
    pub fn normalized(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

/// The largest Markdown body accepted (descriptions, comments, wiki pages, archetypes): 256 KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

fn check_body(field: &'static str, text: &str) -> Result<String, ValidationError> {
    if text.len() > MAX_BODY_BYTES {
        return Err(ValidationError::new(
            field,
            format!("{field} must be at most {} KiB", MAX_BODY_BYTES / 1024),
        ));
    }
    if text.contains('\0') {
        return Err(ValidationError::new(
            field,
            format!("{field} must not contain NUL bytes"),
        ));
    }
    Ok(text.to_owned())
}

fn check_required_body(field: &'static str, text: &str) -> Result<String, ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            format!("{field} must not be empty"),
        ));
    }
    check_body(field, text)
}

text_value! {
    /// Markdown that may be empty (descriptions, goals): at most 256 KiB, no NUL.
    Markdown, "description", check_body
}

text_value! {
    /// Markdown that must say something (comments, reasons, reflections): non-blank, at most
    /// 256 KiB, no NUL.
    Body, "body", check_required_body
}

/// An issue-key prefix: an uppercase letter then up to 9 uppercase letters or digits
/// (`MESA`, `OPS2`). Setting `issue_prefix` (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct IssuePrefix(String);

impl IssuePrefix {
    /// Parses a prefix, naming the field `issue_prefix`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        let mut chars = t.chars();
        let ok = matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
            && t.len() <= 10
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(IssuePrefix(t.to_owned()))
        } else {
            Err(ValidationError::new(
                "issue_prefix",
                format!(
                    "issue_prefix must be 1 to 10 uppercase letters or digits starting with a \
                     letter, got {:?}",
                    clip(t)
                ),
            ))
        }
    }

    /// The default prefix, `MESA`.
    pub fn default_prefix() -> Self {
        IssuePrefix("MESA".to_owned())
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An issue key, `<PREFIX>-<n>` with n ≥ 1 (SPEC §1). Keys are allocated atomically by the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssueKey(String);

impl IssueKey {
    /// Parses a key such as `MESA-12`, naming the field `key`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        Self::parse_field("key", text)
    }

    /// Parses a key, naming `field` on error (`parent_key`, `issue_key`...).
    pub fn parse_field(field: &'static str, text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        let bad = || {
            ValidationError::new(
                field,
                format!(
                    "{field} must look like MESA-12 (prefix, '-', number), got {:?}",
                    clip(t)
                ),
            )
        };
        let (prefix, number) = t.rsplit_once('-').ok_or_else(bad)?;
        IssuePrefix::parse(prefix).map_err(|_| bad())?;
        if number.is_empty()
            || number.len() > 18
            || !number.bytes().all(|b| b.is_ascii_digit())
            || number.starts_with('0')
        {
            return Err(bad());
        }
        Ok(IssueKey(t.to_owned()))
    }

    /// Builds the key for the `number`th issue under `prefix`.
    pub fn new(prefix: &IssuePrefix, number: NonZeroU64) -> Self {
        IssueKey(format!("{prefix}-{number}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number after the prefix.
    pub fn number(&self) -> u64 {
        self.0
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Display for IssueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IssueKey {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for IssueKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for IssueKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        IssueKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Issue priority: 0 none, 1 low, 2 medium, 3 high, 4 urgent (SPEC §1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// No priority (the default).
    pub const NONE: Priority = Priority(0);
    /// Urgent, the highest.
    pub const URGENT: Priority = Priority(4);

    /// Parses 0..=4, naming the field `priority`.
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        u8::try_from(value).ok().filter(|v| *v <= 4).map(Priority).ok_or_else(|| {
            ValidationError::new(
                "priority",
                format!(
                    "priority must be 0 (none), 1 (low), 2 (medium), 3 (high) or 4 (urgent), got \
                     {value}"
                ),
            )
        })
    }

    /// The numeric value.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The human name.
    pub const fn label(self) -> &'static str {
        match self.0 {
            0 => "none",
            1 => "low",
            2 => "medium",
            3 => "high",
            _ => "urgent",
        }
    }
}

impl<'de> serde::Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Priority::new(v).map_err(serde::de::Error::custom)
    }
}

/// A label color, `#rrggbb` (stored lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Color(String);

impl Color {
    /// Parses `#rrggbb`, naming the field `color`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        let ok =
            t.len() == 7 && t.starts_with('#') && t.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Color(t.to_ascii_lowercase()))
        } else {
            Err(ValidationError::new(
                "color",
                format!("color must be #rrggbb, got {:?}", clip(t)),
            ))
        }
    }

    /// The color as `#rrggbb`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Color {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Color::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A setting key: `[a-z0-9_]{1,64}`.
pub fn parse_setting_key(text: &str) -> Result<String, ValidationError> {
    let t = text.trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(ValidationError::new(
            "key",
            format!(
                "setting key must be 1 to 64 of [a-z0-9_], got {:?}",
                clip(t)
            ),
        ));
    }
    Ok(t.to_owned())
}

/// An absolute path to a directory an agent works in. This only checks the shape (absolute, no
/// `..` components, no NUL); whether the directory exists is checked where IO is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct WorkingDir(String);

impl WorkingDir {
    /// Parses an absolute path, naming the field `working_dir`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        let bad = |why: &str| ValidationError::new("working_dir", format!("working_dir {why}"));
        if !t.starts_with('/') {
            return Err(bad("must be an absolute path"));
        }
        if t.contains('\0') {
            return Err(bad("must not contain NUL bytes"));
        }
        if t.split('/').any(|c| c == "..") {
            return Err(bad("must not contain '..' components"));
        }
        if t.len() > 4096 {
            return Err(bad("is too long"));
        }
        let trimmed = if t.len() > 1 {
            t.trim_end_matches('/')
        } else {
            t
        };
        Ok(WorkingDir(trimmed.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for WorkingDir {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        WorkingDir::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(Title::parse("  Fix login  ").unwrap().as_str(), "Fix login");
        let empty = Title::parse("   ").unwrap_err();
        assert_eq!(
            (empty.field.as_ref(), empty.message.as_str()),
            ("title", "title must not be empty")
        );
        let long = "x".repeat(201);
        let err = Title::parse(&long).unwrap_err();
        assert_eq!(err.message, "title must be at most 200 characters, got 201");
        assert!(
            Title::parse(&"é".repeat(200)).is_ok(),
            "limit counts characters, not bytes"
        );
        assert_eq!(Title::parse("a\nb").unwrap_err().field, "title");
        assert_eq!(
            Title::parse("Fix   Login ").unwrap().normalized(),
            "fix login"
        );
    }

    #[test]
    fn slugs() {
        assert!(Slug::parse("founding-engineer-2").is_ok());
        for bad in ["", "Ada", "a_b", "../etc", "a b", &"a".repeat(65)] {
            let err = Slug::parse(bad).unwrap_err();
            assert_eq!(err.field, "slug", "{bad}");
            assert!(err.message.starts_with("slug "), "{}", err.message);
        }
        assert!(WikiSlug::parse(&"a".repeat(128)).is_ok());
        assert_eq!(
            WikiSlug::from_title("Hello, World! 2026").as_str(),
            "hello-world-2026"
        );
        assert_eq!(WikiSlug::from_title("¿¿").as_str(), "page");
    }

    #[test]
    fn issue_keys() {
        let k = IssueKey::parse("MESA-12").unwrap();
        assert_eq!(k.number(), 12);
        assert_eq!(
            IssueKey::new(&IssuePrefix::parse("OPS").unwrap(), NonZeroU64::MIN).as_str(),
            "OPS-1"
        );
        for bad in [
            "",
            "MESA",
            "MESA-",
            "MESA-0",
            "MESA-01",
            "mesa-1",
            "MESA-1x",
            "../MESA-1",
            "-1",
        ] {
            assert_eq!(IssueKey::parse(bad).unwrap_err().field, "key", "{bad}");
        }
        assert_eq!(
            IssueKey::parse_field("parent_key", "x").unwrap_err().field,
            "parent_key"
        );
    }

    #[test]
    fn priorities_colors_paths() {
        assert_eq!(Priority::new(4).unwrap(), Priority::URGENT);
        assert_eq!(Priority::new(5).unwrap_err().field, "priority");
        assert_eq!(Priority::new(-1).unwrap_err().field, "priority");
        assert!(serde_json::from_str::<Priority>("99999999999999999999").is_err());
        assert_eq!(Color::parse("#A0b1C2").unwrap().as_str(), "#a0b1c2");
        assert_eq!(Color::parse("red").unwrap_err().field, "color");
        assert_eq!(WorkingDir::parse("/srv/app/").unwrap().as_str(), "/srv/app");
        assert_eq!(
            WorkingDir::parse("relative").unwrap_err().field,
            "working_dir"
        );
        assert!(WorkingDir::parse("/srv/../etc").is_err());
    }

    #[test]
    fn bodies() {
        assert!(Markdown::parse("").is_ok());
        assert_eq!(
            Body::parse("  \n").unwrap_err().message,
            "body must not be empty"
        );
        assert_eq!(
            Body::parse_field("comment", "").unwrap_err().field,
            "comment"
        );
        assert!(Markdown::parse(&"x".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(Markdown::parse("a\0b").is_err());
    }
}
