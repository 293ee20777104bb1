//! Issues, comments and labels: [`IssueStore`] and [`LabelStore`] for [`SqliteStore`].
//!
//! The rules the database keeps here: keys are allocated from `issue_counters` inside the
//! creating transaction (dense, never reused); an open issue's normalized title is unique (the
//! partial index `issues_open_title`); a checkout is one conditional `UPDATE`, so any number of
//! concurrent callers produce exactly one winner; every versioned write is
//! `UPDATE ... WHERE version = ?` and writes nothing at all when it loses.

use std::num::NonZeroU64;

use async_trait::async_trait;
use mesa_domain::entity::{Comment, Issue, Label, NewActivity};
use mesa_domain::{
    AgentId, Color, CommentId, CommentKind, IssueId, IssueKey, IssueStatus, IssueType, LabelId,
    Markdown, Name, Priority, Stage, Stages, Title, Version, WorkBlockId, WorkBlockStatus,
};
use mesa_store::{
    CheckoutOutcome, CheckoutRequest, Created, InboxOwner, IssueFilter, IssueStore, IssueTitle,
    IssueWrite, LabelStore, NewComment, NewIssueRecord, Page, PageRequest, Result, StoreError,
    Versioned,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::rows::page_of;
use crate::rows::{decode_cursor, encode_cursor, json, ms_opt, parse, to_json, ts, ts_opt};

/// `SELECT <every issue column> FROM issues <rest>`. Columns are qualified so the same list works
/// in joins with `issues_fts` (whose columns share names with these). `labels` is the issue's
/// label ids as a JSON array, in id order.
macro_rules! issue_select {
    ($rest:literal) => {
        concat!(
            "SELECT issues.id, issues.key, issues.title, issues.description, issues.type, \
             issues.status, issues.priority, issues.assignee_id, issues.submitted_by, \
             issues.reviewer_id, issues.parent_key, \
             issues.work_block_id, issues.stages, issues.current_stage, issues.branch, \
             issues.started_at, issues.completed_at, issues.cancellation_reason, \
             issues.created_by, issues.run_count, issues.status_changed_at, issues.deleted, \
             issues.created_at, issues.updated_at, issues.version, \
             (SELECT json_group_array(label_id) FROM (SELECT label_id FROM issue_labels \
              WHERE issue_id = issues.id ORDER BY label_id)) AS labels \
             FROM issues ",
            $rest
        )
    };
}
pub(crate) use issue_select;

/// `SELECT <a JSON array of rows> FROM (` — the rest of the statement selects issue rows (with
/// [`issue_select`]'s columns) and closes the parenthesis. Each row becomes an array of the
/// columns in [`IssueRow`]'s field order, and the rows keep the inbox order.
macro_rules! inbox_page_row {
    () => {
        "SELECT json_group_array(json_array(id, key, title, description, type, status, \
         priority, assignee_id, submitted_by, reviewer_id, parent_key, work_block_id, stages, \
         current_stage, branch, started_at, completed_at, cancellation_reason, created_by, \
         run_count, status_changed_at, json(CASE WHEN deleted THEN 'true' ELSE 'false' END), \
         created_at, updated_at, version, labels || '') \
         ORDER BY priority DESC, updated_at DESC, key DESC) FROM ("
    };
}

/// A stored issue. Also read from a JSON array of its columns in this field order
/// (`inbox_page_row!`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct IssueRow {
    id: String,
    key: String,
    title: String,
    description: String,
    #[sqlx(rename = "type")]
    issue_type: String,
    status: String,
    priority: i64,
    assignee_id: Option<String>,
    submitted_by: Option<String>,
    reviewer_id: Option<String>,
    parent_key: Option<String>,
    work_block_id: Option<String>,
    stages: String,
    current_stage: Option<i64>,
    branch: Option<String>,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    cancellation_reason: Option<String>,
    created_by: String,
    run_count: i64,
    status_changed_at: i64,
    deleted: bool,
    created_at: i64,
    updated_at: i64,
    version: i64,
    labels: String,
}

const ISSUE: &str = "issue";

/// Inbox cursors pack priority and update time into one number: `priority * SPLIT + millis`
/// (millisecond times stay below 10^14 until the year 5138).
const INBOX_SORT_SPLIT: i64 = 100_000_000_000_000;

