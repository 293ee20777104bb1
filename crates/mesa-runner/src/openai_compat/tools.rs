//! The tools offered to the model: files confined to the working directory, shell commands,
//! and the Mesa API with the run's key.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use super::ToolLimits;
use super::command::{self, CommandSpec};
use super::summary::HeadTail;

/// Every tool this runner knows, in the order they are offered.
pub(crate) const TOOL_NAMES: [&str; 5] = [
    "read_file",
    "write_file",
    "list_dir",
    "run_command",
    "mesa_api",
];

/// Most entries `list_dir` returns.
const MAX_DIR_ENTRIES: usize = 1000;

/// Where `mesa_api` calls go and with which key.
#[derive(Debug, Clone)]
pub(crate) struct MesaApi {
    /// `$MESA_API_URL`.
    pub(crate) url: String,
    /// `$MESA_API_KEY`, the run key.
    pub(crate) key: Option<String>,
}

/// The tools of one run.
#[derive(Debug)]
pub(crate) struct ToolBox {
    /// The working directory, canonical.
    pub(crate) root: PathBuf,
    /// The complete environment of commands.
    pub(crate) env: Vec<(String, String)>,
    /// The Mesa API, when the run has one.
    pub(crate) mesa: Option<MesaApi>,
    /// The HTTP client for `mesa_api`.
    pub(crate) client: reqwest::Client,
    /// Limits.
    pub(crate) limits: ToolLimits,
    /// Tools the agent's configuration refuses.
    pub(crate) disallowed: Vec<String>,
}

impl ToolBox {
    /// The names of the tools offered to the model.
    pub(crate) fn offered(&self) -> Vec<&'static str> {
        TOOL_NAMES
            .into_iter()
            .filter(|name| *name != "mesa_api" || self.mesa.is_some())
            .filter(|name| !self.disallowed.iter().any(|d| d == name))
            .collect()
    }

    /// The `tools` array of the request.
    pub(crate) fn specs(&self) -> Vec<Value> {
        self.offered().into_iter().map(spec).collect()
    }

    /// Runs one tool call and returns its result text for the model. Failures are results
    /// (`error: ...`), never errors of the run.
    pub(crate) async fn call(&self, name: &str, arguments: &str) -> String {
        if !self.offered().contains(&name) {
            return format!(
                "error: there is no tool named {name:?}; the tools are: {}",
                self.offered().join(", ")
            );
        }
        let args: Value = match serde_json::from_str(arguments) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(_) => return "error: the arguments must be a JSON object".to_owned(),
            Err(e) => return format!("error: the arguments are not valid JSON: {e}"),
        };
        match name {
            "run_command" => self.run_command(&args).await,
            "mesa_api" => self.mesa_api(&args).await,
            _ => self.file_tool(name, args).await,
        }
    }

    async fn file_tool(&self, name: &str, args: Value) -> String {
        let root = self.root.clone();
        let limits = self.limits;
        let name = name.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let path = string_arg(&args, "path")?;
            match name.as_str() {
                "read_file" => read_file(&root, &path, limits.read_cap),
                "write_file" => write_file(&root, &path, &string_arg(&args, "content")?),
                _ => list_dir(&root, &path),
            }
        });
        match task.await {
            Ok(Ok(text)) | Ok(Err(text)) => text,
            Err(e) => format!("error: the tool failed: {e}"),
        }
    }

    async fn run_command(&self, args: &Value) -> String {
        let command = match string_arg(args, "command") {
            Ok(command) => command,
            Err(e) => return e,
        };
        command::run(&CommandSpec {
            command: &command,
            workdir: &self.root,
            env: &self.env,
            timeout: self.limits.command_timeout,
            cap: self.limits.output_cap,
        })
        .await
    }

    async fn mesa_api(&self, args: &Value) -> String {
        let Some(api) = &self.mesa else {
            return "error: this run has no MESA_API_URL".to_owned();
        };
        match mesa_request(&self.client, api, args, self.limits).await {
            Ok(text) | Err(text) => text,
        }
    }
}

