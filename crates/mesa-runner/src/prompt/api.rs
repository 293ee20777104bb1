//! Sections 5 and 6: the rules of the run and the API reference (curl lines with
//! `$MESA_API_URL` and `$MESA_API_KEY`, plus the `mesa` client commands when installed). The
//! routes and body fields are those of `crates/mesa-http/src/api` (see `docs/api.md`).

use mesa_domain::RunMode;

use super::input::{PromptInput, Workspace};

/// One API call of the reference.
struct Call {
    /// What it is for (a shell comment above the line).
    purpose: String,
    method: &'static str,
    /// The path under `/api/v1`.
    path: String,
    /// The JSON body, if any.
    body: Option<String>,
}

impl Call {
    fn new(purpose: impl Into<String>, method: &'static str, path: impl Into<String>) -> Self {
        Call {
            purpose: purpose.into(),
            method,
            path: path.into(),
            body: None,
        }
    }

    fn body(mut self, json: &str) -> Self {
        self.body = Some(json.to_owned());
        self
    }

    fn render(&self) -> String {
        let method = if self.method == "GET" {
            String::new()
        } else {
            format!("-X {} ", self.method)
        };
        let body = self
            .body
            .as_deref()
            .map(|b| format!(" -H \"Content-Type: application/json\" -d '{b}'"))
            .unwrap_or_default();
        format!(
            "# {}\ncurl -sS {method}\"$MESA_API_URL/api/v1{}\" -H \"Authorization: Bearer \
             $MESA_API_KEY\"{body}",
            self.purpose, self.path
        )
    }
}

/// The issue key to put in commands: the run's, or a `KEY` placeholder.
fn key_of(input: &PromptInput) -> String {
    match (&input.issue, input.mode) {
        (Some(issue), RunMode::Task | RunMode::Review) => issue.key.to_string(),
        _ => "KEY".to_owned(),
    }
}

/// `## Rules` for the run's mode and role.
pub(super) fn rules(input: &PromptInput) -> String {
    let key = key_of(input);
    let when_stuck = match input.mode {
        RunMode::Task => "ask in a comment on the issue, and block it if you cannot go on",
        RunMode::Review => "escalate the review with a comment saying what must be decided",
        RunMode::Heartbeat | RunMode::Cron | RunMode::Audit => {
            "ask in a comment on the issue concerned"
        }
    };
    let mut rules = vec![format!(
        "You work autonomously. Nobody watches this session and nobody will answer a question \
         asked here: never ask for confirmation or wait for input. When you need a decision, \
         {when_stuck}."
    )];
    rules.extend(match input.mode {
        RunMode::Task => task_rules(input, &key),
        RunMode::Review => review_rules(&key),
        RunMode::Heartbeat => heartbeat_rules(input),
        RunMode::Cron => cron_rules(),
        RunMode::Audit => audit_rules(),
    });
    rules.push(
        "Your key is in `$MESA_API_KEY`: use the variable, never print it, paste its value or \
         write it to a file."
            .to_owned(),
    );
    let list: Vec<_> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}. {r}", i + 1))
        .collect();
    format!("## Rules\n\n{}", list.join("\n"))
}

fn task_rules(input: &PromptInput, key: &str) -> Vec<String> {
    let mut rules = vec![
        format!(
            "Check out {key} first, before anything else. A 409 `checkout_conflict` means \
             another agent holds it: stop there and end the run."
        ),
        "Post progress as comments at each meaningful step: what you did, what you decided and \
         why. Mark finished stages with a comment line `Stage N: <title> - Complete`."
            .to_owned(),
    ];
    if input.agent.is_ceo() {
        rules.push(format!(
            "Delegate, never implement: split the work into sub-issues with `parent_key` \
             {key}, an `## Acceptance Criteria` section and an `assignee_slug` from your team \
             (search for similar issues first). Submit {key} once every sub-issue is finished."
        ));
    } else if matches!(input.workspace, Workspace::InPlace { .. }) {
        rules.push(
            "This run is not isolated: keep your changes to what the issue needs.".to_owned(),
        );
    } else {
        rules.push(
            "Work only in your worktree and commit on its branch; never push to or merge into \
             the main branch."
                .to_owned(),
        );
    }
    rules.extend([
        "Before submitting, post the proof that the work is done as a comment with \
         `\"kind\": \"evidence\"`: the commands you ran with the tail of their output, links, \
         what a reviewer should look at."
            .to_owned(),
        format!(
            "Then submit {key} for review (status `in_review`) with a comment summarizing the \
             change."
        ),
        "When you are stuck (missing access, an unclear or contradictory requirement, a \
         dependency you do not own), block the issue with the exact reason and what would \
         unblock it. Do not retry the same failing step in a loop."
            .to_owned(),
        reflect_rule(),
    ]);
    rules
}

