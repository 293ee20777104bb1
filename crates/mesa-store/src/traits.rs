//! The per-aggregate store traits and their union, [`Store`].
//!
//! Reads return domain entities. Writes take a complete decision (new row, expected version,
//! audit rows) and commit it in one transaction. Every audit row passed in is appended to the
//! hash-chained activity log in that same transaction.

use async_trait::async_trait;
use mesa_domain::entity::{
    ActivityEvent, Agent, AgentRevision, ApexBlock, ApiKey, Approval, Archetype, ArchetypePatch,
    ArchetypeVersion, Audit, BudgetPolicy, BudgetScope, Comment, Cron, Directive, Issue, Label,
    MemoryItem, NewActivity, NorthStarValue, Reflection, Run, Session, Setting, Skill,
    WebhookDelivery, WikiPage, WikiRevision, WorkBlock,
};
use mesa_domain::{
    AgentId, ApiKeyId, ApprovalId, ApprovalStatus, ArchetypePatchId, IssueId, IssueKey,
    IssueStatus, LabelId, ReflectionId, RunId, RunStatus, SkillId, Slug, Timestamp, WikiSlug,
    WorkBlockId,
};

use crate::Result;
use crate::records::*;

/// Issues and their comments.
#[async_trait]
pub trait IssueStore: Send + Sync {
    /// Creates an issue, allocating its key atomically. `DuplicateTitle` if an open issue has
    /// the same normalized title; `NotFound` for a missing parent, work block or label.
    async fn create_issue(&self, new: NewIssueRecord) -> Result<Issue>;
    /// The issue with this key (soft-deleted ones included).
    async fn issue(&self, key: &IssueKey) -> Result<Issue>;
    /// The issue with this id.
    async fn issue_by_id(&self, id: IssueId) -> Result<Issue>;
    /// Issues matching the filter, newest first.
    async fn list_issues(&self, filter: &IssueFilter, page: &PageRequest) -> Result<Page<Issue>>;
    /// Number of issues matching the filter.
    async fn count_issues(&self, filter: &IssueFilter) -> Result<u64>;
    /// Direct sub-issues of `key`.
    async fn children(&self, key: &IssueKey) -> Result<Vec<Issue>>;
    /// An inbox in inbox order: priority first, then the most recently updated, then the key
    /// (all descending). Cursors are positions in that order, so pages stay consistent while
    /// other issues come and go.
    async fn inbox(&self, owner: InboxOwner, page: &PageRequest) -> Result<Page<Issue>>;
    /// Sets the reviewer of issues under review after the org chart changed (no new version:
    /// the routing is derived from the chart, not an edit of the issue). Issues no longer
    /// `in_review` are left alone.
    async fn set_reviewers(&self, routes: &[(IssueId, Option<AgentId>)]) -> Result<()>;
    /// Writes a decided update if the version still matches (`StaleVersion` otherwise).
    /// Keeps the open-title rule (`DuplicateTitle`) and references valid.
    async fn update_issue(&self, write: IssueWrite) -> Result<Issue>;
    /// Atomic checkout (SPEC §2.2): exactly one of any number of concurrent callers wins;
    /// the others get `CheckoutConflict`.
    async fn checkout_issue(&self, req: CheckoutRequest) -> Result<CheckoutOutcome>;
    /// Removes an issue for good, with its comments (`DELETE ?purge=true`).
    async fn purge_issue(&self, key: &IssueKey, activity: Vec<NewActivity>) -> Result<()>;
    /// Open issues whose normalized title equals this one's (for duplicate checks).
    async fn open_issue_with_title(&self, normalized_title: &str) -> Result<Option<IssueKey>>;
    /// Full-text candidates for near-duplicate search, best first: issues (any status, not
    /// deleted) whose title or description contains a word of `query` (as a prefix where
    /// that is cheap), ranked by relevance, at most `limit`. The work is bounded whatever the
    /// number of issues: only the query's distinctive words (each in at most a few thousand
    /// issues) are ranked; when every word is common, the newest issues containing all of
    /// them are returned instead.
    async fn search_issues(&self, query: &str, limit: u32) -> Result<Vec<Issue>>;
    /// Title candidates for near-duplicate search: open, undeleted issues whose title shares
    /// character trigrams with `normalized_title` (lowercase words separated by single
    /// spaces), those sharing the most distinctive trigrams first, at most `limit`; an issue
    /// whose normalized title equals it comes first. The work is bounded whatever the number
    /// of issues: a trigram found in many titles contributes only the newest of them. The
    /// caller scores the candidates; a title sharing no trigram (under 3 characters) is only
    /// found by equality.
    async fn similar_title_candidates(
        &self,
        normalized_title: &str,
        limit: u32,
    ) -> Result<Vec<IssueTitle>>;

