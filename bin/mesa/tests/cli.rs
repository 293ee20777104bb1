//! Black-box tests of the `mesa` binary: start, bootstrap, readiness, graceful shutdown, and the
//! operational commands, each against a fresh database in a temporary directory.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mesa_core::domain::{Slug, WorkingDir};
use mesa_core::{CoreConfig, Mesa};

struct Server {
    child: Child,
    port: u16,
}

fn mesa(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesa"));
    cmd.current_dir(dir)
        .env_remove("DB")
        .env_remove("PORT")
        .env_remove("TEMPLATE")
        .env_remove("MESA_DATA_DIR")
        .env("PATH", "/usr/bin:/bin")
        .env("RUST_LOG", "warn");
    cmd
}

fn start(dir: &Path, args: &[&str]) -> Server {
    let mut child = mesa(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, port }
}

impl Server {
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (status, body)
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

async fn open(db: &Path, dir: &Path) -> Mesa {
    let config = CoreConfig::new(dir, WorkingDir::parse(&dir.to_string_lossy()).unwrap());
    Mesa::builder()
        .sqlite(db)
        .config(config)
        .build()
        .await
        .unwrap()
}

fn db_args(db: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--port".into(),
        "0".into(),
        "--db".into(),
        db.display().to_string(),
    ]
}

#[tokio::test]
async fn first_start_bootstraps_startup_and_second_start_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("mesa.db");
    let args = db_args(&db);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let server = start(dir.path(), &args);
    assert_eq!(server.get("/healthz").0, 200);
    let (status, body) = server.get("/readyz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    assert!(
        server.stop().success(),
        "SIGTERM ends the server with status 0"
    );

    let mesa = open(&db, dir.path()).await;
    let agents = mesa.agent_views().await.unwrap();
    assert_eq!(agents.len(), 6);
    let ceo = agents.iter().find(|a| a.agent.is_ceo()).unwrap();
    assert_eq!(ceo.reports_to, None);
    for a in agents.iter().filter(|a| !a.agent.is_ceo()) {
        assert_eq!(
            a.reports_to.as_ref(),
            Some(&ceo.agent.slug),
            "{} reports to the CEO",
            a.agent.slug
        );
        assert_eq!(
            a.agent.config.working_dir.as_str(),
            dir.path().to_str().unwrap()
        );
    }
    let archetypes = mesa.archetypes().await.unwrap();
    assert!(archetypes.len() >= 23);
    assert!(archetypes.iter().all(|a| a.version == 1));
    mesa.close().await;

    // A second start on the same database does not bootstrap again.
    let server = start(dir.path(), &args);
    assert_eq!(server.get("/readyz").0, 200);
    assert!(server.stop().success());
    let mesa = open(&db, dir.path()).await;
    assert_eq!(mesa.agents().await.unwrap().len(), 6);
    let boots = mesa
        .activity_log(&Default::default(), &mesa_core::store::PageRequest::all())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.action == "org.bootstrapped")
        .count();
    assert_eq!(boots, 1);
    mesa.close().await;
}

#[tokio::test]
async fn blank_template_and_bare_port_give_a_ceo_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("blank.db");
    // `mesa <port>` with configuration from the environment.
    let mut child = mesa(dir.path())
        .arg("0")
        .env("DB", &db)
        .env("TEMPLATE", "blank")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    let server = Server {
        port: line
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap(),
        child,
    };
    assert_eq!(server.get("/readyz").0, 200);
    assert!(server.stop().success());
    let mesa = open(&db, dir.path()).await;
    let agents = mesa.agents().await.unwrap();
    assert_eq!(agents.len(), 1);
    assert!(agents[0].is_ceo());
    mesa.close().await;
}

fn run(dir: &Path, args: &[&str]) -> Output {
    mesa(dir).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn init_doctor_backup_restore_and_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.db");
    let db_s = db.display().to_string();

    let out = run(
        dir.path(),
        &["init", "--template", "dev-team", "--db", &db_s],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("dev-team org"), "{}", text(&out));
    let again = run(dir.path(), &["init", "--template", "blank", "--db", &db_s]);
    assert!(
        !again.status.success(),
        "a second init refuses: {}",
        text(&again)
    );

    let doctor = run(dir.path(), &["doctor", "--db", &db_s]);
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert!(text(&doctor).contains("integrity ok"), "{}", text(&doctor));

    // Backup while a server is live, then restore into a new place.
    let server = start(dir.path(), &["serve", "--port", "0", "--db", &db_s]);
    let backup = dir.path().join("backup.db");
    let out = run(
        dir.path(),
        &["backup", backup.to_str().unwrap(), "--db", &db_s],
    );
    assert!(out.status.success(), "{}", text(&out));
    let refused = run(
        dir.path(),
        &[
            "restore",
            backup.to_str().unwrap(),
            "--db",
            &db_s,
            "--force",
        ],
    );
    assert!(
        !refused.status.success(),
        "restore refuses while the server runs: {}",
        text(&refused)
    );
    assert!(server.stop().success());

    let restored: PathBuf = dir.path().join("restored.db");
    let out = run(
        dir.path(),
        &[
            "restore",
            backup.to_str().unwrap(),
            "--db",
            restored.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mesa = open(&restored, dir.path()).await;
    assert_eq!(mesa.agents().await.unwrap().len(), 7);
    assert!(mesa.find_agent("architect").await.is_ok());
    let _ = Slug::parse("ceo").unwrap();
    mesa.close().await;

    let out = run(
        dir.path(),
        &["audit", "verify", "--db", restored.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("hash chain intact"), "{}", text(&out));
}

impl Server {
    fn get_with(&self, path: &str, token: &str) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response[9..12].parse().unwrap()
    }
}

#[tokio::test]
async fn board_tokens_from_the_cli_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.db");
    let db_s = db.display().to_string();
    let env_token = format!("mesa_brd_{}", "e".repeat(40));

    let mut child = mesa(dir.path())
        .args(["serve", "--port", "0", "--db", &db_s])
        .env("MESA_BOARD_TOKEN", &env_token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let server = Server { child, port };
    assert_eq!(server.get_with("/api/v1/issues", &env_token), 200);
    assert_eq!(server.get_with("/api/v1/issues", "mesa_brd_wrong"), 401);

    let out = run(
        dir.path(),
        &["token", "create", "--name", "ci", "--db", &db_s],
    );
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.starts_with("mesa_brd_"), "{token}");
    assert_eq!(server.get_with("/api/v1/issues", &token), 200);

    let list = run(dir.path(), &["token", "list", "--db", &db_s]);
    let listing = text(&list);
    assert!(
        listing.contains("ci") && listing.contains("env"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "raw tokens are never listed");
    let id = listing
        .lines()
        .find(|l| l.contains(" ci "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = run(dir.path(), &["token", "revoke", &id, "--db", &db_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.get_with("/api/v1/issues", &token), 401);
    assert!(server.stop().success());
}
