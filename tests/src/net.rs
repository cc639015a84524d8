//! Networking helpers: a standalone signaling server, shared spaces, convergence.

use super::*;

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
        let mut child = spawn_piped(&["signal", "--listen", "127.0.0.1:0", "--json"]);
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

/// How long `space join` may wait for this node to become writable in these tests.
pub const JOIN_TIMEOUT: Duration = CONVERGE;

/// `space join SPACE_KEY --timeout JOIN_TIMEOUT` on `member` (run after a member added its
/// identity): asserts exit 0 and the space key. `join` answers once the node may write, so
/// the member's first write after it succeeds.
pub fn join(member: &Node, space_key: &str) -> Value {
    let timeout = format!("{}s", JOIN_TIMEOUT.as_secs());
    let out = member.cli_bounded(
        &["space", "join", space_key, "--timeout", &timeout],
        JOIN_TIMEOUT + CLI_TIMEOUT,
    );
    if !out.success() {
        member.fail_with(&format!("space join failed:\n{out}"));
    }
    let joined = out
        .json
        .clone()
        .unwrap_or_else(|| member.fail_with(&format!("space join printed no JSON:\n{out}")));
    assert_eq!(joined["space_key"], space_key, "{joined}");
    joined
}

/// `owner` creates a space and makes every node of `members` an editor; they join it, in
/// the order given (each join waits until that member may write, so a member whose only
/// peers are other members must come after them). Returns the space key.
pub fn share(owner: &Node, members: &[&Node]) -> String {
    let space = owner.ok(&["space", "create", "--name", "shared"]);
    let key = space["space_key"].as_str().unwrap().to_owned();
    for member in members {
        let identity = member.identity_key();
        let added = owner.ok(&["space", "add-member", &key, &identity]);
        assert_eq!(added["identity_key"], identity.as_str(), "{added}");
        assert_eq!(added["role"], "editor", "{added}");
        join(member, &key);
    }
    key
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
