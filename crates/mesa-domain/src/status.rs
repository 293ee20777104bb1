//! The closed sets of names the data model uses: statuses, kinds, modes, triggers.
//!
//! Each enum has a stable snake_case wire and storage name (`as_str`), parses from it with an
//! error that names the field and lists the allowed values, and serializes as that name.

use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable wire and storage name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses a name, reporting `field` and the allowed names on error.
            pub fn parse_field(field: &'static str, text: &str) -> Result<Self, ValidationError> {
                match text.trim() {
                    $($text => Ok($name::$variant),)*
                    other => Err(ValidationError::new(field, format!(
                        "{field} must be one of {}, got {:?}",
                        [$($text),*].join(", "),
                        crate::value::clip(other),
                    ))),
                }
            }

            /// Parses a name, reporting the default field name on error.
            pub fn parse(text: &str) -> Result<Self, ValidationError> {
                Self::parse_field($field, text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_enum! {
    /// Issue status (SPEC §2).
    IssueStatus, "status" {
        Todo => "todo",
        InProgress => "in_progress",
        Blocked => "blocked",
        InReview => "in_review",
        BoardReview => "board_review",
        Done => "done",
        WontDo => "wont_do",
        Cancelled => "cancelled",
    }
}

impl IssueStatus {
    /// `done`, `wont_do` and `cancelled` end an issue; only a reopen leaves them.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            IssueStatus::Done | IssueStatus::WontDo | IssueStatus::Cancelled
        )
    }
}

name_enum! {
    /// Issue type (SPEC §1).
    IssueType, "type" {
        Task => "task",
        Bug => "bug",
        Feature => "feature",
        Api => "api",
        Backend => "backend",
        Frontend => "frontend",
        Chore => "chore",
        Research => "research",
    }
}

#[expect(clippy::derivable_impls, reason = "the enum is declared by a macro")]
impl Default for IssueType {
    fn default() -> Self {
        IssueType::Task
    }
}

name_enum! {
    /// Work-block status (SPEC §3.1).
    WorkBlockStatus, "status" {
        Proposed => "proposed",
        Active => "active",
        Ready => "ready",
        Shipped => "shipped",
        Cancelled => "cancelled",
    }
}

impl WorkBlockStatus {
    /// `shipped` and `cancelled` are terminal and immutable.
    pub const fn is_terminal(self) -> bool {
        matches!(self, WorkBlockStatus::Shipped | WorkBlockStatus::Cancelled)
    }

    /// Issues may be added only to proposed or active blocks.
    pub const fn accepts_issues(self) -> bool {
        matches!(self, WorkBlockStatus::Proposed | WorkBlockStatus::Active)
    }
}

name_enum! {
    /// Apex-block status (SPEC §3.2).
    ApexStatus, "status" {
        Active => "active",
        Archived => "archived",
    }
}

name_enum! {
    /// What an approval decides (SPEC §4.2).
    ApprovalKind, "kind" {
        WorkBlockActivation => "work_block_activation",
        WorkBlockShip => "work_block_ship",
        ArchetypePatch => "archetype_patch",
        AgentHire => "agent_hire",
        BudgetChange => "budget_change",
        DestructiveAction => "destructive_action",
        Other => "other",
    }
}

impl ApprovalKind {
    /// Structural kinds always go to the board; the others go up the requester's chain.
    pub const fn is_structural(self) -> bool {
        !matches!(self, ApprovalKind::DestructiveAction | ApprovalKind::Other)
    }
}

name_enum! {
    /// Approval status (SPEC §1, §4.2).
    ApprovalStatus, "status" {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Expired => "expired",
        Cancelled => "cancelled",
    }
}

name_enum! {
    /// A decision on an approval.
    ApprovalDecision, "decision" {
        Approve => "approve",
        Reject => "reject",
    }
}

name_enum! {
    /// Run status (SPEC §1).
    RunStatus, "status" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        TimedOut => "timed_out",
    }
}

impl RunStatus {
    /// A finished run never changes status again.
    pub const fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

name_enum! {
    /// Why a run exists (SPEC §1).
    RunMode, "mode" {
        Task => "task",
        Review => "review",
        Heartbeat => "heartbeat",
        Cron => "cron",
        Audit => "audit",
    }
}

name_enum! {
    /// What woke an agent (SPEC §1, §6.1).
    RunTrigger, "trigger" {
        IssueCreated => "issue_created",
        Assigned => "assigned",
        ReviewRequested => "review_requested",
        ChangesRequested => "changes_requested",
        Unblocked => "unblocked",
        Reopened => "reopened",
        Comment => "comment",
        ApprovalResolved => "approval_resolved",
        SubIssuesFinished => "sub_issues_finished",
        Heartbeat => "heartbeat",
        Cron => "cron",
        Manual => "manual",
        Recovery => "recovery",
        Audit => "audit",
    }
}

impl RunTrigger {
    /// Queue order within one priority: reviews before new work (SPEC §6.2). Lower is sooner.
    pub const fn queue_rank(self) -> u8 {
        match self {
            RunTrigger::ReviewRequested => 0,
            RunTrigger::ChangesRequested | RunTrigger::Unblocked | RunTrigger::Reopened => 1,
            RunTrigger::Recovery
            | RunTrigger::ApprovalResolved
            | RunTrigger::SubIssuesFinished
            | RunTrigger::Comment => 2,
            RunTrigger::Manual | RunTrigger::Assigned | RunTrigger::IssueCreated => 3,
            RunTrigger::Audit | RunTrigger::Cron | RunTrigger::Heartbeat => 4,
        }
    }
}

name_enum! {
    /// Which program executes an agent's runs (SPEC §7.2).
    RunnerKind, "runner" {
        ClaudeCode => "claude_code",
        Codex => "codex",
        Gemini => "gemini",
        Opencode => "opencode",
        Copilot => "copilot",
        OpenaiCompat => "openai_compat",
        Command => "command",
        Noop => "noop",
        DryRun => "dry_run",
        Simulated => "simulated",
    }
}

impl RunnerKind {
    /// The CLI binary a runner needs on PATH, if it spawns one by name.
    pub const fn binary(self) -> Option<&'static str> {
        match self {
            RunnerKind::ClaudeCode => Some("claude"),
            RunnerKind::Codex => Some("codex"),
            RunnerKind::Gemini => Some("gemini"),
            RunnerKind::Opencode => Some("opencode"),
            RunnerKind::Copilot => Some("copilot"),
            _ => None,
        }
    }

