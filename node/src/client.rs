//! The CLI's side of the local API: a blocking `ureq` client that finds the daemon through
//! `DATA_DIR/api.json` and `DATA_DIR/api-token`, and turns API errors into `anyhow` errors
//! carrying the server's message. No `api.json`, or a refused connection (a stale file
//! after a crash), means no daemon is running: exit code 3.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::exit::ExitError;
use crate::paths::DataDir;

/// How long to wait for the daemon to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a (non-streaming) request may take in all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// What a request that waits on the daemon's side (`space join`, `invite accept`) gets
/// beyond its wait, for the daemon to do the rest and answer.
const WAIT_MARGIN: Duration = Duration::from_secs(30);

/// The request timeout for a call that makes the daemon wait up to `wait`: the wait plus a
/// margin, and never less than [`REQUEST_TIMEOUT`]. The daemon answers when its own wait
/// ends; this only keeps the CLI from hanging on a daemon that never answers.
pub fn waiting(wait: Duration) -> Duration {
    REQUEST_TIMEOUT.max(wait.saturating_add(WAIT_MARGIN))
}

/// A connection to the running daemon of one data dir.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: String,
    data_dir: String,
    timeout: Duration,
}

impl Client {
    /// Finds the daemon of `dir`; fails with exit code 3 when none was started.
    pub fn connect(dir: &DataDir) -> anyhow::Result<Client> {
        let data_dir = dir.root().display().to_string();
        let info = dir
            .read_api_info()?
            .ok_or_else(|| no_daemon(&data_dir, ""))?;
        if !daemon_alive(info.pid) {
            // Never send the token to whatever now listens on a dead daemon's port.
            return Err(
                no_daemon(&data_dir, " (its api.json is stale: the daemon is gone)").into(),
            );
        }
        let token = dir.read_token()?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .build();
        Ok(Client {
            agent,
            base: info.url.trim_end_matches('/').to_string(),
            authorization: format!("Bearer {token}"),
            data_dir,
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with another overall timeout per request (see [`waiting`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.request("GET", path).call())
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.request("DELETE", path).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request("POST", path).send_json(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request("PUT", path).send_json(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request("PATCH", path).send_json(body))
    }

    /// Sends a POST whose answer is a stream of lines (`invite accept` with progress) and
    /// returns its body line by line; the whole exchange gets the client's timeout.
    pub fn post_lines(
        &self,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<impl Iterator<Item = std::io::Result<String>>> {
        let response = self
            .request("POST", path)
            .send_json(body)
            .map_err(|e| self.error(e))?;
        Ok(BufReader::new(response.into_reader()).lines())
    }

    /// Opens a streaming GET (no overall timeout) and returns its body line by line.
    pub fn stream_lines(
        &self,
        path: &str,
    ) -> anyhow::Result<impl Iterator<Item = std::io::Result<String>>> {
        let response = self
            .agent
            .request("GET", &format!("{}{path}", self.base))
            .set("Authorization", &self.authorization)
            .call()
            .map_err(|e| self.error(e))?;
        Ok(BufReader::new(response.into_reader()).lines())
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base))
            .timeout(self.timeout)
            .set("Authorization", &self.authorization)
    }

    fn json(&self, result: Result<ureq::Response, ureq::Error>) -> anyhow::Result<Value> {
        let response = result.map_err(|e| self.error(e))?;
        response
            .into_json()
            .context("the daemon sent a response that is not JSON")
    }

    /// Maps a ureq error: refused connections mean no daemon; HTTP errors carry the
    /// server's `error` message.
    fn error(&self, err: ureq::Error) -> anyhow::Error {
        match err {
            ureq::Error::Status(status, response) => {
                let body = response.into_string().unwrap_or_default();
                anyhow::anyhow!(server_message(status, &body))
            }
            ureq::Error::Transport(t) if t.kind() == ureq::ErrorKind::ConnectionFailed => {
                no_daemon(
                    &self.data_dir,
                    " (its api.json is stale: the daemon is gone)",
                )
                .into()
            }
            ureq::Error::Transport(t) => {
                anyhow::anyhow!(
                    "cannot talk to the echo-node daemon for data dir {}: {t}",
                    self.data_dir
                )
            }
        }
    }
}

/// Whether process `pid` is a running echo-node (checked through /proc where there is one;
/// elsewhere the connection attempt decides).
fn daemon_alive(pid: u32) -> bool {
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    match std::fs::read(proc_root.join(pid.to_string()).join("cmdline")) {
        Ok(cmdline) => {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let name = std::path::Path::new(std::ffi::OsStr::new(
                std::str::from_utf8(argv0).unwrap_or_default(),
            ))
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
            name.starts_with("echo-node")
        }
        Err(_) => false,
    }
}

fn no_daemon(data_dir: &str, detail: &str) -> ExitError {
    ExitError::no_daemon(format!(
        "no echo-node daemon is running for data dir {data_dir} \
         (start one with `echo-node run --data-dir {data_dir}`){detail}"
    ))
}

/// The message for an HTTP error response: the JSON `error` field when there is one.
pub fn server_message(status: u16, body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("the daemon answered HTTP {status}: {}", body.trim()))
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("abc-01_~."), "abc-01_~.");
        assert_eq!(seg("Team Notes/2"), "Team%20Notes%2F2");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn server_messages_prefer_the_json_error() {
        assert_eq!(
            server_message(
                404,
                r#"{"error":"space `x` not found","code":"space_not_found"}"#
            ),
            "space `x` not found"
        );
        assert_eq!(
            server_message(502, "bad gateway"),
            "the daemon answered HTTP 502: bad gateway"
        );
    }

    #[test]
    fn waiting_calls_get_their_wait_and_a_margin() {
        assert_eq!(waiting(Duration::from_millis(1)), REQUEST_TIMEOUT);
        assert_eq!(
            waiting(Duration::from_secs(180)),
            Duration::from_secs(180) + WAIT_MARGIN
        );
        assert_eq!(waiting(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn liveness_checks_the_process() {
        assert!(!daemon_alive(u32::MAX - 1), "no such process");
        // This test binary is alive but is not an echo-node.
        assert!(!daemon_alive(std::process::id()));
    }

    #[test]
    fn missing_api_json_means_no_daemon() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = Client::connect(&DataDir::new(tmp.path().to_path_buf()))
            .err()
            .expect("no daemon");
        assert_eq!(crate::exit::code_of(&err), crate::exit::NO_DAEMON);
        assert!(err.to_string().contains("no echo-node daemon is running"));
    }
}
