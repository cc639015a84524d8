//! One `echo-node run` daemon for a benchmark: started on its own data dir with loopback
//! addresses, ready once its `--json` ready line is in its log (which also gives its bound
//! peer address), reached through its local API with the token from `DATA_DIR/api-token`,
//! and killed when dropped.
//!
//! Output goes to a log file next to the data dir rather than a pipe, so nothing has to
//! drain it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::soak::api::{self, Endpoint};

/// How long a daemon may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Daemon {
    child: Child,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub api: Endpoint,
    /// The bound QUIC address (`run --listen 127.0.0.1:0` with its real port).
    pub listen: String,
}

impl Daemon {
    /// `echo-node --data-dir DIR/NAME --json run --listen 127.0.0.1:0 EXTRA...`, waited for.
    pub fn start(bin: &Path, dir: &Path, name: &str, extra: &[&str]) -> Result<Daemon> {
        let data_dir = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--json", "run", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("ECHO_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {} run", bin.display()))?;
        let mut daemon = Daemon {
            child,
            data_dir,
            log,
            api: Endpoint {
                url: String::new(),
                token: String::new(),
            },
            listen: String::new(),
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            let ready = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["status"] == "ready");
            if let Some(v) = ready {
                let (Some(url), Some(listen)) = (v["url"].as_str(), v["listen"].as_str()) else {
                    bail!("ready line without url or listen: {v}");
                };
                let token = fs::read_to_string(self.data_dir.join("api-token"))
                    .with_context(|| format!("read {}/api-token", self.data_dir.display()))?;
                self.api = Endpoint {
                    url: url.trim_end_matches('/').to_owned(),
                    token: token.trim().to_owned(),
                };
                self.listen = listen.to_owned();
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("echo-node exited with {status} before it was ready:\n{text}");
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("echo-node not ready within {READY_TIMEOUT:?}:\n{text}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /v1/status`.
    pub fn status(&self, agent: &ureq::Agent) -> Result<Value> {
        api::expect(agent, &self.api, "GET", "/v1/status", None, &[200])
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Length of feed `feed_key` of `space` in a `GET /v1/status` answer (0 if absent).
pub fn feed_length(status: &Value, space: &str, feed_key: &str) -> u64 {
    feeds(status, space)
        .iter()
        .find(|f| f["feed_key"] == feed_key)
        .and_then(|f| f["length"].as_u64())
        .unwrap_or(0)
}

/// The feeds of `space` in a status answer.
pub fn feeds<'a>(status: &'a Value, space: &str) -> &'a [Value] {
    status["spaces"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["space_key"] == space))
        .and_then(|s| s["feeds"].as_array())
        .map_or(&[], Vec::as_slice)
}

/// The key of the node's own data feed of `space` (designation `data`, its device).
pub fn own_data_feed(status: &Value, space: &str) -> Result<String> {
    let device = &status["device_key"];
    feeds(status, space)
        .iter()
        .find(|f| f["designation"] == "data" && &f["device_key"] == device)
        .and_then(|f| f["feed_key"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no own data feed of space {space} in status {status}"))
}
