//! Spawning a runner process and following it to its end (SPEC §7.5).
//!
//! The process gets exactly the environment it is given, runs in a process group of its own and
//! has its stdout and stderr read line by line as they come. A deadline or a cancellation sends
//! SIGTERM to the whole group and SIGKILL after a grace period. Once the process itself has
//! exited its output is read for a bounded time only, then the group is killed, so a leftover
//! grandchild that holds a pipe open cannot keep a run alive.

use std::borrow::Cow;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::capture::LineSplitter;
use crate::scrub::Scrubber;
use crate::{ProcessExit, Result, RunnerError, RunnerEvent, Stream};

/// Default time between SIGTERM and SIGKILL (SPEC §7.5).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// Default time output is still read after the process exited.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The longest stderr line kept as [`ProcessExit::last_stderr_line`], in bytes.
const LAST_STDERR_MAX: usize = 4096;

/// Lines read but not yet handled; bounds memory when the event receiver is slow.
const LINE_QUEUE: usize = 256;

/// Bytes read from a pipe at once.
const READ_CHUNK: usize = 64 * 1024;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// A program name looked up on the `PATH` of [`ProcessSpec::env`], or a path (relative
    /// paths are taken from [`ProcessSpec::cwd`]).
    pub program: String,
    /// Arguments, without the program.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment; nothing of the server's own is added.
    pub env: Vec<(String, String)>,
    /// Text written to stdin, which is then closed; `None` gives `/dev/null`.
    pub stdin: Option<String>,
    /// Wall-clock limit, from the spawn.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL on timeout or cancel.
    pub kill_grace: Duration,
    /// How long output is still read after the process exited.
    pub drain_grace: Duration,
}

impl ProcessSpec {
    /// A spec with stdin from `/dev/null` and the default grace periods.
    pub fn new(
        program: impl Into<String>,
        args: Vec<String>,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Self {
        ProcessSpec {
            program: program.into(),
            args,
            cwd,
            env,
            stdin: None,
            timeout,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_grace: DEFAULT_DRAIN_GRACE,
        }
    }
}

/// Finds the executable `program` names: a path (relative to `cwd`) when it contains a `/`,
/// else the first match on the `PATH` of `env`.
pub fn resolve_program(program: &str, cwd: &Path, env: &[(String, String)]) -> Result<PathBuf> {
    let unavailable = || RunnerError::Unavailable {
        binary: program.to_owned(),
    };
    if program.is_empty() {
        return Err(unavailable());
    }
    if program.contains('/') {
        let path = cwd.join(program);
        return is_executable(&path).then_some(path).ok_or_else(unavailable);
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(unavailable)
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Sends SIGKILL to process group `pgid`; false if there is no such group (or it cannot be
/// signalled). Refuses groups 0 and 1, which would mean the caller's own group or init.
pub fn kill_group(pgid: i32) -> bool {
    signal_group(pgid, Some(Signal::SIGKILL)).is_ok()
}

/// Whether process group `pgid` still has members (signal 0).
pub fn group_alive(pgid: i32) -> bool {
    match signal_group(pgid, None) {
        Ok(()) => true,
        Err(errno) => errno == Errno::EPERM,
    }
}

/// `killpg`, refusing the groups that do not belong to a run.
fn signal_group(pgid: i32, signal: Option<Signal>) -> std::result::Result<(), Errno> {
    if pgid <= 1 {
        return Err(Errno::ESRCH);
    }
    killpg(Pid::from_raw(pgid), signal)
}

/// Kills the group when dropped, so that a run abandoned half-way (its future dropped) leaves
/// no processes behind.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Builds the command; the one place this crate constructs a process.
#[expect(
    clippy::disallowed_methods,
    reason = "mesa-runner is the crate that spawns processes (STYLE §2.2)"
)]
fn command(program: &Path, spec: &ProcessSpec) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg0(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Reads `pipe` line by line into `lines` until end of file or until nobody listens.
async fn read_lines(
    mut pipe: impl AsyncRead + Unpin,
    stream: Stream,
    lines: mpsc::Sender<(Stream, String)>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0_u8; READ_CHUNK];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut input = &buf[..n];
        while let Some(line) = splitter.next_line(&mut input) {
            if lines.send((stream, line)).await.is_err() {
                return;
            }
        }
    }
    if let Some(line) = splitter.finish() {
        let _ = lines.send((stream, line)).await;
    }
}

/// Where a run is between spawn and the end of its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Running; the timer is the deadline.
    Running,
    /// SIGTERM sent; the timer is when SIGKILL follows.
    Terminating,
    /// SIGKILL sent; waiting for the process to be reaped.
    Killed,
    /// The process exited; the timer ends the draining of its output.
    Draining,
}

