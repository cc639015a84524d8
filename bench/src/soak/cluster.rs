//! The processes of a soak run: one standalone signaling server and N `echo-node` daemons,
//! each on its own data dir; started, killed with SIGKILL and restarted; and what `/proc`
//! says about them (VmRSS, open fds).
//!
//! Daemon output goes to a log file per node (appended across restarts) rather than a pipe,
//! so nothing has to drain it and a killed process never blocks on a full pipe. Readiness is
//! read from the files the daemon writes (`api.json` with its pid, then `api-token`), which
//! also tells a fresh run from the stale `api.json` a `kill -9` leaves behind.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::api::Endpoint;

/// How long a daemon or the signaling server may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn log_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open log {}", path.display()))
}

/// `echo-node signal --listen 127.0.0.1:0 --json`, killed on drop.
pub struct Signal {
    child: Child,
    /// The address it listens on, for `run --signal`.
    pub addr: String,
}

impl Signal {
    pub fn start(bin: &Path, dir: &Path) -> Result<Signal> {
        let log_path = dir.join("signal.log");
        let out = log_file(&log_path)?;
        let err = out.try_clone()?;
        let mut child = Command::new(bin)
            .args(["signal", "--listen", "127.0.0.1:0", "--json"])
            .env_remove("ECHO_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {} signal", bin.display()))?;
        let start = Instant::now();
        loop {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            let ready = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["status"] == "ready");
            if let Some(addr) = ready.as_ref().and_then(|v| v["signal"].as_str()) {
                return Ok(Signal {
                    child,
                    addr: addr.to_owned(),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("signaling server exited with {status} before it was ready:\n{text}");
            }
            if start.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("signaling server not ready within {READY_TIMEOUT:?}:\n{text}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The changing part of a node: its current process, if any, and how to reach its API.
#[derive(Default)]
pub struct NodeState {
    pub child: Option<Child>,
    /// Pid of `child`, kept so samplers need not touch the `Child`.
    pub pid: Option<u32>,
    /// Known once this run wrote its `api.json` and token.
    pub endpoint: Option<Endpoint>,
    /// Starts so far (1 after the first start); samples are tagged with it.
    pub incarnation: usize,
    /// When this run was started.
    pub started_at: Option<Instant>,
    /// Exits that the soak did not cause (each one is a failure), with their status.
    pub crashes: Vec<String>,
}

/// One node of the cluster: a data dir and at most one daemon on it.
pub struct Node {
    pub index: usize,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    bin: PathBuf,
    signal: String,
    state: Mutex<NodeState>,
}

impl Node {
    pub fn new(index: usize, root: &Path, bin: &Path, signal: &str) -> Node {
        Node {
            index,
            data_dir: root.join(format!("node-{index}")),
            log_path: root.join(format!("node-{index}.log")),
            bin: bin.to_path_buf(),
            signal: signal.to_owned(),
            state: Mutex::new(NodeState::default()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, NodeState> {
        // A panicking sampler must not take the whole soak down with a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Spawns `echo-node --data-dir D --json run --listen 127.0.0.1:0 --signal S` without
    /// waiting for it; [`Node::endpoint`] tells when it is ready.
    pub fn start(&self) -> Result<()> {
        let mut st = self.state();
        if st.child.is_some() {
            return Ok(());
        }
        let out = log_file(&self.log_path)?;
        let err = out.try_clone()?;
        let data_dir = self.data_dir.to_string_lossy().into_owned();
        let child = Command::new(&self.bin)
            .args(["--data-dir", &data_dir, "--json", "run"])
            .args(["--listen", "127.0.0.1:0", "--signal", &self.signal])
            .env_remove("ECHO_DATA_DIR")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start node {} ({})", self.index, self.bin.display()))?;
        st.pid = Some(child.id());
        st.child = Some(child);
        st.endpoint = None;
        st.incarnation += 1;
        st.started_at = Some(Instant::now());
        Ok(())
    }

    /// SIGKILLs the running daemon (no-op when none runs) and reaps it.
    pub fn kill9(&self) -> Result<()> {
        let mut st = self.state();
        if let Some(mut child) = st.child.take() {
            child.kill().context("kill -9")?;
            child.wait().context("reap killed node")?;
        }
        st.pid = None;
        st.endpoint = None;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.state().child.is_some()
    }

    /// Notices a daemon that exited on its own (not killed by us): records it as a crash
    /// and forgets the process, so the soak restarts it. Returns whether one was found.
    pub fn reap_crashed(&self) -> bool {
        let mut st = self.state();
        let exited = match st.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(format!("wait failed: {e}")),
            _ => None,
        };
        if let Some(status) = exited {
            let inc = st.incarnation;
            st.crashes
                .push(format!("run #{inc} exited on its own: {status}"));
            st.child = None;
            st.pid = None;
            st.endpoint = None;
            return true;
        }
        false
    }

    /// The API of the running daemon once it is ready (its own `api.json` and token are
    /// written); `None` while it starts or when none runs.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let mut st = self.state();
        if st.endpoint.is_none() {
            let pid = st.pid?;
            st.endpoint = read_endpoint(&self.data_dir, pid);
        }
        st.endpoint.clone()
    }

    /// Waits (bounded) until the running daemon is ready.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Endpoint> {
        let start = Instant::now();
        loop {
            if let Some(ep) = self.endpoint() {
                return Ok(ep);
            }
            if self.reap_crashed() {
                bail!(
                    "node {} exited before it was ready (log {})",
                    self.index,
                    self.log_path.display()
                );
            }
            if !self.is_running() {
                bail!("node {} is not running", self.index);
            }
            if start.elapsed() > timeout {
                bail!(
                    "node {} not ready within {timeout:?} (log {})",
                    self.index,
                    self.log_path.display()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The current pid and incarnation, if a daemon runs.
    pub fn pid(&self) -> Option<(u32, usize)> {
        let st = self.state();
        st.pid.map(|p| (p, st.incarnation))
    }

    /// Whether the node's log shows a panic (any run).
    pub fn log_has_panic(&self) -> bool {
        fs::read_to_string(&self.log_path)
            .map(|t| t.contains("panicked at"))
            .unwrap_or(false)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// `api.json` of the run with `pid` plus the token; `None` until both are in place (the
/// daemon writes the token first, then `api.json`, each atomically).
fn read_endpoint(data_dir: &Path, pid: u32) -> Option<Endpoint> {
    let raw = fs::read_to_string(data_dir.join("api.json")).ok()?;
    let v: Value = serde_json::from_str(&raw).ok()?;
    if v["pid"].as_u64() != Some(u64::from(pid)) {
        return None; // the stale file of a killed run
    }
    let url = v["url"].as_str()?.trim_end_matches('/').to_owned();
    let token = fs::read_to_string(data_dir.join("api-token")).ok()?;
    Some(Endpoint {
        url,
        token: token.trim().to_owned(),
    })
}

/// Resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