    /// Adds a comment (and its audit rows).
    async fn add_comment(&self, comment: NewComment, activity: Vec<NewActivity>)
    -> Result<Comment>;
    /// Comments of an issue, oldest first.
    async fn comments(&self, key: &IssueKey, page: &PageRequest) -> Result<Page<Comment>>;
    /// The newest comments of an issue, at most `limit`, oldest first.
    async fn recent_comments(&self, key: &IssueKey, limit: u32) -> Result<Vec<Comment>>;
}

/// Labels.
#[async_trait]
pub trait LabelStore: Send + Sync {
    /// Creates a label (`Conflict` on a duplicate name).
    async fn create_label(&self, label: Created<Label>) -> Result<Label>;
    /// Updates a label if the version matches.
    async fn update_label(&self, write: Versioned<Label>) -> Result<Label>;
    /// Deletes a label and detaches it from issues.
    async fn delete_label(&self, id: LabelId, activity: Vec<NewActivity>) -> Result<()>;
    /// One label.
    async fn label(&self, id: LabelId) -> Result<Label>;
    /// All labels by name.
    async fn list_labels(&self) -> Result<Vec<Label>>;
}

/// Agents and their configuration revisions.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Creates an agent with revision 1 (`Conflict` on a duplicate slug).
    async fn create_agent(&self, new: NewAgentRecord) -> Result<Agent>;
    /// Writes a decided update if the version matches, with a new revision when asked.
    async fn update_agent(&self, write: AgentWrite) -> Result<Agent>;
    /// One agent by id.
    async fn agent(&self, id: AgentId) -> Result<Agent>;
    /// One agent by slug.
    async fn agent_by_slug(&self, slug: &Slug) -> Result<Agent>;
    /// All agents, by creation order.
    async fn list_agents(&self) -> Result<Vec<Agent>>;
    /// Number of agents (bootstrap uses zero as "empty database").
    async fn count_agents(&self) -> Result<u64>;
    /// Revisions of an agent, newest first.
    async fn agent_revisions(&self, id: AgentId) -> Result<Vec<AgentRevision>>;
    /// One revision.
    async fn agent_revision(&self, id: AgentId, number: i64) -> Result<AgentRevision>;
}

/// Archetypes, their versions, and proposed patches.
#[async_trait]
pub trait ArchetypeStore: Send + Sync {
    /// Adds a version (or creates the archetype at version 1), updating the current version
    /// if `expected_version` still matches (`StaleVersion` otherwise). Approving a patch marks
    /// it approved and supersedes other pending patches on older versions.
    async fn write_archetype_version(&self, write: ArchetypeVersionWrite) -> Result<Archetype>;
    /// The current version of an archetype.
    async fn archetype(&self, slug: &Slug) -> Result<Archetype>;
    /// All archetypes by slug.
    async fn list_archetypes(&self) -> Result<Vec<Archetype>>;
    /// Versions of an archetype, newest first.
    async fn archetype_versions(&self, slug: &Slug) -> Result<Vec<ArchetypeVersion>>;
    /// One version.
    async fn archetype_version(&self, slug: &Slug, version: i64) -> Result<ArchetypeVersion>;
    /// Stores a proposed patch.
    async fn create_patch(&self, patch: Created<ArchetypePatch>) -> Result<ArchetypePatch>;
    /// Updates a patch's status.
    async fn update_patch(&self, write: PatchWrite) -> Result<ArchetypePatch>;
    /// One patch.
    async fn patch(&self, id: ArchetypePatchId) -> Result<ArchetypePatch>;
    /// Patches, newest first, optionally of one status.
    async fn list_patches(
        &self,
        status: Option<mesa_domain::PatchStatus>,
    ) -> Result<Vec<ArchetypePatch>>;
}