/// Everything the main loop of [`run_process`] keeps track of.
struct Follow<'a> {
    scrubber: &'a Scrubber,
    events: &'a mpsc::Sender<RunnerEvent>,
    /// An event waiting for room in `events`.
    pending: Option<RunnerEvent>,
    /// False once the event receiver is gone: lines are still read, and dropped.
    events_open: bool,
    last_stderr: Option<String>,
}

impl Follow<'_> {
    /// Hands one line to the parser and queues its scrubbed copy as an event.
    fn line(
        &mut self,
        stream: Stream,
        line: String,
        on_line: &mut (dyn FnMut(Stream, &str) + Send),
    ) {
        on_line(stream, &line);
        let scrubbed = match self.scrubber.scrub(&line) {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        };
        let line = scrubbed.unwrap_or(line);
        if stream == Stream::Stderr && !line.trim().is_empty() {
            let keep = (0..=LAST_STDERR_MAX.min(line.len()))
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            self.last_stderr = Some(line[..keep].trim_end().to_owned());
        }
        if self.events_open {
            self.pending = Some(RunnerEvent::Output { stream, line });
        }
    }

    /// Sends the pending event if there is room now, dropping it if the receiver is gone.
    fn flush_now(&mut self) {
        if let Some(event) = self.pending.take()
            && self.events_open
            && let Err(mpsc::error::TrySendError::Closed(_)) = self.events.try_send(event)
        {
            self.events_open = false;
        }
    }
}

