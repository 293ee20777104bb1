//! Dashboard read models: knowledge.