/// Work blocks, north-star history, and apex blocks.
#[async_trait]
pub trait BlockStore: Send + Sync {
    /// Creates a work block.
    async fn create_work_block(&self, block: Created<WorkBlock>) -> Result<WorkBlock>;
    /// Writes a decided update if the version matches. A second active block is refused with
    /// `SecondActiveBlock` by the database itself.
    async fn update_work_block(&self, write: WorkBlockWrite) -> Result<WorkBlock>;
    /// One work block.
    async fn work_block(&self, id: WorkBlockId) -> Result<WorkBlock>;
    /// Work blocks, newest first.
    async fn list_work_blocks(
        &self,
        status: Option<mesa_domain::WorkBlockStatus>,
    ) -> Result<Vec<WorkBlock>>;
    /// The active block, if any.
    async fn active_work_block(&self) -> Result<Option<WorkBlock>>;
    /// Puts an issue into a block (or takes it out with `None`), bumping the issue's version.
    /// `Conflict` if the issue is in another block, or the block does not accept issues.
    async fn set_issue_block(
        &self,
        key: &IssueKey,
        block: Option<WorkBlockId>,
        activity: Vec<NewActivity>,
    ) -> Result<Issue>;
    /// Records a north-star measurement and sets the block's current value.
    async fn record_north_star(
        &self,
        value: NorthStarValue,
        activity: Vec<NewActivity>,
    ) -> Result<WorkBlock>;
    /// North-star history of a block, oldest first.
    async fn north_star_history(&self, id: WorkBlockId) -> Result<Vec<NorthStarValue>>;

    /// Creates an apex block.
    async fn create_apex_block(&self, block: Created<ApexBlock>) -> Result<ApexBlock>;
    /// Updates an apex block if the version matches.
    async fn update_apex_block(&self, write: ApexBlockWrite) -> Result<ApexBlock>;
    /// One apex block.
    async fn apex_block(&self, id: mesa_domain::ApexBlockId) -> Result<ApexBlock>;
    /// All apex blocks, newest first.
    async fn list_apex_blocks(&self) -> Result<Vec<ApexBlock>>;
}

/// Approvals.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Creates an approval.
    async fn create_approval(&self, approval: Created<Approval>) -> Result<Approval>;
    /// Writes a decided update if the version matches. Resolving one that is no longer pending
    /// loses the version race and gets `StaleVersion`.
    async fn update_approval(&self, write: ApprovalWrite) -> Result<Approval>;
    /// One approval.
    async fn approval(&self, id: ApprovalId) -> Result<Approval>;
    /// Approvals, pending first then newest, optionally of one status.
    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        page: &PageRequest,
    ) -> Result<Page<Approval>>;
    /// Pending approvals whose expiry is at or before `now`.
    async fn expired_approvals(&self, now: Timestamp) -> Result<Vec<Approval>>;
}

