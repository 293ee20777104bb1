//! Mesa's vocabulary: identifiers, entities, value types and domain events.
//!
//! Everything else in the workspace speaks these types.
//! Inputs from the outside world become domain values through `parse` constructors
//! (`IssueTitle::parse`, `Slug::parse`, ...) that reject bad values with a [`ValidationError`]
//! naming the field, so a value that exists is valid and is never checked again.
//!
//! Architecture invariant: this crate does no IO, is not async and never reads the clock.
//! Time comes in as a [`Timestamp`] parameter; identifiers are made by the caller from a UUID.
//! It depends on no other workspace crate.
//!
//! Start reading at [`entity`] for the data model (SPEC §1) and [`status`] for the enums the
//! state machines in `mesa-workflow` move between.

mod error;
mod id;
mod money;
mod timestamp;

pub mod actor;
pub mod entity;
pub mod event;
pub mod stage;
pub mod status;
pub mod value;

pub use actor::Actor;
pub use error::{ValidationError, ValidationResult};
pub use event::DomainEvent;
pub use id::*;
pub use money::MicroUsd;
pub use stage::{Stage, StageStatus, Stages};
pub use status::*;
pub use timestamp::Timestamp;
pub use value::*;
