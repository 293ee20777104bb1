//! The seeded instance of the pages benchmark: an org chart, issues in every status with
//! comments, work blocks, finished runs with logs and costs, approvals, wiki pages, and an audit
//! log filled up to the requested size. Everything goes through `mesa-core`; the filler rows
//! of the audit log are appended through the store's own `append_activity`, which computes
//! their hash chain exactly as for any other write.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mesa_core::domain::entity::{AgentConfig, NewActivity, TokenUsage};
use mesa_core::domain::{
    Actor, ApprovalDecision, ApprovalKind, CommentKind, CostEventId, CostSource, IssueKey,
    IssueType, Markdown, MicroUsd, Name, Priority, ReviewDecision, RunStatus, RunnerKind, Slug,
    Timestamp, Title, WorkBlockId, WorkingDir,
};
use mesa_core::store::{ActivityFilter, FinishRunRecord, PageRequest, RunFilter};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::workflow::work_block::BlockCommand;
use mesa_core::{CoreConfig, Mesa, NewAgent, NewApproval, NewIssue, NewWorkBlock};

/// The sizes of an instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Issues.
    pub(crate) issues: usize,
    /// Agents, the CEO included.
    pub(crate) agents: usize,
    /// Rows of the audit log at least.
    pub(crate) activity: usize,
}

/// What the seed leaves behind, and what the measurement needs to know of it.
pub(crate) struct Seeded {
    /// The database (closed, checkpointed).
    pub(crate) db: PathBuf,
    /// A raw board token, to sign in.
    pub(crate) token: String,
    /// Keys of issues that went through the workflow (with comments and history).
    pub(crate) busy_issues: Vec<String>,
    /// Agent slugs (leads and workers).
    pub(crate) agents: Vec<String>,
    /// Ids of finished runs with a log and a diff.
    pub(crate) runs: Vec<String>,
    /// Work block ids, the active one first.
    pub(crate) blocks: Vec<String>,
    /// Approval ids.
    pub(crate) approvals: Vec<String>,
    /// Wiki page slugs.
    pub(crate) wiki: Vec<String>,
}

/// Concurrent callers when creating issues (the store commits them in groups).
const CLIENTS: usize = 32;
/// Work blocks; issue `i` with `i % 20 == 0` belongs to block `(i / 20) % BLOCKS`.
const BLOCKS: usize = 10;
/// Issues taken through start (and some through submit and review) with comments.
const BUSY: usize = 3_000;
/// Finished runs with a log, a diff and a cost.
const FINISHED_RUNS: usize = 3_000;
/// Approval requests (half resolved).
const APPROVALS: usize = 200;
/// Wiki pages.
const WIKI_PAGES: usize = 300;
/// Filler audit rows per append (one transaction each).
const FILL_BATCH: usize = 5_000;
/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// Words issue titles and wiki pages are made of, so searches find something.
const WORDS: &[&str] = &[
    "billing",
    "checkout",
    "search",
    "login",
    "invoice",
    "export",
    "import",
    "cache",
    "queue",
    "webhook",
    "report",
    "dashboard",
    "mobile",
    "payments",
    "email",
    "backup",
    "latency",
    "migration",
    "onboarding",
    "audit",
];

/// A run log in the shape of Claude Code's stream JSON (what the run page formats).
const LOG_LINES: &[&str] = &[
    r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Reading the failing test first."}]}}"#,
    r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Read","input":{"file_path":"src/billing/invoice.rs"}}]}}"#,
    r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"fn total(lines: &[Line]) -> Money { ... }","is_error":false}]}}"#,
    r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Edit","input":{"file_path":"src/billing/invoice.rs"}}]}}"#,
    r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"ok","is_error":false}]}}"#,
    r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"cargo test -p billing"}}]}}"#,
    r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"test result: ok. 42 passed; 0 failed","is_error":false}]}}"#,
];

const DIFF: &str = "diff --git a/src/billing/invoice.rs b/src/billing/invoice.rs\n--- a/src/billing/invoice.rs\n+++ b/src/billing/invoice.rs\n@@ -10,7 +10,7 @@ fn total(lines: &[Line]) -> Money {\n     let mut sum = Money::ZERO;\n     for line in lines {\n-        sum += line.price;\n+        sum += line.price * line.quantity;\n     }\n     sum\n }\n";

