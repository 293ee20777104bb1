//! Spawning, capture, scrubbing, timeouts and kill (SPEC §7.5) with real subprocesses.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesa_runner::capture::{HeadTail, RUN_OUTPUT_CAP, marker};
use mesa_runner::process::{ProcessSpec, group_alive, kill_group, run_process};
use mesa_runner::scrub::Scrubber;
use mesa_runner::{ProcessExit, RunnerError, RunnerEvent, Stream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A generous bound so that a broken test fails instead of hanging; never asserted on.
const GUARD: Duration = Duration::from_secs(60);

/// The only PATH the children get.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn sh(script: &str) -> ProcessSpec {
    ProcessSpec::new(
        "sh",
        vec!["-c".to_owned(), script.to_owned()],
        std::env::temp_dir(),
        vec![("PATH".to_owned(), PATH.to_owned())],
        GUARD,
    )
}

/// What a run produced.
struct Ran {
    exit: ProcessExit,
    events: Vec<RunnerEvent>,
    raw: Vec<(Stream, String)>,
}

impl Ran {
    /// The scrubbed lines of one stream, in order.
    fn lines(&self, stream: Stream) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RunnerEvent::Output { stream: s, line } if *s == stream => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The raw lines of one stream handed to `on_line`, in order.
    fn raw(&self, stream: Stream) -> Vec<&str> {
        self.raw
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// The first number printed on stdout (a pid the script echoed).
    fn first_pid(&self) -> i32 {
        self.lines(Stream::Stdout)[0]
            .parse()
            .expect("the script prints a pid first")
    }

    /// The process group of the run.
    fn pgid(&self) -> i32 {
        match self.events[0] {
            RunnerEvent::Spawned { pgid, .. } => i32::try_from(pgid).unwrap(),
            ref other => panic!("first event is {other:?}"),
        }
    }
}

async fn run_with(
    spec: ProcessSpec,
    secrets: &[&str],
    cancel: CancellationToken,
    mut also: impl FnMut(Stream, &str) + Send,
) -> Result<Ran, RunnerError> {
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    let scrubber = Scrubber::new(&secrets);
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let mut raw = Vec::new();
    let mut on_line = |stream: Stream, line: &str| {
        raw.push((stream, line.to_owned()));
        also(stream, line);
    };
    let result = tokio::time::timeout(
        GUARD,
        run_process(spec, &scrubber, &tx, &mut on_line, cancel),
    )
    .await
    .expect("run_process ends");
    drop(tx);
    let events = collector.await.unwrap();
    let exit = result?;
    Ok(Ran { exit, events, raw })
}

async fn run(spec: ProcessSpec) -> Ran {
    run_with(spec, &[], CancellationToken::new(), |_, _| {})
        .await
        .unwrap()
}

/// Whether `pid` is a live process (a zombie waiting for a reaper counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Waits (within [`GUARD`]) for `pid` to die; true if it did.
async fn gone(pid: i32) -> bool {
    let until = tokio::time::Instant::now() + GUARD;
    while tokio::time::Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn spawned_comes_first_then_every_line_in_order() {
    let ran = run(sh(
        "i=0; while [ $i -lt 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; printf tail",
    ))
    .await;
    let RunnerEvent::Spawned { pid, pgid } = ran.events[0] else {
        panic!("first event is {:?}", ran.events[0]);
    };
    assert_eq!(pid, pgid, "the child leads its own group");
    assert!(
        ran.events[1..]
            .iter()
            .all(|e| matches!(e, RunnerEvent::Output { .. }))
    );
    let mut want_out: Vec<String> = (0..300).map(|i| format!("out{i}")).collect();
    want_out.push("tail".to_owned());
    let want_err: Vec<String> = (0..300).map(|i| format!("err{i}")).collect();
    assert_eq!(ran.lines(Stream::Stdout), want_out);
    assert_eq!(ran.lines(Stream::Stderr), want_err);
    assert_eq!(ran.raw(Stream::Stdout), want_out);
    assert_eq!(ran.raw(Stream::Stderr), want_err);
    assert_eq!(
        ran.exit,
        ProcessExit {
            exit_code: Some(0),
            signal: None,
            timed_out: false,
            cancelled: false,
            last_stderr_line: Some("err299".to_owned()),
        }
    );
}

const BOARD_TOKEN: &str = "MESA_BOARD_TOKEN";

/// The child gets the spec's environment and nothing of the test process's own. The test runs
/// itself again with a fake server secret in its environment, since setting a variable in a
/// running multi-threaded process is not safe.
#[tokio::test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test re-runs itself with a variable in its environment and checks it is there"
)]
async fn the_child_sees_exactly_the_given_environment() {
    let Some(token) = std::env::var_os(BOARD_TOKEN) else {
        let name = "process::the_child_sees_exactly_the_given_environment";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(BOARD_TOKEN, "fake-board-token-1234")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    };
    assert_eq!(token, "fake-board-token-1234");
    let given = vec![
        ("PATH".to_owned(), PATH.to_owned()),
        ("MESA_RUN_ID".to_owned(), "run-42".to_owned()),
        ("WITH_SPACES".to_owned(), "a b  c".to_owned()),
    ];
    let spec = ProcessSpec::new(
        "env",
        Vec::new(),
        std::env::temp_dir(),
        given.clone(),
        GUARD,
    );
    let ran = run(spec).await;
    let mut seen: Vec<&str> = ran.lines(Stream::Stdout);
    seen.sort_unstable();
    let mut want: Vec<String> = given.iter().map(|(k, v)| format!("{k}={v}")).collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    assert_eq!(ran.exit.exit_code, Some(0));
}

