//! Work blocks, apex blocks and approvals (SPEC §3, §4.2): every move decided by
//! `mesa-workflow`; agents' activation and ship requests become approvals for the board.

use mesa_domain::entity::{
    AgentConfig, ApexBlock, Approval, ArchetypeSource, NorthStarValue, Requester, Subject,
    WorkBlock,
};
use mesa_domain::{
    Actor, ApexBlockId, ApexStatus, ApprovalDecision, ApprovalId, ApprovalKind, ApprovalStatus,
    DomainEvent, IssueKey, Markdown, Name, RunnerKind, Slug, Title, Version, WorkBlockId,
    WorkBlockStatus, WorkingDir,
};
use mesa_store::{ArchetypeVersionWrite, Created, Page, PageRequest, StoreError, Versioned};
use mesa_workflow::approval::{
    self as approval_flow, ApprovalCommand, ApprovalEffect, ApprovalSnapshot,
};
use mesa_workflow::review_chain::{Org, reviewer_chain};
use mesa_workflow::work_block::{
    self as block_flow, BlockCommand, BlockContext, BlockEffect, WorkBlockSnapshot,
};

use crate::agents::NewAgent;
use crate::error::{CoreError, Result};
use crate::mesa::Mesa;

/// A proposed work block.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkBlock {
    /// Title.
    pub title: Title,
    /// Goal.
    pub goal: Markdown,
    /// Acceptance criteria.
    pub acceptance_criteria: Markdown,
    /// North-star metric.
    pub north_star_metric: Option<String>,
    /// Its target.
    pub north_star_target: Option<f64>,
    /// The apex block it serves.
    pub apex_block_id: Option<ApexBlockId>,
}

/// A new approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// Kind.
    pub kind: ApprovalKind,
    /// Title.
    pub title: Title,
    /// Explanation.
    pub body: Markdown,
    /// What it is about.
    pub subject: Option<Subject>,
    /// Kind-specific data.
    pub payload: serde_json::Value,
}

/// What a work-block command did: the block, and the approval it requested (agents asking to
/// activate or ship get an approval instead of a state change, SPEC §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOutcome {
    /// The block after the command.
    pub block: WorkBlock,
    /// The approval requested, if any.
    pub approval: Option<Approval>,
}

impl Mesa {
    /// Work blocks, newest first, optionally of one status.
    pub async fn work_blocks(&self, status: Option<WorkBlockStatus>) -> Result<Vec<WorkBlock>> {
        Ok(self.inner.store.list_work_blocks(status).await?)
    }

    /// One work block.
    pub async fn work_block(&self, id: WorkBlockId) -> Result<WorkBlock> {
        Ok(self.inner.store.work_block(id).await?)
    }

    /// Proposes a work block (board or any agent).
    pub async fn create_work_block(&self, actor: &Actor, new: NewWorkBlock) -> Result<WorkBlock> {
        let t = block_flow::propose(new.title.as_str(), actor)?;
        if let Some(apex) = new.apex_block_id
            && let Err(StoreError::NotFound { .. }) = self.inner.store.apex_block(apex).await
        {
            return Err(CoreError::unknown(
                "apex_block_id",
                format!("apex_block_id names no apex block: {apex}"),
            ));
        }
        let now = self.now();
        let block = WorkBlock {
            id: Self::new_id(),
            title: new.title,
            goal: new.goal,
            acceptance_criteria: new.acceptance_criteria,
            status: WorkBlockStatus::Proposed,
            north_star_metric: new.north_star_metric,
            north_star_target: new.north_star_target,
            north_star_current: None,
            apex_block_id: new.apex_block_id,
            activated_at: None,
            ready_at: None,
            shipped_at: None,
            cancelled_at: None,
            created_by: actor.to_string(),
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            t.activity.action,
            "work_block",
            block.id.to_string(),
            t.activity.summary,
            serde_json::json!({}),
        );
        let block = self
            .inner
            .store
            .create_work_block(Created::new(block, vec![activity]))
            .await?;
        self.publish([DomainEvent::WorkBlockUpdated(Box::new(block.clone()))]);
        Ok(block)
    }

