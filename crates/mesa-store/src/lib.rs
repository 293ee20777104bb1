//! mesa-store