fn review_rules(key: &str) -> Vec<String> {
    vec![
        format!(
            "You review {key}; you do not work on it. Do not check it out, and never edit, \
             commit to, push or rebase its branch."
        ),
        "Judge the change against the description, its acceptance criteria and the evidence; \
         run the project's checks when you can."
            .to_owned(),
        format!(
            "Decide with one call to `POST /api/v1/issues/{key}/review`: `approve` when the \
             criteria are met and the evidence convinces you; `request_changes` with exact, \
             actionable reasons (what fails, where, what is expected); `escalate` when the board \
             must decide; `reject` only when the work should not be done at all. \
             `request_changes` and `reject` need a comment."
        ),
        reflect_rule(),
    ]
}

fn heartbeat_rules(input: &PromptInput) -> Vec<String> {
    let mut rules = vec![
        "Act where you are needed: answer questions asked of you in comments, resolve the \
         approvals addressed to you, and move your inbox forward in its order."
            .to_owned(),
    ];
    if input.agent.is_ceo() {
        rules.push(
            "As CEO: delegate unassigned or unmanaged work to your team, decide what waits on \
             you, turn backlog input into issues, and move a finished work block on (status \
             `ready`)."
                .to_owned(),
        );
    }
    rules.extend([
        "To work on an issue, check it out first and follow the task rules: progress comments, \
         `kind: evidence` before submitting, block with a reason when stuck. Take at most one \
         issue in this run."
            .to_owned(),
        "If nothing needs you, end the run at once with a one-line summary; do not invent work."
            .to_owned(),
    ]);
    rules
}

fn cron_rules() -> Vec<String> {
    vec![
        "Do the scheduled task above. Report what you found as comments on the issues it \
         concerns, or create issues for follow-up work (search for similar issues first)."
            .to_owned(),
        "If there is nothing to do, end the run at once with a one-line summary.".to_owned(),
    ]
}

fn audit_rules() -> Vec<String> {
    vec![
        "Never edit code or files: you observe and propose.".to_owned(),
        "Base every finding on the figures above or on what you read through the API; name \
         the agents, issues and runs concerned."
            .to_owned(),
        "Propose improvements: archetype patches with a rationale, skills worth promoting, and \
         improvement issues (search for similar issues first). Directives are the board's: \
         suggest them in your findings."
            .to_owned(),
        "End with your findings as the final message: what works, what fails, what you \
         proposed. Mesa stores it on the audit."
            .to_owned(),
    ]
}

fn reflect_rule() -> String {
    "End with a reflection (`POST /api/v1/reflections`): what worked, what failed, what you would \
     do differently next time. If you cannot call the API, end your final message with a \
     `REFLECTION:` line followed by it."
        .to_owned()
}

/// `## API reference` for the run's mode and role.
pub(super) fn reference(input: &PromptInput) -> String {
    let key = key_of(input);
    let calls: Vec<_> = calls(input, &key).iter().map(Call::render).collect();
    let commands = if input.client_installed {
        client_commands(input, &key)
    } else {
        Vec::new()
    };
    let uses_placeholder = calls
        .iter()
        .chain(&commands)
        .any(|c| c.contains("/KEY") || c.contains(" KEY"));
    let placeholder = if uses_placeholder {
        " `KEY` stands for an issue key such as `MESA-12`."
    } else {
        ""
    };
    let mut out = format!(
        "## API reference\n\nMesa's API is at `$MESA_API_URL`, routes under `/api/v1`, JSON \
         bodies; authenticate with `$MESA_API_KEY` as below.{placeholder} Errors come as \
         `{{\"error\": {{\"code\", \"message\"}}}}`; a 409 means the issue is not in the state you \
         expected: read it again. For long text, write the JSON to a file and send it with \
         `-d @file.json`.\n\n```sh\n{}\n```",
        calls.join("\n\n")
    );
    if !commands.is_empty() {
        out.push_str(&format!(
            "\n\nThe `mesa` client makes the same calls with the same variables (`--json` prints \
             the API's JSON; `-` as a text argument reads it from stdin):\n\n```sh\n{}\n```",
            commands.join("\n")
        ));
    }
    out
}