/// The seeded instance for `sizes` under `cache`, seeded first if it is not there yet.
pub(crate) async fn cached(cache: &Path, sizes: Sizes) -> anyhow::Result<Seeded> {
    let dir = std::path::absolute(cache)?.join(format!(
        "pages-{}-issues-{}-agents-{}-activity",
        sizes.issues, sizes.agents, sizes.activity
    ));
    let db = dir.join("seed.db");
    let manifest = dir.join("manifest.txt");
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        eprintln!("using the seeded database in {}", dir.display());
        return read_manifest(db, &text);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let seeded = seed(&dir, db, sizes).await?;
    std::fs::write(&manifest, write_manifest(&seeded)?)?;
    eprintln!(
        "seeded {} issues, {} agents and {} activity rows in {:.0} s",
        sizes.issues,
        sizes.agents,
        sizes.activity,
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

/// The manifest: one `name value value ...` line per list.
fn write_manifest(s: &Seeded) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "token {}", s.token)?;
    for (name, list) in [
        ("issues", &s.busy_issues),
        ("agents", &s.agents),
        ("runs", &s.runs),
        ("blocks", &s.blocks),
        ("approvals", &s.approvals),
        ("wiki", &s.wiki),
    ] {
        writeln!(out, "{name} {}", list.join(" "))?;
    }
    Ok(out)
}

fn read_manifest(db: PathBuf, text: &str) -> anyhow::Result<Seeded> {
    let list = |name: &str| -> anyhow::Result<Vec<String>> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .with_context(|| format!("the manifest has no {name} line"))?;
        Ok(line.split_whitespace().skip(1).map(str::to_owned).collect())
    };
    Ok(Seeded {
        db,
        token: list("token")?.into_iter().next().context("no token")?,
        busy_issues: list("issues")?,
        agents: list("agents")?,
        runs: list("runs")?,
        blocks: list("blocks")?,
        approvals: list("approvals")?,
        wiki: list("wiki")?,
    })
}

fn board() -> Actor {
    Actor::board("bench")
}

async fn actor_of(mesa: &Mesa, slug: &str) -> anyhow::Result<Actor> {
    let agent = mesa.find_agent(slug).await?;
    Ok(Actor::Agent {
        id: agent.id,
        slug: agent.slug,
    })
}

async fn seed(dir: &Path, db: PathBuf, sizes: Sizes) -> anyhow::Result<Seeded> {
    let workspace = WorkingDir::parse(&dir.to_string_lossy())?;
    let mut config = CoreConfig::new(dir, workspace.clone());
    config.template = "blank".into();
    let mesa = Mesa::builder().sqlite(&db).config(config).build().await?;
    mesa.bootstrap_if_empty().await?;
    let token = mesa
        .create_board_token(&board(), Name::parse("bench")?, None)
        .await?
        .raw;

    let (leads, agents) = org(&mesa, &workspace, sizes.agents).await?;
    eprintln!("created {} agents", sizes.agents);
    let blocks = work_blocks(&mesa).await?;
    issues(&mesa, sizes.issues, &agents, &blocks).await?;
    let busy_issues = workflow(&mesa, sizes.issues, leads).await?;
    let runs = finished_runs(&mesa).await?;
    let approvals = approvals(&mesa, &agents).await?;
    let wiki = wiki(&mesa, &agents).await?;
    fill_activity(&mesa, sizes.activity, sizes.issues, &agents).await?;
    mesa.set_scheduler_paused(&board(), true).await?;
    mesa.close().await;
    Ok(Seeded {
        db,
        token,
        busy_issues,
        agents,
        runs,
        blocks: blocks.iter().map(ToString::to_string).collect(),
        approvals,
        wiki,
    })
}

/// The CEO (from the bootstrap), leads reporting to it, workers reporting to the leads.
/// Returns the number of leads and every slug but the CEO's (leads first).
async fn org(
    mesa: &Mesa,
    workspace: &WorkingDir,
    agents: usize,
) -> anyhow::Result<(usize, Vec<String>)> {
    let leads = (agents / 50).max(2);
    let mut slugs = Vec::with_capacity(agents - 1);
    for i in 0..agents - 1 {
        let (slug, archetype, manager) = if i < leads {
            (format!("lead-{i:03}"), "architect", "ceo".to_owned())
        } else {
            (
                format!("worker-{i:04}"),
                "backend",
                format!("lead-{:03}", i % leads),
            )
        };
        let mut config = AgentConfig::new(
            Name::parse(&slug)?,
            Slug::parse(archetype)?,
            RunnerKind::Noop,
            workspace.clone(),
        );
        config.reports_to = Some(mesa.find_agent(&manager).await?.id);
        mesa.create_agent(
            &board(),
            NewAgent {
                slug: Slug::parse(&slug)?,
                config,
            },
        )
        .await?;
        // Agents that run outside Mesa hold long-lived keys (the keys tab, and every session
        // check looks at the live board tokens among the keys).
        mesa.create_agent_key(&board(), &slug, None, None).await?;
        slugs.push(slug);
    }
    Ok((leads, slugs))
}

