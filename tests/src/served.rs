//! The release `mesa serve` a benchmark measures, as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, ensure};

/// A running `mesa serve`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts `mesa serve` on the database `db` with data directory `dir`, and waits for the
    /// line that names its address.
    #[expect(
        clippy::disallowed_methods,
        reason = "a benchmark spawns the server it measures"
    )]
    pub fn start(mesa: &Path, db: &Path, dir: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(mesa)
            .args(["serve", "--port", "0", "--db"])
            .arg(db)
            .arg("--data-dir")
            .arg(dir)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn mesa")?;
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        stdout.read_line(&mut line)?;
        // Keep reading what the server prints later (a first start prints a sign-in link): a
        // closed pipe would make its next print fail.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let port: u16 = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no address in {line:?}"))?;
        Ok(Server { child, port })
    }

    /// Stops it with SIGTERM and checks that it exited cleanly.
    #[expect(clippy::disallowed_methods, reason = "kill(1) sends the signal")]
    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        ensure!(status.success(), "mesa exited with {status}");
        Ok(())
    }
}
