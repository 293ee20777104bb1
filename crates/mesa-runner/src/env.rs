//! The environment of a runner process (SPEC §7.2): an allow-list of the server's variables, the
//! provider key under the name the runner expects, the agent's own `env`, and the `MESA_*`
//! variables, in that order of precedence (later wins). Nothing else of the server's
//! environment reaches an agent.

use std::collections::BTreeMap;
use std::fmt;

use mesa_domain::RunnerKind;
use mesa_domain::entity::AgentConfig;

/// Server variables every runner gets: the basics of a Unix session (`PATH`, `HOME`, `USER`,
/// `LOGNAME`, `SHELL`, `LANG`, `LANGUAGE`, `LC_*`, `TERM`, `TMPDIR`, `TZ`), the XDG base
/// directories (`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME`, `XDG_STATE_HOME`,
/// `XDG_RUNTIME_DIR`, where CLIs such as opencode keep their configuration), and the network
/// settings a CLI needs to reach its provider at all (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`,
/// `ALL_PROXY` in either case, `SSL_CERT_FILE`, `SSL_CERT_DIR`, `NODE_EXTRA_CA_CERTS`).
pub const COMMON_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TMPDIR",
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];

/// Name prefixes every runner gets (the locale categories).
pub const COMMON_PREFIXES: &[&str] = &["LC_"];

/// The configuration variables of one runner kind that pass from the server's environment:
/// exact names and name prefixes. Whatever matches, a name that looks secret (see
/// [`looks_secret`]) never passes this way: credentials reach a runner only through the agent's
/// `api_key_env` or its `env`.
///
/// - `claude_code`: `ANTHROPIC_BASE_URL`, `ANTHROPIC_MODEL`, `ANTHROPIC_SMALL_FAST_MODEL`,
///   `ANTHROPIC_DEFAULT_*`, `CLAUDE_CONFIG_DIR`, `CLAUDE_CODE_*`, `DISABLE_*`, `IS_SANDBOX`;
/// - `codex`: `CODEX_HOME`, `CODEX_*`, `OPENAI_BASE_URL`;
/// - `openai_compat`: `OPENAI_BASE_URL` (its tools run commands with this environment);
/// - `gemini`: `GEMINI_*`, `GOOGLE_*` (e.g. `GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`,
///   `GOOGLE_GENAI_USE_VERTEXAI`);
/// - `opencode`: `OPENCODE_*`;
/// - `copilot`: `COPILOT_*`, `GH_HOST`;
/// - `command` and the in-process kinds: nothing beyond [`COMMON_VARS`].
pub fn runner_vars(kind: RunnerKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        RunnerKind::ClaudeCode => (
            &[
                "ANTHROPIC_BASE_URL",
                "ANTHROPIC_MODEL",
                "ANTHROPIC_SMALL_FAST_MODEL",
                "CLAUDE_CONFIG_DIR",
                "IS_SANDBOX",
            ],
            &["ANTHROPIC_DEFAULT_", "CLAUDE_CODE_", "DISABLE_"],
        ),
        RunnerKind::Codex => (&["CODEX_HOME", "OPENAI_BASE_URL"], &["CODEX_"]),
        RunnerKind::OpenaiCompat => (&["OPENAI_BASE_URL"], &[]),
        RunnerKind::Gemini => (&[], &["GEMINI_", "GOOGLE_"]),
        RunnerKind::Opencode => (&[], &["OPENCODE_"]),
        RunnerKind::Copilot => (&["GH_HOST"], &["COPILOT_"]),
        _ => (&[], &[]),
    }
}

/// The variables a runner reads its provider key from (the value of the server variable named
/// by the agent's `api_key_env`); `None` keeps that variable's own name (`opencode`, `command`).
pub fn provider_key_vars(kind: RunnerKind) -> Option<&'static [&'static str]> {
    match kind {
        RunnerKind::ClaudeCode => Some(&["ANTHROPIC_API_KEY"]),
        RunnerKind::Codex | RunnerKind::OpenaiCompat => Some(&["OPENAI_API_KEY"]),
        RunnerKind::Gemini => Some(&["GEMINI_API_KEY"]),
        RunnerKind::Copilot => Some(&["GITHUB_TOKEN", "COPILOT_GITHUB_TOKEN"]),
        _ => None,
    }
}

