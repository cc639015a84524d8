//! [`Node`]: one daemon under test on a throwaway data dir; start, stop, kill -9, restart, CLI.

use super::*;

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
        self.start_with_env(extra, &[]);
    }

    /// [`Node::start_with`], with environment variables `envs` set for the daemon (e.g.
    /// `RUST_LOG`).
    pub fn start_with_env(&mut self, extra: &[&str], envs: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.runs += 1;
        append(&self.log, &format!("===== run #{} =====", self.runs));
        let mut args = vec!["--data-dir", self.data_dir.to_str().unwrap(), "run"];
        args.extend_from_slice(extra);
        let mut child = spawn_piped_env(&args, envs);
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

    /// Runs `echo-node --data-dir D --json ARGS`, bounded by `timeout` instead of
    /// [`CLI_TIMEOUT`] (for commands that wait on purpose, e.g. `space join --timeout`).
    pub fn cli_bounded(&self, args: &[&str], timeout: Duration) -> CliOutput {
        let mut full = vec!["--data-dir", self.data_dir.to_str().unwrap(), "--json"];
        full.extend_from_slice(args);
        run_cli_bounded(&full, &[], timeout).unwrap_or_else(|| {
            self.fail_with(&format!(
                "`echo-node {}` did not finish within {timeout:?}",
                args.join(" ")
            ))
        })
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
