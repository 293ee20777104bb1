//! Dashboard read models: issues.