/// Whether a variable name suggests its value is a credential: it contains `KEY`, `TOKEN`,
/// `SECRET`, `PASSWORD`, `PASSWD` or `CREDENTIAL` (in any case).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
}

/// Whether the server variable `name` may pass to a runner of `kind`.
pub fn allowed(kind: RunnerKind, name: &str) -> bool {
    if COMMON_VARS.contains(&name) || COMMON_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    let (exact, prefixes) = runner_vars(kind);
    (exact.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))) && !looks_secret(name)
}

/// The per-run facts a runner process gets as `MESA_*` variables.
#[derive(Clone, PartialEq, Eq)]
pub struct RunEnv {
    /// `MESA_API_URL`: the server's API base URL.
    pub api_url: String,
    /// `MESA_API_KEY`: the run key (a secret).
    pub api_key: String,
    /// `MESA_AGENT_ID`.
    pub agent_id: String,
    /// `MESA_AGENT_SLUG`.
    pub agent_slug: String,
    /// `MESA_AGENT_NAME`.
    pub agent_name: String,
    /// `MESA_RUN_ID`.
    pub run_id: String,
    /// `MESA_ISSUE_KEY` (empty when the run has no issue).
    pub issue_key: Option<String>,
    /// `MESA_WORKTREE`: where the process runs.
    pub worktree: String,
    /// `MESA_ARTIFACT_DOCS`: `<working_dir>/artifact-docs`.
    pub artifact_docs: String,
    /// `MESA_PROMPT_FILE`: the prompt, as a file.
    pub prompt_file: String,
}

impl fmt::Debug for RunEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunEnv")
            .field("api_url", &self.api_url)
            .field("api_key", &"[REDACTED]")
            .field("agent_id", &self.agent_id)
            .field("agent_slug", &self.agent_slug)
            .field("agent_name", &self.agent_name)
            .field("run_id", &self.run_id)
            .field("issue_key", &self.issue_key)
            .field("worktree", &self.worktree)
            .field("artifact_docs", &self.artifact_docs)
            .field("prompt_file", &self.prompt_file)
            .finish()
    }
}

