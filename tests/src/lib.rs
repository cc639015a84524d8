//! Support for the multi-process tests: finds (or builds) the `echo-node` binary, runs
//! daemons on throwaway data dirs, runs CLI commands against them and talks to the local
//! API with plain HTTP/1.1 over `TcpStream`.
//!
//! Every wait here is bounded. A [`Node`] kills its daemon when dropped, and prints the
//! daemon's captured stdout/stderr when it is dropped during a panic (a failing test).

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a daemon may take to print its `ready` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLI command may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of the `echo-node` binary: `$ECHO_NODE_BIN` if set, else built once per test
/// process with `cargo build -p echo-node --bin echo-node` (debug profile).
pub fn echo_node() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ECHO_NODE_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "ECHO_NODE_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let root = workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(&cargo)
            .args(["build", "-p", "echo-node", "--bin", "echo-node"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .expect("failed to run cargo build");
        assert!(
            out.status.success(),
            "cargo build -p echo-node failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug").join("echo-node");
        assert!(bin.is_file(), "built binary not found at {}", bin.display());
        bin
    })
    .clone()
}

/// Captured output lines of a daemon (all of its runs), shared with the reader threads.
type Log = Arc<Mutex<String>>;

fn append(log: &Log, line: &str) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.push_str(line);
    log.push('\n');
}

/// Copies `reader` into `log` line by line, prefixed by `tag`; sends the first line that
/// contains "ready" on `ready` (if a sender is given).
fn drain<R: Read + Send + 'static>(
    reader: R,
    log: Log,
    tag: &'static str,
    ready: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut ready = ready;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end();
                    append(&log, &format!("[{tag}] {line}"));
                    if line.contains("ready") {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(line.to_owned());
                        }
                    }
                }
            }
        }
    });
}

/// Result of one CLI command.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// `stdout` parsed as one JSON document, if it parses.
    pub json: Option<Value>,
    /// The command line, for messages.
    pub cmd: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
}

/// Waits for `child` to exit, at most `timeout`; kills it (and returns `None`) past that.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `echo-node ARGS` with `envs`, bounded by [`CLI_TIMEOUT`] (panics past it).
pub fn run_cli(args: &[&str], envs: &[(&str, &Path)]) -> CliOutput {
    run_cli_bounded(args, envs, CLI_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "`echo-node {}` did not finish within {CLI_TIMEOUT:?}",
            shell_words(args)
        )
    })
}

/// Runs `echo-node ARGS` with `envs`; `None` (after killing it) if it runs past `timeout`.
pub fn run_cli_bounded(
    args: &[&str],
    envs: &[(&str, &Path)],
    timeout: Duration,
) -> Option<CliOutput> {
    let cmd = format!("echo-node {}", shell_words(args));
    let mut command = Command::new(echo_node());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("ECHO_DATA_DIR");
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn echo-node");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = wait_bounded(&mut child, timeout)?;
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    let json = serde_json::from_str(stdout.trim()).ok();
    Some(CliOutput {
        status,
        stdout,
        stderr,
        json,
        cmd,
    })
}

