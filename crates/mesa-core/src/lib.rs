//! mesa-core
