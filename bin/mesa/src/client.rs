//! `mesa inbox | issue | wiki | reflect | usage`: the binary as a client of a running Mesa, for
//! agents and scripts (SPEC §9.6). It reads `MESA_API_URL` (the server's base URL without a
//! path, default `http://127.0.0.1:3001`) and `MESA_API_KEY` (a run key, an agent key or a board
//! token), prints human-readable text, or the API's JSON with `--json`. An API error is printed
//! as `error: <code>: <message>` and the exit status is 1.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

/// `println!` that ignores a closed stdout (`mesa inbox | head -1` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `--json`: print the API's JSON instead of text.
#[derive(Debug, Clone, Copy, Args, Default)]
pub(crate) struct Output {
    /// Print the API's JSON response instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `mesa issue ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum IssueCommand {
    /// Show an issue with its comments and sub-issues.
    Show {
        /// The issue key (MESA-12).
        key: String,
    },
    /// Create an issue (assigned to the CEO unless --assignee is given).
    Create {
        /// The title.
        title: String,
        /// Markdown description (`-` reads it from stdin).
        #[arg(long, short)]
        description: Option<String>,
        /// task, bug, feature, api, backend, frontend, chore, research.
        #[arg(long = "type")]
        issue_type: Option<String>,
        /// 0 (none) .. 4 (urgent).
        #[arg(long)]
        priority: Option<i64>,
        /// Assignee slug.
        #[arg(long)]
        assignee: Option<String>,
        /// Parent issue key.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Check an issue out (claim it and start working on it).
    Checkout {
        /// The issue key.
        key: String,
    },
    /// Comment on an issue.
    Comment {
        /// The issue key.
        key: String,
        /// Markdown (`-` reads it from stdin).
        body: String,
        /// Post it as evidence of finished work.
        #[arg(long)]
        evidence: bool,
    },
    /// Submit an issue for review, saying what was done.
    Submit {
        /// The issue key.
        key: String,
        /// What was done (`-` reads it from stdin); optional after an evidence comment.
        comment: Option<String>,
    },
    /// Block an issue, saying why.
    Block {
        /// The issue key.
        key: String,
        /// Why (`-` reads it from stdin).
        reason: String,
    },
    /// Decide a review: approve, request_changes, escalate or reject.
    Review {
        /// The issue key.
        key: String,
        /// approve, request_changes, escalate or reject.
        decision: String,
        /// Required for request_changes and reject (`-` reads it from stdin).
        comment: Option<String>,
    },
}

/// `mesa wiki ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WikiCommand {
    /// Full-text search over the wiki.
    Search {
        /// Words; each matches as a prefix.
        query: String,
        /// At most this many hits.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Print a page.
    Get {
        /// The page's slug.
        slug: String,
    },
    /// Create or replace a page's content.
    Put {
        /// The page's slug.
        slug: String,
        /// Title (default: the existing title, or the slug for a new page).
        #[arg(long)]
        title: Option<String>,
        /// The content (Markdown); without it (or with `-`) it is read from stdin.
        #[arg(long)]
        content: Option<String>,
        /// Read the content from this file.
        #[arg(long, conflicts_with = "content")]
        file: Option<std::path::PathBuf>,
    },
}

/// `mesa reflect`.
#[derive(Debug, Args)]
pub(crate) struct ReflectArgs {
    /// What worked, what failed, what to do differently (`-` reads it from stdin).
    body: String,
    /// succeeded, failed or changes_requested (default: from the run).
    #[arg(long)]
    outcome: Option<String>,
}

/// A client command.
#[derive(Debug)]
pub(crate) enum Call {
    /// `mesa inbox`.
    Inbox,
    /// `mesa issue ...`.
    Issue(IssueCommand),
    /// `mesa wiki ...`.
    Wiki(WikiCommand),
    /// `mesa reflect`.
    Reflect(ReflectArgs),
    /// `mesa usage`.
    Usage,
}

/// Why a command failed.
enum Failure {
    /// The API answered with an error.
    Api { code: String, message: String },
    /// Anything else (configuration, network, bad input).
    Other(String),
}

type Outcome<T> = Result<T, Failure>;

/// Runs a client command and returns the exit status.
pub(crate) fn main(call: Call, out: Output) -> ExitCode {
    // reqwest is built without a crypto provider of its own: ring is the one in the tree.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(call, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Api { code, message }) => {
            eprintln!("error: {code}: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Other(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The API at `MESA_API_URL` with `MESA_API_KEY`.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn from_env() -> Outcome<Api> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base = get("MESA_API_URL").unwrap_or_else(|| "http://127.0.0.1:3001".to_owned());
        let base = base.trim().trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Failure::Other(format!(
                "MESA_API_URL must be an http:// or https:// URL, got {base:?}"
            )));
        }
        let key = get("MESA_API_KEY").ok_or_else(|| {
            Failure::Other(
                "MESA_API_KEY is not set (a run key, agent key or board token)".to_owned(),
            )
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("mesa-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api {
            http,
            base,
            key: key.trim().to_owned(),
        })
    }