/// Quotes args for display (not for a shell to run; just readable repro lines).
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            let shown: String = if a.len() > 200 {
                let head: String = a.chars().take(60).collect();
                format!("{head}...<{} bytes>", a.len())
            } else {
                (*a).to_owned()
            };
            if shown.is_empty()
                || shown
                    .chars()
                    .any(|c| !(c.is_ascii_alphanumeric() || "-_./=:@".contains(c)))
            {
                format!("'{}'", shown.replace('\'', r"'\''"))
            } else {
                shown
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running daemon process and its ready state.
struct Daemon {
    child: Child,
    /// The line containing `ready` that this run printed.
    ready_line: String,
}

/// A node under test: a private data dir (inside a temp dir deleted on drop) and at most
/// one daemon process running on it.
pub struct Node {
    _tmp: tempfile::TempDir,
    data_dir: PathBuf,
    daemon: Option<Daemon>,
    log: Log,
    runs: usize,
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Node {
    /// A node with a fresh data dir that does not exist yet (the node creates it), no
    /// daemon started.
    pub fn new() -> Node {
        let tmp = tempfile::Builder::new()
            .prefix("echo-tests-")
            .tempdir()
            .expect("tempdir");
        let data_dir = tmp.path().join("data");
        Node {
            _tmp: tmp,
            data_dir,
            daemon: None,
            log: Arc::new(Mutex::new(String::new())),
            runs: 0,
        }
    }

    /// A node with a daemon running.
    pub fn started() -> Node {
        let mut node = Node::new();
        node.start();
        node
    }

    /// A running node with an identity and one space named `name`; returns the space key.
    pub fn with_space(name: &str) -> (Node, String) {
        let node = Node::started();
        node.ok(&["identity", "create", "--name", "tester"]);
        let space = node.ok(&["space", "create", "--name", name]);
        let key = space["space_key"]
            .as_str()
            .unwrap_or_else(|| node.fail_with(&format!("space create: no space_key in {space}")))
            .to_owned();
        (node, key)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the daemon printed so far (all runs).
    pub fn logs(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Panics with `msg`; the daemon's logs are printed when the node is dropped.
    pub fn fail_with(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n(daemon data dir {}; its logs are printed below)",
            self.data_dir.display()
        )
    }

    pub fn is_running(&self) -> bool {
        self.daemon.is_some()
    }

    /// Process id of the running daemon.
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon running").child.id()
    }

    /// Spawns `echo-node --data-dir D run EXTRA...` and waits for its `ready` line.
    pub fn start_with(&mut self, extra: &[&str]) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.runs += 1;
        append(&self.log, &format!("===== run #{} =====", self.runs));
        let mut args = vec!["--data-dir", self.data_dir.to_str().unwrap(), "run"];
        args.extend_from_slice(extra);
        let mut child = Command::new(echo_node())
            .args(&args)
            .env_remove("ECHO_DATA_DIR")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo-node run");
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().unwrap(),
            self.log.clone(),
            "out",
            Some(tx),
        );
        drain(child.stderr.take().unwrap(), self.log.clone(), "err", None);
        let start = Instant::now();
        let ready_line = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                thread::sleep(Duration::from_millis(100)); // let the readers finish
                self.fail_with(&format!(
                    "daemon exited with {status} before printing `ready`"
                ));
            }
            if start.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                self.fail_with(&format!("daemon not ready within {READY_TIMEOUT:?}"));
            }
        };
        self.daemon = Some(Daemon { child, ready_line });
    }

    /// The `ready` line the running daemon printed.
    pub fn ready_line(&self) -> &str {
        &self.daemon.as_ref().expect("daemon running").ready_line
    }

    /// Starts the daemon with peer networking on loopback (`--listen 127.0.0.1:0`, or the
    /// `--listen` in `extra`) and the other `run` flags in `extra`.
    pub fn start_net(&mut self, extra: &[&str]) {
        let mut args: Vec<&str> = Vec::new();
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        self.start_with(&args);
    }

    /// A networked node (see [`Node::start_net`]) with an identity named `name`.
    pub fn networked(name: &str, extra: &[&str]) -> Node {
        let mut node = Node::new();
        node.start_net(extra);
        node.ok(&["identity", "create", "--name", name]);
        node
    }

    /// The bound peer (QUIC) address, from `status`.
    pub fn listen_addr(&self) -> SocketAddr {
        let status = self.status();
        status["listen"]
            .as_str()
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| self.fail_with(&format!("status has no usable `listen`: {status}")))
    }

    /// This node's identity key (`identity show`).
    pub fn identity_key(&self) -> String {
        let v = self.ok(&["identity", "show"]);
        v["identity_key"]
            .as_str()
            .unwrap_or_else(|| self.fail_with(&format!("identity show: {v}")))
            .to_owned()
    }

    /// This node's device key (`status`).
    pub fn device_key(&self) -> String {
        let v = self.status();
        v["device_key"]
            .as_str()
            .unwrap_or_else(|| self.fail_with(&format!("status without device_key: {v}")))
            .to_owned()
    }

    /// Device keys of the peers with an open channel for `space_key` (`status`).
    pub fn peers(&self, space_key: &str) -> Vec<String> {
        let status = self.status();
        let Some(space) = status["spaces"]
            .as_array()
            .and_then(|spaces| spaces.iter().find(|s| s["space_key"] == space_key))
        else {
            return vec![];
        };
        space["peers"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .filter_map(|p| p["device_key"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ids of the (non-deleted) objects of `space`.
    pub fn ids(&self, space: &str) -> BTreeSet<String> {
        self.query(space, &[])
            .iter()
            .filter_map(|o| o["@id"].as_str().map(str::to_owned))
            .collect()
    }

    /// A client of this node's local API (no CLI process per request): for many cheap
    /// requests, from any thread.
    pub fn api(&self) -> Api {
        Api {
            url: self.api_url(),
            token: self.api_token(),
        }
    }

    /// Starts the daemon (`run` with no options).
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Stops (SIGTERM, asserting exit 0) and starts again with peer networking and `extra`.
    pub fn restart_net(&mut self, extra: &[&str]) {
        self.stop();
        self.start_net(extra);
    }

    /// Sends SIGTERM and asserts a clean exit (status 0) within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) {
        let status = self.terminate("TERM");
        if !status.success() {
            self.fail_with(&format!("daemon exited with {status} after SIGTERM"));
        }
    }

    /// Sends `SIG<signal>` and returns the exit status (bounded wait).
    pub fn terminate(&mut self, signal: &str) -> ExitStatus {
        let mut daemon = self.daemon.take().expect("daemon running");
        let pid = daemon.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        match wait_bounded(&mut daemon.child, STOP_TIMEOUT) {
            Some(status) => {
                thread::sleep(Duration::from_millis(50));
                status
            }
            None => self.fail_with(&format!(
                "daemon did not exit within {STOP_TIMEOUT:?} after SIG{signal}"
            )),
        }
    }

    /// SIGKILLs the daemon and reaps it.
    pub fn kill9(&mut self) {
        let mut daemon = self.daemon.take().expect("daemon running");
        daemon.child.kill().expect("SIGKILL");
        daemon.child.wait().expect("wait");
    }

    /// Stops (SIGTERM, asserting exit 0) and starts again on the same data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Runs `echo-node --data-dir D --json ARGS`.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let mut full = vec!["--data-dir", self.data_dir.to_str().unwrap(), "--json"];
        full.extend_from_slice(args);
        run_cli(&full, &[])
    }

    /// Runs a CLI command without `--json`.
    pub fn cli_plain(&self, args: &[&str]) -> CliOutput {
        let mut full = vec!["--data-dir", self.data_dir.to_str().unwrap()];
        full.extend_from_slice(args);
        run_cli(&full, &[])
    }

    /// Runs a CLI command (with `--json`), asserts exit 0 and returns its JSON output.
    pub fn ok(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        if !out.success() {
            self.fail_with(&format!("command failed:\n{out}"));
        }
        match out.json {
            Some(v) => v,
            None => self.fail_with(&format!("command printed no single JSON document:\n{out}")),
        }
    }

    /// Runs a CLI command (with `--json`), asserts exit 0; output is not required to be JSON.
    pub fn ok_any(&self, args: &[&str]) -> CliOutput {
        let out = self.cli(args);
        if !out.success() {
            self.fail_with(&format!("command failed:\n{out}"));
        }
        out
    }

    /// Runs a CLI command, asserts a non-zero exit and a non-empty message on stderr;
    /// returns the output.
    pub fn fails(&self, args: &[&str]) -> CliOutput {
        let out = self.cli(args);
        if out.success() {
            self.fail_with(&format!("command unexpectedly succeeded:\n{out}"));
        }
        if out.stderr.trim().is_empty() {
            self.fail_with(&format!(
                "command failed without a message on stderr:\n{out}"
            ));
        }
        if out.stderr.contains("panicked at") {
            self.fail_with(&format!("command panicked:\n{out}"));
        }
        out
    }

    /// Adds `json` to `space` and returns the new id (checked to be a ULID).
    pub fn add(&self, space: &str, json: &str) -> String {
        let v = self.ok(&["object", "add", space, json]);
        let id = v["id"]
            .as_str()
            .unwrap_or_else(|| self.fail_with(&format!("object add: no `id` in {v}")))
            .to_owned();
        assert!(
            is_ulid(&id),
            "object add returned `{id}`, not a 26-char ULID"
        );
        id
    }

    /// `query --json` with extra args; asserts an array.
    pub fn query(&self, space: &str, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["query", space];
        args.extend_from_slice(extra);
        let v = self.ok(&args);
        match v {
            Value::Array(items) => items,
            other => self.fail_with(&format!("query printed {other}, not an array")),
        }
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        self.ok(&["status"])
    }

    /// Feeds of `space_key` in `status`, as (designation, length) pairs plus the raw feeds.
    pub fn feeds(&self, space_key: &str) -> Vec<Value> {
        let status = self.status();
        let spaces = status["spaces"]
            .as_array()
            .unwrap_or_else(|| self.fail_with(&format!("status: no `spaces` array: {status}")));
        let space = spaces
            .iter()
            .find(|s| s["space_key"] == space_key)
            .unwrap_or_else(|| {
                self.fail_with(&format!("status lacks space {space_key}: {status}"))
            });
        space["feeds"]
            .as_array()
            .unwrap_or_else(|| self.fail_with(&format!("status: no `feeds` array: {space}")))
            .clone()
    }

    /// Length of the feed of `space_key` with `designation` (`control` or `data`).
    pub fn feed_length(&self, space_key: &str, designation: &str) -> u64 {
        let feeds = self.feeds(space_key);
        let matching: Vec<&Value> = feeds
            .iter()
            .filter(|f| f["designation"] == designation)
            .collect();
        if matching.len() != 1 {
            self.fail_with(&format!(
                "expected one {designation} feed for {space_key}, got {feeds:?}"
            ));
        }
        matching[0]["length"]
            .as_u64()
            .unwrap_or_else(|| self.fail_with(&format!("feed without integer length: {feeds:?}")))
    }

    /// Spawns a long-running CLI command (`--json`) whose stdout is read line by line.
    pub fn spawn_stream(&self, args: &[&str]) -> LineStream {
        let mut full = vec!["--data-dir", self.data_dir.to_str().unwrap(), "--json"];
        full.extend_from_slice(args);
        LineStream::spawn(&full)
    }

    /// Local API base URL from `DATA_DIR/api.json`.
    pub fn api_url(&self) -> String {
        let raw = std::fs::read_to_string(self.data_dir.join("api.json"))
            .unwrap_or_else(|e| self.fail_with(&format!("read api.json: {e}")));
        let v: Value = serde_json::from_str(&raw)
            .unwrap_or_else(|e| self.fail_with(&format!("api.json is not JSON ({e}): {raw}")));
        v["url"]
            .as_str()
            .unwrap_or_else(|| self.fail_with(&format!("api.json has no `url`: {raw}")))
            .to_owned()
    }

    /// Bearer token from `DATA_DIR/api-token`.
    pub fn api_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("api-token"))
            .unwrap_or_else(|e| self.fail_with(&format!("read api-token: {e}")))
            .trim()
            .to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.child.kill();
            let _ = daemon.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "===== daemon logs ({}) =====\n{}===== end of daemon logs =====",
                self.data_dir.display(),
                self.logs()
            );
        }
    }
}

