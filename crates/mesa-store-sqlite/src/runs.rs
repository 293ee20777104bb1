//! Runs, their queue, leases, costs and budgets: [`RunStore`] for [`SqliteStore`].
//!
//! What the database keeps here: at most one queued run per (agent, issue, mode) (the partial
//! unique index `runs_one_queued`; a second wake-up merges into the queued run), and the budget
//! check-and-reserve of [`RunStore::start_run`], which reads today's spend and the reservations
//! in flight and writes the new reservation in one `BEGIN IMMEDIATE` transaction, so concurrent
//! starts see each other's reservations and can never overspend together.

use async_trait::async_trait;
use mesa_domain::entity::{BudgetPolicy, BudgetScope, NewActivity, Run, TokenUsage};
use mesa_domain::{
    AgentId, BudgetPolicyId, IssueKey, MicroUsd, RunId, RunMode, RunStatus, RunTrigger, RunnerKind,
    Timestamp, Version,
};
use mesa_store::{
    BudgetScopeKind, CancelQueuedRuns, EnqueueOutcome, FinishRunRecord, NewRunRecord, Page,
    PageRequest, QueuedRuns, Result, RunFilter, RunStore, Spend, StartRunRequest, StoreError,
    UsageRecord,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::group;
use crate::rows::page_of;
use crate::rows::{decode_cursor, encode_cursor, json, ms_opt, parse, to_json, ts, ts_opt};

const RUN: &str = "run";

/// Put where the middle of an over-long run log was cut out (SPEC §7.5).
const ELIDED_MARKER: &str = "\n[... output elided: the log keeps its head and tail ...]\n";

/// Every column of `runs` a [`Run`] needs. Lists select `run_list_columns!()` instead, which
/// leave out the large text fields.
macro_rules! run_columns {
    () => {
        "id, agent_id, issue_key, mode, status, triggers, runner, model, prompt, worktree_path, \
         branch, base_commit, pid, pgid, exit_code, stdout, diff, diff_stat, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, cost_reserved_usd, \
         tokens_reserved, num_turns, failure_reason, node_id, lease_expires_at, not_before, \
         priority, queued_at, started_at, finished_at"
    };
}

/// The columns of a run in a list: `prompt`, `stdout` and `diff` (up to megabytes each) are
/// left out (`NULL`); [`RunStore::run`] returns them.
macro_rules! run_list_columns {
    () => {
        "id, agent_id, issue_key, mode, status, triggers, runner, model, NULL AS prompt, \
         worktree_path, branch, base_commit, pid, pgid, exit_code, NULL AS stdout, NULL AS diff, \
         diff_stat, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, \
         cost_reserved_usd, tokens_reserved, num_turns, failure_reason, node_id, \
         lease_expires_at, not_before, priority, queued_at, started_at, finished_at"
    };
}

/// A stored run.
#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    id: String,
    agent_id: String,
    issue_key: Option<String>,
    mode: String,
    status: String,
    triggers: String,
    runner: String,
    model: String,
    prompt: Option<String>,
    worktree_path: Option<String>,
    branch: Option<String>,
    base_commit: Option<String>,
    pid: Option<i64>,
    pgid: Option<i64>,
    exit_code: Option<i64>,
    stdout: Option<String>,
    diff: Option<String>,
    diff_stat: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    cost_usd: i64,
    cost_reserved_usd: i64,
    tokens_reserved: i64,
    num_turns: Option<i64>,
    failure_reason: Option<String>,
    node_id: Option<String>,
    lease_expires_at: Option<i64>,
    not_before: Option<i64>,
    priority: i64,
    queued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

fn decode_run(row: RunRow) -> Result<Run> {
    Ok(Run {
        id: parse(RUN, RunId::parse(&row.id))?,
        agent_id: parse(RUN, AgentId::parse(&row.agent_id))?,
        issue_key: row
            .issue_key
            .map(|k| parse(RUN, IssueKey::parse_field("issue_key", &k)))
            .transpose()?,
        mode: parse(RUN, RunMode::parse(&row.mode))?,
        status: parse(RUN, RunStatus::parse(&row.status))?,
        triggers: json(RUN, "triggers", &row.triggers)?,
        runner: parse(RUN, RunnerKind::parse(&row.runner))?,
        model: row.model,
        prompt: row.prompt,
        worktree_path: row.worktree_path,
        branch: row.branch,
        base_commit: row.base_commit,
        pid: row.pid,
        pgid: row.pgid,
        exit_code: row.exit_code,
        stdout: row.stdout,
        diff: row.diff,
        diff_stat: row.diff_stat,
        usage: TokenUsage {
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_read_tokens: row.cache_read_tokens,
            cache_write_tokens: row.cache_write_tokens,
        },
        cost_usd: MicroUsd(row.cost_usd),
        cost_reserved_usd: MicroUsd(row.cost_reserved_usd),
        tokens_reserved: row.tokens_reserved,
        num_turns: row.num_turns,
        failure_reason: row.failure_reason,
        node_id: row.node_id,
        lease_expires_at: ts_opt(row.lease_expires_at),
        not_before: ts_opt(row.not_before),
        priority: row.priority,
        queued_at: ts(row.queued_at),
        started_at: ts_opt(row.started_at),
        finished_at: ts_opt(row.finished_at),
    })
}

async fn run_on(conn: &mut SqliteConnection, id: RunId) -> Result<Run> {
    let row: RunRow = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE id = ?"
    ))
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err(RUN, &id))?;
    decode_run(row)
}

