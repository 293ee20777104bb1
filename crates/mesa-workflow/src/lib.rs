//! Mesa's state machines, as pure functions.
//!
//! Every status change in Mesa is decided here and carried out elsewhere. A decision is
//! `decide(snapshot, command, actor, now) -> Result<Transition, WorkflowError>`:
//!
//! - the *snapshot* is the little the machine needs to know about the entity (its status, its
//!   assignee, whether evidence was posted...), filled in by the caller from storage;
//! - the *command* is what somebody asked for, with its arguments (comment, reason, force);
//! - the *actor* says who asks and how they relate to the entity (board, assignee, reviewer...);
//! - `now` is the time of the decision; this crate never reads the clock.
//!
//! A [`Transition`] is data: the new status, a list of *effects* the caller performs in the same
//! transaction or right after it (set the assignee, stamp `completed_at`, add a system comment,
//! wake agent X with trigger T, notify the board, request an approval...), and the activity row
//! to append. A refusal is a [`WorkflowError`], also data, which front ends map to their codes
//! ([`WorkflowError::code`]).
//!
//! Modules, one state machine each:
//! - [`issue`]: the issue lifecycle of SPEC §2 and the atomic checkout of §2.2. Start here;
//!   [`issue::TABLE`] is the transition table the rest of the system obeys.
//! - [`stage_comment`]: the `Stages:` / `Stage N: ... - Complete` comment protocol (§2).
//! - [`work_block`]: the work-block lifecycle of §3.1.
//! - [`approval`]: routing, resolving, expiring and cancelling approvals (§4.2).
//! - [`run`]: the run lifecycle (§1 Run).
//! - [`review_chain`]: who reviews whom (§4.1) and reporting-line validation.
//! - [`guard`]: the runaway guard (§2) and the per-agent loop guard (§6.5).
//!
//! [`transition_table_markdown`] renders the tables for `docs/workflow.md`; a test keeps the
//! committed file in step with the code.
//!
//! Architecture invariants:
//! - No IO, not async, no clock, no randomness, no global state: the same inputs always give the
//!   same decision. The crate depends only on `mesa-domain` (and `serde`/`thiserror`).
//! - The transition tables are the single source of truth: `decide` looks the row up (legality)
//!   and checks the row's parties (permission) before any command-specific rule, so a refusal is
//!   `illegal_transition` before `forbidden` before `validation_failed` before `conflict`.
//! - A refused command has no effects: nothing is to be written.
//! - An agent's own actions never wake the agent itself (SPEC §6.1); every wake effect names
//!   someone other than the acting agent.
//! - No agent ever approves its own work: the submitter and the assignee are never the reviewer.

/// Declares a closed set of command names with `ALL`, `as_str`, `parse`, `Display` and
/// serialization as the name.
macro_rules! command_names {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every command, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The snake_case name, as used on the wire and in the activity log.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses a name, naming the field and the allowed names on error.
            pub fn parse(text: &str) -> Result<Self, mesa_domain::ValidationError> {
                match text.trim() {
                    $($text => Ok($name::$variant),)*
                    other => Err(mesa_domain::ValidationError::new($field, format!(
                        "{} must be one of {}, got {:?}",
                        $field,
                        [$($text),*].join(", "),
                        other.chars().take(40).collect::<String>(),
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = mesa_domain::ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

mod error;
mod markdown;
mod transition;

pub mod approval;
pub mod guard;
pub mod issue;
pub mod review_chain;
pub mod run;
pub mod stage_comment;
pub mod work_block;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;

pub use error::{Result, WorkflowError};
pub use markdown::transition_table_markdown;
pub use review_chain::Reviewer;
pub use transition::{Activity, Transition};

/// True when an optional comment or reason holds something other than whitespace.
pub(crate) fn has_text(text: Option<&str>) -> bool {
    text.is_some_and(|t| !t.trim().is_empty())
}

/// The trimmed text of an optional comment, if it holds any.
pub(crate) fn text_of(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}