#[tokio::test]
async fn the_working_directory_is_the_given_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh("pwd -P");
    spec.cwd = dir.path().to_path_buf();
    let ran = run(spec).await;
    let want = dir.path().canonicalize().unwrap();
    assert_eq!(ran.lines(Stream::Stdout), [want.display().to_string()]);
}

#[tokio::test]
async fn stdin_text_arrives_and_is_closed() {
    let mut spec = ProcessSpec::new(
        "cat",
        Vec::new(),
        std::env::temp_dir(),
        vec![("PATH".to_owned(), PATH.to_owned())],
        GUARD,
    );
    spec.stdin = Some("first line\nsecond line\n".to_owned());
    let ran = run(spec).await;
    assert_eq!(ran.lines(Stream::Stdout), ["first line", "second line"]);
    assert_eq!(ran.exit.exit_code, Some(0));
}

#[tokio::test]
async fn without_stdin_text_the_child_reads_dev_null() {
    let ran = run(sh(
        "if read -r line; then echo got:$line; else echo eof; fi",
    ))
    .await;
    assert_eq!(ran.lines(Stream::Stdout), ["eof"]);
    assert!(!ran.exit.timed_out);
}

#[tokio::test]
async fn a_missing_program_is_unavailable_before_anything_runs() {
    let mut spec = sh("true");
    spec.program = "mesa-no-such-agent-cli".to_owned();
    let err = run_with(spec, &[], CancellationToken::new(), |_, _| {})
        .await
        .err()
        .expect("a missing program fails");
    assert!(
        matches!(&err, RunnerError::Unavailable { binary } if binary == "mesa-no-such-agent-cli"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "runner_unavailable: mesa-no-such-agent-cli not found on PATH"
    );

    // A program that exists on the test's PATH but not on the child's is missing too.
    let mut spec = sh("true");
    spec.env = vec![("PATH".to_owned(), "/nonexistent".to_owned())];
    let err = run_with(spec, &[], CancellationToken::new(), |_, _| {})
        .await
        .err()
        .expect("sh is not on the child's PATH");
    assert!(matches!(err, RunnerError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn timeout_kills_the_group_and_a_grandchild_holding_stdout() {
    let mut spec = sh("sleep 1000 & echo $!; sleep 1000");
    spec.timeout = Duration::from_millis(500);
    let ran = run(spec).await;
    let grandchild = ran.first_pid();
    assert!(ran.exit.timed_out);
    assert!(!ran.exit.cancelled);
    assert_eq!(ran.exit.exit_code, None);
    assert_eq!(ran.exit.signal, Some(libc_sigterm()));
    assert!(gone(grandchild).await, "grandchild {grandchild} survived");
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_gets_sigkill() {
    let mut spec = sh("trap '' TERM; sleep 1000 & echo $!; sleep 1000");
    spec.timeout = Duration::from_millis(300);
    spec.kill_grace = Duration::from_millis(300);
    let ran = run(spec).await;
    let grandchild = ran.first_pid();
    assert!(ran.exit.timed_out);
    assert_eq!(ran.exit.signal, Some(9));
    assert!(gone(grandchild).await, "grandchild {grandchild} survived");
}

#[tokio::test]
async fn a_leftover_grandchild_cannot_keep_a_finished_run_alive() {
    let mut spec = sh("sleep 1000 & echo $!; echo done >&2; exit 3");
    spec.drain_grace = Duration::from_millis(300);
    let ran = run(spec).await;
    let grandchild = ran.first_pid();
    assert_eq!(ran.exit.exit_code, Some(3));
    assert!(!ran.exit.timed_out && !ran.exit.cancelled);
    assert_eq!(ran.exit.last_stderr_line.as_deref(), Some("done"));
    assert!(gone(grandchild).await, "grandchild {grandchild} survived");
}

#[tokio::test]
async fn cancel_kills_the_group() {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let ran = run_with(
        sh("sleep 1000 & echo $!; echo ready; sleep 1000"),
        &[],
        cancel,
        move |_, line| {
            if line == "ready" {
                trigger.cancel();
            }
        },
    )
    .await
    .unwrap();
    let grandchild = ran.first_pid();
    assert!(ran.exit.cancelled);
    assert!(!ran.exit.timed_out);
    assert_eq!(ran.exit.signal, Some(libc_sigterm()));
    assert!(gone(grandchild).await, "grandchild {grandchild} survived");
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let ran = run(sh("echo boom >&2; echo '   ' >&2; exit 7")).await;
    assert_eq!(ran.exit.exit_code, Some(7));
    assert_eq!(ran.exit.signal, None);
    assert_eq!(ran.exit.last_stderr_line.as_deref(), Some("boom"));

    let ran = run(sh("kill -KILL $$")).await;
    assert_eq!(ran.exit.exit_code, None);
    assert_eq!(ran.exit.signal, Some(9));
    assert_eq!(ran.exit.last_stderr_line, None);
}

#[tokio::test]
async fn secrets_and_tokens_are_redacted_in_events() {
    let secret = "run-key-7f3a9c2e51";
    let openai = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123";
    let github = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let script = format!("echo 'key={secret} openai={openai}'; echo 'gh {github}' >&2; echo clean");
    let ran = run_with(sh(&script), &[secret], CancellationToken::new(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        ran.lines(Stream::Stdout),
        ["key=[REDACTED] openai=[REDACTED]", "clean"]
    );
    assert_eq!(ran.lines(Stream::Stderr), ["gh [REDACTED]"]);
    assert_eq!(ran.exit.last_stderr_line.as_deref(), Some("gh [REDACTED]"));
    // The parser gets the raw line; nothing sent out holds a secret.
    assert_eq!(ran.raw(Stream::Stderr), [format!("gh {github}")]);
    let sent = format!("{:?}", ran.events);
    for s in [secret, openai, github] {
        assert!(!sent.contains(s), "{s} leaked");
    }
}

#[tokio::test]
async fn a_gone_receiver_does_not_stop_the_run() {
    let scrubber = Scrubber::new(&[]);
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let mut count = 0_usize;
    let mut on_line = |_: Stream, _: &str| count += 1;
    let exit = run_process(
        sh("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done"),
        &scrubber,
        &tx,
        &mut on_line,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(exit.exit_code, Some(0));
    assert_eq!(count, 2000);
}

#[tokio::test]
async fn an_endless_line_is_cut_and_reading_goes_on() {
    let ran = run(sh(
        "head -c 3000000 /dev/zero | tr '\\0' b; echo; echo after",
    ))
    .await;
    let lines = ran.lines(Stream::Stdout);
    assert_eq!(lines.len(), 2);
    let cut = format!(
        "{} [... line cut: {} more bytes ...]",
        "b".repeat(1024 * 1024),
        3_000_000 - 1024 * 1024
    );
    assert!(lines[0] == cut, "first line is {} bytes", lines[0].len());
    assert_eq!(lines[1], "after");
}

/// Resident memory figures of this process, in KiB: (current, peak).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_hundred_megabytes_of_output_fit_in_bounded_memory() {
    let (rss_before, _) = memory_kib();
    let scrubber = Scrubber::new(&["some-secret-value".to_owned()]);
    let (tx, mut rx) = mpsc::channel(1024);
    let collector = tokio::spawn(async move {
        let mut log = HeadTail::new(RUN_OUTPUT_CAP);
        while let Some(event) = rx.recv().await {
            if let RunnerEvent::Output { line, .. } = event {
                log.push_line(&line);
            }
        }
        log
    });
    let mut lines = 0_u64;
    let mut on_line = |_: Stream, _: &str| lines += 1;
    let exit = run_process(
        sh("head -c 100000000 /dev/zero | tr '\\0' a | fold -w 100"),
        &scrubber,
        &tx,
        &mut on_line,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    drop(tx);
    let log = collector.await.unwrap();
    let (_, peak_after) = memory_kib();

    assert_eq!(exit.exit_code, Some(0));
    assert_eq!(lines, 1_000_000);
    assert_eq!(log.total_bytes(), 101_000_000);
    let line = format!("{}\n", "a".repeat(100));
    let text = log.to_text();
    assert!(text.len() <= RUN_OUTPUT_CAP + marker(log.elided(), false).len());
    assert!(log.head().starts_with(&line.repeat(1000)));
    assert!(log.tail().ends_with(&line.repeat(1000)));
    assert!(text.contains(&marker(log.elided(), log.head().ends_with('\n'))));
    assert_eq!(
        text.len() as u64,
        log.head().len() as u64
            + log.tail().len() as u64
            + marker(log.elided(), log.head().ends_with('\n')).len() as u64
    );
    let growth_mib = peak_after.saturating_sub(rss_before) / 1024;
    assert!(growth_mib < 64, "peak RSS grew by {growth_mib} MiB");
}

/// SIGTERM's number (15 on Linux).
fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

#[test]
fn new_specs_get_the_default_grace_periods() {
    let spec = ProcessSpec::new("x", Vec::new(), PathBuf::from("/"), Vec::new(), GUARD);
    assert_eq!(spec.kill_grace, Duration::from_secs(5));
    assert_eq!(spec.drain_grace, Duration::from_secs(2));
    assert_eq!(spec.stdin, None);
}

/// Crash recovery's view: a live group is seen and can be killed by its id alone.
#[tokio::test]
async fn kill_group_ends_a_running_group() {
    let seen_alive = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen_alive);
    let ran = run_with(
        sh("echo $$; sleep 1000"),
        &[],
        CancellationToken::new(),
        move |_, line| {
            let pgid: i32 = line.parse().expect("the script prints its pid");
            let alive = group_alive(pgid);
            let killed = kill_group(pgid);
            *record.lock().unwrap() = Some((alive, killed));
        },
    )
    .await
    .unwrap();
    assert_eq!(*seen_alive.lock().unwrap(), Some((true, true)));
    assert_eq!(ran.first_pid(), ran.pgid());
    assert_eq!(ran.exit.signal, Some(9));
    assert!(!ran.exit.timed_out && !ran.exit.cancelled);
    // The leader was reaped by the run; its killed child is reaped by init, soon.
    let until = tokio::time::Instant::now() + GUARD;
    while group_alive(ran.pgid()) && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!group_alive(ran.pgid()));
    assert!(!kill_group(ran.pgid()));
}