impl RunEnv {
    /// The `MESA_*` variables.
    pub fn vars(&self) -> [(&'static str, &str); 10] {
        [
            ("MESA_API_URL", &self.api_url),
            ("MESA_API_KEY", &self.api_key),
            ("MESA_AGENT_ID", &self.agent_id),
            ("MESA_AGENT_SLUG", &self.agent_slug),
            ("MESA_AGENT_NAME", &self.agent_name),
            ("MESA_RUN_ID", &self.run_id),
            ("MESA_ISSUE_KEY", self.issue_key.as_deref().unwrap_or("")),
            ("MESA_WORKTREE", &self.worktree),
            ("MESA_ARTIFACT_DOCS", &self.artifact_docs),
            ("MESA_PROMPT_FILE", &self.prompt_file),
        ]
    }
}

/// A composed environment and the values in it that must be scrubbed from any output.
#[derive(Clone, PartialEq, Eq)]
pub struct Composed {
    /// The complete environment of the process, sorted by name, one entry per name.
    pub env: Vec<(String, String)>,
    /// The run key, the provider key, and the values of the agent's secret-looking variables.
    pub secrets: Vec<String>,
}

impl fmt::Debug for Composed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Composed")
            .field("env", &names)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

impl Composed {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The environment of a run of an agent configured as `config`: the allow-listed part of
/// `server_env` ([`allowed`]), then the provider key ([`provider_key_vars`]), then the agent's
/// `env`, then the `MESA_*` variables of `run`, which the agent's `env` cannot override.
pub fn compose(
    server_env: impl IntoIterator<Item = (String, String)>,
    run: &RunEnv,
    config: &AgentConfig,
) -> Composed {
    let kind = config.runner;
    let mut env = BTreeMap::new();
    let mut provider_key = None;
    for (name, value) in server_env {
        if config.api_key_env.as_deref() == Some(name.as_str()) {
            provider_key = Some((name.clone(), value.clone()));
        }
        if allowed(kind, &name) {
            env.insert(name, value);
        }
    }
    let mut secrets = vec![run.api_key.clone()];
    if let Some((name, value)) = provider_key.filter(|(_, v)| !v.is_empty()) {
        match provider_key_vars(kind) {
            Some(targets) => {
                for target in targets {
                    env.insert((*target).to_owned(), value.clone());
                }
            }
            None => {
                env.insert(name, value.clone());
            }
        }
        secrets.push(value);
    }
    let mesa_vars = run.vars();
    for (name, value) in &config.env {
        if mesa_vars.iter().any(|(reserved, _)| reserved == name) {
            continue;
        }
        if looks_secret(name) && !value.is_empty() {
            secrets.push(value.clone());
        }
        env.insert(name.clone(), value.clone());
    }
    for (name, value) in mesa_vars {
        env.insert(name.to_owned(), value.to_owned());
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    Composed {
        env: env.into_iter().collect(),
        secrets,
    }
}

#[cfg(test)]
mod tests {
    use mesa_domain::{Name, Slug, WorkingDir};

    use super::*;

    fn config(kind: RunnerKind) -> AgentConfig {
        AgentConfig::new(
            Name::parse("Eng").unwrap(),
            Slug::parse("engineer").unwrap(),
            kind,
            WorkingDir::parse("/srv/project").unwrap(),
        )
    }

    fn run_env() -> RunEnv {
        RunEnv {
            api_url: "http://127.0.0.1:7070/api/v1".into(),
            api_key: "mesa_rk_0123456789abcdef".into(),
            agent_id: "agent-1".into(),
            agent_slug: "eng".into(),
            agent_name: "Eng".into(),
            run_id: "run-1".into(),
            issue_key: Some("MESA-7".into()),
            worktree: "/data/worktrees/run-1".into(),
            artifact_docs: "/srv/project/artifact-docs".into(),
            prompt_file: "/data/scratch/run-1/prompt.md".into(),
        }
    }

    fn server() -> Vec<(String, String)> {
        [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/home/mesa"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C.UTF-8"),
            ("TERM", "xterm"),
            ("TMPDIR", "/tmp"),
            ("MESA_BOARD_TOKEN", "board-token-very-secret"),
            ("MESA_DATABASE_URL", "sqlite:///data/mesa.db"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("ANTHROPIC_API_KEY", "sk-ant-server-default-key"),
            ("MY_ANTHROPIC", "sk-ant-agent-key-0001"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999"),
            ("CLAUDE_CODE_MAX_RETRIES", "1"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "oauth-token-secret"),
            ("DISABLE_TELEMETRY", "1"),
            ("CODEX_HOME", "/home/mesa/.codex"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8888/v1"),
            ("GEMINI_CLI_HOME", "/home/mesa/.gemini"),
            ("GOOGLE_CLOUD_PROJECT", "proj"),
            ("GOOGLE_API_KEY", "google-key-secret"),
            ("OPENCODE_CONFIG", "/home/mesa/opencode.json"),
            ("COPILOT_MODEL", "gpt-5"),
            ("EDITOR", "vim"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn names(c: &Composed) -> Vec<&str> {
        c.env.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn claude_gets_the_allow_list_its_key_and_the_mesa_vars() {
        let mut cfg = config(RunnerKind::ClaudeCode);
        cfg.api_key_env = Some("MY_ANTHROPIC".into());
        let c = compose(server(), &run_env(), &cfg);
        assert_eq!(
            names(&c),
            [
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                "CLAUDE_CODE_MAX_RETRIES",
                "DISABLE_TELEMETRY",
                "HOME",
                "LANG",
                "LC_ALL",
                "MESA_AGENT_ID",
                "MESA_AGENT_NAME",
                "MESA_AGENT_SLUG",
                "MESA_API_KEY",
                "MESA_API_URL",
                "MESA_ARTIFACT_DOCS",
                "MESA_ISSUE_KEY",
                "MESA_PROMPT_FILE",
                "MESA_RUN_ID",
                "MESA_WORKTREE",
                "PATH",
                "TERM",
                "TMPDIR",
            ]
        );
        // The key named by api_key_env, not the server's own ANTHROPIC_API_KEY.
        assert_eq!(c.get("ANTHROPIC_API_KEY"), Some("sk-ant-agent-key-0001"));
        assert_eq!(c.get("MESA_API_KEY"), Some("mesa_rk_0123456789abcdef"));
        assert_eq!(c.get("MESA_ISSUE_KEY"), Some("MESA-7"));
        assert_eq!(
            c.secrets,
            ["mesa_rk_0123456789abcdef", "sk-ant-agent-key-0001"]
        );
    }

    #[test]
    fn server_secrets_never_pass() {
        for kind in [
            RunnerKind::ClaudeCode,
            RunnerKind::Codex,
            RunnerKind::Gemini,
            RunnerKind::Opencode,
            RunnerKind::Copilot,
            RunnerKind::OpenaiCompat,
            RunnerKind::Command,
        ] {
            let c = compose(server(), &run_env(), &config(kind));
            for name in [
                "MESA_BOARD_TOKEN",
                "MESA_DATABASE_URL",
                "AWS_SECRET_ACCESS_KEY",
                "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "GOOGLE_API_KEY",
                "EDITOR",
            ] {
                assert_eq!(c.get(name), None, "{name} passed to {kind}");
            }
            for (_, value) in &c.env {
                assert!(!value.contains("secret"), "{value} passed to {kind}");
            }
        }
    }

    #[test]
    fn each_runner_gets_its_own_config_vars() {
        let cases: [(RunnerKind, &[&str], &[&str]); 5] = [
            (
                RunnerKind::Codex,
                &["CODEX_HOME", "OPENAI_BASE_URL"],
                &["ANTHROPIC_BASE_URL", "GEMINI_CLI_HOME"],
            ),
            (
                RunnerKind::Gemini,
                &["GEMINI_CLI_HOME", "GOOGLE_CLOUD_PROJECT"],
                &["CODEX_HOME", "CLAUDE_CODE_MAX_RETRIES"],
            ),
            (
                RunnerKind::Opencode,
                &["OPENCODE_CONFIG"],
                &["OPENAI_BASE_URL", "GOOGLE_CLOUD_PROJECT"],
            ),
            (
                RunnerKind::Copilot,
                &["COPILOT_MODEL"],
                &["OPENCODE_CONFIG", "CODEX_HOME"],
            ),
            (
                RunnerKind::Command,
                &["PATH", "HOME"],
                &["OPENAI_BASE_URL", "COPILOT_MODEL", "DISABLE_TELEMETRY"],
            ),
        ];
        for (kind, present, absent) in cases {
            let c = compose(server(), &run_env(), &config(kind));
            for name in present {
                assert!(c.get(name).is_some(), "{name} missing for {kind}");
            }
            for name in absent {
                assert_eq!(c.get(name), None, "{name} passed to {kind}");
            }
        }
    }

    #[test]
    fn the_provider_key_is_mapped_per_runner() {
        let cases: [(RunnerKind, &[&str]); 6] = [
            (RunnerKind::ClaudeCode, &["ANTHROPIC_API_KEY"]),
            (RunnerKind::Codex, &["OPENAI_API_KEY"]),
            (RunnerKind::OpenaiCompat, &["OPENAI_API_KEY"]),
            (RunnerKind::Gemini, &["GEMINI_API_KEY"]),
            (
                RunnerKind::Copilot,
                &["GITHUB_TOKEN", "COPILOT_GITHUB_TOKEN"],
            ),
            (RunnerKind::Opencode, &["PROVIDER_KEY"]),
        ];
        for (kind, targets) in cases {
            let mut cfg = config(kind);
            cfg.api_key_env = Some("PROVIDER_KEY".into());
            let mut env = server();
            env.push(("PROVIDER_KEY".into(), "provider-key-value-42".into()));
            let c = compose(env, &run_env(), &cfg);
            for target in targets {
                assert_eq!(c.get(target), Some("provider-key-value-42"), "{kind}");
            }
            if targets != ["PROVIDER_KEY"] {
                assert_eq!(c.get("PROVIDER_KEY"), None, "{kind}");
            }
            assert!(c.secrets.contains(&"provider-key-value-42".to_owned()));
        }
    }

    #[test]
    fn a_missing_or_empty_provider_key_sets_nothing() {
        let mut cfg = config(RunnerKind::Codex);
        cfg.api_key_env = Some("NOT_SET".into());
        let c = compose(server(), &run_env(), &cfg);
        assert_eq!(c.get("OPENAI_API_KEY"), None);
        let mut env = server();
        env.push(("NOT_SET".into(), String::new()));
        let c = compose(env, &run_env(), &cfg);
        assert_eq!(c.get("OPENAI_API_KEY"), None);
        assert_eq!(c.secrets, ["mesa_rk_0123456789abcdef"]);
    }

    #[test]
    fn the_agent_env_overrides_the_server_but_not_mesa_vars() {
        let mut cfg = config(RunnerKind::Command);
        cfg.env.insert("PATH".into(), "/opt/agent/bin".into());
        cfg.env.insert("MESA_API_KEY".into(), "stolen".into());
        cfg.env.insert("MESA_RUN_ID".into(), "other".into());
        cfg.env.insert("FEATURE_FLAG".into(), "on".into());
        cfg.env
            .insert("DEPLOY_TOKEN".into(), "deploy-token-value".into());
        cfg.env.insert("db_password".into(), "pw-value-123".into());
        let c = compose(server(), &run_env(), &cfg);
        assert_eq!(c.get("PATH"), Some("/opt/agent/bin"));
        assert_eq!(c.get("MESA_API_KEY"), Some("mesa_rk_0123456789abcdef"));
        assert_eq!(c.get("MESA_RUN_ID"), Some("run-1"));
        assert_eq!(c.get("FEATURE_FLAG"), Some("on"));
        assert_eq!(
            c.secrets,
            [
                "deploy-token-value",
                "mesa_rk_0123456789abcdef",
                "pw-value-123"
            ]
        );
    }

    #[test]
    fn a_run_without_issue_has_an_empty_issue_key() {
        let mut run = run_env();
        run.issue_key = None;
        let mut cfg = config(RunnerKind::Command);
        cfg.env.insert("MESA_ISSUE_KEY".into(), "FAKE-1".into());
        let c = compose(server(), &run, &cfg);
        assert_eq!(c.get("MESA_ISSUE_KEY"), Some(""));
    }

    #[test]
    fn each_name_appears_once_and_later_server_values_win() {
        let mut env = server();
        env.push(("PATH".into(), "/second".into()));
        let c = compose(env, &run_env(), &config(RunnerKind::Command));
        assert_eq!(c.get("PATH"), Some("/second"));
        let mut seen = names(&c);
        seen.dedup();
        assert_eq!(seen.len(), c.env.len());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = compose(server(), &run_env(), &config(RunnerKind::Command));
        let shown = format!("{c:?} {:?}", run_env());
        assert!(!shown.contains("mesa_rk_0123456789abcdef"), "{shown}");
        assert!(shown.contains("MESA_API_KEY"));
    }

    #[test]
    fn secret_looking_names() {
        for name in [
            "API_KEY",
            "github_token",
            "Client_Secret",
            "DB_PASSWORD",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PATH", "HOME", "OPENAI_BASE_URL", "MODEL"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