/// A child process whose stdout lines arrive on a channel (e.g. `watch`). Killed on drop.
pub struct LineStream {
    child: Child,
    lines: Receiver<String>,
    stderr: Log,
    pub cmd: String,
}

impl LineStream {
    fn spawn(args: &[&str]) -> LineStream {
        let cmd = format!("echo-node {}", shell_words(args));
        let mut child = Command::new(echo_node())
            .args(args)
            .env_remove("ECHO_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo-node");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone(), "err", None);
        LineStream {
            child,
            lines: rx,
            stderr,
            cmd,
        }
    }

    /// The next stdout line within `timeout`; `None` on timeout or end of output.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next stdout line parsed as JSON; panics if the line is not JSON.
    pub fn next_json(&self, timeout: Duration) -> Option<Value> {
        let line = self.next_line(timeout)?;
        match serde_json::from_str(&line) {
            Ok(v) => Some(v),
            Err(e) => panic!(
                "`{}` printed a line that is not JSON ({e}): {line:?}\nstderr:\n{}",
                self.cmd,
                self.stderr_text()
            ),
        }
    }

    /// What the process printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_bounded(&mut self.child, timeout);
        thread::sleep(Duration::from_millis(100)); // let the stderr reader catch up
        status
    }

    /// Kills the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LineStream {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The body parsed as JSON, if it parses.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) to `base_url` (`http://host:port`).