/// A stored issue row to the domain entity.
pub(crate) fn decode_issue(row: IssueRow) -> Result<Issue> {
    let stages: Vec<Stage> = json(ISSUE, "stages", &row.stages)?;
    let current_stage = match row.current_stage {
        Some(n) => Some(u32::try_from(n).map_err(|_| StoreError::Corrupt {
            entity: ISSUE,
            source: mesa_domain::ValidationError::new(
                "current_stage",
                format!("current_stage {n} is out of range"),
            ),
        })?),
        None => None,
    };
    Ok(Issue {
        id: parse(ISSUE, IssueId::parse(&row.id))?,
        key: parse(ISSUE, IssueKey::parse(&row.key))?,
        title: parse(ISSUE, Title::parse(&row.title))?,
        description: parse(ISSUE, Markdown::parse(&row.description))?,
        issue_type: parse(ISSUE, IssueType::parse(&row.issue_type))?,
        status: parse(ISSUE, IssueStatus::parse(&row.status))?,
        priority: parse(ISSUE, Priority::new(row.priority))?,
        assignee_id: row
            .assignee_id
            .map(|a| parse(ISSUE, AgentId::parse(&a)))
            .transpose()?,
        submitted_by: row
            .submitted_by
            .map(|a| parse(ISSUE, AgentId::parse(&a)))
            .transpose()?,
        reviewer_id: row
            .reviewer_id
            .map(|a| parse(ISSUE, AgentId::parse(&a)))
            .transpose()?,
        parent_key: row
            .parent_key
            .map(|k| parse(ISSUE, IssueKey::parse_field("parent_key", &k)))
            .transpose()?,
        work_block_id: row
            .work_block_id
            .map(|b| parse(ISSUE, WorkBlockId::parse(&b)))
            .transpose()?,
        labels: json(ISSUE, "labels", &row.labels)?,
        stages: parse(ISSUE, Stages::from_stored(stages))?,
        current_stage,
        branch: row.branch,
        started_at: ts_opt(row.started_at),
        completed_at: ts_opt(row.completed_at),
        cancellation_reason: row.cancellation_reason,
        created_by: row.created_by,
        run_count: row.run_count,
        status_changed_at: ts(row.status_changed_at),
        deleted: row.deleted,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

/// The issue with this id, read on `conn` (inside a transaction).
pub(crate) async fn issue_in_tx(conn: &mut SqliteConnection, id: IssueId) -> Result<Issue> {
    let row: IssueRow = sqlx::query_as(issue_select!("WHERE issues.id = ?"))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err(ISSUE, &id))?;
    decode_issue(row)
}

/// A stored comment.
#[derive(Debug, sqlx::FromRow)]
struct CommentRow {
    id: String,
    issue_key: String,
    author_agent_id: Option<String>,
    author: String,
    kind: String,
    body: String,
    created_at: i64,
}

const COMMENT: &str = "comment";

fn decode_comment(row: CommentRow) -> Result<Comment> {
    Ok(Comment {
        id: parse(COMMENT, CommentId::parse(&row.id))?,
        issue_key: parse(COMMENT, IssueKey::parse(&row.issue_key))?,
        author_agent_id: row
            .author_agent_id
            .map(|a| parse(COMMENT, AgentId::parse(&a)))
            .transpose()?,
        author: row.author,
        kind: parse(COMMENT, CommentKind::parse(&row.kind))?,
        body: row.body,
        created_at: ts(row.created_at),
    })
}

/// A stored label.
#[derive(Debug, sqlx::FromRow)]
struct LabelRow {
    id: String,
    name: String,
    color: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

const LABEL: &str = "label";

fn decode_label(row: &LabelRow) -> Result<Label> {
    Ok(Label {
        id: parse(LABEL, LabelId::parse(&row.id))?,
        name: parse(LABEL, Name::parse(&row.name))?,
        color: parse(LABEL, Color::parse(&row.color))?,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

/// Words of a user's search text, each safe to quote as an FTS5 string: runs of letters and
/// digits only, so no FTS syntax (quotes, `*`, `NEAR`, column filters, `-`) can get through.
fn fts_terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(32)
        .map(str::to_lowercase)
        .collect()
}

/// An FTS5 query matching documents that contain every term as a word prefix.
fn fts_all_prefixes(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{t}\"*"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// What the text filter of a list turns into.
enum TextFilter {
    /// No text filter.
    None,
    /// An FTS5 query.
    Match(String),
    /// Text without a searchable word: nothing matches.
    Nothing,
}

fn text_filter(text: Option<&str>) -> TextFilter {
    match text.map(str::trim) {
        None | Some("") => TextFilter::None,
        Some(t) => {
            let terms = fts_terms(t);
            if terms.is_empty() {
                TextFilter::Nothing
            } else {
                TextFilter::Match(fts_all_prefixes(&terms))
            }
        }
    }
}

/// Appends the `WHERE` clause of an issue filter (always starting with `WHERE`).
fn push_issue_filter(qb: &mut QueryBuilder<Sqlite>, filter: &IssueFilter, text: &TextFilter) {
    qb.push("WHERE 1 = 1");
    if !filter.include_deleted {
        qb.push(" AND issues.deleted = 0");
    }
    if !filter.statuses.is_empty() {
        let names: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        qb.push(" AND issues.status IN (SELECT value FROM json_each(")
            .push_bind(to_json(&names))
            .push("))");
    }
    if let Some(a) = filter.assignee {
        qb.push(" AND issues.assignee_id = ")
            .push_bind(a.to_string());
    }
    if let Some(l) = filter.label {
        qb.push(
            " AND EXISTS (SELECT 1 FROM issue_labels il WHERE il.issue_id = issues.id \
             AND il.label_id = ",
        )
        .push_bind(l.to_string())
        .push(")");
    }
    if let Some(b) = filter.work_block {
        qb.push(" AND issues.work_block_id = ")
            .push_bind(b.to_string());
    }
    if let Some(p) = &filter.parent {
        qb.push(" AND issues.parent_key = ")
            .push_bind(p.to_string());
    }
    match text {
        TextFilter::None => {}
        TextFilter::Match(q) => {
            qb.push(" AND issues.rowid IN (SELECT rowid FROM issues_fts WHERE issues_fts MATCH ")
                .push_bind(q.clone())
                .push(")");
        }
        TextFilter::Nothing => {
            qb.push(" AND 0");
        }
    }
}

/// From this many matches on, a text search walks the issues newest first (see
/// [`SqliteStore::walk_newest_first`]).
const WALK_FROM_MATCHES: i64 = 2_000;

impl SqliteStore {
    /// Whether a list filtered by text only should walk `issues_created` newest first,
    /// probing each issue against the match set, rather than fetch every match and sort
    /// them. A word matching thousands of issues makes the walk stop after a few pages'
    /// worth of entries while the sort would handle them all; a rare word favours the
    /// opposite. Other filters have their own indexes and keep the planner's choice.
    async fn walk_newest_first(&self, filter: &IssueFilter, text: &TextFilter) -> Result<bool> {
        let TextFilter::Match(q) = text else {
            return Ok(false);
        };
        let text_only = filter.statuses.is_empty()
            && filter.assignee.is_none()
            && filter.label.is_none()
            && filter.work_block.is_none()
            && filter.parent.is_none();
        if !text_only {
            return Ok(false);
        }
        // Counted up to the threshold only: the cost stays bounded for common words.
        let matches: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT rowid FROM issues_fts WHERE issues_fts MATCH ?1 \
             LIMIT (SELECT ?2))",
        )
        .bind(q)
        .bind(WALK_FROM_MATCHES)
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(matches >= WALK_FROM_MATCHES)
    }
}

/// `NotFound` unless an issue with this key exists.
async fn require_issue(conn: &mut SqliteConnection, key: &IssueKey) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM issues WHERE key = ?")
        .bind(key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found(ISSUE, key))
}

/// `NotFound` unless the agent exists.
async fn require_agent(conn: &mut SqliteConnection, id: AgentId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM agents WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("agent", &id))
}

/// `NotFound` unless the block exists; `Conflict` unless it accepts issues (proposed, active).
async fn require_open_block(conn: &mut SqliteConnection, id: WorkBlockId) -> Result<()> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM work_blocks WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let status = status.ok_or_else(|| StoreError::not_found("work block", &id))?;
    let status = parse("work block", WorkBlockStatus::parse(&status))?;
    if status.accepts_issues() {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            what: format!("work block {id} is {status} and accepts no issues"),
        })
    }
}