    /// Sends a request to `/api/v1{path}` and returns the JSON answer (`null` for 204).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Outcome<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.key)
            .query(query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Other(format!("reading the answer of {url}: {e}")))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(Failure::Api {
            code: error["code"]
                .as_str()
                .map_or_else(|| format!("http_{}", status.as_u16()), str::to_owned),
            message: error["message"].as_str().map_or_else(
                || {
                    status
                        .canonical_reason()
                        .unwrap_or("request failed")
                        .to_owned()
                },
                str::to_owned,
            ),
        })
    }
}

/// `-` means stdin.
fn text_arg(text: &str) -> Outcome<String> {
    if text == "-" {
        read_stdin()
    } else {
        Ok(text.to_owned())
    }
}

fn read_stdin() -> Outcome<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::Other(format!("reading stdin: {e}")))?;
    Ok(s)
}

fn print_json(v: &Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

async fn run(call: Call, out: Output) -> Outcome<()> {
    let api = Api::from_env()?;
    let v = match call {
        Call::Inbox => {
            let v = api.call(Method::GET, "/inbox", &[], None).await?;
            if !out.json {
                print_issue_list(&v, "Nothing in your inbox.");
            }
            v
        }
        Call::Issue(cmd) => issue(&api, cmd, out).await?,
        Call::Wiki(cmd) => wiki(&api, cmd, out).await?,
        Call::Reflect(args) => {
            let mut body = json!({ "body": text_arg(&args.body)? });
            if let Some(o) = args.outcome {
                body["outcome"] = json!(o);
            }
            let v = api
                .call(Method::POST, "/reflections", &[], Some(body))
                .await?;
            if !out.json {
                say!("Reflection recorded ({}).", s(&v["outcome"]));
            }
            v
        }
        Call::Usage => {
            let v = api.call(Method::GET, "/usage", &[], None).await?;
            if !out.json {
                print_usage(&v);
            }
            v
        }
    };
    if out.json {
        print_json(&v);
    }
    Ok(())
}

async fn issue(api: &Api, cmd: IssueCommand, out: Output) -> Outcome<Value> {
    let human = !out.json;
    let path = |key: &str| format!("/issues/{}", key.trim());
    match cmd {
        IssueCommand::Show { key } => {
            let v = api.call(Method::GET, &path(&key), &[], None).await?;
            if human {
                print_issue_detail(&v);
            }
            Ok(v)
        }
        IssueCommand::Create {
            title,
            description,
            issue_type,
            priority,
            assignee,
            parent,
        } => {
            let mut body = json!({ "title": title });
            if let Some(d) = description {
                body["description"] = json!(text_arg(&d)?);
            }
            if let Some(t) = issue_type {
                body["type"] = json!(t);
            }
            if let Some(p) = priority {
                body["priority"] = json!(p);
            }
            if let Some(a) = assignee {
                body["assignee_slug"] = json!(a);
            }
            if let Some(p) = parent {
                body["parent_key"] = json!(p);
            }
            let v = api.call(Method::POST, "/issues", &[], Some(body)).await?;
            if human {
                say!(
                    "Created {}: {} ({}, assigned to {})",
                    s(&v["key"]),
                    s(&v["title"]),
                    s(&v["status"]),
                    v["assignee_slug"].as_str().unwrap_or("nobody")
                );
                print_warnings(&v);
            }
            Ok(v)
        }
        IssueCommand::Checkout { key } => {
            let v = api
                .call(Method::POST, &format!("{}/checkout", path(&key)), &[], None)
                .await?;
            if human {
                say!(
                    "Checked out {}: {} ({})",
                    s(&v["key"]),
                    s(&v["title"]),
                    s(&v["status"])
                );
            }
            Ok(v)
        }
        IssueCommand::Comment {
            key,
            body,
            evidence,
        } => {
            let kind = if evidence { "evidence" } else { "comment" };
            let v = api
                .call(
                    Method::POST,
                    &format!("{}/comments", path(&key)),
                    &[],
                    Some(json!({ "body": text_arg(&body)?, "kind": kind })),
                )
                .await?;
            if human {
                say!("Commented on {} ({kind}).", s(&v["issue_key"]));
            }
            Ok(v)
        }
        IssueCommand::Submit { key, comment } => {
            let mut body = json!({ "status": "submit" });
            if let Some(c) = comment {
                body["comment"] = json!(text_arg(&c)?);
            }
            let v = api
                .call(Method::PATCH, &path(&key), &[], Some(body))
                .await?;
            if human {
                say!("Submitted {}: now {}.", s(&v["key"]), s(&v["status"]));
            }
            Ok(v)
        }
        IssueCommand::Block { key, reason } => {
            let body = json!({ "status": "block", "comment": text_arg(&reason)? });
            let v = api
                .call(Method::PATCH, &path(&key), &[], Some(body))
                .await?;
            if human {
                say!("Blocked {}.", s(&v["key"]));
            }
            Ok(v)
        }
        IssueCommand::Review {
            key,
            decision,
            comment,
        } => {
            let mut body = json!({ "decision": decision });
            if let Some(c) = comment {
                body["comment"] = json!(text_arg(&c)?);
            }
            let v = api
                .call(
                    Method::POST,
                    &format!("{}/review", path(&key)),
                    &[],
                    Some(body),
                )
                .await?;
            if human {
                say!(
                    "Reviewed {} ({decision}): now {}.",
                    s(&v["key"]),
                    s(&v["status"])
                );
            }
            Ok(v)
        }
    }
}

async fn wiki(api: &Api, cmd: WikiCommand, out: Output) -> Outcome<Value> {
    let human = !out.json;
    match cmd {
        WikiCommand::Search { query, limit } => {
            let mut q = vec![("q", query)];
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            let v = api.call(Method::GET, "/wiki/search", &q, None).await?;
            if human {
                let items = v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                if items.is_empty() {
                    say!("No wiki page matches.");
                }
                for hit in items {
                    say!("{}  {}", s(&hit["slug"]), s(&hit["title"]));
                    let snippet = s(&hit["snippet"]);
                    if !snippet.is_empty() {
                        say!("    {}", plain_snippet(snippet));
                    }
                }
            }
            Ok(v)
        }
        WikiCommand::Get { slug } => {
            let v = api
                .call(Method::GET, &format!("/wiki/{}", slug.trim()), &[], None)
                .await?;
            if human {
                say!("# {}", s(&v["title"]));
                say!();
                say!("{}", s(&v["content"]).trim_end());
            }
            Ok(v)
        }
        WikiCommand::Put {
            slug,
            title,
            content,
            file,
        } => {
            let content = match (content, file) {
                (_, Some(path)) if path.as_os_str() != "-" => std::fs::read_to_string(&path)
                    .map_err(|e| Failure::Other(format!("cannot read {}: {e}", path.display())))?,
                (Some(c), None) if c != "-" => c,
                _ => read_stdin()?,
            };
            let slug = slug.trim().to_owned();
            let page = format!("/wiki/{slug}");
            let existing = match api.call(Method::GET, &page, &[], None).await {
                Ok(v) => Some(v),
                Err(Failure::Api { code, .. }) if code == "not_found" => None,
                Err(e) => return Err(e),
            };
            let (v, verb) = match existing {
                Some(current) => {
                    let mut body = json!({ "content": content, "version": current["version"] });
                    if let Some(t) = title {
                        body["title"] = json!(t);
                    }
                    let v = api.call(Method::PATCH, &page, &[], Some(body)).await?;
                    (v, "Updated")
                }
                None => {
                    let body = json!({
                        "slug": slug,
                        "title": title.unwrap_or_else(|| slug.clone()),
                        "content": content,
                    });
                    let v = api.call(Method::POST, "/wiki", &[], Some(body)).await?;
                    (v, "Created")
                }
            };
            if human {
                say!(
                    "{verb} wiki page {} (version {}).",
                    s(&v["slug"]),
                    v["version"]
                );
            }
            Ok(v)
        }
    }
}

/// A search snippet without its `<mark>` tags and HTML escapes.
fn plain_snippet(snippet: &str) -> String {
    snippet
        .replace("<mark>", "")
        .replace("</mark>", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn print_warnings(issue: &Value) {
    for w in issue["warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        say!("warning: {}", s(w));
    }
}

fn issue_line(i: &Value) -> String {
    format!(
        "{:<10} {:<12} P{} {:<18} {}",
        s(&i["key"]),
        s(&i["status"]),
        i["priority"].as_u64().unwrap_or(0),
        i["assignee_slug"].as_str().unwrap_or("-"),
        s(&i["title"])
    )
}

fn print_issue_list(v: &Value, empty: &str) {
    let items = v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        say!("{empty}");
        return;
    }
    for i in items {
        say!("{}", issue_line(i));
    }
}

fn print_issue_detail(v: &Value) {
    let i = &v["issue"];
    say!("{}: {}", s(&i["key"]), s(&i["title"]));
    say!(
        "status: {}   priority: {}   type: {}   assignee: {}",
        s(&i["status"]),
        i["priority"].as_u64().unwrap_or(0),
        s(&i["type"]),
        i["assignee_slug"].as_str().unwrap_or("-")
    );
    if let Some(parent) = i["parent_key"].as_str() {
        say!("parent: {parent}");
    }
    if let Some(reason) = i["cancellation_reason"].as_str() {
        say!("cancelled: {reason}");
    }
    if let Some(stages) = i["stages"].as_array().filter(|s| !s.is_empty()) {
        say!("stages:");
        for st in stages {
            let mark = if s(&st["status"]) == "done" { "x" } else { " " };
            say!("  [{mark}] {}. {}", st["id"], s(&st["title"]));
        }
    }
    print_warnings(i);
    let description = s(&i["description"]).trim();
    if !description.is_empty() {
        say!();
        say!("{description}");
    }
    if let Some(children) = v["children"].as_array().filter(|c| !c.is_empty()) {
        say!();
        say!("sub-issues:");
        for c in children {
            say!("  {}", issue_line(c));
        }
    }
    if let Some(comments) = v["comments"].as_array().filter(|c| !c.is_empty()) {
        say!();
        say!("comments:");
        for c in comments {
            say!(
                "--- {} ({}) at {}",
                s(&c["author"]),
                s(&c["kind"]),
                s(&c["created_at"])
            );
            say!("{}", s(&c["body"]).trim_end());
        }
    }
}

fn print_usage(v: &Value) {
    let who = match v["agent"].as_str() {
        Some(slug) => format!("agent {slug}"),
        None => "the org".to_owned(),
    };
    say!("Usage of {who}:");
    for (label, key) in [
        ("today", "today"),
        ("7 days", "last_7d"),
        ("total", "total"),
    ] {
        say!(
            "  {label:<7} {:>12} tokens  ${:.4}",
            v[key]["tokens"].as_i64().unwrap_or(0),
            v[key]["cost_usd"].as_f64().unwrap_or(0.0)
        );
    }
    say!(
        "  reserved ${:.4}",
        v["reserved_usd"].as_f64().unwrap_or(0.0)
    );
    let budget = &v["budget"];
    let tokens = budget["daily_token_limit"].as_i64().unwrap_or(0);
    let cost = budget["daily_cost_limit_usd"].as_f64().unwrap_or(0.0);
    say!(
        "  daily budget: {} tokens, {}",
        if tokens == 0 {
            "unlimited".to_owned()
        } else {
            tokens.to_string()
        },
        if cost == 0.0 {
            "unlimited $".to_owned()
        } else {
            format!("${cost:.2}")
        }
    );
    let remaining = &v["remaining"];
    say!(
        "  remaining today: {} tokens, {}",
        remaining["tokens"]
            .as_i64()
            .map_or_else(|| "unlimited".to_owned(), |t| t.to_string()),
        remaining["cost_usd"]
            .as_f64()
            .map_or_else(|| "unlimited $".to_owned(), |c| format!("${c:.2}"))
    );
}
