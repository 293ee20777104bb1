//! The harness: a real `mesa serve` on a temporary database, a `chromedriver` on a free port, and
//! headless Chromium sessions driven through fantoccini. Everything is torn down on drop, also
//! when a test panics: the server is killed, chromedriver is asked to shut down (which quits
//! its browsers) and then its whole process group is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The board token the test servers accept (`MESA_BOARD_TOKEN`).
pub(crate) const TOKEN: &str = "mesa_brd_browser_test_token_0123456789abcdef01";

/// How long an explicit wait polls before it fails the test. Generous: the machine is shared,
/// and a wait ends as soon as its condition holds.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Where Chromium and chromedriver are.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A tool from its override variable, else from PATH.
fn tool(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist",
            path.display()
        );
        return Some(path);
    }
    names.iter().find_map(|name| on_path(name))
}

/// Chromium and chromedriver, or `None` (with a printed notice) when they are missing on a
/// developer machine. Under CI (`CI` set) a missing browser fails the test instead: `.ci/run`
/// installs both.
pub(crate) fn tools() -> Option<Tools> {
    let chromium = tool("MESA_CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = tool("MESA_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Tools {
            chromium,
            chromedriver,
        }),
        _ => {
            let install = "apt-get install -y chromium chromium-driver (or set MESA_CHROMIUM and \
                           MESA_CHROMEDRIVER)";
            required_or_skip(&format!("chromium or chromedriver is missing: {install}"));
            None
        }
    }
}

/// Fails under CI, prints a notice otherwise.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub(crate) fn required_or_skip(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI is set but {what}");
    eprintln!("NOTICE: skipping a browser test: {what}");
}

/// Kills and reaps a child, ignoring errors (it may have exited).
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `mesa serve` on a fresh database in its own temporary directory.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) base: String,
    /// The one-time sign-in link printed on a first start without `MESA_BOARD_TOKEN`.
    pub(crate) login_link: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

impl Server {
    /// A server that accepts [`TOKEN`].
    pub(crate) fn start() -> Self {
        Self::spawn(Some(TOKEN))
    }

    /// A server on a fresh database without `MESA_BOARD_TOKEN`: it prints a one-time link.
    pub(crate) fn first_start() -> Self {
        Self::spawn(None)
    }

