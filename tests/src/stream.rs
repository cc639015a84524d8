//! [`LineStream`]: a child process whose stdout lines arrive on a channel (e.g. `watch`).

use super::*;

/// A child process whose stdout lines arrive on a channel (e.g. `watch`). Killed on drop.
pub struct LineStream {
    child: Child,
    lines: Receiver<String>,
    stderr: Log,
    pub cmd: String,
}

impl LineStream {
    pub(crate) fn spawn(args: &[&str]) -> LineStream {
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
