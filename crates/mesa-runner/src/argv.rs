//! The command line of each CLI runner (SPEC §7.2).
//!
//! The prompt travels on stdin wherever the CLI reads it there (`claude --print`, `codex exec -`,
//! `command`), so a long prompt never meets the kernel's 128 KiB limit on a single argument.
//! `gemini`, `opencode` and `copilot` get it as an argument while it is short; a longer prompt
//! goes on stdin (`gemini`, `opencode`, which read piped input) or, for `copilot`, into a file the
//! short argument points to. Every CLI run also writes the prompt to `MESA_PROMPT_FILE`. The run
//! key never appears in argv: [`build`] refuses a command line that would carry it.

use std::path::{Path, PathBuf};

use mesa_domain::RunnerKind;

use crate::{Invocation, Result, RunnerError};

/// The longest prompt passed as a single argument: below the kernel's per-argument limit
/// (`MAX_ARG_STRLEN`, 128 KiB), with room for the rest of the command line.
pub const MAX_PROMPT_ARG_BYTES: usize = 96 * 1024;

/// Name of the system prompt file written in the scratch directory for `claude_code`.
pub const SYSTEM_PROMPT_FILE: &str = "system-prompt.md";

/// Name of the prompt file in the scratch directory, when the environment names none.
pub const PROMPT_FILE: &str = "prompt.md";

/// A process to start: program, arguments, what to write on its stdin, and the files to write
/// before spawning it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The program, looked up on the run's `PATH` unless it is a path.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Text written to stdin, which is then closed; `None` means stdin is `/dev/null`.
    pub stdin: Option<String>,
    /// Files to write before spawning (path, content): the prompt file, the system prompt file.
    pub files: Vec<(PathBuf, String)>,
}

/// The command line for `inv`'s runner. Fails for runners that start no process and for a
/// `command` runner without a command.
pub fn build(inv: &Invocation) -> Result<CommandLine> {
    let mut line = match inv.config.runner {
        RunnerKind::ClaudeCode => claude(inv),
        RunnerKind::Codex => codex(inv),
        RunnerKind::Gemini => gemini(inv),
        RunnerKind::Opencode => opencode(inv),
        RunnerKind::Copilot => copilot(inv),
        RunnerKind::Command => command(inv)?,
        other => {
            return Err(RunnerError::Config(format!(
                "the {other} runner has no command line"
            )));
        }
    };
    line.files.insert(0, (prompt_file(inv), inv.prompt.clone()));
    guard_run_key(inv, &line)?;
    Ok(line)
}

/// `claude --print --output-format stream-json --verbose ...`, prompt on stdin, archetype in a
/// system prompt file.
fn claude(inv: &Invocation) -> CommandLine {
    let c = &inv.config;
    let mut args = strings(&["--print", "--output-format", "stream-json", "--verbose"]);
    args.extend(["--max-turns".to_owned(), c.max_turns.max(1).to_string()]);
    push_model(&mut args, "--model", &c.model);
    let mut files = Vec::new();
    if let Some(system) = inv
        .system_prompt
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let path = inv.scratch_dir.join(SYSTEM_PROMPT_FILE);
        args.push("--append-system-prompt-file".to_owned());
        args.push(path.display().to_string());
        files.push((path, system.to_owned()));
    }
    if let Some(docs) = artifact_docs(inv) {
        args.extend(["--add-dir".to_owned(), docs]);
    }
    if c.chrome_enabled {
        args.push("--chrome".to_owned());
    }
    for tool in c.allowed_tools.iter().filter(|t| !t.trim().is_empty()) {
        args.extend(["--allowedTools".to_owned(), tool.clone()]);
    }
    for tool in c.disallowed_tools.iter().filter(|t| !t.trim().is_empty()) {
        args.extend(["--disallowedTools".to_owned(), tool.clone()]);
    }
    args.extend(strings(&["--permission-mode", "bypassPermissions"]));
    args.extend(c.runner_args.iter().cloned());
    CommandLine {
        program: program(RunnerKind::ClaudeCode),
        args,
        stdin: Some(inv.prompt.clone()),
        files,
    }
}