    fn spawn(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesa"));
        command
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("RUST_LOG", "warn")
            .args(["serve", "--port", "0", "--db", "mesa.db"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(token) = token {
            command.env("MESA_BOARD_TOKEN", token);
        }
        let mut child = command.spawn().expect("start mesa serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the address line");
        let Some(port) = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
        else {
            kill(&mut child);
            panic!("no address in the first line of `mesa serve`: {line:?}");
        };
        let mut login_link = None;
        if token.is_none() {
            let mut second = String::new();
            stdout
                .read_line(&mut second)
                .expect("read the login link line");
            login_link = second
                .split("open ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned);
            if login_link.is_none() {
                kill(&mut child);
                panic!("no one-time link in the second line of `mesa serve`: {second:?}");
            }
        }
        // Keep draining stdout so a later line can never block or break the server.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            login_link,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A call to the REST API with the board token; panics on a non-2xx answer.
    pub(crate) async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = client
            .request(method.clone(), self.url(&format!("/api/v1{path}")))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `POST /api/v1/issues`: the created issue.
    pub(crate) async fn create_issue(&self, title: &str) -> Value {
        self.api("POST", "/issues", Some(json!({ "title": title })))
            .await
    }
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A `chromedriver` process in its own process group.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ask chromedriver to quit its browsers and exit; then make sure the whole group is
        // gone (Chromium's helpers stay in chromedriver's process group).
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        kill(&mut self.child);
    }
}

impl Driver {
    pub(crate) fn start(tools: &Tools) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
        let mut driver = Self { child, port };
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One headless Chromium session on a server.
pub(crate) struct Browser {
    pub(crate) client: Client,
    base: String,
}

impl Browser {
    /// Opens a new session (a fresh profile: no cookies, no storage) at 1280×900.
    pub(crate) async fn open(tools: &Tools, driver: &Driver, server: &Server) -> Self {
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": tools.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                    "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--disable-default-apps", "--hide-scrollbars", "--lang=en-US",
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"));
        // A page load that never ends (say, no free connection to the server) fails the
        // test after WAIT instead of hanging it.
        client
            .update_timeouts(TimeoutConfiguration::new(None, Some(WAIT), None))
            .await
            .unwrap_or_else(|e| panic!("cannot set the page-load timeout: {e}"));
        Self {
            client,
            base: server.base.clone(),
        }
    }

    /// Ends the session (Chromium quits). Dropping the [`Driver`] does it too.
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// Runs `script` (a function body; `return` a value) in the page.
    pub(crate) async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls until the JavaScript expression `condition` is truthy; fails after [`WAIT`].
    pub(crate) async fn wait_js(&self, what: &str, condition: &str) -> Duration {
        self.wait_js_for(what, condition, WAIT).await
    }

    /// Like [`Browser::wait_js`] with its own timeout; returns how long it took.
    pub(crate) async fn wait_js_for(
        &self,
        what: &str,
        condition: &str,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        loop {
            // A navigation in progress can make one poll fail; only the deadline counts.
            if let Ok(Value::Bool(true)) = self.client.execute(&script, Vec::new()).await {
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let path = self.client.current_url().await.map(|u| u.to_string());
                panic!("timed out after {limit:?} waiting for {what} (`{condition}`), at {path:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls until the page's path is `path` (and the document has loaded).
    pub(crate) async fn wait_path(&self, path: &str) {
        let expected = serde_json::to_string(path).expect("a JSON string");
        self.wait_js(
            &format!("the page at {path}"),
            &format!(
                "location.pathname + location.search === {expected} \
                 && document.readyState === 'complete'"
            ),
        )
        .await;
    }

    /// Polls until an element matches `css`; fails after [`WAIT`].
    pub(crate) async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(25))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} within {WAIT:?}: {e}"))
    }

    /// Signs in through the `/login` form with `token`, and waits for the dashboard.
    pub(crate) async fn login(&self, token: &str) {
        self.goto("/login").await;
        let field = self.wait_for("input#token").await;
        field.send_keys(token).await.expect("type the token");
        self.wait_for("form[action='/login'] button[type=submit]")
            .await
            .click()
            .await
            .expect("press Sign in");
        self.wait_path("/").await;
        self.wait_for("#dashboard").await;
    }

    /// Presses a chord: `modifier` held while `key` is pressed.
    pub(crate) async fn chord(&self, modifier: Key, key: char) {
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down {
                value: modifier.into(),
            })
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key })
            .then(KeyAction::Up {
                value: modifier.into(),
            });
        self.client
            .perform_actions(keys)
            .await
            .expect("perform key actions");
        let _ = self.client.release_actions().await;
    }

    /// Whether htmx's SSE extension has an open connection to `/ui/events` on `<body>`.
    pub(crate) async fn wait_live(&self) {
        self.wait_js(
            "the live channel (/ui/events) to open",
            "(document.body['htmx-internal-data'] || {}).sseEventSource \
             && document.body['htmx-internal-data'].sseEventSource.readyState === 1",
        )
        .await;
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }
}

/// A server, a chromedriver and one signed-in browser: what most tests start from.
pub(crate) struct Harness {
    pub(crate) browser: Browser,
    pub(crate) tools: Tools,
    pub(crate) server: Server,
    // Declared last: dropped after the browser and the server.
    pub(crate) driver: Driver,
}

impl Harness {
    /// `None` (after a notice) when the browser is missing outside CI.
    pub(crate) async fn signed_in() -> Option<Self> {
        let tools = tools()?;
        let server = Server::start();
        let driver = Driver::start(&tools);
        let browser = Browser::open(&tools, &driver, &server).await;
        browser.login(TOKEN).await;
        Some(Self {
            browser,
            tools,
            server,
            driver,
        })
    }

    /// A second, independent browser session on the same server, signed in.
    pub(crate) async fn second_browser(&self) -> Browser {
        let browser = Browser::open(&self.tools, &self.driver, &self.server).await;
        browser.login(TOKEN).await;
        browser
    }

    pub(crate) async fn close(self) {
        self.browser.close().await;
    }
}

/// Where axe-core's `axe.min.js` is: `MESA_AXE_JS`, else `None` (CI fails, locally a notice).
pub(crate) fn axe_source() -> Option<String> {
    let install = "npm install --prefix /tmp/mesa-axe axe-core and set \
                   MESA_AXE_JS=/tmp/mesa-axe/node_modules/axe-core/axe.min.js";
    let Some(path) = std::env::var_os("MESA_AXE_JS").map(PathBuf::from) else {
        required_or_skip(&format!("MESA_AXE_JS is not set ({install})"));
        return None;
    };
    let path: &Path = &path;
    Some(
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("MESA_AXE_JS={}: {e}", path.display())),
    )
}