/// Runs `spec` to its end: sends [`RunnerEvent::Spawned`] first, then every line of stdout and
/// stderr as a scrubbed [`RunnerEvent::Output`] (lines of one stream in order; the raw line goes
/// to `on_line` first, for parsing). Stops the process group on timeout or when `cancel` fires
/// (SIGTERM, then SIGKILL after [`ProcessSpec::kill_grace`]). After the process exits, output is
/// read for at most [`ProcessSpec::drain_grace`]; then the group is killed. A gone event
/// receiver does not stop the run.
///
/// Fails with [`RunnerError::Unavailable`] before anything runs if the program is not found,
/// and with [`RunnerError::Io`] if it cannot be spawned or waited for.
pub async fn run_process(
    spec: ProcessSpec,
    scrubber: &Scrubber,
    events: &mpsc::Sender<RunnerEvent>,
    on_line: &mut (dyn FnMut(Stream, &str) + Send),
    cancel: CancellationToken,
) -> Result<ProcessExit> {
    let program = resolve_program(&spec.program, &spec.cwd, &spec.env)?;
    let mut child = command(&program, &spec).spawn()?;
    let started = Instant::now();
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the spawned process has no pid"))?;
    let pgid = i32::try_from(pid).map_err(std::io::Error::other)?;
    let _guard = GroupGuard(pgid);

    let mut tasks: Vec<JoinHandle<()>> = Vec::with_capacity(3);
    if let (Some(text), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        tasks.push(tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }));
    }
    let (lines_tx, mut lines_rx) = mpsc::channel(LINE_QUEUE);
    if let Some(out) = child.stdout.take() {
        tasks.push(tokio::spawn(read_lines(
            out,
            Stream::Stdout,
            lines_tx.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        tasks.push(tokio::spawn(read_lines(err, Stream::Stderr, lines_tx)));
    }

    let mut follow = Follow {
        scrubber,
        events,
        pending: Some(RunnerEvent::Spawned { pid, pgid: pid }),
        events_open: true,
        last_stderr: None,
    };
    let mut exit = ProcessExit::default();
    let mut status: Option<ExitStatus> = None;
    let mut lines_open = true;
    let mut phase = Phase::Running;
    let timer = tokio::time::sleep_until(started + spec.timeout);
    tokio::pin!(timer);

    while status.is_none() || lines_open || (follow.pending.is_some() && follow.events_open) {
        tokio::select! {
            biased;
            () = cancel.cancelled(), if phase == Phase::Running => {
                exit.cancelled = true;
                phase = terminate(pgid, &mut timer, spec.kill_grace);
            }
            () = &mut timer, if phase != Phase::Killed => match phase {
                Phase::Running => {
                    exit.timed_out = true;
                    phase = terminate(pgid, &mut timer, spec.kill_grace);
                }
                Phase::Terminating => {
                    kill_group(pgid);
                    phase = Phase::Killed;
                }
                Phase::Draining | Phase::Killed => break,
            },
            waited = child.wait(), if status.is_none() => {
                status = Some(waited?);
                phase = Phase::Draining;
                timer.as_mut().reset(Instant::now() + spec.drain_grace);
            }
            permit = events.reserve(), if follow.pending.is_some() && follow.events_open => {
                match permit {
                    Ok(permit) => permit.send(follow.pending.take().expect("checked by the branch condition")),
                    Err(_) => {
                        follow.events_open = false;
                        follow.pending = None;
                    }
                }
            }
            line = lines_rx.recv(), if lines_open && (follow.pending.is_none() || !follow.events_open) => {
                match line {
                    Some((stream, line)) => follow.line(stream, line, on_line),
                    None => lines_open = false,
                }
            }
        }
    }

    // The process is gone; whatever is left in its group is a leftover.
    kill_group(pgid);
    for task in &tasks {
        task.abort();
    }
    follow.flush_now();
    while let Ok((stream, line)) = lines_rx.try_recv() {
        follow.line(stream, line, on_line);
        follow.flush_now();
    }

    let status = status.expect("the loop ends only after the process exited");
    exit.exit_code = status.code();
    exit.signal = status.signal();
    exit.last_stderr_line = follow.last_stderr;
    Ok(exit)
}

/// Sends SIGTERM to the group and sets `timer` to the moment SIGKILL follows.
fn terminate(
    pgid: i32,
    timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    kill_grace: Duration,
) -> Phase {
    let _ = signal_group(pgid, Some(Signal::SIGTERM));
    timer.as_mut().reset(Instant::now() + kill_grace);
    Phase::Terminating
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(String, String)> {
        vec![("PATH".to_owned(), path.to_owned())]
    }

    #[test]
    fn programs_are_found_on_the_given_path_only() {
        let cwd = Path::new("/");
        assert_eq!(
            resolve_program("sh", cwd, &env("/nonexistent:/bin")).unwrap(),
            Path::new("/bin/sh")
        );
        assert!(matches!(
            resolve_program("sh", cwd, &env("/nonexistent")),
            Err(RunnerError::Unavailable { binary }) if binary == "sh"
        ));
        assert!(matches!(
            resolve_program("sh", cwd, &[]),
            Err(RunnerError::Unavailable { .. })
        ));
    }

    #[test]
    fn paths_are_taken_as_they_are() {
        let cwd = Path::new("/bin");
        assert_eq!(
            resolve_program("/bin/sh", cwd, &[]).unwrap(),
            Path::new("/bin/sh")
        );
        assert_eq!(
            resolve_program("./sh", cwd, &[]).unwrap(),
            Path::new("/bin/./sh")
        );
        assert!(resolve_program("./no-such-program", cwd, &env("/bin")).is_err());
        assert!(resolve_program("", cwd, &env("/bin")).is_err());
    }

    #[test]
    fn non_executable_files_are_not_programs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), "#!/bin/sh\n").unwrap();
        let path = dir.path().display().to_string();
        assert!(resolve_program("tool", Path::new("/"), &env(&path)).is_err());
        std::fs::set_permissions(
            dir.path().join("tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(
            resolve_program("tool", Path::new("/"), &env(&path)).unwrap(),
            dir.path().join("tool")
        );
    }

    #[test]
    fn groups_0_and_1_are_never_signalled() {
        assert!(!kill_group(0));
        assert!(!kill_group(1));
        assert!(!group_alive(0));
        assert!(!group_alive(-5));
    }
}
