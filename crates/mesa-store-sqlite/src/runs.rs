//! runs (in progress)