/// Replaces the labels of an issue, checking each exists (`NotFound` otherwise).
async fn write_labels(
    conn: &mut SqliteConnection,
    issue: IssueId,
    labels: &[LabelId],
) -> Result<()> {
    let issue_id = issue.to_string();
    sqlx::query("DELETE FROM issue_labels WHERE issue_id = ?")
        .bind(&issue_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    for label in labels {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM labels WHERE id = ?")
            .bind(label.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        if found.is_none() {
            return Err(StoreError::not_found(LABEL, label));
        }
        sqlx::query("INSERT OR IGNORE INTO issue_labels (issue_id, label_id) VALUES (?, ?)")
            .bind(&issue_id)
            .bind(label.to_string())
            .execute(&mut *conn)
            .await
            .map_err(map_err(LABEL, label))?;
    }
    Ok(())
}

/// The key of the open, undeleted issue with this normalized title, other than `except`.
async fn open_title_holder(
    conn: &mut SqliteConnection,
    title_norm: &str,
    except: Option<IssueId>,
) -> Result<Option<IssueKey>> {
    let key: Option<String> = sqlx::query_scalar(
        "SELECT key FROM issues WHERE title_norm = ?1 AND open = 1 AND deleted = 0 \
         AND id IS NOT ?2",
    )
    .bind(title_norm)
    .bind(except.map(|id| id.to_string()))
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    key.map(|k| parse(ISSUE, IssueKey::parse(&k))).transpose()
}

/// Maps a write error: a violation of the open-title index becomes `DuplicateTitle` with the
/// holder's key (looked up on the same connection), anything else goes through [`map_err`].
async fn title_aware_err(
    conn: &mut SqliteConnection,
    err: sqlx::Error,
    title_norm: &str,
    id: IssueId,
    what: &IssueKey,
) -> StoreError {
    let is_title = matches!(&err, sqlx::Error::Database(db)
        if db.is_unique_violation() && db.message().contains("title_norm"));
    if is_title && let Ok(Some(existing_key)) = open_title_holder(conn, title_norm, Some(id)).await
    {
        return StoreError::DuplicateTitle { existing_key };
    }
    map_err(ISSUE, what)(err)
}

/// Inserts a comment on `conn`.
async fn insert_comment(conn: &mut SqliteConnection, c: &NewComment) -> Result<()> {
    sqlx::query(
        "INSERT INTO comments (id, issue_key, author_agent_id, author, kind, body, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id.to_string())
    .bind(c.issue_key.as_str())
    .bind(c.author_agent_id.map(|a| a.to_string()))
    .bind(&c.author)
    .bind(c.kind.as_str())
    .bind(&c.body)
    .bind(c.created_at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_err(COMMENT, &c.id))?;
    Ok(())
}

/// Creates one issue on `conn`, inside the caller's transaction (see [`crate::create`]).
pub(crate) async fn create_one(tx: &mut SqliteConnection, new: NewIssueRecord) -> Result<Issue> {
    let NewIssueRecord {
        id,
        prefix,
        title,
        description,
        issue_type,
        priority,
        assignee_id,
        parent_key,
        work_block_id,
        labels,
        stages,
        created_by,
        created_at,
        mut activity,
        wake,
    } = new;
    let title_norm = title.normalized();

    if let Some(existing_key) = open_title_holder(&mut *tx, &title_norm, None).await? {
        return Err(StoreError::DuplicateTitle { existing_key });
    }
    if let Some(parent) = &parent_key {
        require_issue(&mut *tx, parent).await?;
    }
    if let Some(block) = work_block_id {
        require_open_block(&mut *tx, block).await?;
    }
    if let Some(agent) = assignee_id {
        require_agent(&mut *tx, agent).await?;
    }

    // The key: one more than the last of this prefix, in this transaction, so a rollback
    // gives the number back and keys stay dense.
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO issue_counters (prefix, last) VALUES (?, 1) \
         ON CONFLICT (prefix) DO UPDATE SET last = last + 1 RETURNING last",
    )
    .bind(prefix.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    let key = IssueKey::new(
        &prefix,
        u64::try_from(number)
            .ok()
            .and_then(NonZeroU64::new)
            .expect("issue counters start at 1 and only grow"),
    );

    let inserted = sqlx::query(
        "INSERT INTO issues (id, key, number, title, title_norm, description, type, status, \
         open, priority, assignee_id, parent_key, work_block_id, stages, current_stage, \
         created_by, run_count, status_changed_at, deleted, created_at, updated_at, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'todo', 1, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, \
         ?15, 0, ?15, ?15, 1)",
    )
    .bind(id.to_string())
    .bind(key.as_str())
    .bind(number)
    .bind(title.as_str())
    .bind(&title_norm)
    .bind(description.as_str())
    .bind(issue_type.as_str())
    .bind(i64::from(priority.get()))
    .bind(assignee_id.map(|a| a.to_string()))
    .bind(parent_key.as_ref().map(IssueKey::as_str))
    .bind(work_block_id.map(|b| b.to_string()))
    .bind(to_json(stages.as_slice()))
    .bind(stages.current().map(i64::from))
    .bind(&created_by)
    .bind(created_at.as_millis())
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        return Err(title_aware_err(&mut *tx, err, &title_norm, id, &key).await);
    }

    let mut unique_labels = labels;
    unique_labels.sort_unstable();
    unique_labels.dedup();
    write_labels(&mut *tx, id, &unique_labels).await?;

    if let Some(mut run) = wake {
        run.issue_key = Some(key.clone());
        crate::runs::insert_queued_run(&mut *tx, &run).await?;
        activity.append(&mut run.activity);
    }
    for row in &mut activity {
        if row.entity_id.is_empty() {
            row.entity_id = key.to_string();
        }
    }
    activity::append(&mut *tx, activity).await?;
    let issue = issue_in_tx(&mut *tx, id).await?;
    Ok(issue)
}

#[async_trait]
impl IssueStore for SqliteStore {
    async fn create_issue(&self, new: NewIssueRecord) -> Result<Issue> {
        crate::create::create_issue(self, new).await
    }

    async fn issue(&self, key: &IssueKey) -> Result<Issue> {
        let row: IssueRow = sqlx::query_as(issue_select!("WHERE issues.key = ?"))
            .bind(key.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(map_err(ISSUE, key))?;
        decode_issue(row)
    }

    async fn issue_by_id(&self, id: IssueId) -> Result<Issue> {
        let row: IssueRow = sqlx::query_as(issue_select!("WHERE issues.id = ?"))
            .bind(id.to_string())
            .fetch_one(&self.reader)
            .await
            .map_err(map_err(ISSUE, &id))?;
        decode_issue(row)
    }

    async fn list_issues(&self, filter: &IssueFilter, page: &PageRequest) -> Result<Page<Issue>> {
        let text = text_filter(filter.text.as_deref());
        let select = if self.walk_newest_first(filter, &text).await? {
            issue_select!("INDEXED BY issues_created ")
        } else {
            issue_select!("")
        };
        let mut qb = QueryBuilder::<Sqlite>::new(select);
        push_issue_filter(&mut qb, filter, &text);
        if let Some(cursor) = &page.cursor {
            let (created_at, id) = decode_cursor(cursor)?;
            qb.push(" AND (issues.created_at, issues.id) < (")
                .push_bind(created_at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        qb.push(" ORDER BY issues.created_at DESC, issues.id DESC LIMIT (SELECT ")
            .push_bind(i64::from(page.limit) + 1)
            .push(")");
        let rows: Vec<IssueRow> = qb
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        page_of(rows, page, decode_issue, |i| {
            encode_cursor(i.created_at.as_millis(), &i.id.to_string())
        })
    }

    async fn count_issues(&self, filter: &IssueFilter) -> Result<u64> {
        let text = text_filter(filter.text.as_deref());
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM issues ");
        push_issue_filter(&mut qb, filter, &text);
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn children(&self, key: &IssueKey) -> Result<Vec<Issue>> {
        let rows: Vec<IssueRow> = sqlx::query_as(issue_select!(
            "WHERE issues.parent_key = ? AND issues.deleted = 0 ORDER BY issues.number"
        ))
        .bind(key.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_issue).collect()
    }

    async fn inbox(&self, owner: InboxOwner, page: &PageRequest) -> Result<Page<Issue>> {
        // Every arm walks a partial index backwards from the cursor, so a page costs the same
        // with a thousand issues or a million.
        let (priority, updated_at, key) = match &page.cursor {
            Some(cursor) => {
                let (sort, key) = decode_cursor(cursor)?;
                (sort / INBOX_SORT_SPLIT, sort % INBOX_SORT_SPLIT, key)
            }
            // Above every real position: priorities stop at 4.
            None => (5, 0, String::new()),
        };
        let limit = i64::from(page.limit) + 1;
        // The page comes back as one row holding a JSON array of rows: sqlx hands every row
        // from its worker thread to this task through a channel, and a page of 51 rows one by
        // one cost more than the query itself.
        let text: String = match owner {
            // Each arm reads its rows straight off its index (in order, at most a page);
            // the union of two short sorted lists is then ordered once.
            InboxOwner::Agent(agent) => sqlx::query_scalar(concat!(
                inbox_page_row!(),
                "SELECT * FROM (",
                issue_select!(
                    "INDEXED BY issues_inbox \
                     WHERE issues.assignee_id = ?1 AND issues.open = 1 AND issues.deleted = 0 \
                       AND (issues.priority, issues.updated_at, issues.key) < (?2, ?3, ?4) \
                     ORDER BY issues.priority DESC, issues.updated_at DESC, issues.key DESC \
                     LIMIT (SELECT ?5)"
                ),
                ") UNION ALL SELECT * FROM (",
                issue_select!(
                    "INDEXED BY issues_to_review \
                     WHERE issues.reviewer_id = ?1 AND issues.status = 'in_review' \
                       AND issues.deleted = 0 AND issues.assignee_id IS NOT ?1 \
                       AND (issues.priority, issues.updated_at, issues.key) < (?2, ?3, ?4) \
                     ORDER BY issues.priority DESC, issues.updated_at DESC, issues.key DESC \
                     LIMIT (SELECT ?5)"
                ),
                ") ORDER BY priority DESC, updated_at DESC, key DESC LIMIT (SELECT ?5))"
            ))
            .bind(agent.to_string()),
            InboxOwner::Board => sqlx::query_scalar(concat!(
                inbox_page_row!(),
                issue_select!(
                    "INDEXED BY issues_board_review \
                     WHERE issues.status = 'board_review' AND issues.deleted = 0 \
                       AND ?1 IS NULL \
                       AND (issues.priority, issues.updated_at, issues.key) < (?2, ?3, ?4) \
                     ORDER BY issues.priority DESC, issues.updated_at DESC, issues.key DESC \
                     LIMIT (SELECT ?5))"
                )
            ))
            .bind(None::<String>),
        }
        .bind(priority)
        .bind(updated_at)
        .bind(key)
        .bind(limit)
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        let rows: Vec<IssueRow> = json(ISSUE, "inbox page", &text)?;
        page_of(rows, page, decode_issue, |i: &Issue| {
            encode_cursor(
                i64::from(i.priority.get()) * INBOX_SORT_SPLIT + i.updated_at.as_millis(),
                i.key.as_str(),
            )
        })
    }

    async fn set_reviewers(&self, routes: &[(IssueId, Option<AgentId>)]) -> Result<()> {
        if routes.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, reviewer) in routes {
            sqlx::query(
                "UPDATE issues SET reviewer_id = ?1 WHERE id = ?2 AND status = 'in_review' \
                 AND reviewer_id IS NOT ?1",
            )
            .bind(reviewer.map(|r| r.to_string()))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(ISSUE, id))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn update_issue(&self, write: IssueWrite) -> Result<Issue> {
        let IssueWrite {
            issue,
            expected,
            comments,
            activity,
        } = write;
        let mut tx = self.write_tx().await?;

        let current: Option<(i64, String, Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as(
                "SELECT version, key, parent_key, work_block_id, assignee_id FROM issues \
                 WHERE id = ?",
            )
            .bind(issue.id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some((version, key, parent, block, assignee)) = current else {
            return Err(StoreError::not_found(ISSUE, &issue.key));
        };
        if Version(version) != expected {
            return Err(StoreError::StaleVersion {
                entity: ISSUE,
                id: key,
                expected,
                actual: Version(version),
            });
        }

        // References the caller changed must be valid.
        if issue.parent_key.as_ref().map(IssueKey::as_str) != parent.as_deref()
            && let Some(new_parent) = &issue.parent_key
        {
            require_issue(&mut tx, new_parent).await?;
            let cycle: Option<i64> = sqlx::query_scalar(
                "WITH RECURSIVE up(k) AS (SELECT ?1 UNION SELECT issues.parent_key FROM issues \
                 JOIN up ON issues.key = up.k WHERE issues.parent_key IS NOT NULL) \
                 SELECT 1 FROM up WHERE k = ?2 LIMIT 1",
            )
            .bind(new_parent.as_str())
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            if cycle.is_some() {
                return Err(StoreError::Conflict {
                    what: format!("making {new_parent} the parent of {key} would create a cycle"),
                });
            }
        }
        if issue.work_block_id.map(|b| b.to_string()) != block
            && let Some(new_block) = issue.work_block_id
        {
            require_open_block(&mut tx, new_block).await?;
        }
        if issue.assignee_id.map(|a| a.to_string()) != assignee
            && let Some(new_assignee) = issue.assignee_id
        {
            require_agent(&mut tx, new_assignee).await?;
        }

        let open = !issue.status.is_terminal();
        let title_norm = issue.title.normalized();
        if open
            && !issue.deleted
            && let Some(existing_key) =
                open_title_holder(&mut tx, &title_norm, Some(issue.id)).await?
        {
            return Err(StoreError::DuplicateTitle { existing_key });
        }

        let updated = sqlx::query(
            "UPDATE issues SET title = ?1, title_norm = ?2, description = ?3, type = ?4, \
             status = ?5, open = ?6, priority = ?7, assignee_id = ?8, parent_key = ?9, \
             work_block_id = ?10, stages = ?11, current_stage = ?12, branch = ?13, \
             started_at = ?14, completed_at = ?15, cancellation_reason = ?16, run_count = ?17, \
             status_changed_at = ?18, deleted = ?19, updated_at = ?20, submitted_by = ?23, \
             reviewer_id = ?24, version = version + 1 \
             WHERE id = ?21 AND version = ?22",
        )
        .bind(issue.title.as_str())
        .bind(&title_norm)
        .bind(issue.description.as_str())
        .bind(issue.issue_type.as_str())
        .bind(issue.status.as_str())
        .bind(open)
        .bind(i64::from(issue.priority.get()))
        .bind(issue.assignee_id.map(|a| a.to_string()))
        .bind(issue.parent_key.as_ref().map(IssueKey::as_str))
        .bind(issue.work_block_id.map(|b| b.to_string()))
        .bind(to_json(issue.stages.as_slice()))
        .bind(issue.current_stage.map(i64::from))
        .bind(issue.branch.as_deref())
        .bind(ms_opt(issue.started_at))
        .bind(ms_opt(issue.completed_at))
        .bind(issue.cancellation_reason.as_deref())
        .bind(issue.run_count)
        .bind(issue.status_changed_at.as_millis())
        .bind(issue.deleted)
        .bind(issue.updated_at.as_millis())
        .bind(issue.id.to_string())
        .bind(expected.0)
        .bind(issue.submitted_by.map(|a| a.to_string()))
        .bind(issue.reviewer_id.map(|a| a.to_string()))
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(done) => {
                // We hold the write lock and checked the version above.
                debug_assert_eq!(
                    done.rows_affected(),
                    1,
                    "version checked under the write lock"
                );
            }
            Err(err) => {
                return Err(title_aware_err(&mut tx, err, &title_norm, issue.id, &issue.key).await);
            }
        }

        let mut labels = issue.labels.clone();
        labels.sort_unstable();
        labels.dedup();
        write_labels(&mut tx, issue.id, &labels).await?;
        for comment in &comments {
            insert_comment(&mut tx, comment).await?;
        }
        activity::append(&mut tx, activity).await?;
        let stored = issue_in_tx(&mut tx, issue.id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn checkout_issue(&self, req: CheckoutRequest) -> Result<CheckoutOutcome> {
        crate::checkout::checkout_issue(self, req).await
    }

    async fn purge_issue(&self, key: &IssueKey, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Queued runs for it would lose their issue (the foreign key sets it to NULL) and could
        // then collide in the one-queued-run index; they never ran, so they go with the issue.
        // Runs that ran stay, with no issue.
        sqlx::query("DELETE FROM runs WHERE issue_key = ? AND status = 'queued'")
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query("DELETE FROM issues WHERE key = ?")
            .bind(key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err(ISSUE, key))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(ISSUE, key));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)
    }

    async fn open_issue_with_title(&self, normalized_title: &str) -> Result<Option<IssueKey>> {
        let key: Option<String> = sqlx::query_scalar(
            "SELECT key FROM issues WHERE title_norm = ? AND open = 1 AND deleted = 0",
        )
        .bind(normalized_title)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        key.map(|k| parse(ISSUE, IssueKey::parse(&k))).transpose()
    }

    async fn search_issues(&self, query: &str, limit: u32) -> Result<Vec<Issue>> {
        crate::similar::text_candidates(&self.reader, &fts_terms(query), limit).await
    }

    async fn similar_title_candidates(
        &self,
        normalized_title: &str,
        limit: u32,
    ) -> Result<Vec<IssueTitle>> {
        crate::similar::title_candidates(&self.reader, normalized_title, limit).await
    }

    async fn add_comment(
        &self,
        comment: NewComment,
        activity: Vec<NewActivity>,
    ) -> Result<Comment> {
        let mut tx = self.write_tx().await?;
        require_issue(&mut tx, &comment.issue_key).await?;
        insert_comment(&mut tx, &comment).await?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Comment {
            id: comment.id,
            issue_key: comment.issue_key,
            author_agent_id: comment.author_agent_id,
            author: comment.author,
            kind: comment.kind,
            body: comment.body,
            created_at: comment.created_at,
        })
    }

    async fn comments(&self, key: &IssueKey, page: &PageRequest) -> Result<Page<Comment>> {
        let (after_at, after_id) = match &page.cursor {
            Some(c) => decode_cursor(c)?,
            None => (i64::MIN, String::new()),
        };
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT id, issue_key, author_agent_id, author, kind, body, created_at FROM comments \
             WHERE issue_key = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT (SELECT ?)",
        )
        .bind(key.as_str())
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        page_of(rows, page, decode_comment, |c| {
            encode_cursor(c.created_at.as_millis(), &c.id.to_string())
        })
    }

    async fn recent_comments(&self, key: &IssueKey, limit: u32) -> Result<Vec<Comment>> {
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT * FROM (SELECT id, issue_key, author_agent_id, author, kind, body, created_at \
             FROM comments WHERE issue_key = ? ORDER BY created_at DESC, id DESC LIMIT (SELECT ?)) \
             ORDER BY created_at, id",
        )
        .bind(key.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_comment).collect()
    }
}

#[async_trait]
impl LabelStore for SqliteStore {
    async fn create_label(&self, label: Created<Label>) -> Result<Label> {
        let Created { row, activity } = label;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO labels (id, name, color, created_at, updated_at, version) \
             VALUES (?, ?, ?, ?, ?, 1)",
        )
        .bind(row.id.to_string())
        .bind(row.name.as_str())
        .bind(row.color.as_str())
        .bind(row.created_at.as_millis())
        .bind(row.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(LABEL, &row.name))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Label {
            version: Version::FIRST,
            ..row
        })
    }

    async fn update_label(&self, write: Versioned<Label>) -> Result<Label> {
        let Versioned {
            row,
            expected,
            activity,
        } = write;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE labels SET name = ?, color = ?, updated_at = ?, version = version + 1 \
             WHERE id = ? AND version = ?",
        )
        .bind(row.name.as_str())
        .bind(row.color.as_str())
        .bind(row.updated_at.as_millis())
        .bind(row.id.to_string())
        .bind(expected.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err(LABEL, &row.name))?;
        if done.rows_affected() == 0 {
            let actual: Option<i64> = sqlx::query_scalar("SELECT version FROM labels WHERE id = ?")
                .bind(row.id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            return Err(match actual {
                Some(v) => StoreError::StaleVersion {
                    entity: LABEL,
                    id: row.id.to_string(),
                    expected,
                    actual: Version(v),
                },
                None => StoreError::not_found(LABEL, &row.id),
            });
        }
        activity::append(&mut tx, activity).await?;
        let stored = label_on(&mut tx, row.id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn delete_label(&self, id: LabelId, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Issues that carried it change: their version moves so cached copies go stale.
        sqlx::query(
            "UPDATE issues SET version = version + 1 \
             WHERE id IN (SELECT issue_id FROM issue_labels WHERE label_id = ?)",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let done = sqlx::query("DELETE FROM labels WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err(LABEL, &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(LABEL, &id));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)
    }

    async fn label(&self, id: LabelId) -> Result<Label> {
        let row: LabelRow = sqlx::query_as(
            "SELECT id, name, color, created_at, updated_at, version FROM labels WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_one(&self.reader)
        .await
        .map_err(map_err(LABEL, &id))?;
        decode_label(&row)
    }

    async fn list_labels(&self) -> Result<Vec<Label>> {
        let rows: Vec<LabelRow> = sqlx::query_as(
            "SELECT id, name, color, created_at, updated_at, version FROM labels \
             ORDER BY name COLLATE NOCASE, id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_label).collect()
    }
}

async fn label_on(conn: &mut SqliteConnection, id: LabelId) -> Result<Label> {
    let row: LabelRow = sqlx::query_as(
        "SELECT id, name, color, created_at, updated_at, version FROM labels WHERE id = ?",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err(LABEL, &id))?;
    decode_label(&row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_terms_drop_syntax() {
        assert_eq!(
            fts_terms(r#"fix "login" OR title:* NEAR(a b) -x"#),
            ["fix", "login", "or", "title", "near", "a", "b", "x"]
        );
        assert_eq!(
            fts_all_prefixes(&fts_terms("Fix login")),
            r#""fix"* AND "login"*"#
        );
        assert!(fts_terms("!!! ***").is_empty());
    }

    #[test]
    fn blank_text_does_not_filter() {
        assert!(matches!(text_filter(Some("  ")), TextFilter::None));
        assert!(matches!(text_filter(Some("!!")), TextFilter::Nothing));
        assert!(matches!(text_filter(Some("x")), TextFilter::Match(_)));
    }
}
