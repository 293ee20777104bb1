//! Inputs and outputs of store calls that are not domain entities: new-row records, write sets,
//! filters and pages.

use mesa_domain::entity::{
    Agent, ApexBlock, Approval, ArchetypePatch, Issue, NewActivity, Run, TokenUsage, WikiPage,
    WorkBlock,
};
use mesa_domain::{
    AgentId, ApiKeyId, CommentId, CommentKind, CostSource, IssueId, IssueKey, IssuePrefix,
    IssueStatus, IssueType, LabelId, Markdown, MicroUsd, Priority, RunId, RunMode, RunStatus,
    RunTrigger, RunnerKind, Stages, Timestamp, Title, Version, WorkBlockId,
};

/// The most items one page may hold (SPEC §9.2).
pub const MAX_PAGE: u32 = 500;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;

/// Whose inbox (SPEC §9.3 `GET /inbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOwner {
    /// An agent: its open issues, and the `in_review` issues whose reviewer it is.
    Agent(AgentId),
    /// The board: the issues in `board_review`.
    Board,
}

/// What may have changed between two data versions ([`crate::SystemStore::changes_between`]),
/// in the terms read caches depend on. Anything not named here (agents, settings, comments,
/// the audit log, ...) may always have changed: only entries that depend on nothing but the
/// parts below can outlive a commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// API key rows (board tokens, agent keys, run keys) that may have changed.
    pub keys: Touched<ApiKeyId>,
    /// Whether any run's row may have changed (a run key lives only while its run does).
    pub runs: bool,
    /// Agents whose inbox (SPEC §9.3) may have changed.
    pub inboxes: Touched<AgentId>,
    /// Whether the board's inbox (the issues in `board_review`) may have changed.
    pub board_inbox: bool,
}

impl Changes {
    /// Whether the rows of key `id` (or, for `None`, any key row: a new key may have been
    /// stored under a hash that had none) may have changed.
    pub fn touches_key(&self, id: Option<ApiKeyId>) -> bool {
        match id {
            Some(id) => self.keys.contains(&id),
            None => self.keys != Touched::Nothing,
        }
    }

    /// Whether `owner`'s inbox may have changed.
    pub fn touches_inbox(&self, owner: InboxOwner) -> bool {
        match owner {
            InboxOwner::Agent(agent) => self.inboxes.contains(&agent),
            InboxOwner::Board => self.board_inbox,
        }
    }

    /// Adds what `other` may have changed.
    pub fn merge(&mut self, other: &Changes) {
        self.keys.merge(&other.keys);
        self.runs |= other.runs;
        self.inboxes.merge(&other.inboxes);
        self.board_inbox |= other.board_inbox;
    }

    /// Everything, for a write that cannot say.
    pub fn everything() -> Self {
        Changes {
            keys: Touched::Any,
            runs: true,
            inboxes: Touched::Any,
            board_inbox: true,
        }
    }
}

/// A set of things a write may have changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Touched<T> {
    /// None of them.
    #[default]
    Nothing,
    /// At most these.
    Only(std::collections::BTreeSet<T>),
    /// Any of them.
    Any,
}

impl<T: Ord + Clone> Touched<T> {
    /// Whether `item` may have changed.
    pub fn contains(&self, item: &T) -> bool {
        match self {
            Touched::Nothing => false,
            Touched::Only(items) => items.contains(item),
            Touched::Any => true,
        }
    }

    /// Adds `item`.
    pub fn add(&mut self, item: T) {
        match self {
            Touched::Nothing => *self = Touched::Only(std::iter::once(item).collect()),
            Touched::Only(items) => {
                items.insert(item);
            }
            Touched::Any => {}
        }
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: &Touched<T>) {
        match other {
            Touched::Nothing => {}
            Touched::Any => *self = Touched::Any,
            Touched::Only(items) => {
                if let Touched::Only(mine) = self {
                    mine.extend(items.iter().cloned());
                } else if *self == Touched::Nothing {
                    *self = Touched::Only(items.clone());
                }
            }
        }
    }
}

