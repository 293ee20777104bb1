//! Issues and comments: create, read, list, and every §2 transition, each decided by
//! `mesa-workflow` and written in one store call.

use mesa_domain::entity::{Comment, Issue, Run};
use mesa_domain::{
    Actor, AgentId, CommentKind, DomainEvent, IssueKey, IssueStatus, IssueType, LabelId, Markdown,
    Priority, Slug, Stages, Title, ValidationError, Version, WorkBlockId,
};
use mesa_store::{
    CheckoutRequest, IssueFilter, IssueWrite, NewComment, NewIssueRecord, Page, PageRequest,
    RunFilter, StoreError,
};
use mesa_workflow::issue::{self as flow, ActorContext, IssueCommand, IssueEffect, IssueSnapshot};
use mesa_workflow::review_chain::{Org, Reviewer, resolve_reviewer, reviewer_chain};
use mesa_workflow::stage_comment;

use crate::error::{CoreError, Result};
use crate::hints::acceptance_warnings;
use crate::mesa::Mesa;

/// A new issue as a caller asks for it. Values are already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    /// Title.
    pub title: Title,
    /// Markdown description.
    pub description: Markdown,
    /// Type (default task).
    pub issue_type: IssueType,
    /// Priority (default none).
    pub priority: Priority,
    /// Assignee by slug or id; `None` = the CEO.
    pub assignee: Option<String>,
    /// Parent issue.
    pub parent_key: Option<IssueKey>,
    /// Labels.
    pub labels: Vec<LabelId>,
    /// Work block.
    pub work_block_id: Option<WorkBlockId>,
    /// Checklist.
    pub stages: Stages,
}

impl NewIssue {
    /// An issue with just a title and defaults for everything else.
    pub fn titled(title: &str) -> Result<Self, ValidationError> {
        Ok(NewIssue {
            title: Title::parse(title)?,
            description: Markdown::parse("")?,
            issue_type: IssueType::Task,
            priority: Priority::NONE,
            assignee: None,
            parent_key: None,
            labels: Vec::new(),
            work_block_id: None,
            stages: Stages::empty(),
        })
    }
}

/// Field changes of `PATCH /issues/{key}`. `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssuePatch {
    /// New title.
    pub title: Option<Title>,
    /// New description.
    pub description: Option<Markdown>,
    /// New type.
    pub issue_type: Option<IssueType>,
    /// New priority.
    pub priority: Option<Priority>,
    /// `Some(None)` unassigns; `Some(Some(slug))` assigns.
    pub assignee: Option<Option<String>>,
    /// New parent (`Some(None)` detaches).
    pub parent_key: Option<Option<IssueKey>>,
    /// New checklist.
    pub stages: Option<Stages>,
    /// New labels.
    pub labels: Option<Vec<LabelId>>,
    /// Target status or command name (the matching §2 command is applied).
    pub status: Option<String>,
    /// Comment for the transition (or a plain comment when no status changes).
    pub comment: Option<String>,
    /// Reason for a cancel.
    pub cancellation_reason: Option<String>,
    /// Cancel guarded finished work anyway.
    pub force: bool,
    /// The version the caller saw (`If-Match` or body `version`).
    pub expected: Option<Version>,
}

/// An issue as front ends show it: with its assignee's slug and acceptance warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueView {
    /// The issue.
    pub issue: Issue,
    /// The assignee's slug.
    pub assignee_slug: Option<Slug>,
    /// Acceptance-criteria hints (never blocking).
    pub warnings: Vec<String>,
}

/// `GET /issues/{key}`: the issue with its comments, sub-issues and runs.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueDetail {
    /// The issue.
    pub issue: IssueView,
    /// Comments, oldest first (the most recent 500).
    pub comments: Vec<Comment>,
    /// Sub-issues.
    pub children: Vec<IssueView>,
    /// Runs, newest first (the most recent 50).
    pub runs: Vec<Run>,
}

/// A page of issues.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueList {
    /// The issues.
    pub items: Vec<IssueView>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