/// `codex exec --json --sandbox workspace-write --skip-git-repo-check [--model M] -`, the
/// archetype and prompt on stdin.
fn codex(inv: &Invocation) -> CommandLine {
    let c = &inv.config;
    let mut args = strings(&[
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
    ]);
    push_model(&mut args, "--model", &c.model);
    args.extend(c.runner_args.iter().cloned());
    args.push("-".to_owned());
    CommandLine {
        program: program(RunnerKind::Codex),
        args,
        stdin: Some(full_prompt(inv)),
        files: Vec::new(),
    }
}

/// `gemini -p <prompt> --output-format stream-json --yolo [-m M]`; a long prompt on stdin
/// instead of `-p` (piped input makes gemini non-interactive).
fn gemini(inv: &Invocation) -> CommandLine {
    let prompt = full_prompt(inv);
    let (mut args, stdin) = if fits_in_argv(&prompt) {
        (vec!["-p".to_owned(), prompt], None)
    } else {
        (Vec::new(), Some(prompt))
    };
    args.extend(strings(&["--output-format", "stream-json", "--yolo"]));
    push_model(&mut args, "-m", &inv.config.model);
    args.extend(inv.config.runner_args.iter().cloned());
    CommandLine {
        program: program(RunnerKind::Gemini),
        args,
        stdin,
        files: Vec::new(),
    }
}

/// `opencode run --format json [-m M] <prompt>`; a long prompt on stdin instead (opencode
/// appends piped input to the message).
fn opencode(inv: &Invocation) -> CommandLine {
    let prompt = full_prompt(inv);
    let mut args = strings(&["run", "--format", "json"]);
    push_model(&mut args, "-m", &inv.config.model);
    args.extend(inv.config.runner_args.iter().cloned());
    let stdin = if fits_in_argv(&prompt) {
        args.push(prompt);
        None
    } else {
        Some(prompt)
    };
    CommandLine {
        program: program(RunnerKind::Opencode),
        args,
        stdin,
        files: Vec::new(),
    }
}

/// `copilot -p <prompt> --allow-all-tools [--model M]`; a long prompt goes to a file in the
/// scratch directory (added with `--add-dir`) and `-p` asks the agent to follow it.
fn copilot(inv: &Invocation) -> CommandLine {
    let prompt = full_prompt(inv);
    let mut files = Vec::new();
    let mut args = Vec::new();
    if fits_in_argv(&prompt) {
        args.extend(["-p".to_owned(), prompt]);
    } else {
        let path = inv.scratch_dir.join("copilot-prompt.md");
        args.extend([
            "-p".to_owned(),
            format!(
                "Your complete instructions are in the file {}. Read all of it first, then \
                 follow it exactly.",
                path.display()
            ),
            "--add-dir".to_owned(),
            inv.scratch_dir.display().to_string(),
        ]);
        files.push((path, prompt));
    }
    args.push("--allow-all-tools".to_owned());
    push_model(&mut args, "--model", &inv.config.model);
    args.extend(inv.config.runner_args.iter().cloned());
    CommandLine {
        program: program(RunnerKind::Copilot),
        args,
        stdin: None,
        files,
    }
}

/// The agent's own `command` argv plus `runner_args`, the prompt on stdin.
fn command(inv: &Invocation) -> Result<CommandLine> {
    let c = &inv.config;
    let Some((program, rest)) = c
        .command
        .split_first()
        .filter(|(p, _)| !p.trim().is_empty())
    else {
        return Err(RunnerError::Config(
            "the command runner needs a command (argv) to run".to_owned(),
        ));
    };
    let mut args = rest.to_vec();
    args.extend(c.runner_args.iter().cloned());
    Ok(CommandLine {
        program: program.clone(),
        args,
        stdin: Some(full_prompt(inv)),
        files: Vec::new(),
    })
}

