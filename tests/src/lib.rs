//! Support for the multi-process tests: finds (or builds) the `echo-node` binary, runs
//! daemons on throwaway data dirs, runs CLI commands against them and talks to the local
//! API with plain HTTP/1.1 over `TcpStream`.
//!
//! Every wait here is bounded. A [`Node`] kills its daemon when dropped, and prints the
//! daemon's captured stdout/stderr when it is dropped during a panic (a failing test).

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod api;
mod http;
mod invite;
mod net;
mod node;
mod stream;
mod util;
mod yjs;

pub use api::*;
pub use http::*;
pub use invite::*;
pub use net::*;
pub use node::*;
pub use stream::*;
pub use util::*;
pub use yjs::*;
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

/// Starts `echo-node ARGS` (a long-running process) with stdout and stderr piped, no stdin,
/// and no `ECHO_DATA_DIR` from the test's environment.
pub fn spawn_piped(args: &[&str]) -> Child {
    spawn_piped_env(args, &[])
}

/// [`spawn_piped`] with environment variables `envs` set.
pub fn spawn_piped_env(args: &[&str], envs: &[(&str, &str)]) -> Child {
    Command::new(echo_node())
        .args(args)
        .env_remove("ECHO_DATA_DIR")
        .env("RUST_BACKTRACE", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start echo-node {}: {e}", shell_words(args)))
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