/// Which page of a list to return. The cursor is opaque to callers; backends encode a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page, 1..=500.
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// A page of `limit` items (clamped to 1..=500) after `cursor`.
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Self {
        PageRequest {
            limit: limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE),
            cursor,
        }
    }

    /// The first page of the default size.
    pub fn first() -> Self {
        Self::new(None, None)
    }

    /// The first page of the largest size.
    pub fn all() -> Self {
        Self::new(Some(MAX_PAGE), None)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, never absent (possibly empty).
    pub items: Vec<T>,
    /// Where the next page starts, `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A new issue. The store allocates the key (`<prefix>-<n>`, n one more than any before),
/// checks the open-title rule, and writes the activity rows, all in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssueRecord {
    /// Identity chosen by the caller.
    pub id: IssueId,
    /// Key prefix (setting `issue_prefix`).
    pub prefix: IssuePrefix,
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Markdown,
    /// Type.
    pub issue_type: IssueType,
    /// Priority.
    pub priority: Priority,
    /// Assignee (the core defaults it to the CEO).
    pub assignee_id: Option<AgentId>,
    /// Parent issue; must exist.
    pub parent_key: Option<IssueKey>,
    /// Work block; must exist and accept issues.
    pub work_block_id: Option<WorkBlockId>,
    /// Labels; must exist.
    pub labels: Vec<LabelId>,
    /// Checklist.
    pub stages: Stages,
    /// Agent id, `board` or `webhook:<source>`.
    pub created_by: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Audit rows; an entity id of `""` is replaced by the allocated key.
    pub activity: Vec<NewActivity>,
    /// The wake-up of the new issue's assignee (SPEC §6.1), queued in the same transaction so
    /// that an issue never exists without the run that will work on it. The store sets its
    /// `issue_key` to the allocated key and writes its audit rows.
    pub wake: Option<NewRunRecord>,
}

/// A new comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    /// Identity chosen by the caller.
    pub id: CommentId,
    /// The issue.
    pub issue_key: IssueKey,
    /// The authoring agent.
    pub author_agent_id: Option<AgentId>,
    /// Display name / actor string.
    pub author: String,
    /// Kind.
    pub kind: CommentKind,
    /// Markdown.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

/// An update of an issue decided by the core: the whole new row, written only if the stored
/// version is still `expected`; the version becomes `expected + 1`. Comments and audit rows are
/// written in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueWrite {
    /// The issue as it should be stored (its `version` field is ignored).
    pub issue: Issue,
    /// The version the decision was made on.
    pub expected: Version,
    /// Comments to add.
    pub comments: Vec<NewComment>,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// An atomic checkout (SPEC §2.2): one conditional update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The issue.
    pub key: IssueKey,
    /// The claiming agent.
    pub agent_id: AgentId,
    /// The claiming run, bound to the issue when given.
    pub run_id: Option<RunId>,
    /// Statuses from which the checkout may happen (default todo and blocked).
    pub expected: Vec<IssueStatus>,
    /// Now.
    pub now: Timestamp,
    /// Audit rows, written only if the checkout changed something.
    pub activity: Vec<NewActivity>,
}

/// What a checkout did.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutOutcome {
    /// The issue after the checkout.
    pub issue: Issue,
    /// False when the caller already held it (idempotent repeat).
    pub changed: bool,
}

/// Filters of the issue list (SPEC §9.3 `GET /issues`). Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueFilter {
    /// Any of these statuses.
    pub statuses: Vec<IssueStatus>,
    /// Assigned to.
    pub assignee: Option<AgentId>,
    /// Carrying label.
    pub label: Option<LabelId>,
    /// In work block.
    pub work_block: Option<WorkBlockId>,
    /// Sub-issues of.
    pub parent: Option<IssueKey>,
    /// Full-text query over title and description.
    pub text: Option<String>,
    /// Include soft-deleted issues.
    pub include_deleted: bool,
}

/// An open issue as near-duplicate search scores it (SPEC §2 `POST /issues/similar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTitle {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: Title,
    /// Its status.
    pub status: IssueStatus,
}