fn program(kind: RunnerKind) -> String {
    kind.binary().unwrap_or(kind.as_str()).to_owned()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn push_model(args: &mut Vec<String>, flag: &str, model: &str) {
    let model = model.trim();
    if !model.is_empty() {
        args.extend([flag.to_owned(), model.to_owned()]);
    }
}

fn fits_in_argv(prompt: &str) -> bool {
    prompt.len() <= MAX_PROMPT_ARG_BYTES
}

/// The prompt with the archetype in front, for runners without a system prompt. The prompt
/// builder normally puts it there already and passes no system prompt to them.
fn full_prompt(inv: &Invocation) -> String {
    match inv.system_prompt.as_deref().map(str::trim) {
        Some(system) if !system.is_empty() => format!("{system}\n\n{}", inv.prompt),
        _ => inv.prompt.clone(),
    }
}

fn env_value<'a>(inv: &'a Invocation, name: &str) -> Option<&'a str> {
    inv.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Where the prompt file goes: `MESA_PROMPT_FILE` when the environment names it, else
/// `prompt.md` in the scratch directory.
fn prompt_file(inv: &Invocation) -> PathBuf {
    env_value(inv, "MESA_PROMPT_FILE")
        .map_or_else(|| inv.scratch_dir.join(PROMPT_FILE), PathBuf::from)
}

/// `MESA_ARTIFACT_DOCS`, when it names an existing directory.
fn artifact_docs(inv: &Invocation) -> Option<String> {
    env_value(inv, "MESA_ARTIFACT_DOCS")
        .filter(|dir| Path::new(dir).is_dir())
        .map(str::to_owned)
}

