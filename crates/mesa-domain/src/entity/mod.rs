//! The entities of SPEC §1, as stored and as the core hands them to front ends.
//!
//! These are plain data with public fields: values inside were parsed on the way in.
//! They are not the wire format; `mesa-http` converts them to its own DTOs.

mod agent;
mod block;
mod governance;
mod issue;
mod knowledge;
mod outbox;
mod run;
mod system;

pub use agent::*;
pub use block::*;
pub use governance::*;
pub use issue::*;
pub use knowledge::*;
pub use outbox::*;
pub use run::*;
pub use system::*;
