//! A child process for the durability test: opens a Mesa database and creates issues in a loop,
//! printing each key on its own line only after `create_issue` returned (the write committed).
//! The test kills it with SIGKILL at random moments and checks that every printed key survived.
//!
//! Usage: `issue-writer <database file> [tag]`.

use std::io::Write;

use mesa_core::domain::{Actor, WorkingDir};
use mesa_core::{CoreConfig, Mesa, NewIssue};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let db = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: issue-writer <db> [tag]"))?;
    let tag = args
        .next()
        .unwrap_or_else(|| std::process::id().to_string());
    let dir = std::path::Path::new(&db)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let config = CoreConfig::new(&dir, WorkingDir::parse(&dir.to_string_lossy())?);
    let mesa = Mesa::builder().sqlite(&db).config(config).build().await?;
    let board = Actor::board("durability");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for n in 0_u64.. {
        let issue = mesa
            .create_issue(&board, NewIssue::titled(&format!("durability {tag} {n}"))?)
            .await?;
        writeln!(out, "{}", issue.issue.key)?;
        out.flush()?;
    }
    Ok(())
}