fn string_arg(args: &Value, name: &str) -> Result<String, String> {
    match args.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("error: argument {name:?} must be a string")),
        None => Err(format!("error: missing argument {name:?}")),
    }
}

fn spec(name: &str) -> Value {
    let path = json!({"type": "string",
                      "description": "A path relative to the working directory."});
    let (description, properties, required) = match name {
        "read_file" => (
            "Read a text file in the working directory.",
            json!({"path": path}),
            json!(["path"]),
        ),
        "write_file" => (
            "Create or overwrite a file in the working directory (parent directories are \
             created).",
            json!({"path": path, "content": {"type": "string",
                                            "description": "The complete new content."}}),
            json!(["path", "content"]),
        ),
        "list_dir" => (
            "List a directory of the working directory (directories end with '/').",
            json!({"path": path}),
            json!(["path"]),
        ),
        "run_command" => (
            "Run a shell command (sh -c) in the working directory; returns the exit code and \
             the combined stdout and stderr.",
            json!({"command": {"type": "string", "description": "The shell command."}}),
            json!(["command"]),
        ),
        _ => (
            "Call the Mesa API with this run's key. Returns the HTTP status and the response \
             body.",
            json!({
                "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                "path": {"type": "string",
                         "description": "Path under the API base, e.g. /issues/ENG-1/comments."},
                "body": {"description": "JSON request body, for POST, PUT and PATCH."},
            }),
            json!(["method", "path"]),
        ),
    };
    json!({"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }})
}

/// Resolves `requested` inside `root` (canonical): no absolute paths, no `..` above the root,
/// no symbolic link that leads outside. The path need not exist.
pub(crate) fn resolve(root: &Path, requested: &str) -> Result<PathBuf, String> {
    let shown = if requested.is_empty() { "." } else { requested };
    let outside = || format!("error: {shown}: the path leads outside the working directory");
    let relative = Path::new(shown);
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(outside());
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "error: {shown}: absolute paths are not allowed; use a path relative to \
                     the working directory"
                ));
            }
        }
    }
    let full = root.join(&clean);
    // The deepest part of the path that exists must resolve (following links) inside the root.
    let mut probe = full.as_path();
    loop {
        match std::fs::symlink_metadata(probe) {
            Ok(_) => {
                let real = std::fs::canonicalize(probe).map_err(|_| outside())?;
                return if real.starts_with(root) {
                    Ok(full)
                } else {
                    Err(outside())
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match probe.parent() {
                Some(parent) => probe = parent,
                None => return Err(outside()),
            },
            Err(e) => return Err(format!("error: {shown}: {e}")),
        }
    }
}

fn read_file(root: &Path, requested: &str, cap: usize) -> Result<String, String> {
    let path = resolve(root, requested)?;
    let io = |e: std::io::Error| format!("error: {requested}: {e}");
    let file = std::fs::File::open(&path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut bytes = Vec::new();
    file.take(cap as u64).read_to_end(&mut bytes).map_err(io)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if size > bytes.len() as u64 {
        text.push_str(&format!(
            "\n[truncated: showing the first {} of {size} bytes]",
            bytes.len()
        ));
    }
    Ok(text)
}

fn write_file(root: &Path, requested: &str, content: &str) -> Result<String, String> {
    let path = resolve(root, requested)?;
    let io = |e: std::io::Error| format!("error: {requested}: {e}");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, content).map_err(io)?;
    Ok(format!("wrote {} bytes to {requested}", content.len()))
}

fn list_dir(root: &Path, requested: &str) -> Result<String, String> {
    let path = resolve(root, requested)?;
    let io = |e: std::io::Error| format!("error: {requested}: {e}");
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .map_err(io)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let mut name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                name.push('/');
            }
            Some(name)
        })
        .collect();
    names.sort();
    let total = names.len();
    names.truncate(MAX_DIR_ENTRIES);
    let mut text = names.join("\n");
    if total > MAX_DIR_ENTRIES {
        text.push_str(&format!(
            "\n[{} more entries not shown]",
            total - MAX_DIR_ENTRIES
        ));
    }
    if total == 0 {
        text = "(empty directory)".to_owned();
    }
    Ok(text)
}