    /// Runners that spend nothing and count toward no loop guard (SPEC §6.5).
    pub const fn is_free(self) -> bool {
        matches!(self, RunnerKind::Noop | RunnerKind::DryRun)
    }

    /// The agent CLIs in bootstrap preference order (SPEC §4.4).
    pub const CLI_PREFERENCE: &'static [RunnerKind] = &[
        RunnerKind::ClaudeCode,
        RunnerKind::Codex,
        RunnerKind::Gemini,
        RunnerKind::Opencode,
        RunnerKind::Copilot,
    ];
}

name_enum! {
    /// Comment kind (SPEC §1). `system` and `review` are written by Mesa only.
    CommentKind, "kind" {
        Comment => "comment",
        Evidence => "evidence",
        System => "system",
        Review => "review",
    }
}

impl CommentKind {
    /// Kinds a caller may post through the API.
    pub const fn is_user_postable(self) -> bool {
        matches!(self, CommentKind::Comment | CommentKind::Evidence)
    }
}

name_enum! {
    /// API key kind (SPEC §9.1).
    ApiKeyKind, "kind" {
        Run => "run",
        Agent => "agent",
        Board => "board",
    }
}

name_enum! {
    /// Where a cost figure came from (SPEC §1 CostEvent).
    CostSource, "source" {
        Parsed => "parsed",
        Reported => "reported",
        Estimated => "estimated",
    }
}

name_enum! {
    /// Archetype-patch status (SPEC §1).
    PatchStatus, "status" {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Superseded => "superseded",
    }
}

name_enum! {
    /// How the run behind a reflection ended (SPEC §1).
    ReflectionOutcome, "outcome" {
        Succeeded => "succeeded",
        Failed => "failed",
        ChangesRequested => "changes_requested",
    }
}

name_enum! {
    /// Status of an auditor run's record.
    AuditStatus, "status" {
        Queued => "queued",
        Running => "running",
        Finished => "finished",
        Failed => "failed",
    }
}

name_enum! {
    /// Incoming webhook delivery status (SPEC §1).
    WebhookStatus, "status" {
        Received => "received",
        Processed => "processed",
        Duplicate => "duplicate",
        Failed => "failed",
    }
}

name_enum! {
    /// Where an outgoing delivery of the outbox stands (SPEC §11.2).
    OutboxStatus, "status" {
        /// Waiting for its next attempt.
        Pending => "pending",
        /// The receiver accepted it.
        Delivered => "delivered",
        /// Given up on (a dead letter): too many attempts, or the receiver said it is gone.
        Dead => "dead",
    }
}

name_enum! {
    /// A review decision on an issue in review (SPEC §2, §9.3).
    ReviewDecision, "decision" {
        Approve => "approve",
        RequestChanges => "request_changes",
        Escalate => "escalate",
        Reject => "reject",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in IssueStatus::ALL {
            assert_eq!(IssueStatus::parse(s.as_str()).unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<IssueStatus>(&json).unwrap(), *s);
        }
        for k in RunnerKind::ALL {
            assert_eq!(RunnerKind::parse(k.as_str()).unwrap(), *k);
        }
    }

    #[test]
    fn unknown_status_names_the_field_and_the_choices() {
        let err = IssueStatus::parse("finished").unwrap_err();
        assert_eq!(err.field, "status");
        assert_eq!(
            err.message,
            "status must be one of todo, in_progress, blocked, in_review, board_review, done, \
             wont_do, cancelled, got \"finished\""
        );
        let err = serde_json::from_str::<IssueType>("\"epic\"").unwrap_err();
        assert!(err.to_string().contains("type must be one of"), "{err}");
    }

    #[test]
    fn terminal_sets() {
        let terminal: Vec<_> = IssueStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                &IssueStatus::Done,
                &IssueStatus::WontDo,
                &IssueStatus::Cancelled
            ]
        );
        assert!(WorkBlockStatus::Shipped.is_terminal() && WorkBlockStatus::Cancelled.is_terminal());
    }
}
