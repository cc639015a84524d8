//! Small checks and waits shared by the tests.

use super::*;

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
