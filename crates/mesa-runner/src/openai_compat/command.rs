//! The `run_command` tool: `sh -c` in the working directory, in a process group of its own,
//! with exactly the run's environment, a time limit and bounded output.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::summary::HeadTail;

/// How long output is still read after the command ended or was killed (a process that left
/// the group could otherwise hold the pipe open for ever).
const DRAIN: Duration = Duration::from_secs(2);

/// Kills the process group when dropped: when the command ends, times out, or the run is
/// cancelled while it runs (the future holding this guard is dropped).
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // ESRCH (already gone) is the normal case.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What to run and under which limits.
pub(crate) struct CommandSpec<'a> {
    /// The shell command.
    pub(crate) command: &'a str,
    /// Its working directory.
    pub(crate) workdir: &'a Path,
    /// Its complete environment.
    pub(crate) env: &'a [(String, String)],
    /// The time limit.
    pub(crate) timeout: Duration,
    /// Output bytes kept (head and tail).
    pub(crate) cap: usize,
}

/// Runs the command and describes the result for the model: the exit code (or signal or
/// timeout) on the first line, then the combined stdout and stderr.
pub(crate) async fn run(spec: &CommandSpec<'_>) -> String {
    match execute(spec).await {
        Ok(text) => text,
        Err(err) => format!("error: cannot run the command: {err}"),
    }
}

async fn execute(spec: &CommandSpec<'_>) -> std::io::Result<String> {
    let (reader, writer) = std::io::pipe()?;
    let mut child = spawn(spec, writer)?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let mut output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let mut buf = HeadTail::new(spec.cap);

    let finished = tokio::time::timeout(spec.timeout, async {
        let mut chunk = vec![0_u8; 8192];
        let mut open = true;
        loop {
            tokio::select! {
                read = output.read(&mut chunk), if open => match read {
                    Ok(0) | Err(_) => open = false,
                    Ok(n) => buf.push(&chunk[..n]),
                },
                status = child.wait() => break status,
            }
        }
    })
    .await;
    // Whatever the command left running in its group goes with it.
    guard.kill();
    drain(&mut output, &mut buf).await;
    let head = match finished {
        Ok(status) => describe(status?),
        Err(_) => {
            let _ = tokio::time::timeout(DRAIN, child.wait()).await;
            format!(
                "timed out after {:?}; the command's process group was killed",
                spec.timeout
            )
        }
    };
    let mut text = head;
    if buf.omitted() > 0 {
        text.push_str(&format!(
            " (output capped: the middle {} bytes are left out)",
            buf.omitted()
        ));
    }
    text.push('\n');
    text.push_str(&buf.text());
    Ok(text)
}

#[expect(
    clippy::disallowed_methods,
    reason = "mesa-runner is the crate that spawns processes"
)]
fn spawn(
    spec: &CommandSpec<'_>,
    writer: std::io::PipeWriter,
) -> std::io::Result<tokio::process::Child> {
    let stderr = writer.try_clone()?;
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(spec.command)
        .current_dir(spec.workdir)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    // `command` holds the parent's copies of the pipe's write end; they go with it, so the
    // pipe ends when the group's last process closes it.
    command.spawn()
}

/// Reads what is left in the pipe, for a bounded time.
async fn drain(output: &mut pipe::Receiver, buf: &mut HeadTail) {
    let _ = tokio::time::timeout(DRAIN, async {
        let mut chunk = vec![0_u8; 8192];
        while let Ok(n) = output.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.push(&chunk[..n]);
        }
    })
    .await;
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code: {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(command: &'a str, dir: &'a Path, env: &'a [(String, String)]) -> CommandSpec<'a> {
        CommandSpec {
            command,
            workdir: dir,
            env,
            timeout: Duration::from_secs(30),
            cap: 64 * 1024,
        }
    }

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    fn path_env() -> Vec<(String, String)> {
        vec![("PATH".to_owned(), PATH.to_owned())]
    }

    #[tokio::test]
    async fn reports_exit_code_and_combined_output() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("GREETING".to_owned(), "hi".to_owned())];
        let text = run(&spec(
            "echo $GREETING; echo oops >&2; pwd; exit 3",
            dir.path(),
            &env,
        ))
        .await;
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            text,
            format!("exit code: 3\nhi\noops\n{}\n", real.display())
        );
    }

    #[tokio::test]
    async fn the_environment_is_exactly_the_given_one() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("ONLY".to_owned(), "1".to_owned())];
        // `env` is not on PATH (there is no PATH), so use the shell's own `export -p`.
        let text = run(&spec("export -p", dir.path(), &env)).await;
        assert!(text.contains("ONLY"), "{text}");
        assert!(!text.contains("HOME="), "{text}");
    }

    #[tokio::test]
    async fn a_background_process_does_not_keep_the_command_alive() {
        let dir = tempfile::tempdir().unwrap();
        let env = path_env();
        let text = run(&spec("sleep 60 & echo started", dir.path(), &env)).await;
        assert_eq!(text, "exit code: 0\nstarted\n");
    }

    #[tokio::test]
    async fn a_command_past_its_limit_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let env = path_env();
        let mut spec = spec("echo before; sleep 60", dir.path(), &env);
        spec.timeout = Duration::from_millis(300);
        let text = run(&spec).await;
        assert!(text.starts_with("timed out after 300ms;"), "{text}");
        assert!(text.ends_with("\nbefore\n"), "{text}");
    }

    #[tokio::test]
    async fn long_output_is_capped_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let env = path_env();
        let mut spec = spec("seq 1 100000", dir.path(), &env);
        spec.cap = 1000;
        let text = run(&spec).await;
        assert!(text.starts_with("exit code: 0 (output capped"), "{text}");
        assert!(text.contains("\n1\n2\n3\n"), "{text}");
        assert!(text.ends_with("\n99999\n100000\n"), "{text}");
        assert!(text.len() < 1200, "{}", text.len());
    }
}
