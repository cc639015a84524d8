//! [`YjsClient`]: a real Yjs client (npm `yjs` + `y-websocket`, run by Node.js from
//! `tests/js/client.mjs`) that a test drives with one JSON command per line.

use super::*;

/// How long one client command may take (the driver's own waits stop at 20 s).
pub const JS_TIMEOUT: Duration = Duration::from_secs(30);

/// `tests/js`, where `npm ci` installed the packages.
pub fn js_dir() -> PathBuf {
    let dir = workspace_root().join("tests").join("js");
    assert!(
        dir.join("node_modules").join("y-websocket").is_dir(),
        "the npm packages are not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    dir
}

/// One Yjs client process.
pub struct YjsClient {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: Receiver<String>,
    log: Log,
}

impl YjsClient {
    /// A client of `room` (a space key or name) on `node`'s API, with its token.
    pub fn connect(node: &Node, room: &str) -> YjsClient {
        Self::spawn(&node.yjs_url(), room, Some(&node.api_token()))
    }

    /// A client of `room` at `server_url` (`ws://.../v1/yjs`), with `token` if given.
    pub fn spawn(server_url: &str, room: &str, token: Option<&str>) -> YjsClient {
        let dir = js_dir();
        let mut args = vec!["client.mjs", server_url, room];
        args.extend(token);
        let mut child = Command::new("node")
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start node (Node.js)");
        let stdin = child.stdin.take().unwrap();
        let log: Log = Arc::default();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        drain(child.stderr.take().unwrap(), log.clone(), "js", None);
        YjsClient {
            child,
            stdin,
            lines,
            log,
        }
    }

    /// Sends one command and returns its answer (panics past [`JS_TIMEOUT`]).
    pub fn cmd(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").expect("write to the Yjs client");
        let line = self.lines.recv_timeout(JS_TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "the Yjs client did not answer {command} within {JS_TIMEOUT:?}; stderr:\n{}",
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            )
        });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line}: {e}"))
    }

    /// Sends a command that must succeed; returns its `value`.
    pub fn ok(&mut self, command: Value) -> Value {
        let answer = self.cmd(command.clone());
        assert_eq!(answer["ok"], true, "{command} -> {answer}");
        answer["value"].clone()
    }
}

impl Drop for YjsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// The y-websocket server URL of the node's API: `ws://127.0.0.1:PORT/v1/yjs`.
    pub fn yjs_url(&self) -> String {
        format!("{}/v1/yjs", self.api_url().replacen("http://", "ws://", 1))
    }
}