async fn mesa_request(
    client: &reqwest::Client,
    api: &MesaApi,
    args: &Value,
    limits: ToolLimits,
) -> Result<String, String> {
    let method = string_arg(args, "method")?.to_ascii_uppercase();
    let method = match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| format!("error: {e}"))?
        }
        other => return Err(format!("error: unsupported method {other:?}")),
    };
    let path = string_arg(args, "path")?;
    if !path.starts_with('/') {
        return Err(format!("error: path {path:?} must start with '/'"));
    }
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let mut request = client.request(method, &url).timeout(limits.command_timeout);
    if let Some(key) = &api.key {
        request = request.bearer_auth(key);
    }
    request = match args.get("body") {
        None | Some(Value::Null) => request,
        // A body given as text is sent as JSON when it is JSON.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(value) => request.json(&value),
            Err(_) => request.body(text.clone()),
        },
        Some(value) => request.json(value),
    };
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("error: the request failed: {}", super::error_chain(&e)))?;
    let status = response.status();
    let mut body = HeadTail::new(limits.output_cap);
    let read = tokio::time::timeout(limits.command_timeout, async {
        while let Some(chunk) = response.chunk().await? {
            body.push(&chunk);
        }
        Ok::<(), reqwest::Error>(())
    })
    .await;
    let note = match read {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => format!("\n[reading the body failed: {e}]"),
        Err(_) => "\n[reading the body timed out]".to_owned(),
    };
    Ok(format!("HTTP {status}\n{}{note}", body.text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn relative_paths_resolve_inside_the_root() {
        let (_dir, root) = root();
        assert_eq!(resolve(&root, "a/b.txt").unwrap(), root.join("a/b.txt"));
        assert_eq!(resolve(&root, "./a/../c").unwrap(), root.join("c"));
        assert_eq!(resolve(&root, "").unwrap(), root);
    }

    #[test]
    fn absolute_paths_and_escapes_are_refused() {
        let (_dir, root) = root();
        let abs = resolve(&root, "/etc/passwd").unwrap_err();
        assert!(abs.contains("absolute paths are not allowed"), "{abs}");
        let up = resolve(&root, "a/../../x").unwrap_err();
        assert!(up.contains("leads outside the working directory"), "{up}");
    }

    #[test]
    fn symlinks_that_lead_outside_are_refused() {
        let (_dir, root) = root();
        let (_other, outside) = super::tests::root();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("missing"), root.join("dangling")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("inner")).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        assert!(resolve(&root, "out/secret").is_err());
        assert!(resolve(&root, "out").is_err());
        assert!(resolve(&root, "dangling").is_err());
        assert_eq!(resolve(&root, "inner/x").unwrap(), root.join("inner/x"));
    }

    #[test]
    fn write_then_read_and_list() {
        let (_dir, root) = root();
        assert_eq!(
            write_file(&root, "src/new.txt", "hello").unwrap(),
            "wrote 5 bytes to src/new.txt"
        );
        assert_eq!(read_file(&root, "src/new.txt", 100).unwrap(), "hello");
        assert_eq!(
            read_file(&root, "src/new.txt", 2).unwrap(),
            "he\n[truncated: showing the first 2 of 5 bytes]"
        );
        assert_eq!(list_dir(&root, ".").unwrap(), "src/");
        assert_eq!(list_dir(&root, "src").unwrap(), "new.txt");
        assert!(
            read_file(&root, "nope", 10)
                .unwrap_err()
                .starts_with("error: nope: ")
        );
    }
}
