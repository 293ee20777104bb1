//! mesa-workflow
