//! A killed process loses no committed write: SIGKILL a child that creates issues in a loop,
//! then check that every key it acknowledged is in the database, the database passes
//! `PRAGMA integrity_check`, and the activity hash chain verifies.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mesa_core::domain::{IssueKey, WorkingDir};
use mesa_core::{CoreConfig, Mesa};

const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::disallowed_methods,
    reason = "the test spawns the child process it kills"
)]
async fn sigkill_loses_no_acknowledged_issue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesa.db");
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();

    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_issue-writer"))
            .arg(&db)
            .arg(format!("r{round}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn issue-writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), "ready");
        // Let it write for a varying while (at least a few issues), then kill it mid-stream.
        let want = 20 + round * 37 % 90;
        let mut seen = 0;
        while seen < want {
            let key = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the writer stalled");
            acknowledged.insert(key);
            seen += 1;
        }
        // SIGKILL: no destructor, no checkpoint, no flush.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Lines printed before the kill were acknowledged too.
        acknowledged.extend(rx.try_iter());

        let mesa = open(&db, dir.path()).await;
        assert_eq!(
            mesa.integrity_check().await.unwrap(),
            ["ok"],
            "round {round}"
        );
        for key in &acknowledged {
            let key = IssueKey::parse(key).unwrap();
            mesa.issue(&key)
                .await
                .unwrap_or_else(|e| panic!("round {round}: {key} lost: {e}"));
        }
        let chain = mesa.verify_activity().await.unwrap();
        assert!(
            chain.is_ok(),
            "round {round}: chain broken at {:?}",
            chain.first_bad
        );
        assert!(chain.checked as usize >= acknowledged.len());
        mesa.close().await;
    }
    assert!(acknowledged.len() >= ROUNDS * 20);
}

async fn open(db: &std::path::Path, dir: &std::path::Path) -> Mesa {
    let config = CoreConfig::new(dir, WorkingDir::parse(&dir.to_string_lossy()).unwrap());
    Mesa::builder()
        .sqlite(db)
        .config(config)
        .build()
        .await
        .unwrap()
}