/// `token`: sent as `Authorization: Bearer <token>` if given. Bounded by socket timeouts.
pub fn http(
    base_url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> HttpResponse {
    let authority = base_url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("api url `{base_url}` does not start with http://"))
        .trim_end_matches('/');
    let mut stream =
        TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(token) = token {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    } else if method != "GET" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    // A server may answer (e.g. 401/413) and close before reading a large body: a failed
    // write is then fine as long as a response can be read.
    let _ = stream.write_all(&bytes);
    let _ = stream.flush();
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        if raw.is_empty() {
            panic!("{method} {path}: reading the response failed: {e}");
        }
    }
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: malformed HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses a raw HTTP/1.1 response (status line, headers, body; chunked bodies decoded).
pub fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// True if `s` is a canonical 26-char ULID (Crockford base32, upper case).
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.chars()
            .all(|c| "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
        && s.as_bytes()[0] <= b'7'
}

/// True if `s` is 64 lower-case hex digits (a 32-byte key).
pub fn is_key_hex(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// Unix permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Parses a JSON literal (test convenience).
pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON literal {s}: {e}"))
}

/// Polls `check` every `every` until it gives `Some`, for at most `timeout`; panics with
/// `what` (and the last value seen by `describe`) past that.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(every);
    }
}

