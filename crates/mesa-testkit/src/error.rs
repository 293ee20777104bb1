//! The crate's one error type.

/// What can go wrong when starting a [`crate::FakeModelServer`].
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The listener could not be bound or its address read.
    #[error("failed to bind the fake model server to 127.0.0.1:0")]
    Bind(#[source] std::io::Error),
}

/// `Result` with [`TestkitError`].
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;