/// An apex block and `BLOCKS` work blocks serving it; the first is activated.
async fn work_blocks(mesa: &Mesa) -> anyhow::Result<Vec<WorkBlockId>> {
    let apex = mesa
        .create_apex_block(
            &board(),
            Title::parse("Grow paying customers")?,
            Markdown::parse("Every block should move **paying customers**.")?,
        )
        .await?;
    let mut ids = Vec::with_capacity(BLOCKS);
    for b in 0..BLOCKS {
        let block = mesa
            .create_work_block(
                &board(),
                NewWorkBlock {
                    title: Title::parse(&format!("Block {b}: {}", WORDS[b % WORDS.len()]))?,
                    goal: Markdown::parse("Ship the **feature** end to end.")?,
                    acceptance_criteria: Markdown::parse("- it works\n- it is documented")?,
                    north_star_metric: Some("Paying customers".to_owned()),
                    north_star_target: Some(500.0),
                    apex_block_id: (b % 2 == 0).then_some(apex.id),
                },
            )
            .await?;
        ids.push(block.id);
    }
    mesa.work_block_command(&board(), ids[0], BlockCommand::Activate, None)
        .await?;
    for value in [12.0, 30.0, 41.0] {
        mesa.record_north_star(&board(), ids[0], value).await?;
    }
    Ok(ids)
}

