//! Governance queries and commands the API needs beyond [`crate::blocks`]: archetype patches
//! (SPEC §1 ArchetypePatch, §4.3), the inbox (§9.3), work-block details and field edits (§3.1),
//! approvals filtered by approver, and the strategy figures (§3.2).

use std::collections::HashMap;
use std::time::Duration;

use mesa_domain::entity::{
    ApexBlock, Approval, Approver, ArchetypePatch, NorthStarValue, Subject, WorkBlock,
};
use mesa_domain::{
    Actor, ApexBlockId, ApexStatus, ApprovalDecision, ApprovalKind, ApprovalStatus,
    ArchetypePatchId, DomainEvent, IssueKey, IssueStatus, Markdown, MicroUsd, PatchStatus, Slug,
    Title, Version, WorkBlockId,
};
use mesa_store::{
    Created, InboxOwner, IssueFilter, Page, PageRequest, RunFilter, StoreError, Versioned,
};

use crate::blocks::NewApproval;
use crate::error::{CoreError, Result};
use crate::issues::{IssueList, IssueView};
use crate::mesa::Mesa;

/// How far back spend alignment looks (SPEC §3.2: "the last 30 days").
const SPEND_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// A proposed archetype patch and the approval that decides it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedPatch {
    /// The patch (`pending`).
    pub patch: ArchetypePatch,
    /// Its `archetype_patch` approval, addressed to the board.
    pub approval: Approval,
}

/// Changes to a work block's fields (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkBlockFields {
    /// Title.
    pub title: Option<Title>,
    /// Goal.
    pub goal: Option<Markdown>,
    /// Acceptance criteria.
    pub acceptance_criteria: Option<Markdown>,
    /// North-star metric.
    pub north_star_metric: Option<Option<String>>,
    /// Its target.
    pub north_star_target: Option<Option<f64>>,
    /// The apex block it serves.
    pub apex_block_id: Option<Option<ApexBlockId>>,
}

impl WorkBlockFields {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == WorkBlockFields::default()
    }
}

/// Computed figures of a work block (SPEC §3.1 stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkBlockStats {
    /// Member issues.
    pub planned: u64,
    /// Members that are `done`.
    pub done: u64,
    /// Members that are `cancelled` or `wont_do`.
    pub cancelled: u64,
    /// Members that are not terminal.
    pub open: u64,
    /// Runs on member issues.
    pub runs: u64,
    /// Their cost.
    pub cost: MicroUsd,
    /// Their tokens.
    pub tokens: i64,
    /// From the latest activation to shipping, once shipped.
    pub cycle_time: Option<Duration>,
}

/// A work block with its member issues, stats and north-star history.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkBlockDetail {
    /// The block.
    pub block: WorkBlock,
    /// Member issues, newest first.
    pub issues: Vec<IssueView>,
    /// Counts over the members.
    pub stats: WorkBlockStats,
    /// North-star measurements, oldest first.
    pub north_star_history: Vec<NorthStarValue>,
}

/// The alignment figures of SPEC §3.2.
///
/// With nothing to measure (no non-terminal issue, or no spend in the window) the alignment is
/// reported as `1.0`: nothing is drifting, and a fresh company should not look misaligned.
/// The matching drift figure is then 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// Share (0..1) of non-terminal issues in a work block linked to an active apex block.
    pub work_alignment: f64,
    /// Share (0..1) of the last 30 days' run cost whose issue rolls up (through its work block,
    /// or its parent issue's block) to an active apex block. Runs without an issue count as
    /// unaligned spend.
    pub spend_alignment: f64,
    /// Keys of the non-terminal issues that do not roll up to an active apex block.
    pub drift_issues: Vec<IssueKey>,
    /// Unaligned spend of the window.
    pub drift_cost: MicroUsd,
}

impl Mesa {
    /// One apex block.
    pub async fn apex_block(&self, id: ApexBlockId) -> Result<ApexBlock> {
        Ok(self.inner.store.apex_block(id).await?)
    }