/// Runs, their queue, leases and budgets.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Enqueues a wake-up, merging into the queued run of the same (agent, issue) if any.
    async fn enqueue_run(&self, new: NewRunRecord) -> Result<EnqueueOutcome>;
    /// One run.
    async fn run(&self, id: RunId) -> Result<Run>;
    /// Runs matching the filter, newest first. Lists leave out the large text fields
    /// (`prompt`, `stdout`, `diff` are `None`); [`RunStore::run`] has them.
    async fn list_runs(&self, filter: &RunFilter, page: &PageRequest) -> Result<Page<Run>>;
    /// Queued runs that may start at `now`, in queue order (priority desc, trigger rank, age).
    async fn queued_runs(&self, now: Timestamp, limit: u32) -> Result<Vec<Run>>;
    /// Budget check-and-reserve and start, one transaction (see [`StartRunRequest`]). The run
    /// is counted on its issue (`run_count + 1`, which moves the issue's version).
    async fn start_run(&self, req: StartRunRequest) -> Result<Run>;
    /// Records the process of a started run.
    async fn set_run_process(&self, id: RunId, pid: Option<i64>, pgid: Option<i64>) -> Result<()>;
    /// Records worktree, branch and base commit of a started run (and the issue's branch,
    /// moving the issue's version when it changes), and the prompt built for that workspace
    /// (`None` keeps the stored one).
    async fn set_run_workspace(
        &self,
        id: RunId,
        worktree_path: Option<String>,
        branch: Option<String>,
        base_commit: Option<String>,
        prompt: Option<String>,
    ) -> Result<()>;
    /// Extends the lease of running runs of `node_id`; returns how many.
    async fn renew_leases(&self, node_id: &str, until: Timestamp) -> Result<u64>;
    /// Running runs whose lease expired at `now`, or all running runs of `node_id` when given
    /// (single-node restart recovery).
    async fn stale_runs(&self, now: Timestamp, node_id: Option<&str>) -> Result<Vec<Run>>;
    /// Finishes a run (see [`FinishRunRecord`]); `RunState` if it had already finished. Its
    /// figures add to what [`RunStore::record_usage`] reported during the run, so a run's totals
    /// equal the sum of its cost events.
    async fn finish_run(&self, record: FinishRunRecord) -> Result<Run>;
    /// Appends a chunk to a queued or running run's captured output (`stdout`), keeping at most
    /// `cap` characters: past it the head and the tail are kept, the middle elided with a marker
    /// (SPEC §7.5). Returns the stored length in characters. `RunState` once the run finished.
    async fn append_run_output(&self, id: RunId, chunk: &str, cap: u64) -> Result<u64>;
    /// Cancels queued runs (see [`CancelQueuedRuns`]); returns the runs it cancelled.
    async fn cancel_queued_runs(&self, req: CancelQueuedRuns) -> Result<Vec<Run>>;
    /// Number of running runs, in total and of one agent.
    async fn running_counts(&self, agent: AgentId) -> Result<(u64, u64)>;
    /// Runs of `agent` started at or after `since`, leaving out the free runners (`noop`,
    /// `dry_run`), for the per-agent loop guard (SPEC §6.5).
    async fn started_runs_since(&self, agent: AgentId, since: Timestamp) -> Result<u64>;
    /// Number of runs in each status that has any (for metrics; one cheap aggregate query).
    async fn run_status_counts(&self) -> Result<Vec<(RunStatus, u64)>>;

    /// Spend since `since` (cost events) plus current reservations, of an agent or the org.
    async fn spend(&self, scope: BudgetScope, since: Timestamp) -> Result<Spend>;
    /// The budget policy of a scope, if any.
    async fn budget_policy(&self, scope: BudgetScope) -> Result<Option<BudgetPolicy>>;
    /// Creates or replaces a budget policy.
    async fn put_budget_policy(
        &self,
        policy: BudgetPolicy,
        activity: Vec<NewActivity>,
    ) -> Result<BudgetPolicy>;
    /// Costs of the agent's last `n` finished runs, newest first (for the default reserve).
    async fn recent_run_costs(&self, agent: AgentId, n: u32) -> Result<Vec<mesa_domain::MicroUsd>>;
    /// Records usage as a cost event (and adds it to the run, when given).
    async fn record_usage(&self, usage: UsageRecord) -> Result<()>;
}