    /// Applies a work-block command. An agent asking for a board decision gets an approval.
    pub async fn work_block_command(
        &self,
        actor: &Actor,
        id: WorkBlockId,
        command: BlockCommand,
        expected: Option<Version>,
    ) -> Result<BlockOutcome> {
        let store = &self.inner.store;
        let block = store.work_block(id).await?;
        if let Some(v) = expected.filter(|v| *v != block.version) {
            return Err(StoreError::StaleVersion {
                entity: "work_block",
                id: id.to_string(),
                expected: v,
                actual: block.version,
            }
            .into());
        }
        let active = store.active_work_block().await?.map(|b| b.id);
        let snapshot = WorkBlockSnapshot {
            id,
            title: block.title.to_string(),
            status: block.status,
            active_block: active,
        };
        let mut ctx = BlockContext::new(actor.clone());
        ctx.is_ceo = self.is_ceo(actor).await?;
        let now = self.now();
        let t = block_flow::decide(&snapshot, command, &ctx, now)?;
        let mut next = block.clone();
        let mut approval_requests = Vec::new();
        let mut membership = Vec::new();
        let mut cancel_approvals = Vec::new();
        let mut notes = Vec::new();
        for effect in &t.effects {
            match effect {
                BlockEffect::SetActivatedAt(at) => next.activated_at = Some(*at),
                BlockEffect::SetReadyAt(at) => next.ready_at = Some(*at),
                BlockEffect::ClearReadyAt => next.ready_at = None,
                BlockEffect::SetShippedAt(at) => next.shipped_at = Some(*at),
                BlockEffect::SetCancelledAt(at) => next.cancelled_at = Some(*at),
                BlockEffect::RequestApproval { kind, title } => {
                    approval_requests.push((*kind, title.clone()))
                }
                BlockEffect::CancelPendingApprovals { kind } => cancel_approvals.push(*kind),
                BlockEffect::AddIssue(key) => membership.push((key.clone(), Some(id))),
                BlockEffect::RemoveIssue(key) => membership.push((key.clone(), None)),
                BlockEffect::NotifyBoard { message } => notes.push(message.clone()),
            }
        }
        let activity = self.activity(
            actor,
            t.activity.action,
            "work_block",
            id.to_string(),
            t.activity.summary.clone(),
            serde_json::json!({ "from": block.status, "to": t.to }),
        );
        let block = if t.changes_status() {
            next.status = t.to;
            next.updated_at = now;
            let written = store
                .update_work_block(Versioned {
                    row: next,
                    expected: block.version,
                    activity: vec![activity],
                })
                .await?;
            self.publish([DomainEvent::WorkBlockUpdated(Box::new(written.clone()))]);
            written
        } else if membership.is_empty() {
            let rows = store.append_activity(vec![activity]).await?;
            self.publish_activity(rows);
            block
        } else {
            for (key, target) in membership {
                let issue = store
                    .set_issue_block(&key, target, vec![activity.clone()])
                    .await?;
                self.publish([DomainEvent::IssueUpdated {
                    issue: Box::new(issue),
                    from: None,
                }]);
            }
            store.work_block(id).await?
        };
        for kind in cancel_approvals {
            self.cancel_block_approvals(id, kind).await?;
        }
        let mut approval = None;
        for (kind, title) in approval_requests {
            let requester = if actor.agent_id().is_some() {
                actor.clone()
            } else {
                Actor::System
            };
            let new = NewApproval {
                kind,
                title: mesa_domain::entity::generated_title(&title),
                body: Markdown::parse("")?,
                subject: Some(Subject {
                    entity_type: "work_block".into(),
                    entity_id: id.to_string(),
                }),
                payload: serde_json::json!({}),
            };
            approval = Some(self.request_approval(&requester, new).await?);
        }
        for message in notes {
            self.notify_board(message, None);
        }
        Ok(BlockOutcome { block, approval })
    }

