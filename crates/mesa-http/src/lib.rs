//! mesa-http