/// API keys and board tokens.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a key (hash only).
    async fn create_key(&self, new: NewApiKey) -> Result<ApiKey>;
    /// The key with this SHA-256 hex hash, if any.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Records a use. Uses within a minute of the recorded one are not written again.
    async fn touch_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()>;
    /// Revokes a key.
    async fn revoke_key(
        &self,
        id: ApiKeyId,
        at: Timestamp,
        activity: Vec<NewActivity>,
    ) -> Result<()>;
    /// Board tokens and agent keys (not run keys), newest first.
    async fn list_keys(&self, agent: Option<AgentId>) -> Result<Vec<ApiKey>>;
    /// The key with this id (any kind), if any.
    async fn key(&self, id: ApiKeyId) -> Result<Option<ApiKey>>;
}

/// Aggregates the dashboard shows (SPEC §10), each one indexed query.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The number of (not deleted) issues in each status that has any.
    async fn issue_status_counts(&self) -> Result<Vec<(IssueStatus, u64)>>;
    /// The number of approvals in `status` (the navigation's pending approvals).
    async fn approval_count(&self, status: ApprovalStatus) -> Result<u64>;
    /// Spend per agent and day for cost events at or after `since`, days starting
    /// `offset_minutes` after UTC midnight; only days with spend; ordered by day, then agent.
    async fn daily_costs(
        &self,
        since: Timestamp,
        offset_minutes: i32,
        agent: Option<AgentId>,
    ) -> Result<Vec<DailyCost>>;
    /// The number of runs queued at or after `since`, per agent of `agents` that has any
    /// (agents pages: runs today, for the agents a page shows).
    async fn runs_per_agent_since(
        &self,
        agents: &[AgentId],
        since: Timestamp,
    ) -> Result<Vec<(AgentId, u64)>>;
    /// The daily cost limit of every agent with an active budget policy (the roster).
    async fn agent_cost_limits(&self) -> Result<Vec<(AgentId, mesa_domain::MicroUsd)>>;
    /// Where a run's recorded cost came from (its cost event's source), if it has one.
    async fn run_cost_source(&self, run: RunId) -> Result<Option<mesa_domain::CostSource>>;
    /// The number of (not deleted) member issues of a work block in each status that has any
    /// (work-block list: progress without loading the members).
    async fn block_issue_counts(&self, block: WorkBlockId) -> Result<Vec<(IssueStatus, u64)>>;
    /// The cost, tokens and number of the runs on member issues of a work block.
    async fn block_spend(&self, block: WorkBlockId) -> Result<(mesa_domain::MicroUsd, i64, u64)>;
    /// [`StatsStore::block_issue_counts`] of several work blocks at once, as (block, status,
    /// count) for each pair with any (work-block list).
    async fn blocks_issue_counts(
        &self,
        blocks: &[WorkBlockId],
    ) -> Result<Vec<(WorkBlockId, IssueStatus, u64)>>;
    /// [`StatsStore::block_spend`] of several work blocks at once, as (block, cost, tokens,
    /// runs) for each block with any run (work-block list).
    async fn blocks_spend(
        &self,
        blocks: &[WorkBlockId],
    ) -> Result<Vec<(WorkBlockId, mesa_domain::MicroUsd, i64, u64)>>;
    /// When each (not deleted) member issue of a work block was created and, for `done` ones,
    /// completed (`updated_at` when `completed_at` is missing): the burn-up chart's data.
    async fn block_member_times(
        &self,
        block: WorkBlockId,
    ) -> Result<Vec<(Timestamp, Option<Timestamp>)>>;
    /// Work alignment (SPEC §3.2) in one pass over the open issues: how many (not deleted)
    /// issues are open, how many of them roll up (their block, else their parent's block) to a
    /// block linked to an active apex block, and the keys of at most `drift_limit` of the
    /// others, newest first.
    async fn work_alignment(&self, drift_limit: u32) -> Result<(u64, u64, Vec<IssueKey>)>;
    /// Spend alignment (SPEC §3.2): the cost of the runs finished (or, unfinished, queued) at
    /// or after `since`, and the part whose issue rolls up to an active apex block.
    async fn spend_alignment(
        &self,
        since: Timestamp,
    ) -> Result<(mesa_domain::MicroUsd, mesa_domain::MicroUsd)>;
}