impl Mesa {
    /// Creates an issue (`(new) → todo`). Without an assignee it goes to the CEO.
    pub async fn create_issue(&self, actor: &Actor, new: NewIssue) -> Result<IssueView> {
        let store = &self.inner.store;
        let assignee = match &new.assignee {
            Some(a) => Some(self.resolve_agent("assignee_slug", a).await?.id),
            None => None,
        };
        let ceo = self.ceo().await?.map(|a| a.id);
        if let Some(parent) = &new.parent_key
            && let Err(StoreError::NotFound { .. }) = store.issue(parent).await
        {
            return Err(CoreError::unknown(
                "parent_key",
                format!("parent_key names no issue: {parent}"),
            ));
        }
        let prefix = self.inner.settings.read().await.issue_prefix();
        // The key is allocated by the store; the workflow only needs it for the summary.
        let placeholder = IssueKey::new(&prefix, std::num::NonZeroU64::MIN);
        let transition = flow::create(&placeholder, assignee, ceo, actor);
        let mut holder = None;
        for effect in &transition.effects {
            if let IssueEffect::SetAssignee(a) = effect {
                holder = Some(*a);
            }
        }
        let wake = self
            .creation_wake(actor, &transition.effects, i64::from(new.priority.get()))
            .await?;
        let run_id = wake.as_ref().map(|w| w.id);
        let record = NewIssueRecord {
            id: Self::new_id(),
            prefix,
            title: new.title.clone(),
            description: new.description,
            issue_type: new.issue_type,
            priority: new.priority,
            assignee_id: holder,
            parent_key: new.parent_key,
            work_block_id: new.work_block_id,
            labels: new.labels,
            stages: new.stages,
            created_by: actor.created_by(),
            created_at: self.now(),
            activity: vec![self.activity(
                actor,
                transition.activity.action,
                "issue",
                "",
                format!("created issue \"{}\"", new.title),
                serde_json::json!({ "assignee": holder }),
            )],
            wake,
        };
        let issue = store.create_issue(record).await.map_err(|e| match e {
            StoreError::NotFound {
                entity: "work_block",
                id,
            } => CoreError::unknown(
                "work_block_id",
                format!("work_block_id names no work block: {id}"),
            ),
            StoreError::NotFound {
                entity: "label",
                id,
            } => CoreError::unknown("labels", format!("labels names no label: {id}")),
            other => other.into(),
        })?;
        self.publish([DomainEvent::IssueCreated(Box::new(issue.clone()))]);
        if let Some(run) = run_id {
            match store.run(run).await {
                Ok(run) => self.publish([DomainEvent::RunQueued(Box::new(run))]),
                Err(err) => tracing::warn!(error = %err, "could not read a queued run back"),
            }
        }
        // The wake-up was queued with the issue; the other effects follow the commit.
        let rest: Vec<IssueEffect> = transition
            .effects
            .into_iter()
            .filter(|e| !matches!(e, IssueEffect::Wake { .. }))
            .collect();
        self.carry_out_issue_effects(actor, &issue, &rest).await;
        self.view(issue).await
    }

    /// One issue by key.
    pub async fn issue(&self, key: &IssueKey) -> Result<IssueView> {
        let issue = self.inner.store.issue(key).await?;
        self.view(issue).await
    }

    /// The issue with comments, children and runs.
    pub async fn issue_detail(&self, key: &IssueKey) -> Result<IssueDetail> {
        let store = &self.inner.store;
        let issue = self.issue(key).await?;
        let comments = store.recent_comments(key, 500).await?;
        let mut children = Vec::new();
        for child in store.children(key).await? {
            children.push(self.view(child).await?);
        }
        let runs = store
            .list_runs(
                &RunFilter {
                    issue: Some(key.clone()),
                    ..RunFilter::default()
                },
                &PageRequest::new(Some(50), None),
            )
            .await?
            .items;
        Ok(IssueDetail {
            issue,
            comments,
            children,
            runs,
        })
    }

    /// Issues matching a filter, newest first.
    pub async fn issues(&self, filter: &IssueFilter, page: &PageRequest) -> Result<IssueList> {
        let Page { items, next_cursor } = self.inner.store.list_issues(filter, page).await?;
        let agents = self.agents().await?;
        let items = items
            .into_iter()
            .map(|issue| {
                let slug = issue
                    .assignee_id
                    .and_then(|id| agents.iter().find(|a| a.id == id))
                    .map(|a| a.slug.clone());
                let warnings = acceptance_warnings(issue.issue_type, issue.description.as_str());
                IssueView {
                    issue,
                    assignee_slug: slug,
                    warnings,
                }
            })
            .collect();
        Ok(IssueList { items, next_cursor })
    }