/// A free UDP port on 127.0.0.1 (bound and released; fine for tests on one machine).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP socket")
        .port()
}

/// A node's local API, for tests that need many cheap requests (no CLI process each).
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    pub token: String,
}

impl Api {
    /// `POST /v1/spaces/{space}/objects`; returns the new id (panics unless 201).
    pub fn add(&self, space: &str, object: &Value) -> String {
        let body = object.to_string();
        let path = format!("/v1/spaces/{space}/objects");
        let res = http(
            &self.url,
            "POST",
            &path,
            Some(&self.token),
            Some(body.as_bytes()),
        );
        assert_eq!(res.status, 201, "POST {path}: {}", res.body);
        res.json()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("POST {path}: no id in {}", res.body))
    }

    /// Whether `GET /v1/spaces/{space}/objects/{id}` finds the object.
    pub fn has(&self, space: &str, id: &str) -> bool {
        let path = format!("/v1/spaces/{space}/objects/{id}");
        let res = http(&self.url, "GET", &path, Some(&self.token), None);
        match res.status {
            200 => true,
            404 => false,
            other => panic!("GET {path}: {other} {}", res.body),
        }
    }
}

/// A standalone signaling server (`echo-node signal --listen 127.0.0.1:0 --json`), killed on
/// drop.
pub struct Signal {
    child: Option<Child>,
    addr: SocketAddr,
    log: Log,
}