/// Dashboard sessions and one-time login links (SPEC §14).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session or a login link.
    async fn create_session(&self, session: Session) -> Result<()>;
    /// The session (or link) with this hash, if any, expired or not.
    async fn session_by_hash(&self, hash: &str) -> Result<Option<Session>>;
    /// Records a request of a session and moves its expiry.
    async fn touch_session(&self, hash: &str, seen: Timestamp, expires: Timestamp) -> Result<()>;
    /// Removes a session or link and returns it, atomically: of two concurrent callers only
    /// one gets it (a login link opens one session).
    async fn take_session(&self, hash: &str) -> Result<Option<Session>>;
    /// Removes every session and link that expired before `now`; returns how many.
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64>;
}

/// Reflections, skills, memory and the wiki.
#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    /// Stores a reflection.
    async fn create_reflection(&self, r: Created<Reflection>) -> Result<Reflection>;
    /// An agent's reflections, newest first.
    async fn reflections(&self, agent: AgentId, limit: u32) -> Result<Vec<Reflection>>;
    /// One reflection.
    async fn reflection(&self, id: ReflectionId) -> Result<Reflection>;
    /// Whether a reflection is bound to `run`.
    async fn run_has_reflection(&self, run: RunId) -> Result<bool>;
    /// An agent's reflections on one issue, newest first.
    async fn reflections_on_issue(
        &self,
        agent: AgentId,
        issue: &IssueKey,
        limit: u32,
    ) -> Result<Vec<Reflection>>;
    /// An agent's reflections sharing a word with `query`, best full-text match first. Only a
    /// window of the agent's most recent reflections is ranked, so the cost is bounded.
    async fn search_reflections(
        &self,
        agent: AgentId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Reflection>>;
    /// Stores a skill (`Conflict` on a duplicate slug).
    async fn create_skill(&self, s: Created<Skill>) -> Result<Skill>;
    /// Updates a skill if the version matches.
    async fn update_skill(&self, write: Versioned<Skill>) -> Result<Skill>;
    /// One skill.
    async fn skill(&self, slug: &Slug) -> Result<Skill>;
    /// Skills, by slug; with a query, full-text matches best first.
    async fn list_skills(&self, query: Option<&str>) -> Result<Vec<Skill>>;
    /// Active skills sharing a word with `query` (title, body, tags, slug), best match first.
    async fn relevant_skills(&self, query: &str, limit: u32) -> Result<Vec<Skill>>;
    /// Records that `run` was given these skills (a use each; repeating one is a no-op).
    async fn record_skill_uses(&self, run: RunId, skills: &[SkillId], at: Timestamp) -> Result<()>;
    /// Stores a memory item.
    async fn create_memory(&self, m: Created<MemoryItem>) -> Result<MemoryItem>;
    /// Recalls memory of an agent (and shared items) matching a query, counting the recall.
    async fn recall_memory(
        &self,
        agent: Option<AgentId>,
        query: &str,
        limit: u32,
        at: Timestamp,
    ) -> Result<Vec<MemoryItem>>;

    /// Creates a wiki page with revision 1 (`Conflict` on a duplicate slug).
    async fn create_wiki_page(&self, page: Created<WikiPage>) -> Result<WikiPage>;
    /// Edits a page if the version matches, storing a revision.
    async fn update_wiki_page(&self, write: WikiWrite) -> Result<WikiPage>;
    /// Deletes a page and its revisions.
    async fn delete_wiki_page(&self, slug: &WikiSlug, activity: Vec<NewActivity>) -> Result<()>;
    /// One page.
    async fn wiki_page(&self, slug: &WikiSlug) -> Result<WikiPage>;
    /// Pages by title.
    async fn list_wiki_pages(&self, page: &PageRequest) -> Result<Page<WikiPage>>;
    /// Revisions of a page, newest first.
    async fn wiki_revisions(&self, slug: &WikiSlug) -> Result<Vec<WikiRevision>>;
    /// Full-text search with prefix matching: `(page, snippet)` best first.
    async fn search_wiki(&self, query: &str, limit: u32) -> Result<Vec<(WikiPage, String)>>;
}