/// A new agent with its first revision.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAgentRecord {
    /// The agent (version 1).
    pub agent: Agent,
    /// Actor string of the creator.
    pub changed_by: String,
    /// Why.
    pub reason: String,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// An update of an agent. When `revision` is set a new revision is stored (configuration
/// changes); state-only changes (`paused_until`) store none.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentWrite {
    /// The agent as it should be stored (its `version` field is ignored).
    pub agent: Agent,
    /// The version the change was made on.
    pub expected: Version,
    /// `(changed_by, reason)` of the new revision, if the configuration changed.
    pub revision: Option<(String, String)>,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// A new archetype version (edit, approved patch, rollback, or the first, builtin one).
#[derive(Debug, Clone, PartialEq)]
pub struct ArchetypeVersionWrite {
    /// The archetype slug.
    pub slug: mesa_domain::Slug,
    /// Title of the new version.
    pub title: Title,
    /// Body of the new version.
    pub body: Markdown,
    /// Where it comes from.
    pub source: mesa_domain::entity::ArchetypeSource,
    /// The current version the change was made on; `None` creates the archetype at version 1
    /// (and fails with `Conflict` if it exists).
    pub expected_version: Option<i64>,
    /// When.
    pub at: Timestamp,
    /// Patch to mark approved, and patches based on older versions to supersede.
    pub approve_patch: Option<mesa_domain::ArchetypePatchId>,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// A versioned write of a work block, apex block, approval or patch: the whole new row, written
/// if the stored version is still `expected`.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The row as it should be stored (its `version` field is ignored).
    pub row: T,
    /// The version the change was made on.
    pub expected: Version,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// A new row with its audit rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    /// The row.
    pub row: T,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

impl<T> Created<T> {
    /// A new row with audit rows.
    pub fn new(row: T, activity: Vec<NewActivity>) -> Self {
        Created { row, activity }
    }
}

/// Work-block write that may also move issues (membership changes ride along).
pub type WorkBlockWrite = Versioned<WorkBlock>;
/// Apex-block write.
pub type ApexBlockWrite = Versioned<ApexBlock>;
/// Approval write.
pub type ApprovalWrite = Versioned<Approval>;
/// Archetype-patch write.
pub type PatchWrite = Versioned<ArchetypePatch>;
/// Wiki-page write (stores a revision too).
pub type WikiWrite = Versioned<WikiPage>;

/// Filters of the run list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Of agent.
    pub agent: Option<AgentId>,
    /// For issue.
    pub issue: Option<IssueKey>,
    /// Any of these statuses.
    pub statuses: Vec<RunStatus>,
}

/// A wake-up to enqueue (SPEC §6.1). At most one queued run exists per (agent, issue): a new
/// wake-up for a pair that has one is merged into it (its triggers grow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunRecord {
    /// Identity, used when a new row is inserted.
    pub id: RunId,
    /// The agent.
    pub agent_id: AgentId,
    /// The issue (none for heartbeat, cron, audit).
    pub issue_key: Option<IssueKey>,
    /// Mode.
    pub mode: RunMode,
    /// What woke it.
    pub trigger: RunTrigger,
    /// Runner at enqueue time.
    pub runner: RunnerKind,
    /// Model at enqueue time.
    pub model: String,
    /// The issue's priority (queue order).
    pub priority: i64,
    /// Not before (quota back-off).
    pub not_before: Option<Timestamp>,
    /// Now.
    pub queued_at: Timestamp,
    /// Audit rows, written only when a new run is inserted.
    pub activity: Vec<NewActivity>,
}

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq)]
pub struct EnqueueOutcome {
    /// The queued run (new or merged into).
    pub run: Run,
    /// True when the wake-up was merged into an existing queued run.
    pub merged: bool,
}

/// Start a queued run: check the budgets and reserve, set `running` and the lease — one
/// transaction (SPEC §6.2). Fails with `BudgetExceeded` and changes nothing when
/// `spent today + reserved in flight + this reservation` would pass the agent's or the org's
/// daily limit (zero limits are unlimited), for tokens or cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRunRequest {
    /// The run, which must be queued.
    pub run_id: RunId,
    /// The node that runs it.
    pub node_id: String,
    /// Now.
    pub now: Timestamp,
    /// Lease expiry.
    pub lease_expires_at: Timestamp,
    /// Money to reserve.
    pub reserve_usd: MicroUsd,
    /// Tokens to reserve.
    pub reserve_tokens: i64,
    /// Start of the current budget day.
    pub day_start: Timestamp,
    /// The prompt as sent.
    pub prompt: Option<String>,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// Finish a run: final status, figures, release the reservation, record the cost event when