/// Refuses a command line that carries the run key (SPEC §7.2): it would show in `ps`.
fn guard_run_key(inv: &Invocation, line: &CommandLine) -> Result<()> {
    let Some(key) = env_value(inv, "MESA_API_KEY") else {
        return Ok(());
    };
    if line.program.contains(key) || line.args.iter().any(|a| a.contains(key)) {
        return Err(RunnerError::Config(
            "the run key would appear on the command line; pass secrets through the \
             environment"
                .to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mesa_domain::entity::AgentConfig;
    use mesa_domain::{Name, RunId, RunMode, Slug, WorkingDir};

    use super::*;

    const RUN_KEY: &str = "mesa_run_7f3a9c2e5b1d4f60a8e2";

    fn inv(kind: RunnerKind) -> Invocation {
        let mut config = AgentConfig::new(
            Name::parse("Backend Bea").expect("name"),
            Slug::parse("backend").expect("slug"),
            kind,
            WorkingDir::parse("/srv/project").expect("dir"),
        );
        config.max_turns = 12;
        Invocation {
            run_id: RunId::parse("01937a4e-8c2b-7d3e-9f10-4a5b6c7d8e9f").expect("id"),
            mode: RunMode::Task,
            issue_key: None,
            config,
            prompt: "You are Backend Bea (backend).\nFix MESA-7.".to_owned(),
            system_prompt: None,
            workdir: PathBuf::from("/srv/project"),
            scratch_dir: PathBuf::from("/data/runs/r1"),
            env: vec![
                ("MESA_API_KEY".to_owned(), RUN_KEY.to_owned()),
                (
                    "MESA_PROMPT_FILE".to_owned(),
                    "/data/runs/r1/prompt.md".to_owned(),
                ),
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ],
            timeout: Duration::from_secs(60),
            secrets: vec![RUN_KEY.to_owned()],
        }
    }

    /// The command line as stable text: program and one argument per line, then stdin and
    /// files (long texts shown by size).
    fn render(line: &CommandLine) -> String {
        let show = |t: &str| {
            if t.len() > 200 {
                format!("<{} bytes>", t.len())
            } else {
                format!("{t:?}")
            }
        };
        let mut out = format!("program: {}\n", line.program);
        for a in &line.args {
            out.push_str(&format!("  {}\n", show(a)));
        }
        out.push_str(&format!(
            "stdin: {}\n",
            line.stdin.as_deref().map_or("none".to_owned(), show)
        ));
        for (path, content) in &line.files {
            out.push_str(&format!("file {}: {}\n", path.display(), show(content)));
        }
        out
    }

    fn built(inv: &Invocation) -> CommandLine {
        build(inv).expect("a command line")
    }

    #[test]
    fn claude_code_minimal() {
        insta::assert_snapshot!(render(&built(&inv(RunnerKind::ClaudeCode))));
    }

    #[test]
    fn claude_code_with_everything() {
        let docs = tempfile::tempdir().expect("tempdir");
        let mut i = inv(RunnerKind::ClaudeCode);
        i.config.model = "claude-sonnet-4-5".to_owned();
        i.config.chrome_enabled = true;
        i.config.allowed_tools = vec!["Bash(git *)".to_owned(), "Edit".to_owned()];
        i.config.disallowed_tools = vec!["WebFetch".to_owned()];
        i.config.runner_args = vec!["--effort".to_owned(), "high".to_owned()];
        i.system_prompt = Some("# Backend engineer\nWrite tests.".to_owned());
        let docs_dir = docs.path().display().to_string();
        i.env
            .push(("MESA_ARTIFACT_DOCS".to_owned(), docs_dir.clone()));
        let line = built(&i);
        let expected: Vec<String> = [
            "--print",
            "--output-format",
            "stream-json",
            "--verbose",
            "--max-turns",
            "12",
            "--model",
            "claude-sonnet-4-5",
            "--append-system-prompt-file",
            "/data/runs/r1/system-prompt.md",
            "--add-dir",
            &docs_dir,
            "--chrome",
            "--allowedTools",
            "Bash(git *)",
            "--allowedTools",
            "Edit",
            "--disallowedTools",
            "WebFetch",
            "--permission-mode",
            "bypassPermissions",
            "--effort",
            "high",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(line.program, "claude");
        assert_eq!(line.args, expected);
        assert_eq!(line.stdin.as_deref(), Some(i.prompt.as_str()));
        assert_eq!(
            line.files,
            vec![
                (PathBuf::from("/data/runs/r1/prompt.md"), i.prompt.clone()),
                (
                    PathBuf::from("/data/runs/r1/system-prompt.md"),
                    "# Backend engineer\nWrite tests.".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn claude_code_leaves_out_missing_artifact_docs() {
        let mut i = inv(RunnerKind::ClaudeCode);
        i.env.push((
            "MESA_ARTIFACT_DOCS".to_owned(),
            "/nonexistent/mesa/artifact-docs".to_owned(),
        ));
        assert!(!built(&i).args.iter().any(|a| a == "--add-dir"));
    }

    #[test]
    fn codex_reads_archetype_and_prompt_from_stdin() {
        let mut i = inv(RunnerKind::Codex);
        i.config.model = "gpt-5".to_owned();
        i.config.runner_args = vec!["-c".to_owned(), "model_reasoning_effort=\"low\"".to_owned()];
        i.system_prompt = Some("# Backend engineer".to_owned());
        let line = built(&i);
        assert!(!line.args.iter().any(|a| a == "--full-auto"));
        insta::assert_snapshot!(render(&line));
    }

    #[test]
    fn gemini_short_and_long_prompts() {
        let mut i = inv(RunnerKind::Gemini);
        i.config.model = "gemini-2.5-pro".to_owned();
        insta::assert_snapshot!("gemini_short", render(&built(&i)));
        i.prompt = "x".repeat(MAX_PROMPT_ARG_BYTES + 1);
        let long = built(&i);
        assert_eq!(
            long.args,
            [
                "--output-format",
                "stream-json",
                "--yolo",
                "-m",
                "gemini-2.5-pro"
            ]
        );
        assert_eq!(long.stdin.as_deref(), Some(i.prompt.as_str()));
    }

    #[test]
    fn opencode_short_and_long_prompts() {
        let mut i = inv(RunnerKind::Opencode);
        i.config.model = "anthropic/claude-sonnet-4-5".to_owned();
        insta::assert_snapshot!("opencode_short", render(&built(&i)));
        i.prompt = "y".repeat(200_000);
        let long = built(&i);
        assert_eq!(
            long.args,
            [
                "run",
                "--format",
                "json",
                "-m",
                "anthropic/claude-sonnet-4-5"
            ]
        );
        assert_eq!(long.stdin.as_ref().map(String::len), Some(200_000));
    }

    #[test]
    fn copilot_short_and_long_prompts() {
        let mut i = inv(RunnerKind::Copilot);
        i.config.model = "gpt-5".to_owned();
        insta::assert_snapshot!("copilot_short", render(&built(&i)));
        i.prompt = "z".repeat(MAX_PROMPT_ARG_BYTES * 2);
        insta::assert_snapshot!("copilot_long", render(&built(&i)));
    }

    #[test]
    fn command_runs_the_configured_argv_with_the_prompt_on_stdin() {
        let mut i = inv(RunnerKind::Command);
        i.config.command = vec!["/usr/local/bin/my-agent".to_owned(), "--fast".to_owned()];
        i.config.runner_args = vec!["--verbose".to_owned()];
        let line = built(&i);
        assert_eq!(line.program, "/usr/local/bin/my-agent");
        assert_eq!(line.args, ["--fast", "--verbose"]);
        assert_eq!(line.stdin.as_deref(), Some(i.prompt.as_str()));
        assert_eq!(
            line.files,
            vec![(PathBuf::from("/data/runs/r1/prompt.md"), i.prompt.clone())]
        );
    }

    #[test]
    fn command_without_a_command_is_a_configuration_error() {
        for command in [vec![], vec![" ".to_owned()]] {
            let mut i = inv(RunnerKind::Command);
            i.config.command = command;
            let err = build(&i).expect_err("no command");
            assert!(matches!(err, RunnerError::Config(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                "invalid runner configuration: the command runner needs a command (argv) to run"
            );
        }
    }

    #[test]
    fn runners_without_a_process_have_no_command_line() {
        for kind in [
            RunnerKind::Noop,
            RunnerKind::DryRun,
            RunnerKind::OpenaiCompat,
            RunnerKind::Simulated,
        ] {
            assert!(
                matches!(build(&inv(kind)), Err(RunnerError::Config(_))),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_prompt_file_defaults_to_the_scratch_directory() {
        let mut i = inv(RunnerKind::Codex);
        i.env.retain(|(k, _)| k != "MESA_PROMPT_FILE");
        assert_eq!(
            built(&i).files,
            vec![(PathBuf::from("/data/runs/r1/prompt.md"), i.prompt.clone())]
        );
    }

    #[test]
    fn long_prompts_never_become_one_huge_argument() {
        for kind in RunnerKind::CLI_PREFERENCE
            .iter()
            .chain([&RunnerKind::Command])
        {
            let mut i = inv(*kind);
            i.config.command = vec!["agent".to_owned()];
            i.prompt = "p".repeat(300 * 1024);
            let line = built(&i);
            let longest = line.args.iter().map(String::len).max().unwrap_or(0);
            assert!(longest <= MAX_PROMPT_ARG_BYTES, "{kind}: {longest} bytes");
            let carried = line.stdin.iter().chain(line.files.iter().map(|(_, c)| c));
            assert!(
                carried.clone().any(|t| t.contains(&i.prompt)),
                "{kind} lost the prompt"
            );
        }
    }

    #[test]
    fn the_run_key_never_appears_in_argv() {
        for kind in RunnerKind::CLI_PREFERENCE
            .iter()
            .chain([&RunnerKind::Command])
        {
            let mut i = inv(*kind);
            i.config.command = vec!["agent".to_owned()];
            i.config.model = "claude-sonnet-4-5".to_owned();
            i.config.runner_args = vec!["--flag".to_owned()];
            i.system_prompt = Some("# Role".to_owned());
            let line = built(&i);
            assert!(
                !line.args.iter().any(|a| a.contains(RUN_KEY)) && !line.program.contains(RUN_KEY),
                "{kind}: {line:?}"
            );
            // A run key smuggled into the arguments is refused, without echoing it.
            i.config.runner_args = vec![format!("--header=Authorization: Bearer {RUN_KEY}")];
            let err = build(&i).expect_err("the key must not reach argv");
            assert!(!err.to_string().contains(RUN_KEY), "{kind}");
            // So is a prompt passed as an argument that contains it.
            i.config.runner_args.clear();
            i.prompt = format!("use {RUN_KEY}");
            if let Ok(line) = build(&i) {
                assert!(!line.args.iter().any(|a| a.contains(RUN_KEY)), "{kind}");
            }
        }
    }
}
