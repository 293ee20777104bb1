//! The scheduler (SPEC §6): which queued run starts next, under which caps, when heartbeats and
//! crons fire, how long a quota pause lasts, when the loop guard trips, and the run loop itself,
//! with graceful shutdown.
//!
//! The decisions are pure functions ([`policy`], [`schedule`]) so they are tested without a
//! clock or a database. The loop ([`Scheduler`]) is generic over a [`Driver`], which the core
//! implements with the store and the runners; [`Scheduler::step`] runs one pass, so tests can
//! drive it deterministically.

mod engine;
mod error;
pub mod policy;
pub mod schedule;

pub use engine::{Driver, Handle, RunSignal, Scheduler, SchedulerConfig, Snapshot, StepReport};
pub use error::{Result, SchedulerError};