/// `issues` issues from `CLIENTS` concurrent callers: assigned round-robin to the agents, mixed
/// types and priorities, every twentieth in a work block.
async fn issues(
    mesa: &Mesa,
    issues: usize,
    agents: &[String],
    blocks: &[WorkBlockId],
) -> anyhow::Result<()> {
    let started = Instant::now();
    let agents = Arc::new(agents.to_vec());
    let blocks = Arc::new(blocks.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let mesa = mesa.clone();
        let agents = Arc::clone(&agents);
        let blocks = Arc::clone(&blocks);
        tasks.spawn(async move {
            let mut i = c;
            while i < issues {
                let word = WORDS[i % WORDS.len()];
                let mut new = NewIssue::titled(&format!("Seeded {word} work item {i}"))?;
                new.description = Markdown::parse(&format!(
                    "The **{word}** flow needs work item {i}.\n\n- reproduce\n- fix\n- test"
                ))?;
                new.assignee = Some(agents[i % agents.len()].clone());
                new.priority = Priority::new(i64::try_from(i % 5)?)?;
                new.issue_type = match i % 7 {
                    0 => IssueType::Bug,
                    1 => IssueType::Feature,
                    _ => IssueType::Task,
                };
                if i % 20 == 0 {
                    new.work_block_id = Some(blocks[(i / 20) % blocks.len()]);
                }
                mesa.create_issue(&board(), new).await?;
                i += CLIENTS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    eprintln!(
        "created {issues} issues in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `BUSY` issues spread over the range go through the workflow: every one is started by its
/// assignee and gets comments; two in three are submitted; one in three is approved by the
/// reviewer (the assignee's lead) and is done. Returns their keys.
async fn workflow(mesa: &Mesa, issues: usize, leads: usize) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let prefix = key_prefix(mesa).await?;
    let step = (issues / BUSY).max(1);
    let picked: Vec<usize> = (1..=issues).step_by(step).take(BUSY).collect();
    let picked = Arc::new(picked);
    let prefix = Arc::new(prefix);
    let mut tasks = tokio::task::JoinSet::new();
    const WORKERS: usize = 8;
    for w in 0..WORKERS {
        let (mesa, picked, prefix) = (mesa.clone(), Arc::clone(&picked), Arc::clone(&prefix));
        tasks.spawn(async move {
            let mut keys = Vec::new();
            for (n, i) in picked.iter().enumerate().skip(w).step_by(WORKERS) {
                let key = IssueKey::parse(&format!("{prefix}-{i}"))?;
                // Workers (`worker-<n>`) report to `lead-<n % leads>`; leads' issues are skipped.
                let view = mesa.issue(&key).await?;
                let Some(slug) = view.assignee_slug.map(|s| s.to_string()) else {
                    continue;
                };
                let Some(number) = slug
                    .strip_prefix("worker-")
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let worker = actor_of(&mesa, &slug).await?;
                let lead = actor_of(&mesa, &format!("lead-{:03}", number % leads)).await?;
                mesa.issue_command(&worker, &key, IssueCommand::Start, None)
                    .await?;
                for c in 0..3 {
                    mesa.add_comment(
                        &worker,
                        &key,
                        &format!("Progress note {c} on {key}: the **fix** is under way."),
                        CommentKind::Comment,
                    )
                    .await?;
                }
                if n % 3 != 0 {
                    let submit = IssueCommand::Submit {
                        comment: Some(format!("Finished {key}; tests pass.")),
                    };
                    mesa.issue_command(&worker, &key, submit, None).await?;
                }
                if n % 3 == 1 {
                    let review = IssueCommand::Review {
                        decision: ReviewDecision::Approve,
                        comment: Some("Looks good.".to_owned()),
                    };
                    // The reviewer is the assignee's manager; should the routing differ, the
                    // issue stays in review, which is realistic too.
                    if let Err(err) = mesa.issue_command(&lead, &key, review, None).await {
                        eprintln!("review of {key} refused: {err}");
                    }
                }
                keys.push(key.to_string());
            }
            anyhow::Ok(keys)
        });
    }
    let mut keys = Vec::new();
    while let Some(done) = tasks.join_next().await {
        keys.extend(done??);
    }
    eprintln!(
        "took {} issues through the workflow in {:.0} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(keys)
}

/// The prefix of issue keys (`MESA` in `MESA-12`).
async fn key_prefix(mesa: &Mesa) -> anyhow::Result<String> {
    let list = mesa
        .issues(
            &mesa_core::store::IssueFilter::default(),
            &PageRequest::new(Some(1), None),
        )
        .await?;
    let key = list
        .items
        .first()
        .context("no issues")?
        .issue
        .key
        .to_string();
    Ok(key.rsplit_once('-').map_or("MESA", |(p, _)| p).to_owned())
}

/// `FINISHED_RUNS` of the queued wake-ups finish with a log, a diff and a cost, spread over the
/// last 30 days; one in five fails. Returns their ids.
async fn finished_runs(mesa: &Mesa) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let filter = RunFilter {
        statuses: vec![RunStatus::Queued],
        ..RunFilter::default()
    };
    let mut queued = Vec::new();
    let mut cursor = None;
    while queued.len() < FINISHED_RUNS {
        let page = mesa
            .runs(&filter, &PageRequest::new(Some(200), cursor))
            .await?;
        queued.extend(page.items.into_iter().map(|r| r.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    queued.truncate(FINISHED_RUNS);
    let log = LOG_LINES.join("\n") + "\n";
    let now = mesa.now().as_millis();
    let mut ids = Vec::with_capacity(queued.len());
    for (n, id) in queued.into_iter().enumerate() {
        mesa.append_run_output(id, &log.repeat(3)).await?;
        let failed = n % 5 == 0;
        let age = i64::try_from(n)? * 30 * DAY_MS / i64::try_from(FINISHED_RUNS)?;
        mesa.finish_run(FinishRunRecord {
            run_id: id,
            status: if failed {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            },
            exit_code: Some(i64::from(failed)),
            failure_reason: failed.then(|| "tests failed".to_owned()),
            stdout: None,
            diff: Some(DIFF.to_owned()),
            diff_stat: Some(" src/billing/invoice.rs | 2 +-".to_owned()),
            usage: TokenUsage {
                input_tokens: 12_000 + i64::try_from(n % 100)? * 100,
                output_tokens: 3_000,
                ..TokenUsage::default()
            },
            cost_usd: MicroUsd(120_000 + i64::try_from(n % 50)? * 1_000),
            cost_source: CostSource::Parsed,
            num_turns: Some(7),
            finished_at: Timestamp::from_millis(now - age),
            cost_event_id: CostEventId::parse(&format!("01900000-0000-7000-8000-{n:012x}"))?,
            activity: Vec::new(),
        })
        .await?;
        ids.push(id.to_string());
    }
    eprintln!(
        "finished {} runs in {:.0} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ids)
}

/// Approval requests by agents up the chain; every other one resolved by the board.
async fn approvals(mesa: &Mesa, agents: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(APPROVALS);
    for n in 0..APPROVALS {
        let requester = actor_of(mesa, &agents[(n * 7) % agents.len()]).await?;
        let approval = mesa
            .request_approval(
                &requester,
                NewApproval {
                    kind: ApprovalKind::Other,
                    title: Title::parse(&format!("Request {n}: more {}", WORDS[n % WORDS.len()]))?,
                    body: Markdown::parse("We need **more** hands on this.")?,
                    subject: None,
                    payload: serde_json::json!({}),
                },
            )
            .await?;
        if n % 2 == 1 {
            let decision = if n % 4 == 1 {
                ApprovalDecision::Approve
            } else {
                ApprovalDecision::Reject
            };
            // An approval outside the board's reach stays pending; that is realistic too.
            let _ = mesa
                .resolve_approval(&board(), approval.id, decision, None)
                .await;
        }
        ids.push(approval.id.to_string());
    }
    Ok(ids)
}

/// Wiki pages written by agents, each updated once (so it has two revisions).
async fn wiki(mesa: &Mesa, agents: &[String]) -> anyhow::Result<Vec<String>> {
    let mut slugs = Vec::with_capacity(WIKI_PAGES);
    for n in 0..WIKI_PAGES {
        let author = actor_of(mesa, &agents[(n * 13) % agents.len()]).await?;
        let word = WORDS[n % WORDS.len()];
        let body = format!(
            "# {word} runbook {n}\n\nHow the **{word}** service is deployed and checked.\n\n\
             1. Build with `cargo build --release`.\n2. Run `make deploy`.\n3. Watch the \
             dashboard.\n\nSee [[{word}-overview]] and the open issues.\n"
        );
        let page = mesa
            .create_wiki_page(
                &author,
                None,
                Title::parse(&format!("{word} runbook {n}"))?,
                Markdown::parse(&body)?,
            )
            .await?;
        mesa.update_wiki_page(
            &author,
            &page.slug,
            None,
            Some(Markdown::parse(
                &(body + "\nUpdated after the last incident.\n"),
            )?),
            None,
        )
        .await?;
        slugs.push(page.slug.to_string());
    }
    Ok(slugs)
}

/// Appends audit rows until the log holds `target` rows: comments, transitions and run
/// records by the agents on the issues, in batches through the store's `append_activity` (one
/// transaction each, hash chain computed by the store).
async fn fill_activity(
    mesa: &Mesa,
    target: usize,
    issues: usize,
    agents: &[String],
) -> anyhow::Result<()> {
    let started = Instant::now();
    let newest = mesa
        .activity_log(&ActivityFilter::default(), &PageRequest::new(Some(1), None))
        .await?;
    let have = newest.items.first().map_or(0, |e| e.id.0);
    let have = usize::try_from(have)?;
    eprintln!("{have} activity rows from real operations");
    let prefix = key_prefix(mesa).await?;
    let store = mesa.store();
    let mut n = have;
    while n < target {
        let count = FILL_BATCH.min(target - n);
        let at = mesa.now();
        let rows: Vec<NewActivity> = (n..n + count)
            .map(|i| filler(i, at, &prefix, issues, agents))
            .collect();
        store.append_activity(rows).await?;
        n += count;
        if (n / FILL_BATCH).is_multiple_of(20) {
            eprintln!("{n} activity rows");
        }
    }
    eprintln!(
        "filled the audit log to {n} rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Filler row `i`: what agents do all day, spread over every issue and agent.
fn filler(i: usize, at: Timestamp, prefix: &str, issues: usize, agents: &[String]) -> NewActivity {
    // A multiplicative walk so neighbouring rows touch different issues.
    let issue = (i.wrapping_mul(7_919) % issues) + 1;
    let key = format!("{prefix}-{issue}");
    let actor = agents[i % agents.len()].clone();
    let (action, summary, data) = match i % 4 {
        0 => (
            "issue.comment",
            format!("{actor} commented on {key}"),
            serde_json::json!({ "kind": "comment" }),
        ),
        1 => (
            "issue.transition",
            format!("{key}: todo → in_progress"),
            serde_json::json!({ "from": "todo", "to": "in_progress" }),
        ),
        2 => (
            "issue.update",
            format!("{actor} updated {key}"),
            serde_json::json!({ "fields": ["priority"] }),
        ),
        _ => (
            "run.finished",
            format!("a run of {actor} on {key} finished"),
            serde_json::json!({ "status": "succeeded" }),
        ),
    };
    NewActivity {
        at,
        actor,
        action: action.to_owned(),
        entity_type: "issue".to_owned(),
        entity_id: key,
        summary,
        data,
    }
}
