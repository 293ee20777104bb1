//! archetypes (in progress)
