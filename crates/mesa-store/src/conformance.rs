//! The backend-neutral conformance suite: scenarios every [`crate::Store`] must pass.
//! Each backend's tests call every scenario against a fresh database.