/// Directives, crons and audits.
#[async_trait]
pub trait GovernanceStore: Send + Sync {
    /// Creates a directive.
    async fn create_directive(&self, d: Created<Directive>) -> Result<Directive>;
    /// Updates a directive if the version matches.
    async fn update_directive(&self, write: Versioned<Directive>) -> Result<Directive>;
    /// Deletes a directive.
    async fn delete_directive(
        &self,
        id: mesa_domain::DirectiveId,
        activity: Vec<NewActivity>,
    ) -> Result<()>;
    /// Directives, oldest first.
    async fn list_directives(&self) -> Result<Vec<Directive>>;
    /// Creates a cron.
    async fn create_cron(&self, c: Created<Cron>) -> Result<Cron>;
    /// Updates a cron if the version matches.
    async fn update_cron(&self, write: Versioned<Cron>) -> Result<Cron>;
    /// Deletes a cron.
    async fn delete_cron(&self, id: mesa_domain::CronId, activity: Vec<NewActivity>) -> Result<()>;
    /// Crons, oldest first.
    async fn list_crons(&self) -> Result<Vec<Cron>>;
    /// Creates an audit record.
    async fn create_audit(&self, a: Created<Audit>) -> Result<Audit>;
    /// Replaces an audit record.
    async fn update_audit(&self, a: Audit) -> Result<Audit>;
    /// Audits, newest first.
    async fn list_audits(&self) -> Result<Vec<Audit>>;
}

/// Settings, webhook deliveries, the audit log, and maintenance.
#[async_trait]
pub trait SystemStore: Send + Sync {
    /// One setting.
    async fn setting(&self, key: &str) -> Result<Option<Setting>>;
    /// All settings by key.
    async fn settings(&self) -> Result<Vec<Setting>>;
    /// Sets settings (insert or replace), in one transaction.
    async fn put_settings(&self, settings: Vec<Setting>, activity: Vec<NewActivity>) -> Result<()>;
    /// Records a start of the server; returns its boot number (1, 2, 3... never reused).
    async fn record_boot(&self, at: Timestamp) -> Result<u64>;

    /// Records a delivery; `Conflict` if `(source, delivery_id)` was seen before.
    async fn record_delivery(&self, d: WebhookDelivery) -> Result<WebhookDelivery>;
    /// Sets what became of a recorded delivery; `NotFound` if there is none with that id.
    async fn settle_delivery(
        &self,
        id: mesa_domain::WebhookDeliveryId,
        status: mesa_domain::WebhookStatus,
        note: Option<String>,
    ) -> Result<()>;
    /// Removes a delivery that is still `received` (Mesa failed to process it, so the sender's
    /// retry with the same delivery id must be processed, not answered as a duplicate). Does
    /// nothing when there is no such delivery or it was settled.
    async fn forget_delivery(&self, id: mesa_domain::WebhookDeliveryId) -> Result<()>;
    /// The most recent deliveries, newest first.
    async fn recent_deliveries(&self, limit: u32) -> Result<Vec<WebhookDelivery>>;
    /// Links an issue at a webhook's sender to a Mesa issue; `Conflict` if `(source, url)` is
    /// linked already, `NotFound` if the issue does not exist.
    async fn link_external(&self, link: mesa_domain::entity::ExternalLink) -> Result<()>;
    /// The Mesa issue linked to `(source, url)`, if any.
    async fn external_link(&self, source: &str, url: &str)
    -> Result<Option<mesa_domain::IssueKey>>;