    /// Checks whether the block of a changed issue is now ready (SPEC §3.1 auto-ready).
    pub(crate) async fn check_auto_ready(&self, block_id: WorkBlockId) -> Result<()> {
        let store = &self.inner.store;
        let block = store.work_block(block_id).await?;
        if block.status != WorkBlockStatus::Active {
            return Ok(());
        }
        let filter = mesa_store::IssueFilter {
            work_block: Some(block_id),
            ..Default::default()
        };
        let members = store.list_issues(&filter, &PageRequest::all()).await?.items;
        let statuses: Vec<_> = members.iter().map(|i| i.status).collect();
        let snapshot = WorkBlockSnapshot {
            id: block_id,
            title: block.title.to_string(),
            status: block.status,
            active_block: Some(block_id),
        };
        if block_flow::auto_transition(&snapshot, &statuses, self.now()).is_some() {
            match self
                .work_block_command(
                    &Actor::System,
                    block_id,
                    BlockCommand::MarkReady,
                    Some(block.version),
                )
                .await
            {
                Ok(_) | Err(CoreError::Store(StoreError::StaleVersion { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn cancel_block_approvals(
        &self,
        block: WorkBlockId,
        kind: Option<ApprovalKind>,
    ) -> Result<()> {
        let pending = self
            .inner
            .store
            .list_approvals(Some(ApprovalStatus::Pending), &PageRequest::all())
            .await?
            .items;
        for a in pending {
            let about_block = a
                .subject
                .as_ref()
                .is_some_and(|s| s.entity_type == "work_block" && s.entity_id == block.to_string());
            let kind_ok = kind.is_none_or(|k| k == a.kind)
                && matches!(
                    a.kind,
                    ApprovalKind::WorkBlockActivation | ApprovalKind::WorkBlockShip
                );
            if about_block && kind_ok {
                let cancelled =
                    Box::pin(self.approval_command(&Actor::System, a.id, ApprovalCommand::Cancel))
                        .await;
                match cancelled {
                    // Someone decided it meanwhile: nothing left to withdraw.
                    Ok(_) | Err(CoreError::Store(StoreError::StaleVersion { .. })) => {}
                    Err(CoreError::Workflow(mesa_workflow::WorkflowError::NotPending {
                        ..
                    })) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Records a north-star measurement (the CEO or the board).
    pub async fn record_north_star(
        &self,
        actor: &Actor,
        id: WorkBlockId,
        value: f64,
    ) -> Result<WorkBlock> {
        if !actor.is_board() && !self.is_ceo(actor).await? {
            return Err(CoreError::Forbidden(
                "only the CEO or the board may update the north star".into(),
            ));
        }
        if !value.is_finite() {
            return Err(mesa_domain::ValidationError::new(
                "north_star_current",
                "north_star_current must be a finite number",
            )
            .into());
        }
        let activity = self.activity(
            actor,
            "work_block.north_star",
            "work_block",
            id.to_string(),
            format!("north star of work block {id} is now {value}"),
            serde_json::json!({ "value": value }),
        );
        let value = NorthStarValue {
            work_block_id: id,
            value,
            recorded_by: actor.to_string(),
            recorded_at: self.now(),
        };
        let block = self
            .inner
            .store
            .record_north_star(value, vec![activity])
            .await?;
        self.publish([DomainEvent::WorkBlockUpdated(Box::new(block.clone()))]);
        Ok(block)
    }

    /// Apex blocks, newest first.
    pub async fn apex_blocks(&self) -> Result<Vec<ApexBlock>> {
        Ok(self.inner.store.list_apex_blocks().await?)
    }

    /// Creates an apex block (board only).
    pub async fn create_apex_block(
        &self,
        actor: &Actor,
        title: Title,
        goal: Markdown,
    ) -> Result<ApexBlock> {
        Self::require_board(actor, "create apex blocks")?;
        let now = self.now();
        let block = ApexBlock {
            id: Self::new_id(),
            title,
            goal,
            status: ApexStatus::Active,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            "apex_block.created",
            "apex_block",
            block.id.to_string(),
            format!("created apex block \"{}\"", block.title),
            serde_json::json!({}),
        );
        Ok(self
            .inner
            .store
            .create_apex_block(Created::new(block, vec![activity]))
            .await?)
    }

    /// Updates an apex block (board only).
    pub async fn update_apex_block(
        &self,
        actor: &Actor,
        id: ApexBlockId,
        title: Option<Title>,
        goal: Option<Markdown>,
        status: Option<ApexStatus>,
        expected: Option<Version>,
    ) -> Result<ApexBlock> {
        Self::require_board(actor, "change apex blocks")?;
        let current = self.inner.store.apex_block(id).await?;
        let expected = expected.unwrap_or(current.version);
        let row = ApexBlock {
            title: title.unwrap_or(current.title.clone()),
            goal: goal.unwrap_or(current.goal.clone()),
            status: status.unwrap_or(current.status),
            updated_at: self.now(),
            ..current
        };
        let activity = self.activity(
            actor,
            "apex_block.updated",
            "apex_block",
            id.to_string(),
            format!("changed apex block \"{}\"", row.title),
            serde_json::json!({ "status": row.status }),
        );
        Ok(self
            .inner
            .store
            .update_apex_block(Versioned {
                row,
                expected,
                activity: vec![activity],
            })
            .await?)
    }

    /// Approvals, pending first.
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        page: &PageRequest,
    ) -> Result<Page<Approval>> {
        Ok(self.inner.store.list_approvals(status, page).await?)
    }

    /// One approval.
    pub async fn approval(&self, id: ApprovalId) -> Result<Approval> {
        Ok(self.inner.store.approval(id).await?)
    }

    /// Requests an approval. Structural kinds go to the board; others up the requester's chain.
    /// A work block's activation or shipping that is already pending for that block is not
    /// asked twice: the pending approval is returned.
    pub async fn request_approval(&self, actor: &Actor, new: NewApproval) -> Result<Approval> {
        check_payload(new.kind, &new.payload)?;
        if let Some(pending) = self.pending_block_request(&new).await? {
            return Ok(pending);
        }
        let now = self.now();
        let chain = match actor.agent_id() {
            Some(agent) => {
                let agents = self.roster().await?;
                reviewer_chain(&Org::from_agents(agents.iter()), agent)
            }
            None => Vec::new(),
        };
        let req = approval_flow::request(new.kind, new.title.as_str(), &chain, now, None);
        let approval = Approval {
            id: Self::new_id(),
            kind: new.kind,
            title: new.title,
            body: new.body,
            requested_by: actor.agent_id().map_or(Requester::Board, Requester::Agent),
            approver: req.approver,
            subject: new.subject,
            payload: new.payload,
            status: ApprovalStatus::Pending,
            decision_comment: None,
            decided_by: None,
            decided_at: None,
            expires_at: Some(req.expires_at),
            created_at: now,
            version: Version::FIRST,
        };
        let activity = self.activity(
            actor,
            req.activity.action,
            "approval",
            approval.id.to_string(),
            req.activity.summary,
            serde_json::json!({ "kind": approval.kind }),
        );
        let approval = self
            .inner
            .store
            .create_approval(Created::new(approval, vec![activity]))
            .await?;
        self.publish([DomainEvent::ApprovalCreated(Box::new(approval.clone()))]);
        for effect in &req.effects {
            if let ApprovalEffect::NotifyBoard { message } = effect {
                self.notify_board(message.clone(), None);
            }
        }
        Ok(approval)
    }

    /// The pending approval of the same work-block kind about the same block as `new`, if any.
    async fn pending_block_request(&self, new: &NewApproval) -> Result<Option<Approval>> {
        let Some(subject) = new
            .subject
            .as_ref()
            .filter(|s| s.entity_type == "work_block")
        else {
            return Ok(None);
        };
        if !matches!(
            new.kind,
            ApprovalKind::WorkBlockActivation | ApprovalKind::WorkBlockShip
        ) {
            return Ok(None);
        }
        let pending = self
            .inner
            .store
            .list_approvals(Some(ApprovalStatus::Pending), &PageRequest::all())
            .await?
            .items;
        Ok(pending
            .into_iter()
            .find(|a| a.kind == new.kind && a.subject.as_ref() == Some(subject)))
    }

    /// Resolves an approval and carries out its effect. Resolving one that is not pending is a
    /// conflict; of two concurrent resolutions exactly one wins.
    pub async fn resolve_approval(
        &self,
        actor: &Actor,
        id: ApprovalId,
        decision: ApprovalDecision,
        comment: Option<String>,
    ) -> Result<Approval> {
        self.approval_command(actor, id, ApprovalCommand::Resolve { decision, comment })
            .await
    }

    /// Marks every pending approval past its expiry as expired; returns how many.
    pub async fn expire_approvals(&self) -> Result<usize> {
        let due = self.inner.store.expired_approvals(self.now()).await?;
        let mut n = 0;
        for a in due {
            let snapshot = snapshot_of(&a);
            if let Some(t) = approval_flow::expire_due(&snapshot, self.now()) {
                match self.write_approval(&Actor::System, a, t).await {
                    Ok(_) => n += 1,
                    Err(CoreError::Store(StoreError::StaleVersion { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    async fn approval_command(
        &self,
        actor: &Actor,
        id: ApprovalId,
        command: ApprovalCommand,
    ) -> Result<Approval> {
        let approval = self.inner.store.approval(id).await?;
        let t = approval_flow::decide(&snapshot_of(&approval), command, actor, self.now())?;
        self.write_approval(actor, approval, t).await
    }

    /// Writes a decided approval transition: the approval row first (its version check makes
    /// exactly one of concurrent resolutions win), then the kind's effect. If the effect fails
    /// the approval is put back to pending, so nothing is half done.
    async fn write_approval(
        &self,
        actor: &Actor,
        approval: Approval,
        t: approval_flow::ApprovalTransition,
    ) -> Result<Approval> {
        let mut next = approval.clone();
        let mut apply = None;
        let mut discard = None;
        for effect in &t.effects {
            match effect {
                ApprovalEffect::RecordDecision {
                    decided_at,
                    comment,
                } => {
                    next.decided_at = Some(*decided_at);
                    next.decided_by = Some(actor.to_string());
                    next.decision_comment.clone_from(comment);
                }
                ApprovalEffect::SetApprover(a) => next.approver = *a,
                ApprovalEffect::Apply(kind) => apply = Some(*kind),
                ApprovalEffect::Discard(kind) => discard = Some(*kind),
                ApprovalEffect::Wake { .. } | ApprovalEffect::NotifyBoard { .. } => {}
            }
        }
        next.status = t.to;
        let activity = self.activity(
            actor,
            t.activity.action,
            "approval",
            approval.id.to_string(),
            t.activity.summary.clone(),
            serde_json::json!({ "kind": approval.kind, "status": t.to }),
        );
        let written = self
            .inner
            .store
            .update_approval(Versioned {
                row: next,
                expected: approval.version,
                activity: vec![activity],
            })
            .await?;
        let effect = match (apply, discard) {
            (Some(kind), _) => self.apply_approval(actor, &written, kind).await,
            (None, Some(ApprovalKind::ArchetypePatch)) => {
                self.settle_patch(&written, mesa_domain::PatchStatus::Rejected)
                    .await
            }
            _ => Ok(()),
        };
        if let Err(err) = effect {
            // A patch written against an old archetype version can never apply: the approval
            // ends cancelled. Any other failure puts the approval back to pending.
            let superseded = apply == Some(ApprovalKind::ArchetypePatch)
                && self
                    .patch_of(&written)
                    .await
                    .is_some_and(|p| p.status == mesa_domain::PatchStatus::Superseded);
            let mut undo = written.clone();
            if superseded {
                undo.status = ApprovalStatus::Cancelled;
                undo.decision_comment = Some(format!("not applied: {err}"));
            } else {
                undo.status = ApprovalStatus::Pending;
                undo.decided_at = None;
                undo.decided_by = None;
                undo.decision_comment = None;
            }
            let note = self.activity(
                &Actor::System,
                "approval.reverted",
                "approval",
                written.id.to_string(),
                format!(
                    "approval \"{}\" is {}: its effect failed ({err})",
                    written.title, undo.status
                ),
                serde_json::json!({}),
            );
            self.inner
                .store
                .update_approval(Versioned {
                    row: undo,
                    expected: written.version,
                    activity: vec![note],
                })
                .await?;
            return Err(err);
        }
        self.publish([DomainEvent::ApprovalResolved(Box::new(written.clone()))]);
        // After the commit: wake the requester, tell the board (`wakes.rs`).
        self.carry_out_approval_effects(actor, &t.effects).await;
        Ok(written)
    }

    async fn apply_approval(
        &self,
        actor: &Actor,
        approval: &Approval,
        kind: ApprovalKind,
    ) -> Result<()> {
        let decider = if actor.is_board() {
            actor.clone()
        } else {
            Actor::System
        };
        match kind {
            ApprovalKind::WorkBlockActivation | ApprovalKind::WorkBlockShip => {
                let id = subject_id(approval, "work_block")
                    .and_then(|s| WorkBlockId::parse(&s).ok())
                    .ok_or_else(|| {
                        CoreError::Conflict("the approval names no work block".into())
                    })?;
                let block = self.inner.store.work_block(id).await?;
                // Asked for while another request for the same move was being approved: the
                // block is already where the approval would put it, so approving it is a no-op.
                let already = matches!(
                    (kind, block.status),
                    (ApprovalKind::WorkBlockActivation, WorkBlockStatus::Active)
                        | (ApprovalKind::WorkBlockShip, WorkBlockStatus::Shipped)
                );
                if already {
                    return Ok(());
                }
                let command =
                    block_flow::command_for_approval(kind, block.status).ok_or_else(|| {
                        CoreError::Conflict("the approval does not move a work block".into())
                    })?;
                let board = Actor::board(match &decider {
                    Actor::Board { token_name } => token_name.clone(),
                    _ => "approval".to_owned(),
                });
                Box::pin(self.work_block_command(&board, id, command, None)).await?;
            }
            ApprovalKind::ArchetypePatch => {
                let patch_id = subject_id(approval, "archetype_patch")
                    .and_then(|s| mesa_domain::ArchetypePatchId::parse(&s).ok())
                    .ok_or_else(|| {
                        CoreError::Conflict("the approval names no archetype patch".into())
                    })?;
                let patch = self.inner.store.patch(patch_id).await?;
                let current = self.inner.store.archetype(&patch.archetype_slug).await?;
                if current.version != patch.base_version {
                    self.settle_patch(approval, mesa_domain::PatchStatus::Superseded)
                        .await?;
                    return Err(CoreError::Conflict(format!(
                        "the patch was written against version {} but the archetype is at version {}",
                        patch.base_version, current.version
                    )));
                }
                let write = ArchetypeVersionWrite {
                    slug: patch.archetype_slug.clone(),
                    title: current.title,
                    body: patch.proposed_body.clone(),
                    source: ArchetypeSource::Patch(patch.id),
                    expected_version: Some(current.version),
                    at: self.now(),
                    approve_patch: Some(patch.id),
                    activity: vec![self.activity(
                        actor,
                        "archetype.patched",
                        "archetype",
                        patch.archetype_slug.as_str(),
                        format!("applied patch to archetype {}", patch.archetype_slug),
                        serde_json::json!({ "patch_id": patch.id }),
                    )],
                };
                self.inner.store.write_archetype_version(write).await?;
            }
            ApprovalKind::AgentHire => {
                let p = &approval.payload;
                let text = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                let slug = Slug::parse(&text("slug").unwrap_or_default())?;
                let name = Name::parse(&text("name").unwrap_or_else(|| slug.to_string()))?;
                let archetype =
                    Slug::parse_field("archetype", &text("archetype").unwrap_or_default())?;
                let runner = match text("runner") {
                    Some(r) => RunnerKind::parse_field("runner", &r)?,
                    None => self.config().bootstrap_runner(),
                };
                let requester_dir = match approval.requested_by {
                    Requester::Agent(a) => {
                        Some(self.inner.store.agent(a).await?.config.working_dir)
                    }
                    Requester::Board => None,
                };
                let working_dir = match text("working_dir") {
                    Some(d) => WorkingDir::parse(&d)?,
                    None => requester_dir.unwrap_or_else(|| self.config().workspace.clone()),
                };
                let mut config = AgentConfig::new(name, archetype, runner, working_dir);
                config.model = text("model").unwrap_or_default();
                if let Some(m) = text("reports_to") {
                    config.reports_to = Some(self.resolve_agent("reports_to", &m).await?.id);
                }
                let board = Actor::board("approval");
                self.create_agent(&board, NewAgent { slug, config }).await?;
            }
            ApprovalKind::BudgetChange => {
                // Budgets are applied by the scheduler issue's budget commands; the approval is
                // recorded and the requester woken.
            }
            ApprovalKind::DestructiveAction | ApprovalKind::Other => {}
        }
        Ok(())
    }

    async fn patch_of(&self, approval: &Approval) -> Option<mesa_domain::entity::ArchetypePatch> {
        let id = subject_id(approval, "archetype_patch")
            .and_then(|s| mesa_domain::ArchetypePatchId::parse(&s).ok())?;
        self.inner.store.patch(id).await.ok()
    }

    async fn settle_patch(
        &self,
        approval: &Approval,
        status: mesa_domain::PatchStatus,
    ) -> Result<()> {
        let Some(id) = subject_id(approval, "archetype_patch")
            .and_then(|s| mesa_domain::ArchetypePatchId::parse(&s).ok())
        else {
            return Ok(());
        };
        let patch = self.inner.store.patch(id).await?;
        if patch.status != mesa_domain::PatchStatus::Pending {
            return Ok(());
        }
        let activity = self.activity(
            &Actor::System,
            "archetype_patch.settled",
            "archetype_patch",
            id.to_string(),
            format!("archetype patch {id} is {status}"),
            serde_json::json!({}),
        );
        let row = mesa_domain::entity::ArchetypePatch { status, ..patch };
        self.inner
            .store
            .update_patch(Versioned {
                row,
                expected: Version::FIRST,
                activity: vec![activity],
            })
            .await
            .map(|_| ())
            .or_else(|e| match e {
                StoreError::StaleVersion { .. } => Ok(()),
                other => Err(other.into()),
            })
    }

    async fn is_ceo(&self, actor: &Actor) -> Result<bool> {
        Ok(match actor.agent_id() {
            Some(id) => self
                .roster()
                .await?
                .iter()
                .any(|a| a.id == id && a.is_ceo()),
            None => false,
        })
    }

    /// Adds an issue to a block (`POST /work-blocks/{id}/issues`).
    pub async fn add_issue_to_block(
        &self,
        actor: &Actor,
        id: WorkBlockId,
        key: &IssueKey,
    ) -> Result<BlockOutcome> {
        let issue = self.inner.store.issue(key).await?;
        self.work_block_command(
            actor,
            id,
            BlockCommand::AddIssue {
                issue: key.clone(),
                current_block: issue.work_block_id,
            },
            None,
        )
        .await
    }

    /// Removes an issue from a block.
    pub async fn remove_issue_from_block(
        &self,
        actor: &Actor,
        id: WorkBlockId,
        key: &IssueKey,
    ) -> Result<BlockOutcome> {
        let issue = self.inner.store.issue(key).await?;
        if issue.work_block_id != Some(id) {
            return Err(CoreError::Conflict(format!(
                "{key} is not in work block {id}"
            )));
        }
        self.work_block_command(
            actor,
            id,
            BlockCommand::RemoveIssue { issue: key.clone() },
            None,
        )
        .await
    }
}

fn snapshot_of(a: &Approval) -> ApprovalSnapshot {
    ApprovalSnapshot {
        kind: a.kind,
        title: a.title.to_string(),
        status: a.status,
        approver: a.approver,
        requested_by: a.requested_by,
        expires_at: a.expires_at,
    }
}

fn subject_id(a: &Approval, entity_type: &str) -> Option<String> {
    a.subject
        .as_ref()
        .filter(|s| s.entity_type == entity_type)
        .map(|s| s.entity_id.clone())
}

/// `agent_hire` and `budget_change` need a payload (SPEC §4.2).
fn check_payload(kind: ApprovalKind, payload: &serde_json::Value) -> Result<()> {
    let need: &[&str] = match kind {
        ApprovalKind::AgentHire => &["name", "slug", "archetype"],
        ApprovalKind::BudgetChange => &["agent_slug"],
        _ => return Ok(()),
    };
    for key in need {
        if payload
            .get(key)
            .and_then(|v| v.as_str())
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(mesa_domain::ValidationError::new(
                format!("payload.{key}"),
                format!("payload.{key} is required for {kind} approvals"),
            )
            .into());
        }
    }
    Ok(())
}