    /// Comments of an issue, oldest first.
    pub async fn comments(&self, key: &IssueKey, page: &PageRequest) -> Result<Page<Comment>> {
        Ok(self.inner.store.comments(key, page).await?)
    }

    pub(crate) async fn view(&self, issue: Issue) -> Result<IssueView> {
        let assignee_slug = match issue.assignee_id {
            Some(id) => match self.roster().await?.get(id) {
                Some(a) => Some(a.slug.clone()),
                None => Some(self.inner.store.agent(id).await?.slug),
            },
            None => None,
        };
        let warnings = acceptance_warnings(issue.issue_type, issue.description.as_str());
        Ok(IssueView {
            issue,
            assignee_slug,
            warnings,
        })
    }

    /// Posts a comment. Agents may not comment on terminal issues; `system` and `review` are
    /// Mesa's own kinds. Stage protocol lines (`Stages: [A], [B]`, `Stage N: ... - Complete`)
    /// update the checklist in the same write; invalid stage data stores nothing.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        key: &IssueKey,
        body: &str,
        kind: CommentKind,
    ) -> Result<Comment> {
        if !kind.is_user_postable() {
            return Err(ValidationError::new(
                "kind",
                "kind must be comment or evidence; system and review comments are written by Mesa",
            )
            .into());
        }
        let body = mesa_domain::Body::parse(body)?;
        let issue = self.inner.store.issue(key).await?;
        if issue.status.is_terminal() && actor.agent_id().is_some() {
            return Err(CoreError::Conflict(format!(
                "{key} is {}; agents cannot comment on finished issues",
                issue.status
            )));
        }
        let comment = self.new_comment(actor, key, kind, body.as_str().to_owned());
        let update = stage_comment::apply(&issue.stages, body.as_str())?;
        let activity = self.activity(
            actor,
            "comment.created",
            "issue",
            key.as_str(),
            format!("{kind} on {key}"),
            serde_json::json!({ "comment_id": comment.id, "kind": kind }),
        );
        let Some(update) = update else {
            let stored = self
                .inner
                .store
                .add_comment(comment, vec![activity])
                .await?;
            self.publish([DomainEvent::CommentCreated(Box::new(stored.clone()))]);
            self.wake_on_comment(actor, &issue).await;
            return Ok(stored);
        };
        let system = self.new_comment(
            &Actor::System,
            key,
            CommentKind::System,
            update.system_comment.clone(),
        );
        let mut next = issue.clone();
        next.current_stage = update.stages.current();
        next.stages = update.stages;
        next.updated_at = self.now();
        let first_id = comment.id;
        let written = self
            .inner
            .store
            .update_issue(IssueWrite {
                issue: next,
                expected: issue.version,
                comments: vec![comment, system],
                activity: vec![activity],
            })
            .await?;
        let comments = self.inner.store.recent_comments(key, 2).await?;
        let stored = comments
            .into_iter()
            .find(|c| c.id == first_id)
            .ok_or_else(|| StoreError::not_found("comment", &first_id))?;
        self.publish([
            DomainEvent::CommentCreated(Box::new(stored.clone())),
            DomainEvent::IssueUpdated {
                issue: Box::new(written),
                from: None,
            },
        ]);
        self.wake_on_comment(actor, &issue).await;
        Ok(stored)
    }

    fn new_comment(
        &self,
        actor: &Actor,
        key: &IssueKey,
        kind: CommentKind,
        body: String,
    ) -> NewComment {
        NewComment {
            id: Self::new_id(),
            issue_key: key.clone(),
            author_agent_id: actor.agent_id(),
            author: actor.to_string(),
            kind,
            body,
            created_at: self.now(),
        }
    }

    /// Atomic checkout (SPEC §2.2). Exactly one of concurrent callers wins; the others get a
    /// `checkout_conflict`. Repeating it as the holder is idempotent.
    pub async fn checkout_issue(
        &self,
        actor: &Actor,
        key: &IssueKey,
        expected_statuses: Option<Vec<IssueStatus>>,
        run: Option<mesa_domain::RunId>,
    ) -> Result<IssueView> {
        let Some(agent) = actor.agent_id() else {
            return Err(CoreError::Forbidden(
                "only agents check issues out; the board starts them with PATCH status in_progress"
                    .into(),
            ));
        };
        let issue = self.inner.store.issue(key).await?;
        // A checkout is decided by the issue's status and holder alone (the workflow's
        // `checkout`), so it skips the children, comments and org chart other commands read.
        let snapshot = IssueSnapshot::from_issue(&issue);
        let ctx = ActorContext::new(actor.clone());
        let transition = flow::decide(
            &snapshot,
            IssueCommand::Checkout {
                expected_statuses: expected_statuses.clone(),
            },
            &ctx,
            self.now(),
        )?;
        let expected =
            expected_statuses.unwrap_or_else(|| flow::DEFAULT_EXPECTED_STATUSES.to_vec());
        let activity = self.activity(
            actor,
            transition.activity.action,
            "issue",
            key.as_str(),
            transition.activity.summary.clone(),
            serde_json::json!({ "run_id": run }),
        );
        let outcome = self
            .inner
            .store
            .checkout_issue(CheckoutRequest {
                key: key.clone(),
                agent_id: agent,
                run_id: run,
                expected,
                now: self.now(),
                activity: vec![activity],
            })
            .await?;
        if outcome.changed {
            self.publish([DomainEvent::IssueUpdated {
                issue: Box::new(outcome.issue.clone()),
                from: Some(issue.status),
            }]);
        }
        self.view(outcome.issue).await
    }

    /// Applies a §2 command (other than checkout) decided by the workflow, in one write.
    pub async fn issue_command(
        &self,
        actor: &Actor,
        key: &IssueKey,
        command: IssueCommand,
        expected: Option<Version>,
    ) -> Result<IssueView> {
        if let IssueCommand::Checkout { expected_statuses } = command {
            return self
                .checkout_issue(actor, key, expected_statuses, None)
                .await;
        }
        // A caller that named no version asked for no precondition: when another write lands
        // between the read and the write, the command is decided again on the new state
        // (it may then be refused by the workflow) instead of failing with a stale version.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .issue_command_once(actor, key, command.clone(), expected)
                .await
            {
                Err(e)
                    if expected.is_none()
                        && attempts < COMMAND_ATTEMPTS
                        && e.kind() == crate::ErrorKind::StaleVersion =>
                {
                    tracing::debug!(issue = %key, attempts, "issue changed meanwhile; deciding again");
                    // A short, growing pause lets the competing writers through.
                    tokio::time::sleep(retry_pause(attempts)).await;
                }
                done => return done,
            }
        }
    }

    /// One read-decide-write of [`Mesa::issue_command`] (not a checkout).
    async fn issue_command_once(
        &self,
        actor: &Actor,
        key: &IssueKey,
        command: IssueCommand,
        expected: Option<Version>,
    ) -> Result<IssueView> {
        let issue = self.inner.store.issue(key).await?;
        check_version(&issue, expected)?;
        let (snapshot, ctx) = self.context(actor, &issue).await?;
        let now = self.now();
        let is_submit = matches!(command, IssueCommand::Submit { .. });
        let transition = flow::decide(&snapshot, command, &ctx, now)?;
        let mut next = issue.clone();
        let mut comments = Vec::new();
        self.apply_effects(actor, &mut next, &transition.effects, &mut comments);
        if is_submit {
            next.submitted_by = actor.agent_id();
        }
        if transition.changes_status() {
            next.status = transition.to;
            next.status_changed_at = now;
        }
        next.updated_at = now;
        let activity = self.activity(
            actor,
            transition.activity.action,
            "issue",
            key.as_str(),
            transition.activity.summary.clone(),
            serde_json::json!({ "from": issue.status, "to": transition.to }),
        );
        let view = self
            .write_issue(issue, next, comments, vec![activity])
            .await?;
        // After the commit: wake-ups, board notifications, queue clean-up (`wakes.rs`).
        self.carry_out_issue_effects(actor, &view.issue, &transition.effects)
            .await;
        if transition.changes_status() {
            self.wake_parent_when_children_finished(actor, &view.issue)
                .await;
        }
        Ok(view)
    }

    /// `PATCH /issues/{key}`: field changes, and a status change through its §2 command.
    pub async fn update_issue(
        &self,
        actor: &Actor,
        key: &IssueKey,
        patch: IssuePatch,
    ) -> Result<IssueView> {
        // Without a version precondition, a write that lands between the read and the field
        // change is no reason to fail: the (absolute) field values are applied again on the
        // new state. The status command retries on its own (see `issue_command`).
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.update_issue_once(actor, key, patch.clone()).await {
                Err(e)
                    if patch.expected.is_none()
                        && attempts < COMMAND_ATTEMPTS
                        && e.kind() == crate::ErrorKind::StaleVersion =>
                {
                    tracing::debug!(issue = %key, attempts, "issue changed meanwhile; editing again");
                    // A short, growing pause lets the competing writers through.
                    tokio::time::sleep(retry_pause(attempts)).await;
                }
                done => return done,
            }
        }
    }

    /// One attempt of [`Mesa::update_issue`].
    async fn update_issue_once(
        &self,
        actor: &Actor,
        key: &IssueKey,
        patch: IssuePatch,
    ) -> Result<IssueView> {
        let store = &self.inner.store;
        let mut issue = store.issue(key).await?;
        check_version(&issue, patch.expected)?;
        let field_change = patch.title.is_some()
            || patch.description.is_some()
            || patch.issue_type.is_some()
            || patch.priority.is_some()
            || patch.assignee.is_some()
            || patch.parent_key.is_some()
            || patch.stages.is_some()
            || patch.labels.is_some();
        if field_change {
            if issue.status.is_terminal() && !actor.is_board() {
                return Err(CoreError::Conflict(format!(
                    "{key} is {}; only the board edits finished issues",
                    issue.status
                )));
            }
            let mut next = issue.clone();
            if let Some(t) = patch.title.clone() {
                next.title = t;
            }
            if let Some(d) = patch.description.clone() {
                next.description = d;
            }
            if let Some(t) = patch.issue_type {
                next.issue_type = t;
            }
            if let Some(p) = patch.priority {
                next.priority = p;
            }
            if let Some(stages) = patch.stages.clone() {
                next.current_stage = stages.current();
                next.stages = stages;
            }
            if let Some(labels) = patch.labels.clone() {
                next.labels = labels;
            }
            if let Some(assignee) = &patch.assignee {
                next.assignee_id = match assignee {
                    Some(a) => Some(self.resolve_agent("assignee_slug", a).await?.id),
                    None => None,
                };
            }
            if let Some(parent) = &patch.parent_key {
                next.parent_key = match parent {
                    Some(p) => Some(self.check_parent(key, p).await?),
                    None => None,
                };
            }
            next.updated_at = self.now();
            let mut comments = Vec::new();
            if patch.status.is_none()
                && let Some(c) = patch.comment.as_deref().filter(|c| !c.trim().is_empty())
            {
                comments.push(self.new_comment(actor, key, CommentKind::Comment, c.to_owned()));
            }
            let activity = self.activity(
                actor,
                "issue.edited",
                "issue",
                key.as_str(),
                format!("{key}: edited by {actor}"),
                serde_json::json!({}),
            );
            let view = self
                .write_issue(issue.clone(), next, comments, vec![activity])
                .await?;
            self.wake_on_assignment(actor, issue.assignee_id, &view.issue)
                .await;
            issue = view.issue;
        } else if patch.status.is_none()
            && let Some(c) = patch.comment.as_deref()
        {
            self.add_comment(actor, key, c, CommentKind::Comment)
                .await?;
            return self.issue(key).await;
        }
        let Some(target) = patch.status else {
            return self.view(issue).await;
        };
        let Some(kind) = flow::patch_command(issue.status, &target)? else {
            return self.view(issue).await;
        };
        let text = if kind == flow::CommandKind::Cancel {
            patch.cancellation_reason.or(patch.comment)
        } else {
            patch.comment
        };
        let command = IssueCommand::from_kind(kind, text, patch.force)
            .ok_or_else(|| ValidationError::new("status", "status cannot be set to create"))?;
        if matches!(command, IssueCommand::Checkout { .. }) {
            return self.checkout_issue(actor, key, None, None).await;
        }
        // Only a caller that named a version keeps the precondition (on the version its own
        // field change, if any, produced).
        let expected = patch.expected.map(|_| issue.version);
        self.issue_command(actor, key, command, expected).await
    }

    async fn check_parent(&self, key: &IssueKey, parent: &IssueKey) -> Result<IssueKey> {
        let mut at = Some(parent.clone());
        let mut hops = 0;
        while let Some(k) = at {
            if &k == key {
                return Err(ValidationError::new(
                    "parent_key",
                    "parent_key would make the issue its own ancestor",
                )
                .into());
            }
            let issue = match self.inner.store.issue(&k).await {
                Ok(i) => i,
                Err(StoreError::NotFound { .. }) if hops == 0 => {
                    return Err(CoreError::unknown(
                        "parent_key",
                        format!("parent_key names no issue: {k}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            at = issue.parent_key;
            hops += 1;
            if hops > 10_000 {
                break;
            }
        }
        Ok(parent.clone())
    }

    pub(crate) async fn write_issue(
        &self,
        before: Issue,
        next: Issue,
        comments: Vec<NewComment>,
        activity: Vec<mesa_domain::entity::NewActivity>,
    ) -> Result<IssueView> {
        let mut next = next;
        next.reviewer_id = self.reviewer_of(&next).await?;
        let from = (before.status != next.status).then_some(before.status);
        let written = self
            .inner
            .store
            .update_issue(IssueWrite {
                issue: next,
                expected: before.version,
                comments,
                activity,
            })
            .await?;
        let mut events = vec![DomainEvent::IssueUpdated {
            issue: Box::new(written.clone()),
            from,
        }];
        if let Ok(recent) = self.inner.store.recent_comments(&written.key, 3).await {
            events.extend(
                recent
                    .into_iter()
                    .filter(|c| c.created_at >= written.updated_at)
                    .map(|c| DomainEvent::CommentCreated(Box::new(c))),
            );
        }
        self.publish(events);
        if let (Some(_), Some(block)) = (from, written.work_block_id)
            && written.status.is_terminal()
        {
            self.check_auto_ready(block).await?;
        }
        self.view(written).await
    }

    pub(crate) fn apply_effects(
        &self,
        actor: &Actor,
        issue: &mut Issue,
        effects: &[IssueEffect],
        comments: &mut Vec<NewComment>,
    ) {
        for effect in effects {
            match effect {
                IssueEffect::SetAssignee(a) => issue.assignee_id = Some(*a),
                IssueEffect::ClearAssignee => issue.assignee_id = None,
                IssueEffect::SetStartedAt(t) => issue.started_at = Some(*t),
                IssueEffect::SetCompletedAt(t) => issue.completed_at = Some(*t),
                IssueEffect::ClearCompletedAt => issue.completed_at = None,
                IssueEffect::SetCancellationReason(r) => {
                    issue.cancellation_reason = Some(r.clone())
                }
                IssueEffect::ClearCancellationReason => issue.cancellation_reason = None,
                IssueEffect::AddComment { kind, body } => {
                    let author = if *kind == CommentKind::System {
                        Actor::System
                    } else {
                        actor.clone()
                    };
                    comments.push(self.new_comment(&author, &issue.key, *kind, body.clone()));
                }
                // Wake-ups, board notifications and queue clean-up happen after the write has
                // committed: `Mesa::carry_out_issue_effects` (`wakes.rs`).
                IssueEffect::BindRun
                | IssueEffect::Wake { .. }
                | IssueEffect::NotifyBoard { .. }
                | IssueEffect::DropQueuedRuns => {}
            }
        }
    }

    /// The workflow's view of an issue and of the actor's relation to it.
    pub(crate) async fn context(
        &self,
        actor: &Actor,
        issue: &Issue,
    ) -> Result<(IssueSnapshot, ActorContext)> {
        let store = &self.inner.store;
        let agents = self.roster().await?;
        let org = Org::from_agents(agents.iter());
        let mut snapshot = IssueSnapshot::from_issue(issue);
        snapshot.children = store
            .children(&issue.key)
            .await?
            .into_iter()
            .map(|c| flow::ChildIssue {
                key: c.key,
                status: c.status,
            })
            .collect();
        let recent = store.recent_comments(&issue.key, 200).await?;
        snapshot.latest_evidence_at = recent
            .iter()
            .filter(|c| c.kind == CommentKind::Evidence)
            .map(|c| c.created_at)
            .max();
        snapshot.evidence_since_checkout = recent.iter().any(|c| {
            c.kind == CommentKind::Evidence
                && c.author_agent_id.is_some()
                && c.author_agent_id == issue.assignee_id
                && c.created_at >= issue.status_changed_at
        });
        snapshot.board_reviews_top_level =
            self.inner.settings.read().await.board_reviews_top_level();
        let mut ctx = ActorContext::new(actor.clone());
        ctx.is_ceo = actor
            .agent_id()
            .is_some_and(|id| agents.iter().any(|a| a.id == id && a.is_ceo()));
        ctx.creator = AgentId::parse(&issue.created_by).ok();
        // The submitter may never review, even if the issue was reassigned during review.
        if matches!(
            issue.status,
            IssueStatus::InReview | IssueStatus::BoardReview
        ) {
            snapshot.submitted_by = issue.submitted_by;
        }
        if let Some(assignee) = issue.assignee_id {
            let exclude: Vec<AgentId> = std::iter::once(assignee)
                .chain(snapshot.submitted_by)
                .collect();
            ctx.reviewer = resolve_reviewer(&org, assignee, &exclude);
            ctx.reviewer_chain = reviewer_chain(&org, assignee);
        }
        Ok((snapshot, ctx))
    }
}

impl Mesa {
    /// The agent that reviews `issue` (SPEC §4.1): while it is `in_review`, the first of its
    /// assignee's review chain that is neither the assignee nor the submitter; `None` in any
    /// other status (and when the chain ends at the board).
    pub(crate) async fn reviewer_of(&self, issue: &Issue) -> Result<Option<AgentId>> {
        let (IssueStatus::InReview, Some(assignee)) = (issue.status, issue.assignee_id) else {
            return Ok(None);
        };
        let agents = self.roster().await?;
        let org = Org::from_agents(agents.iter());
        let exclude: Vec<AgentId> = std::iter::once(assignee)
            .chain(issue.submitted_by)
            .collect();
        Ok(match resolve_reviewer(&org, assignee, &exclude) {
            Reviewer::Agent(a) => Some(a),
            Reviewer::Board => None,
        })
    }

    /// Resolves again the reviewer of every issue under review, after the org chart changed
    /// (or, at start-up, for issues that have none yet).
    pub(crate) async fn refresh_reviewers(&self, only_missing: bool) -> Result<()> {
        let filter = IssueFilter {
            statuses: vec![IssueStatus::InReview],
            ..IssueFilter::default()
        };
        let mut routes = Vec::new();
        let mut moved = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .inner
                .store
                .list_issues(&filter, &PageRequest::new(Some(500), cursor))
                .await?;
            for issue in page.items {
                if only_missing && issue.reviewer_id.is_some() {
                    continue;
                }
                let reviewer = self.reviewer_of(&issue).await?;
                if reviewer != issue.reviewer_id {
                    routes.push((issue.id, reviewer));
                    if !only_missing {
                        moved.push((issue, reviewer));
                    }
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        self.inner.store.set_reviewers(&routes).await?;
        // After the commit: the queued review follows its new reviewer (`wakes.rs`). Filling
        // in missing reviewers at start-up wakes nobody.
        for (issue, reviewer) in moved {
            self.reroute_review(&issue, reviewer).await;
        }
        Ok(())
    }
}

/// How many times a command without a version precondition is decided again when the issue
/// changed between its read and its write.
const COMMAND_ATTEMPTS: u32 = 20;

/// The pause before attempt `attempts + 1`: random within a window that grows with the
/// attempts, so writers that collided do not collide again in step.
fn retry_pause(attempts: u32) -> std::time::Duration {
    let mut byte = [0u8; 1];
    // Without randomness the pause is the window's middle: still growing, still correct.
    let spread = getrandom::fill(&mut byte).map_or(128, |()| u64::from(byte[0]));
    let window_us = 500 * u64::from(attempts.min(10));
    std::time::Duration::from_micros(window_us * (spread + 1) / 256 + 100)
}

fn check_version(issue: &Issue, expected: Option<Version>) -> Result<()> {
    match expected {
        Some(v) if v != issue.version => Err(StoreError::StaleVersion {
            entity: "issue",
            id: issue.key.to_string(),
            expected: v,
            actual: issue.version,
        }
        .into()),
        _ => Ok(()),
    }
}