    /// Appends rows to the activity log in one transaction.
    async fn append_activity(&self, rows: Vec<NewActivity>) -> Result<Vec<ActivityEvent>>;
    /// Rows matching the filter, newest first.
    async fn list_activity(
        &self,
        filter: &ActivityFilter,
        page: &PageRequest,
    ) -> Result<Page<ActivityEvent>>;
    /// Rows with id greater than `after`, oldest first (for event replay and exports).
    async fn activity_after(
        &self,
        after: mesa_domain::ActivityId,
        limit: u32,
    ) -> Result<Vec<ActivityEvent>>;
    /// Walks the whole chain and reports the first row that does not verify.
    async fn verify_activity_chain(&self) -> Result<ChainReport>;

    /// Migration state.
    async fn health(&self) -> Result<Health>;
    /// A consistent copy of the live database at `path` (which must not exist).
    async fn backup_to(&self, path: &std::path::Path) -> Result<()>;
    /// The database's own integrity check; `Ok(vec!["ok"])` when healthy.
    async fn integrity_check(&self) -> Result<Vec<String>>;
    /// Starts the backend's own upkeep off the request path (for SQLite: WAL checkpoints on a
    /// connection of their own instead of inside the committing writer). Called once by a
    /// long-running server; stopped by [`SystemStore::close`]. The default does nothing.
    async fn start_maintenance(&self) -> Result<()> {
        Ok(())
    }
    /// An opaque value that changes whenever a write commits, through this store or any other
    /// connection to the same database, read without a round trip. Read caches keep a value
    /// loaded while this stayed the same, and serve it while it still is. `None` (the default)
    /// means the backend cannot tell, and nothing may be served from a cache.
    fn data_version(&self) -> Option<Vec<u8>> {
        None
    }
    /// What may have changed between data versions `from` and `to` (both from
    /// [`SystemStore::data_version`], `from` the older), when the store can tell: every commit
    /// in between was one of its own writes that recorded what it changed. `None` when it cannot
    /// (a commit by another connection or process, or by a write that records nothing), and the
    /// caller must then assume that anything changed. The default never knows.
    fn changes_between(&self, from: &[u8], to: &[u8]) -> Option<crate::Changes> {
        let _ = (from, to);
        None
    }
    /// Whether one of the writes that record what they changed is committing right now: a
    /// version [`SystemStore::changes_between`] cannot place may then be its commit, placeable
    /// a moment later. Read caches use it only to decide whether to start over at once; it
    /// never makes them serve anything. The default: never.
    fn tracked_commit_pending(&self) -> bool {
        false
    }
    /// Closes connections and flushes what the backend buffers. The store is unusable after.
    async fn close(&self) {}
}

/// Everything Mesa stores. Implemented automatically for any type implementing every part.
pub trait Store:
    IssueStore
    + crate::AuditStore
    + crate::EvaluationStore
    + crate::OutboxStore
    + LabelStore
    + AgentStore
    + ArchetypeStore
    + BlockStore
    + ApprovalStore
    + RunStore
    + KeyStore
    + SessionStore
    + StatsStore
    + KnowledgeStore
    + GovernanceStore
    + SystemStore
{
}

impl<T> Store for T where
    T: IssueStore
        + crate::AuditStore
        + crate::EvaluationStore
        + crate::OutboxStore
        + LabelStore
        + AgentStore
        + ArchetypeStore
        + BlockStore
        + ApprovalStore
        + RunStore
        + KeyStore
        + SessionStore
        + StatsStore
        + KnowledgeStore
        + GovernanceStore
        + SystemStore
{
}
