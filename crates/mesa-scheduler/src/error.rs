//! Errors of the scheduler layer.

/// What went wrong in a scheduler pass.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A schedule could not be read.
    #[error("invalid schedule {text:?}: {reason}")]
    Schedule {
        /// The schedule as written.
        text: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The driver failed (storage, runner); the pass is retried on the next tick.
    #[error("driver error: {0}")]
    Driver(String),
}

/// Results of this crate.
pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;