fn calls(input: &PromptInput, key: &str) -> Vec<Call> {
    let ceo = input.agent.is_ceo();
    let mut calls = match input.mode {
        RunMode::Task => task_calls(key, ceo),
        RunMode::Review => review_calls(key),
        RunMode::Heartbeat => heartbeat_calls(key),
        RunMode::Cron => cron_calls(key),
        RunMode::Audit => audit_calls(),
    };
    if ceo && !matches!(input.mode, RunMode::Review | RunMode::Audit) {
        calls.extend(ceo_calls());
    }
    calls
}

fn show(key: &str) -> Call {
    Call::new(
        format!("Read {key} with its comments, sub-issues and runs"),
        "GET",
        format!("/issues/{key}"),
    )
}

fn comment(key: &str) -> Call {
    Call::new(
        "Comment (progress, questions, decisions)",
        "POST",
        format!("/issues/{key}/comments"),
    )
    .body(r#"{"body":"<markdown>"}"#)
}

fn similar() -> Call {
    Call::new(
        "Look for similar issues before creating one",
        "POST",
        "/issues/similar",
    )
    .body(r#"{"title":"<title>"}"#)
}

fn create(parent: Option<&str>) -> Call {
    let parent = parent
        .map(|k| format!(r#","parent_key":"{k}""#))
        .unwrap_or_default();
    Call::new(
        "Create an issue (201; 409 `duplicate` names the existing key)",
        "POST",
        "/issues",
    )
    .body(&format!(
        r#"{{"title":"<title>","description":"<context and ## Acceptance Criteria>","type":"task","priority":2,"assignee_slug":"<agent slug>"{parent}}}"#
    ))
}

fn reflect() -> Call {
    Call::new("Reflect at the end", "POST", "/reflections")
        .body(r#"{"body":"<what worked, what failed, what to do differently>"}"#)
}

fn inbox() -> Call {
    Call::new(
        "Your inbox: your open issues and the reviews waiting for you",
        "GET",
        "/inbox",
    )
}

fn task_calls(key: &str, ceo: bool) -> Vec<Call> {
    let mut calls = vec![
        Call::new(
            format!("Check out {key} (first!)"),
            "POST",
            format!("/issues/{key}/checkout"),
        ),
        show(key),
        comment(key),
        Call::new(
            "Post evidence of done work",
            "POST",
            format!("/issues/{key}/comments"),
        )
        .body(r#"{"body":"<commands run and the tail of their output, links>","kind":"evidence"}"#),
        Call::new("Submit for review", "PATCH", format!("/issues/{key}"))
            .body(r#"{"status":"in_review","comment":"<what changed>"}"#),
        Call::new("Block, saying why", "PATCH", format!("/issues/{key}"))
            .body(r#"{"status":"blocked","comment":"<the reason and what would unblock it>"}"#),
        similar(),
        create(Some(key)),
    ];
    if !ceo {
        calls.push(Call::new(
            "Search the wiki",
            "GET",
            "/wiki/search?q=<words>",
        ));
    }
    calls.push(reflect());
    calls
}

fn review_calls(key: &str) -> Vec<Call> {
    vec![
        show(key),
        Call::new("Approve", "POST", format!("/issues/{key}/review"))
            .body(r#"{"decision":"approve","comment":"<what you checked>"}"#),
        Call::new("Request changes", "POST", format!("/issues/{key}/review"))
            .body(r#"{"decision":"request_changes","comment":"<exactly what to fix>"}"#),
        comment(key),
        reflect(),
    ]
}

fn heartbeat_calls(key: &str) -> Vec<Call> {
    vec![
        inbox(),
        show(key),
        Call::new(
            "Check out an issue to work on it",
            "POST",
            format!("/issues/{key}/checkout"),
        ),
        comment(key),
        Call::new(
            "Approvals waiting for your decision",
            "GET",
            "/approvals?status=pending&approver=me",
        ),
        Call::new(
            "Resolve an approval addressed to you",
            "POST",
            "/approvals/<id>/resolve",
        )
        .body(r#"{"decision":"approve","comment":"<why>"}"#),
    ]
}

fn cron_calls(key: &str) -> Vec<Call> {
    vec![inbox(), show(key), comment(key), similar(), create(None)]
}

fn audit_calls() -> Vec<Call> {
    vec![
        Call::new("Runs of an agent", "GET", "/runs?agent=<slug>&limit=50"),
        Call::new(
            "An archetype with its versions",
            "GET",
            "/archetypes/<slug>",
        ),
        Call::new(
            "Propose an archetype patch (the board decides)",
            "POST",
            "/archetype-patches",
        )
        .body(r#"{"archetype_slug":"<slug>","proposed_body":"<the whole new body>","rationale":"<the evidence for it>"}"#),
        Call::new("Promote a skill", "POST", "/skills").body(
            r#"{"slug":"<slug>","title":"<title>","body":"<markdown>","tags":["<tag>"]}"#,
        ),
        similar(),
        create(None),
    ]
}

fn ceo_calls() -> Vec<Call> {
    vec![
        Call::new("Your team, with roles and reporting lines", "GET", "/agents"),
        Call::new(
            "Propose a work block",
            "POST",
            "/work-blocks",
        )
        .body(r#"{"title":"<title>","goal":"<goal>","acceptance_criteria":"<criteria>","north_star_metric":"<metric>","north_star_target":100}"#),
        Call::new("Add an issue to a work block", "POST", "/work-blocks/<id>/issues")
            .body(r#"{"issue_key":"<issue key>"}"#),
        Call::new(
            "Ask to activate or ship a block (creates a board approval, 202), or mark it ready",
            "PATCH",
            "/work-blocks/<id>",
        )
        .body(r#"{"status":"active"}"#),
        Call::new(
            "Record a north-star measurement",
            "PATCH",
            "/work-blocks/<id>",
        )
        .body(r#"{"north_star_current":42}"#),
        Call::new(
            "Pending approvals",
            "GET",
            "/approvals?status=pending",
        ),
    ]
}

fn client_commands(input: &PromptInput, key: &str) -> Vec<String> {
    let mut cmds: Vec<String> = match input.mode {
        RunMode::Task => vec![
            format!("mesa issue checkout {key}"),
            format!("mesa issue show {key}"),
            format!("mesa issue comment {key} \"<progress>\""),
            format!("mesa issue comment {key} --evidence \"<commands run and their output>\""),
            format!("mesa issue submit {key} \"<what changed>\""),
            format!("mesa issue block {key} \"<the reason>\""),
            format!(
                "mesa issue create \"<title>\" --description - --assignee <slug> --parent {key}"
            ),
            "mesa wiki search \"<words>\"".to_owned(),
            "mesa reflect \"<what worked, what failed, what to do differently>\"".to_owned(),
        ],
        RunMode::Review => vec![
            format!("mesa issue show {key}"),
            format!("mesa issue review {key} approve \"<what you checked>\""),
            format!("mesa issue review {key} request_changes \"<exactly what to fix>\""),
            "mesa reflect \"<what worked, what failed, what to do differently>\"".to_owned(),
        ],
        RunMode::Heartbeat => vec![
            "mesa inbox".to_owned(),
            format!("mesa issue show {key}"),
            format!("mesa issue checkout {key}"),
            format!("mesa issue comment {key} \"<text>\""),
        ],
        RunMode::Cron | RunMode::Audit => vec![
            "mesa inbox".to_owned(),
            format!("mesa issue show {key}"),
            format!("mesa issue comment {key} \"<text>\""),
            "mesa issue create \"<title>\" --description -".to_owned(),
            "mesa wiki search \"<words>\"".to_owned(),
        ],
    };
    cmds.push("mesa usage".to_owned());
    cmds
}