/// The agent and status of a run, or `NotFound`.
async fn run_state(conn: &mut SqliteConnection, id: RunId) -> Result<(String, RunStatus)> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT agent_id, status FROM runs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let (agent, status) = row.ok_or_else(|| StoreError::not_found(RUN, &id))?;
    Ok((agent, parse(RUN, RunStatus::parse(&status))?))
}

/// The storage form of a budget scope: `org` or the agent id.
fn scope_key(scope: BudgetScope) -> String {
    match scope {
        BudgetScope::Org => "org".to_owned(),
        BudgetScope::Agent(id) => id.to_string(),
    }
}

/// Spend since `since` and the reservations of running runs, of one agent (`Some`) or the org.
/// Separate statements per scope so each uses its index.
async fn spend_on(conn: &mut SqliteConnection, agent: Option<&str>, since: i64) -> Result<Spend> {
    let ((cost, tokens), (reserved_usd, reserved_tokens)): ((i64, i64), (i64, i64)) = match agent {
        Some(agent) => (
            sqlx::query_as(
                "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + output_tokens \
                 + cache_read_tokens + cache_write_tokens), 0) \
                 FROM cost_events WHERE agent_id = ? AND created_at >= ?",
            )
            .bind(agent)
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?,
            sqlx::query_as(
                "SELECT COALESCE(SUM(cost_reserved_usd), 0), COALESCE(SUM(tokens_reserved), 0) \
                 FROM runs WHERE agent_id = ? AND status = 'running'",
            )
            .bind(agent)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?,
        ),
        None => (
            sqlx::query_as(
                "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + output_tokens \
                 + cache_read_tokens + cache_write_tokens), 0) \
                 FROM cost_events WHERE created_at >= ?",
            )
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?,
            sqlx::query_as(
                "SELECT COALESCE(SUM(cost_reserved_usd), 0), COALESCE(SUM(tokens_reserved), 0) \
                 FROM runs WHERE status = 'running'",
            )
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?,
        ),
    };
    Ok(Spend {
        tokens,
        cost_usd: MicroUsd(cost),
        reserved_usd: MicroUsd(reserved_usd),
        reserved_tokens,
    })
}

/// A stored budget policy.
#[derive(Debug, sqlx::FromRow)]
struct PolicyRow {
    id: String,
    scope: String,
    daily_token_limit: i64,
    daily_cost_limit_usd: i64,
    per_run_reserve_usd: Option<i64>,
    active: bool,
    updated_at: i64,
    version: i64,
}

const POLICY: &str = "budget policy";

