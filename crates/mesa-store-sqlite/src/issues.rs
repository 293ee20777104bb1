//! issues (in progress)