/// anything was used, revoke its run keys — one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRunRecord {
    /// The run, which must be queued or running.
    pub run_id: RunId,
    /// Final status.
    pub status: RunStatus,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Captured output; `None` keeps what [`crate::RunStore::append_run_output`] stored.
    pub stdout: Option<String>,
    /// Worktree diff.
    pub diff: Option<String>,
    /// Diff summary.
    pub diff_stat: Option<String>,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Money spent.
    pub cost_usd: MicroUsd,
    /// Where the figures came from.
    pub cost_source: CostSource,
    /// Turns.
    pub num_turns: Option<i64>,
    /// When.
    pub finished_at: Timestamp,
    /// Identity for the cost event, if one is written.
    pub cost_event_id: mesa_domain::CostEventId,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// Which queued runs [`crate::RunStore::cancel_queued_runs`] cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedRuns {
    /// One run (nothing happens unless it is still queued).
    Run(RunId),
    /// Every queued run of an issue.
    Issue(IssueKey),
}

/// Cancel queued runs: each still-queued run of the selection becomes `cancelled` with
/// `finished_at` and the reason, and its run keys are revoked — one transaction. Runs that are
/// no longer queued are left alone, so a run a scheduler started meanwhile is never marked
/// cancelled behind its back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelQueuedRuns {
    /// The selection.
    pub runs: QueuedRuns,
    /// Stored as `failure_reason`.
    pub reason: String,
    /// Now.
    pub at: Timestamp,
    /// Audit rows, written only when at least one run was cancelled.
    pub activity: Vec<NewActivity>,
}

/// Usage of an agent (or the org) since a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    /// Tokens recorded in cost events.
    pub tokens: i64,
    /// Money recorded in cost events.
    pub cost_usd: MicroUsd,
    /// Money held by runs in flight.
    pub reserved_usd: MicroUsd,
    /// Tokens held by runs in flight.
    pub reserved_tokens: i64,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// `(entity_type, entity_id)`.
    pub entity: Option<(String, String)>,
    /// Exact actor string, or `board` for every board token (`board:*`).
    pub actor: Option<String>,
}

/// Result of walking the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked.
    pub checked: u64,
    /// The first row whose hash or link does not verify.
    pub first_bad: Option<mesa_domain::ActivityId>,
}

impl ChainReport {
    /// True when every row verified.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Database health for `/readyz` and `mesa doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Migrations applied.
    pub migrations_applied: u64,
    /// Migrations known to this binary.
    pub migrations_known: u64,
}

impl Health {
    /// Ready when every known migration is applied.
    pub fn is_ready(&self) -> bool {
        self.migrations_applied >= self.migrations_known
    }
}

/// A new API key (the raw key is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The key row.
    pub key: mesa_domain::entity::ApiKey,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// Usage reported outside the runner's own parsing (`POST /usage/report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Identity of the cost event.
    pub event_id: mesa_domain::CostEventId,
    /// The agent.
    pub agent_id: AgentId,
    /// The run to add it to, if any.
    pub run_id: Option<RunId>,
    /// Tokens.
    pub usage: TokenUsage,
    /// Money.
    pub cost_usd: MicroUsd,
    /// Where the figures came from.
    pub source: CostSource,
    /// When.
    pub at: Timestamp,
    /// Audit rows.
    pub activity: Vec<NewActivity>,
}

/// Spend of one agent on one day (dashboard cost charts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCost {
    /// The agent.
    pub agent_id: AgentId,
    /// The day's start (in the budget day's time zone offset).
    pub day: Timestamp,
    /// Cost.
    pub cost_usd: MicroUsd,
    /// Input + output tokens.
    pub tokens: i64,
}