impl Default for Signal {
    fn default() -> Self {
        Self::start()
    }
}

impl Signal {
    /// Starts the server and waits for its ready line.
    pub fn start() -> Signal {
        let log: Log = Arc::new(Mutex::new(String::new()));
        let mut child = Command::new(echo_node())
            .args(["signal", "--listen", "127.0.0.1:0", "--json"])
            .env_remove("ECHO_DATA_DIR")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo-node signal");
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), log.clone(), "out", Some(tx));
        drain(child.stderr.take().unwrap(), log.clone(), "err", None);
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "echo-node signal not ready within {READY_TIMEOUT:?}:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("signal ready line is not JSON ({e}): {line}"));
        let addr = ready["signal"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("signal ready line has no `signal` address: {line}"));
        Signal {
            child: Some(child),
            addr,
            log,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `--signal ADDR` as a string, for `run` flags.
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }

    /// Sends `SIG<signal>` and returns the exit status (bounded wait).
    pub fn terminate(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("signal server running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        wait_bounded(&mut child, STOP_TIMEOUT).unwrap_or_else(|| {
            panic!("echo-node signal did not exit within {STOP_TIMEOUT:?} after SIG{signal}")
        })
    }

    /// What the server printed so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "===== signal server logs =====\n{}===== end of signal server logs =====",
                self.logs()
            );
        }
    }
}

/// How long replication may take to show a write on another node.
pub const CONVERGE: Duration = Duration::from_secs(40);
/// Poll interval while waiting for replication.
pub const POLL: Duration = Duration::from_millis(100);

/// `owner` creates a space and makes every node of `members` an editor; they join it.
/// Returns the space key.
pub fn share(owner: &Node, members: &[&Node]) -> String {
    let space = owner.ok(&["space", "create", "--name", "shared"]);
    let key = space["space_key"].as_str().unwrap().to_owned();
    for member in members {
        let identity = member.identity_key();
        let added = owner.ok(&["space", "add-member", &key, &identity]);
        assert_eq!(added["identity_key"], identity.as_str(), "{added}");
        assert_eq!(added["role"], "editor", "{added}");
        let joined = member.ok(&["space", "join", &key]);
        assert_eq!(joined["space_key"], key.as_str(), "{joined}");
    }
    key
}

/// Adds an object on `node`, retrying while the node's feeds are not admitted yet (a node
/// that just joined may write once the admission has replicated to it).
pub fn add_when_admitted(node: &Node, space: &str, object: &str) -> String {
    eventually(
        "the joined node to be allowed to write",
        CONVERGE,
        POLL,
        || {
            let out = node.cli(&["object", "add", space, object]);
            if out.success() {
                return out.json.and_then(|v| v["id"].as_str().map(str::to_owned));
            }
            assert!(!out.stderr.contains("panicked"), "{out}");
            None
        },
    )
}

/// Waits (at most [`CONVERGE`] per node) until every node holds exactly `ids` in `space`.
pub fn converge(nodes: &[(&str, &Node)], space: &str, ids: &BTreeSet<String>) {
    for (name, node) in nodes {
        let start = Instant::now();
        loop {
            let seen = node.ids(space);
            if &seen == ids {
                break;
            }
            if start.elapsed() > CONVERGE {
                let missing: Vec<_> = ids.difference(&seen).collect();
                let extra: Vec<_> = seen.difference(ids).collect();
                node.fail_with(&format!(
                    "node {name} did not converge within {CONVERGE:?}: missing {missing:?}, \
                     unexpected {extra:?}; status {}",
                    node.status()
                ));
            }
            thread::sleep(POLL);
        }
    }
}
