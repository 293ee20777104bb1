//! The one error of the domain: a value that failed to parse.

use std::borrow::Cow;

/// A value was rejected by a `parse` constructor.
///
/// `field` names the input field (`title`, `slug`, `stages[2].title`...), so the API can report
/// it as `{"field": ...}` and a person can find the mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The offending field, in the wire format's naming.
    pub field: Cow<'static, str>,
    /// A lowercase human sentence that names the field, without trailing period.
    pub message: String,
}

impl ValidationError {
    /// A new error for `field` with a message that should mention the field.
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error reported under another field name (e.g. `stages[1].title`).
    #[must_use]
    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = field.into();
        self
    }
}

/// Result of a domain parse.
pub type ValidationResult<T> = Result<T, ValidationError>;