    /// A work block with its issues, stats and north-star history.
    pub async fn work_block_detail(&self, id: WorkBlockId) -> Result<WorkBlockDetail> {
        let block = self.inner.store.work_block(id).await?;
        let filter = IssueFilter {
            work_block: Some(id),
            ..IssueFilter::default()
        };
        let issues = self.all_issues(&filter).await?;
        let mut stats = WorkBlockStats::default();
        for v in &issues {
            stats.planned += 1;
            match v.issue.status {
                IssueStatus::Done => stats.done += 1,
                IssueStatus::Cancelled | IssueStatus::WontDo => stats.cancelled += 1,
                _ => stats.open += 1,
            }
        }
        for v in &issues {
            let filter = RunFilter {
                issue: Some(v.issue.key.clone()),
                ..RunFilter::default()
            };
            let mut cursor = None;
            loop {
                let p = self
                    .inner
                    .store
                    .list_runs(&filter, &PageRequest::new(Some(500), cursor))
                    .await?;
                for run in &p.items {
                    stats.runs += 1;
                    stats.cost += run.cost_usd;
                    stats.tokens += run.usage.total();
                }
                match p.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        if let (Some(from), Some(to)) = (block.activated_at, block.shipped_at) {
            stats.cycle_time = Some(to.since(from));
        }
        let north_star_history = self.inner.store.north_star_history(id).await?;
        Ok(WorkBlockDetail {
            block,
            issues,
            stats,
            north_star_history,
        })
    }

    /// Changes a work block's fields (the board or the CEO). Shipped and cancelled blocks are
    /// immutable (conflict). Status moves go through [`Mesa::work_block_command`].
    pub async fn update_work_block(
        &self,
        actor: &Actor,
        id: WorkBlockId,
        fields: WorkBlockFields,
        expected: Option<Version>,
    ) -> Result<WorkBlock> {
        let store = &self.inner.store;
        let current = store.work_block(id).await?;
        if !actor.is_board() && !self.actor_is_ceo(actor).await? {
            return Err(CoreError::Forbidden(
                "only the CEO or the board may change a work block's fields".into(),
            ));
        }
        if let Some(v) = expected.filter(|v| *v != current.version) {
            return Err(StoreError::StaleVersion {
                entity: "work_block",
                id: id.to_string(),
                expected: v,
                actual: current.version,
            }
            .into());
        }
        if current.status.is_terminal() {
            return Err(CoreError::Conflict(format!(
                "work block {id} is {} and can no longer change",
                current.status
            )));
        }
        if let Some(Some(target)) = fields.north_star_target
            && !target.is_finite()
        {
            return Err(mesa_domain::ValidationError::new(
                "north_star_target",
                "north_star_target must be a finite number",
            )
            .into());
        }
        if let Some(Some(apex)) = fields.apex_block_id
            && let Err(StoreError::NotFound { .. }) = store.apex_block(apex).await
        {
            return Err(CoreError::unknown(
                "apex_block_id",
                format!("apex_block_id names no apex block: {apex}"),
            ));
        }
        let mut row = current.clone();
        if let Some(t) = fields.title {
            row.title = t;
        }
        if let Some(g) = fields.goal {
            row.goal = g;
        }
        if let Some(a) = fields.acceptance_criteria {
            row.acceptance_criteria = a;
        }
        if let Some(m) = fields.north_star_metric {
            row.north_star_metric = m;
        }
        if let Some(t) = fields.north_star_target {
            row.north_star_target = t;
        }
        if let Some(a) = fields.apex_block_id {
            row.apex_block_id = a;
        }
        row.updated_at = self.now();
        let activity = self.activity(
            actor,
            "work_block.updated",
            "work_block",
            id.to_string(),
            format!("changed work block \"{}\"", row.title),
            serde_json::json!({}),
        );
        let block = store
            .update_work_block(Versioned {
                row,
                expected: current.version,
                activity: vec![activity],
            })
            .await?;
        self.publish([DomainEvent::WorkBlockUpdated(Box::new(block.clone()))]);
        Ok(block)
    }

    /// Approvals, optionally of one status and one approver. Without an approver filter the
    /// store pages; with one the page is cut from the filtered list and the cursor is an offset.
    pub async fn approvals_for(
        &self,
        status: Option<ApprovalStatus>,
        approver: Option<Approver>,
        page: &PageRequest,
    ) -> Result<Page<Approval>> {
        let Some(approver) = approver else {
            return self.approvals(status, page).await;
        };
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let p = self
                .inner
                .store
                .list_approvals(status, &PageRequest::new(Some(500), cursor))
                .await?;
            all.extend(p.items.into_iter().filter(|a| a.approver == approver));
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        offset_page(all, page)
    }

    /// Proposes a new body for an archetype: the patch (`pending`, written against the current
    /// version) and an `archetype_patch` approval addressed to the board whose subject is the
    /// patch. The approval is written first (the patch refers to it); if the patch cannot be
    /// stored the approval is cancelled again.
    pub async fn propose_archetype_patch(
        &self,
        actor: &Actor,
        slug: &Slug,
        proposed_body: Markdown,
        rationale: Markdown,
    ) -> Result<ProposedPatch> {
        if actor.agent_id().is_none() && !actor.is_board() {
            return Err(CoreError::Forbidden(
                "only an agent or the board may propose archetype patches".into(),
            ));
        }
        if proposed_body.as_str().trim().is_empty() {
            return Err(mesa_domain::ValidationError::new(
                "proposed_body",
                "proposed_body must not be empty",
            )
            .into());
        }
        let current = match self.inner.store.archetype(slug).await {
            Ok(a) => a,
            Err(StoreError::NotFound { .. }) => {
                return Err(CoreError::unknown(
                    "archetype_slug",
                    format!("archetype_slug names no archetype: {slug}"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        // A patch proposed during an audit is linked to it (SPEC §4.3).
        let audit_id = match actor.agent_id() {
            Some(agent) => self.audit_in_progress(agent).await?,
            None => None,
        };
        let id: ArchetypePatchId = Self::new_id();
        let approval = self
            .request_approval(
                actor,
                NewApproval {
                    kind: ApprovalKind::ArchetypePatch,
                    title: mesa_domain::entity::generated_title(&format!(
                        "Patch archetype {slug} (version {})",
                        current.version
                    )),
                    body: rationale.clone(),
                    subject: Some(Subject {
                        entity_type: "archetype_patch".into(),
                        entity_id: id.to_string(),
                    }),
                    payload: serde_json::json!({ "archetype_slug": slug }),
                },
            )
            .await?;
        let patch = ArchetypePatch {
            id,
            archetype_slug: slug.clone(),
            base_version: current.version,
            proposed_body,
            rationale,
            proposed_by: actor.agent_id(),
            audit_id,
            status: PatchStatus::Pending,
            approval_id: Some(approval.id),
            created_at: self.now(),
        };
        let activity = self.activity(
            actor,
            "archetype_patch.proposed",
            "archetype_patch",
            id.to_string(),
            format!(
                "proposed a patch to archetype {slug} (version {})",
                current.version
            ),
            serde_json::json!({ "archetype_slug": slug, "approval_id": approval.id }),
        );
        match self
            .inner
            .store
            .create_patch(Created::new(patch, vec![activity]))
            .await
        {
            Ok(patch) => Ok(ProposedPatch { patch, approval }),
            Err(err) => {
                let _ = self
                    .cancel_approval_quietly(approval.id, "its patch could not be stored")
                    .await;
                Err(err.into())
            }
        }
    }

    async fn cancel_approval_quietly(&self, id: mesa_domain::ApprovalId, why: &str) -> Result<()> {
        let a = self.inner.store.approval(id).await?;
        let activity = self.activity(
            &Actor::System,
            "approval.cancelled",
            "approval",
            id.to_string(),
            format!("approval \"{}\" cancelled: {why}", a.title),
            serde_json::json!({}),
        );
        let expected = a.version;
        let row = Approval {
            status: ApprovalStatus::Cancelled,
            decided_at: Some(self.now()),
            decided_by: Some(Actor::System.to_string()),
            ..a
        };
        self.inner
            .store
            .update_approval(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?;
        Ok(())
    }

    /// Archetype patches, newest first, optionally of one status.
    pub async fn archetype_patches(
        &self,
        status: Option<PatchStatus>,
    ) -> Result<Vec<ArchetypePatch>> {
        Ok(self.inner.store.list_patches(status).await?)
    }

    /// One archetype patch.
    pub async fn archetype_patch(&self, id: ArchetypePatchId) -> Result<ArchetypePatch> {
        Ok(self.inner.store.patch(id).await?)
    }

    /// The board approves or rejects a patch by resolving its approval, so the version is
    /// created exactly as [`Mesa::resolve_approval`] creates it. A patch that is not pending,
    /// or has no approval, is a conflict.
    pub async fn decide_archetype_patch(
        &self,
        actor: &Actor,
        id: ArchetypePatchId,
        decision: ApprovalDecision,
        comment: Option<String>,
    ) -> Result<ArchetypePatch> {
        Self::require_board(actor, "approve or reject archetype patches")?;
        let patch = self.inner.store.patch(id).await?;
        if patch.status != PatchStatus::Pending {
            return Err(CoreError::Conflict(format!(
                "archetype patch {id} is {}, not pending",
                patch.status
            )));
        }
        let approval = patch.approval_id.ok_or_else(|| {
            CoreError::Conflict(format!("archetype patch {id} has no approval to resolve"))
        })?;
        self.resolve_approval(actor, approval, decision, comment)
            .await?;
        Ok(self.inner.store.patch(id).await?)
    }

    /// The caller's actionable issues (SPEC §9.3 `GET /inbox`), priority first, then the most
    /// recently updated. For an agent: the non-terminal issues assigned to it, plus the issues
    /// in review whose reviewer (§4.1, resolved when they were submitted and again whenever the
    /// org chart changes) it is. For the board: the issues in `board_review`.
    pub async fn inbox(&self, actor: &Actor, page: &PageRequest) -> Result<IssueList> {
        let owner = match actor.agent_id() {
            Some(me) => InboxOwner::Agent(me),
            None if actor.is_board() => InboxOwner::Board,
            None => {
                return Ok(IssueList {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
        };
        let Page { items, next_cursor } = self.inner.store.inbox(owner, page).await?;
        let mut views = Vec::with_capacity(items.len());
        for issue in items {
            views.push(self.view(issue).await?);
        }
        Ok(IssueList {
            items: views,
            next_cursor,
        })
    }

    /// The alignment figures of SPEC §3.2 (see [`Strategy`] for the empty cases).
    pub async fn strategy(&self) -> Result<Strategy> {
        let store = &self.inner.store;
        let active_apex: Vec<ApexBlockId> = store
            .list_apex_blocks()
            .await?
            .into_iter()
            .filter(|a| a.status == ApexStatus::Active)
            .map(|a| a.id)
            .collect();
        let aligned_blocks: Vec<WorkBlockId> = store
            .list_work_blocks(None)
            .await?
            .into_iter()
            .filter(|b| b.apex_block_id.is_some_and(|a| active_apex.contains(&a)))
            .map(|b| b.id)
            .collect();
        let all = self.all_issues(&IssueFilter::default()).await?;
        let blocks: HashMap<&str, Option<WorkBlockId>> = all
            .iter()
            .map(|v| (v.issue.key.as_str(), v.issue.work_block_id))
            .collect();
        let parents: HashMap<&str, Option<&IssueKey>> = all
            .iter()
            .map(|v| (v.issue.key.as_str(), v.issue.parent_key.as_ref()))
            .collect();
        let rolls_up = |key: &IssueKey| {
            let own = blocks.get(key.as_str()).copied().flatten();
            let parent = parents
                .get(key.as_str())
                .copied()
                .flatten()
                .and_then(|p| blocks.get(p.as_str()).copied().flatten());
            own.or(parent).is_some_and(|b| aligned_blocks.contains(&b))
        };
        let open: Vec<&IssueKey> = all
            .iter()
            .filter(|v| !v.issue.status.is_terminal())
            .map(|v| &v.issue.key)
            .collect();
        let drift_issues: Vec<IssueKey> = open
            .iter()
            .filter(|k| !rolls_up(k))
            .map(|k| (*k).clone())
            .collect();
        let work_alignment = share(open.len() - drift_issues.len(), open.len());

        let since = self.now() - SPEND_WINDOW;
        let (mut total, mut aligned) = (MicroUsd::ZERO, MicroUsd::ZERO);
        let mut cursor = None;
        'pages: loop {
            let p = store
                .list_runs(&RunFilter::default(), &PageRequest::new(Some(500), cursor))
                .await?;
            for run in &p.items {
                let at = run.finished_at.unwrap_or(run.queued_at);
                // Runs are listed newest first; a run queued a day before the window cannot
                // have finished inside it (the longest timeout is far shorter).
                if run.queued_at < since - Duration::from_secs(86_400) {
                    break 'pages;
                }
                if at < since {
                    continue;
                }
                total += run.cost_usd;
                if run.issue_key.as_ref().is_some_and(&rolls_up) {
                    aligned += run.cost_usd;
                }
            }
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let spend_alignment = if total.0 <= 0 {
            1.0
        } else {
            (aligned.0 as f64 / total.0 as f64).clamp(0.0, 1.0)
        };
        Ok(Strategy {
            work_alignment,
            spend_alignment,
            drift_issues,
            drift_cost: total - aligned,
        })
    }

    /// Every issue matching `filter`, following the store's pages.
    async fn all_issues(&self, filter: &IssueFilter) -> Result<Vec<IssueView>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .issues(filter, &PageRequest::new(Some(500), cursor))
                .await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    async fn actor_is_ceo(&self, actor: &Actor) -> Result<bool> {
        Ok(match actor.agent_id() {
            Some(id) => self
                .roster()
                .await?
                .iter()
                .any(|a| a.id == id && a.is_ceo()),
            None => false,
        })
    }
}

/// `part / whole`, or 1.0 when there is nothing to measure.
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// Cuts a page out of a complete list; the cursor is the offset of the next item.
fn offset_page<T>(items: Vec<T>, page: &PageRequest) -> Result<Page<T>> {
    let start = match page.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            mesa_domain::ValidationError::new("cursor", "cursor is not one this list returned")
        })?,
    };
    let limit = page.limit as usize;
    let end = start.saturating_add(limit).min(items.len());
    let next_cursor = (end < items.len()).then(|| end.to_string());
    let items = items.into_iter().skip(start).take(limit).collect();
    Ok(Page { items, next_cursor })
}
