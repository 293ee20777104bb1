//! mesa-store-sqlite
