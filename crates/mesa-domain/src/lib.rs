//! mesa-domain