fn decode_policy(row: &PolicyRow) -> Result<BudgetPolicy> {
    let scope = if row.scope == "org" {
        BudgetScope::Org
    } else {
        BudgetScope::Agent(parse(POLICY, AgentId::parse(&row.scope))?)
    };
    Ok(BudgetPolicy {
        id: parse(POLICY, BudgetPolicyId::parse(&row.id))?,
        scope,
        daily_token_limit: row.daily_token_limit,
        daily_cost_limit_usd: MicroUsd(row.daily_cost_limit_usd),
        per_run_reserve_usd: row.per_run_reserve_usd.map(MicroUsd),
        active: row.active,
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

async fn policy_on(conn: &mut SqliteConnection, scope: &str) -> Result<Option<BudgetPolicy>> {
    let row: Option<PolicyRow> = sqlx::query_as(
        "SELECT id, scope, daily_token_limit, daily_cost_limit_usd, per_run_reserve_usd, active, \
         updated_at, version FROM budget_policies WHERE scope = ?",
    )
    .bind(scope)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    row.as_ref().map(decode_policy).transpose()
}

/// Refuses the reservation if it would take `scope` past an active policy's daily limit.
async fn check_budget(
    conn: &mut SqliteConnection,
    scope: &str,
    kind: BudgetScopeKind,
    req: &StartRunRequest,
) -> Result<()> {
    let Some(policy) = policy_on(conn, scope).await? else {
        return Ok(());
    };
    let cost_limit = policy.daily_cost_limit_usd;
    let token_limit = policy.daily_token_limit;
    if !policy.active || (cost_limit.is_zero() && token_limit <= 0) {
        return Ok(());
    }
    let agent = match kind {
        BudgetScopeKind::Agent => Some(scope),
        BudgetScopeKind::Org => None,
    };
    let spend = spend_on(conn, agent, req.day_start.as_millis()).await?;
    let cost_after = spend.cost_usd + spend.reserved_usd + req.reserve_usd;
    let tokens_after = spend
        .tokens
        .saturating_add(spend.reserved_tokens)
        .saturating_add(req.reserve_tokens);
    if (!cost_limit.is_zero() && cost_after > cost_limit)
        || (token_limit > 0 && tokens_after > token_limit)
    {
        return Err(StoreError::BudgetExceeded { scope: kind });
    }
    Ok(())
}

/// Inserts a cost event.
#[expect(clippy::too_many_arguments, reason = "one column each")]
async fn insert_cost_event(
    conn: &mut SqliteConnection,
    id: mesa_domain::CostEventId,
    run: Option<RunId>,
    agent: &str,
    usage: &TokenUsage,
    cost: MicroUsd,
    source: mesa_domain::CostSource,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cost_events (id, run_id, agent_id, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_usd, source, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.to_string())
    .bind(run.map(|r| r.to_string()))
    .bind(agent)
    .bind(usage.input_tokens)
    .bind(usage.output_tokens)
    .bind(usage.cache_read_tokens)
    .bind(usage.cache_write_tokens)
    .bind(cost.0)
    .bind(source.as_str())
    .bind(at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_err("cost event", &id))?;
    Ok(())
}

/// One page of runs newest first: the filter's agent and issue, at most one status (an
/// equality, so `runs_status` yields the rows in order), after the cursor, `limit` rows.
/// Without a status or agent, `runs_recent (queued_at, id)` is walked in order.
fn push_run_page(
    qb: &mut QueryBuilder<Sqlite>,
    filter: &RunFilter,
    status: Option<&str>,
    cursor: Option<&(i64, String)>,
    limit: i64,
) {
    qb.push(concat!(
        "SELECT ",
        run_list_columns!(),
        " FROM runs WHERE 1 = 1"
    ));
    if let Some(a) = filter.agent {
        qb.push(" AND agent_id = ").push_bind(a.to_string());
    }
    if let Some(k) = &filter.issue {
        qb.push(" AND issue_key = ").push_bind(k.to_string());
    }
    if let Some(s) = status {
        qb.push(" AND status = ").push_bind(s.to_owned());
    }
    if let Some((queued_at, id)) = cursor {
        qb.push(" AND (queued_at, id) < (")
            .push_bind(*queued_at)
            .push(", ")
            .push_bind(id.clone())
            .push(")");
    }
    qb.push(" ORDER BY queued_at DESC, id DESC LIMIT (SELECT ")
        .push_bind(limit)
        .push(")");
}

/// Wake-ups waiting for their group commit ([`crate::group`]).
pub(crate) type EnqueueQueue = group::Group<(NewRunRecord, group::Reply<EnqueueOutcome>)>;

/// Enqueues a batch in one transaction, appending the audit rows of the new runs in one
/// statement at the end. If any statement fails, the batch is rolled back and each wake-up is
/// enqueued in a transaction of its own, so one bad record never fails the others.
async fn enqueue_batch(
    store: &SqliteStore,
    batch: Vec<(NewRunRecord, group::Reply<EnqueueOutcome>)>,
) {
    let mut tx = match store.write_tx().await {
        Ok(tx) => tx,
        Err(err) => return group::fail_all(batch, &err),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut activity = Vec::new();
    let mut failed = None;
    for (record, _) in &batch {
        match enqueue_on(&mut tx, record).await {
            Ok(outcome) => {
                if !outcome.merged {
                    activity.extend(record.activity.iter().cloned());
                }
                outcomes.push(outcome);
            }
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    if failed.is_none()
        && let Err(err) = activity::append(&mut tx, activity).await
    {
        failed = Some(err);
    }
    if failed.is_none() {
        match tx.commit().await {
            Ok(()) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                return;
            }
            Err(err) => failed = Some(backend(err)),
        }
    } else {
        let _ = tx.rollback().await;
    }
    if let Some(err) = failed {
        tracing::debug!(error = ?err, "batched enqueue fell back to one by one");
    }
    for (record, reply) in batch {
        let _ = reply.send(enqueue_alone(store, record).await);
    }
}

/// One wake-up in a transaction of its own.
async fn enqueue_alone(store: &SqliteStore, record: NewRunRecord) -> Result<EnqueueOutcome> {
    let mut tx = store.write_tx().await?;
    let outcome = enqueue_on(&mut tx, &record).await?;
    if !outcome.merged {
        activity::append(&mut tx, record.activity).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(outcome)
}

/// Enqueues one wake-up on `conn` (in the caller's transaction), merging into the queued run of
/// the same (agent, issue, mode) if there is one. Audit rows are the caller's to append.
async fn enqueue_on(conn: &mut SqliteConnection, new: &NewRunRecord) -> Result<EnqueueOutcome> {
    let agent = new.agent_id.to_string();
    let issue = new.issue_key.as_ref().map(IssueKey::as_str);
    let rank = i64::from(new.trigger.queue_rank());
    let queued: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, triggers, priority, trigger_rank FROM runs \
         WHERE agent_id = ?1 AND ifnull(issue_key, '') = ifnull(?2, '') AND mode = ?3 \
         AND status = 'queued'",
    )
    .bind(&agent)
    .bind(issue)
    .bind(new.mode.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;

    if let Some((id, triggers, priority, trigger_rank)) = queued {
        // Merge: the trigger list grows (no repeats), the run keeps the higher priority and
        // the earlier queue rank; its place by age is kept.
        let id = parse(RUN, RunId::parse(&id))?;
        let mut triggers: Vec<RunTrigger> = json(RUN, "triggers", &triggers)?;
        if !triggers.contains(&new.trigger) {
            triggers.push(new.trigger);
        }
        let row: RunRow = sqlx::query_as(concat!(
            "UPDATE runs SET triggers = ?, priority = ?, trigger_rank = ? WHERE id = ? \
             RETURNING ",
            run_columns!()
        ))
        .bind(to_json(&triggers))
        .bind(priority.max(new.priority))
        .bind(trigger_rank.min(rank))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err(RUN, &id))?;
        return Ok(EnqueueOutcome {
            run: decode_run(row)?,
            merged: true,
        });
    }

    Ok(EnqueueOutcome {
        run: insert_queued_run(conn, new).await?,
        merged: false,
    })
}

/// Inserts new queued runs in one statement (the caller knows none has a queued run to merge
/// into; the one-queued-run index would refuse it). Their audit rows are the caller's.
pub(crate) async fn insert_queued_runs(
    conn: &mut SqliteConnection,
    runs: &[NewRunRecord],
) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO runs (id, agent_id, issue_key, mode, status, triggers, runner, model, \
         not_before, priority, trigger_rank, queued_at) ",
    );
    qb.push_values(runs, |mut b, new| {
        b.push_bind(new.id.to_string())
            .push_bind(new.agent_id.to_string())
            .push_bind(new.issue_key.as_ref().map(|k| k.as_str().to_owned()))
            .push_bind(new.mode.as_str())
            .push("'queued'")
            .push_bind(to_json(&[new.trigger]))
            .push_bind(new.runner.as_str())
            .push_bind(new.model.clone())
            .push_bind(ms_opt(new.not_before))
            .push_bind(new.priority)
            .push_bind(i64::from(new.trigger.queue_rank()))
            .push_bind(new.queued_at.as_millis());
    });
    qb.build()
        .execute(&mut *conn)
        .await
        .map_err(map_err(RUN, &"batch"))?;
    Ok(())
}

/// Inserts a new queued run (the caller knows there is none to merge into; the one-queued-run
/// index would refuse a second). Its audit rows are the caller's to append.
pub(crate) async fn insert_queued_run(
    conn: &mut SqliteConnection,
    new: &NewRunRecord,
) -> Result<Run> {
    let row: RunRow = sqlx::query_as(concat!(
        "INSERT INTO runs (id, agent_id, issue_key, mode, status, triggers, runner, model, \
         not_before, priority, trigger_rank, queued_at) \
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?) RETURNING ",
        run_columns!()
    ))
    .bind(new.id.to_string())
    .bind(new.agent_id.to_string())
    .bind(new.issue_key.as_ref().map(IssueKey::as_str))
    .bind(new.mode.as_str())
    .bind(to_json(&[new.trigger]))
    .bind(new.runner.as_str())
    .bind(&new.model)
    .bind(ms_opt(new.not_before))
    .bind(new.priority)
    .bind(i64::from(new.trigger.queue_rank()))
    .bind(new.queued_at.as_millis())
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err(RUN, &new.id))?;
    decode_run(row)
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn enqueue_run(&self, new: NewRunRecord) -> Result<EnqueueOutcome> {
        // Wake-ups follow issue writes one for one (every new issue wakes its assignee), so
        // they share group commits like the creations themselves do.
        group::submit(
            self,
            &self.enqueues,
            new,
            "run enqueue",
            |store, batch| async move {
                enqueue_batch(&store, batch).await;
            },
        )
        .await
    }

    async fn run(&self, id: RunId) -> Result<Run> {
        let row: RunRow = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_one(&self.reader)
        .await
        .map_err(map_err(RUN, &id))?;
        decode_run(row)
    }

    async fn list_runs(&self, filter: &RunFilter, page: &PageRequest) -> Result<Page<Run>> {
        let cursor = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = i64::from(page.limit) + 1;
        let mut statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        let mut qb = QueryBuilder::<Sqlite>::new("");
        if statuses.len() <= 1 {
            push_run_page(
                &mut qb,
                filter,
                statuses.first().copied(),
                cursor.as_ref(),
                limit,
            );
        } else {
            // One branch per status, each walking `runs_status (status, queued_at)` newest
            // first and stopping at the page size; only their union (statuses × page size
            // rows) is sorted. An `IN` over the statuses would sort every matching run (all
            // the queued wake-ups for the dashboard's "in flight" list).
            qb.push("SELECT * FROM (");
            for (n, status) in statuses.iter().enumerate() {
                if n > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push("SELECT * FROM (");
                push_run_page(&mut qb, filter, Some(status), cursor.as_ref(), limit);
                qb.push(")");
            }
            qb.push(") ORDER BY queued_at DESC, id DESC LIMIT (SELECT ")
                .push_bind(limit)
                .push(")");
        }
        let rows: Vec<RunRow> = qb
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        page_of(rows, page, decode_run, |r| {
            encode_cursor(r.queued_at.as_millis(), &r.id.to_string())
        })
    }

    async fn queued_runs(&self, now: Timestamp, limit: u32) -> Result<Vec<Run>> {
        // The scheduler reads this on every pass, paused or not. Left to itself, SQLite picks
        // `runs_status` and sorts every queued run (0.7 s with a million queued); the queue
        // index walks them in order and stops at the limit.
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_list_columns!(),
            " FROM runs INDEXED BY runs_queue \
             WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ?) \
             ORDER BY priority DESC, trigger_rank, queued_at, id LIMIT (SELECT ?)"
        ))
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_run).collect()
    }

    async fn start_run(&self, req: StartRunRequest) -> Result<Run> {
        let mut tx = self.write_tx().await?;
        let (agent, status) = run_state(&mut tx, req.run_id).await?;
        if status != RunStatus::Queued {
            return Err(StoreError::RunState {
                status: status.to_string(),
                expected: "queued",
            });
        }
        // The check and the reservation share this transaction: the writer lock is held from
        // the first read to the commit, so no other start can slip in between.
        check_budget(&mut tx, &agent, BudgetScopeKind::Agent, &req).await?;
        check_budget(&mut tx, "org", BudgetScopeKind::Org, &req).await?;

        let issue_key: Option<String> = sqlx::query_scalar(
            "UPDATE runs SET status = 'running', started_at = ?, node_id = ?, \
             lease_expires_at = ?, cost_reserved_usd = ?, tokens_reserved = ?, \
             prompt = COALESCE(?, prompt) WHERE id = ? RETURNING issue_key",
        )
        .bind(req.now.as_millis())
        .bind(&req.node_id)
        .bind(req.lease_expires_at.as_millis())
        .bind(req.reserve_usd.0)
        .bind(req.reserve_tokens)
        .bind(req.prompt.as_deref())
        .bind(req.run_id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err(RUN, &req.run_id))?;
        if let Some(key) = issue_key {
            // The runaway guard counts started runs; the row changed, so its version moves.
            sqlx::query(
                "UPDATE issues SET run_count = run_count + 1, version = version + 1 WHERE key = ?",
            )
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        activity::append(&mut tx, req.activity).await?;
        let run = run_on(&mut tx, req.run_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(run)
    }

    async fn set_run_process(&self, id: RunId, pid: Option<i64>, pgid: Option<i64>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE runs SET pid = ?, pgid = ? WHERE id = ?")
            .bind(pid)
            .bind(pgid)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(RUN, &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(RUN, &id));
        }
        tx.commit().await.map_err(backend)
    }

    async fn set_run_workspace(
        &self,
        id: RunId,
        worktree_path: Option<String>,
        branch: Option<String>,
        base_commit: Option<String>,
        prompt: Option<String>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let issue_key: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE runs SET worktree_path = ?, branch = ?, base_commit = ?, \
             prompt = COALESCE(?, prompt) WHERE id = ? RETURNING issue_key",
        )
        .bind(worktree_path)
        .bind(branch.as_deref())
        .bind(base_commit)
        .bind(prompt)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err(RUN, &id))?;
        let Some(issue_key) = issue_key else {
            return Err(StoreError::not_found(RUN, &id));
        };
        if let (Some(key), Some(branch)) = (issue_key, branch) {
            sqlx::query(
                "UPDATE issues SET branch = ?1, version = version + 1 \
                 WHERE key = ?2 AND branch IS NOT ?1",
            )
            .bind(branch)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn renew_leases(&self, node_id: &str, until: Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = ? WHERE status = 'running' AND node_id = ?",
        )
        .bind(until.as_millis())
        .bind(node_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn stale_runs(&self, now: Timestamp, node_id: Option<&str>) -> Result<Vec<Run>> {
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_list_columns!(),
            " FROM runs WHERE status = 'running' AND (lease_expires_at IS NULL \
             OR lease_expires_at <= ?1 OR node_id = ?2) ORDER BY started_at, id"
        ))
        .bind(now.as_millis())
        .bind(node_id)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_run).collect()
    }

    async fn finish_run(&self, record: FinishRunRecord) -> Result<Run> {
        let mut tx = self.write_tx().await?;
        let (agent, status) = run_state(&mut tx, record.run_id).await?;
        if status.is_finished() {
            return Err(StoreError::RunState {
                status: status.to_string(),
                expected: "queued or running",
            });
        }
        if !record.status.is_finished() {
            return Err(StoreError::RunState {
                status: record.status.to_string(),
                expected: "a final status",
            });
        }
        let usage = record.usage;
        // Figures add to what was reported during the run (`record_usage`), so a run's totals
        // always equal the sum of its cost events.
        sqlx::query(
            "UPDATE runs SET status = ?, exit_code = ?, failure_reason = ?, \
             stdout = COALESCE(?, stdout), diff = ?, \
             diff_stat = ?, input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, \
             cache_read_tokens = cache_read_tokens + ?, \
             cache_write_tokens = cache_write_tokens + ?, cost_usd = cost_usd + ?, \
             num_turns = COALESCE(?, num_turns), finished_at = ?, cost_reserved_usd = 0, \
             tokens_reserved = 0, lease_expires_at = NULL, pid = NULL, pgid = NULL \
             WHERE id = ?",
        )
        .bind(record.status.as_str())
        .bind(record.exit_code)
        .bind(record.failure_reason.as_deref())
        .bind(record.stdout.as_deref())
        .bind(record.diff.as_deref())
        .bind(record.diff_stat.as_deref())
        .bind(usage.input_tokens)
        .bind(usage.output_tokens)
        .bind(usage.cache_read_tokens)
        .bind(usage.cache_write_tokens)
        .bind(record.cost_usd.0)
        .bind(record.num_turns)
        .bind(record.finished_at.as_millis())
        .bind(record.run_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err(RUN, &record.run_id))?;
        if !usage.is_zero() || record.cost_usd > MicroUsd::ZERO {
            insert_cost_event(
                &mut tx,
                record.cost_event_id,
                Some(record.run_id),
                &agent,
                &usage,
                record.cost_usd,
                record.cost_source,
                record.finished_at,
            )
            .await?;
        }
        // A run key dies with its run (SPEC §14).
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE run_id = ? AND revoked_at IS NULL")
            .bind(record.finished_at.as_millis())
            .bind(record.run_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        activity::append(&mut tx, record.activity).await?;
        let run = run_on(&mut tx, record.run_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(run)
    }

    async fn append_run_output(&self, id: RunId, chunk: &str, cap: u64) -> Result<u64> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX).max(2);
        let mut tx = self.write_tx().await?;
        // One statement: append, or keep the head and the tail around a marker once the log
        // would pass the cap. The old marker falls out of the tail on the next cut.
        let len: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET stdout = CASE \
             WHEN length(COALESCE(stdout, '')) + length(?1) <= ?3 THEN COALESCE(stdout, '') || ?1 \
             ELSE substr(COALESCE(stdout, '') || ?1, 1, ?4) || ?5 \
                  || substr(COALESCE(stdout, '') || ?1, -?4) END \
             WHERE id = ?2 AND status IN ('queued', 'running') RETURNING length(stdout)",
        )
        .bind(chunk)
        .bind(id.to_string())
        .bind(cap)
        .bind(cap / 2)
        .bind(ELIDED_MARKER)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err(RUN, &id))?;
        let Some(len) = len else {
            let (_, status) = run_state(&mut tx, id).await?;
            return Err(StoreError::RunState {
                status: status.to_string(),
                expected: "queued or running",
            });
        };
        tx.commit().await.map_err(backend)?;
        Ok(u64::try_from(len).unwrap_or(0))
    }

    async fn cancel_queued_runs(&self, req: CancelQueuedRuns) -> Result<Vec<Run>> {
        let mut tx = self.write_tx().await?;
        // Only rows still queued: a run started meanwhile belongs to the scheduler.
        let (sql, value) = match &req.runs {
            QueuedRuns::Run(id) => (
                "UPDATE runs SET status = 'cancelled', finished_at = ?, failure_reason = ? \
                 WHERE status = 'queued' AND id = ? RETURNING id",
                id.to_string(),
            ),
            QueuedRuns::Issue(key) => (
                "UPDATE runs SET status = 'cancelled', finished_at = ?, failure_reason = ? \
                 WHERE status = 'queued' AND issue_key = ? RETURNING id",
                key.to_string(),
            ),
        };
        let ids: Vec<String> = sqlx::query_scalar(sql)
            .bind(req.at.as_millis())
            .bind(&req.reason)
            .bind(&value)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            // A run key is valid only while its run is queued or running (SPEC §9.1).
            sqlx::query(
                "UPDATE api_keys SET revoked_at = ? WHERE run_id = ? AND revoked_at IS NULL",
            )
            .bind(req.at.as_millis())
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            runs.push(run_on(&mut tx, parse(RUN, RunId::parse(&id))?).await?);
        }
        activity::append(&mut tx, req.activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(runs)
    }

    async fn running_counts(&self, agent: AgentId) -> Result<(u64, u64)> {
        let (total, mine): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(agent_id = ?), 0) FROM runs WHERE status = 'running'",
        )
        .bind(agent.to_string())
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok((
            u64::try_from(total).unwrap_or(0),
            u64::try_from(mine).unwrap_or(0),
        ))
    }

    async fn started_runs_since(&self, agent: AgentId, since: Timestamp) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE agent_id = ? AND started_at >= ? \
             AND runner NOT IN ('noop', 'dry_run')",
        )
        .bind(agent.to_string())
        .bind(since.as_millis())
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn run_status_counts(&self) -> Result<Vec<(RunStatus, u64)>> {
        // Kept in step by the triggers of migration 0014.
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, n FROM run_status_counts WHERE n > 0 ORDER BY status")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(status, n)| {
                Ok((
                    parse(RUN, RunStatus::parse(&status))?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn spend(&self, scope: BudgetScope, since: Timestamp) -> Result<Spend> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let agent = match scope {
            BudgetScope::Org => None,
            BudgetScope::Agent(id) => Some(id.to_string()),
        };
        spend_on(&mut conn, agent.as_deref(), since.as_millis()).await
    }

    async fn budget_policy(&self, scope: BudgetScope) -> Result<Option<BudgetPolicy>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        policy_on(&mut conn, &scope_key(scope)).await
    }

    async fn put_budget_policy(
        &self,
        policy: BudgetPolicy,
        activity: Vec<NewActivity>,
    ) -> Result<BudgetPolicy> {
        let scope = scope_key(policy.scope);
        let agent = match policy.scope {
            BudgetScope::Org => None,
            BudgetScope::Agent(id) => Some(id.to_string()),
        };
        let mut tx = self.write_tx().await?;
        // One policy per scope: a put replaces the limits of the existing row (keeping its id)
        // and moves its version.
        sqlx::query(
            "INSERT INTO budget_policies (id, scope, agent_id, daily_token_limit, \
             daily_cost_limit_usd, per_run_reserve_usd, active, updated_at, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) \
             ON CONFLICT (scope) DO UPDATE SET daily_token_limit = excluded.daily_token_limit, \
             daily_cost_limit_usd = excluded.daily_cost_limit_usd, \
             per_run_reserve_usd = excluded.per_run_reserve_usd, active = excluded.active, \
             updated_at = excluded.updated_at, version = budget_policies.version + 1",
        )
        .bind(policy.id.to_string())
        .bind(&scope)
        .bind(agent)
        .bind(policy.daily_token_limit)
        .bind(policy.daily_cost_limit_usd.0)
        .bind(policy.per_run_reserve_usd.map(|m| m.0))
        .bind(policy.active)
        .bind(policy.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(POLICY, &scope))?;
        activity::append(&mut tx, activity).await?;
        let stored = policy_on(&mut tx, &scope)
            .await?
            .ok_or_else(|| StoreError::not_found(POLICY, &scope))?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn recent_run_costs(&self, agent: AgentId, n: u32) -> Result<Vec<MicroUsd>> {
        let costs: Vec<i64> = sqlx::query_scalar(
            "SELECT cost_usd FROM runs WHERE agent_id = ? AND finished_at IS NOT NULL \
             AND status NOT IN ('queued', 'running') ORDER BY finished_at DESC, id DESC LIMIT (SELECT ?)",
        )
        .bind(agent.to_string())
        .bind(i64::from(n))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(costs.into_iter().map(MicroUsd).collect())
    }

    async fn record_usage(&self, usage: UsageRecord) -> Result<()> {
        let agent = usage.agent_id.to_string();
        let mut tx = self.write_tx().await?;
        if let Some(run) = usage.run_id {
            let u = &usage.usage;
            let done = sqlx::query(
                "UPDATE runs SET input_tokens = input_tokens + ?, \
                 output_tokens = output_tokens + ?, cache_read_tokens = cache_read_tokens + ?, \
                 cache_write_tokens = cache_write_tokens + ?, cost_usd = cost_usd + ? \
                 WHERE id = ? AND agent_id = ?",
            )
            .bind(u.input_tokens)
            .bind(u.output_tokens)
            .bind(u.cache_read_tokens)
            .bind(u.cache_write_tokens)
            .bind(usage.cost_usd.0)
            .bind(run.to_string())
            .bind(&agent)
            .execute(&mut *tx)
            .await
            .map_err(map_err(RUN, &run))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found(RUN, &run));
            }
        }
        insert_cost_event(
            &mut tx,
            usage.event_id,
            usage.run_id,
            &agent,
            &usage.usage,
            usage.cost_usd,
            usage.source,
            usage.at,
        )
        .await?;
        activity::append(&mut tx, usage.activity).await?;
        tx.commit().await.map_err(backend)
    }
}
