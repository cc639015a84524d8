//! Invitations and membership through the CLI: `invite create | accept | list | cancel`,
//! `space members`, and the checks the invitation tests share.

use super::*;

/// How long an `invite accept` may take in these tests (`--timeout`); far below
/// [`CLI_TIMEOUT`], so a hung handshake fails as the daemon's timeout, not as a killed CLI.
pub const ACCEPT_TIMEOUT: &str = "20s";

/// What `invite create --json` printed.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub code: String,
    /// The 6-digit auth code of a `pin` invitation.
    pub auth_code: Option<String>,
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("a u64 of milliseconds")
}

/// `invite create SPACE EXTRA...` on `host`: asserts exit 0 and exactly the documented keys
/// (`invitation_code` `echo1...`, `auth_code` 6 digits for `pin` or null, `invitation_id` 32
/// hex, `expires_at` in the future).
pub fn invite(host: &Node, space: &str, extra: &[&str]) -> Invitation {
    let mut args = vec!["invite", "create", space];
    args.extend_from_slice(extra);
    let before = now_ms();
    let v = host.ok(&args);
    let keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| host.fail_with(&format!("invite create printed {v}")))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "auth_code",
            "expires_at",
            "invitation_code",
            "invitation_id"
        ],
        "{v}"
    );
    let code = v["invitation_code"].as_str().unwrap().to_owned();
    assert!(
        code.starts_with("echo1") && code.len() > 100,
        "invitation code {code}"
    );
    let id = v["invitation_id"].as_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "invitation id {id}"
    );
    let auth_code = v["auth_code"].as_str().map(str::to_owned);
    let pin = !extra.contains(&"--auth") || extra.windows(2).any(|w| w == ["--auth", "pin"]);
    if pin {
        let pin = auth_code
            .as_deref()
            .unwrap_or_else(|| host.fail_with(&format!("a pin invitation without auth_code: {v}")));
        assert!(
            pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
            "auth code {pin}"
        );
        assert!(
            !code.contains(pin) || code.len() < 6,
            "the code must not carry the auth code"
        );
    } else {
        assert_eq!(v["auth_code"], Value::Null, "{v}");
    }
    let expires_at = v["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > before,
        "expires_at {expires_at} is not after {before}"
    );
    Invitation {
        code,
        auth_code,
        id,
        expires_at,
    }
}

/// A 6-digit code that is not `pin`.
pub fn wrong_code(pin: &str) -> &'static str {
    if pin == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// `invite accept CODE [--auth-code AUTH] --timeout ACCEPT_TIMEOUT` (with `--json`).
pub fn accept(guest: &Node, code: &str, auth_code: Option<&str>) -> CliOutput {
    let mut args = vec!["invite", "accept", code, "--timeout", ACCEPT_TIMEOUT];
    if let Some(auth) = auth_code {
        args.extend(["--auth-code", auth]);
    }
    guest.cli(&args)
}

/// Accepts and asserts success: exit 0 and exactly `{"role": role, "space_key": space}`.
pub fn accept_ok(guest: &Node, code: &str, auth_code: Option<&str>, space: &str, role: &str) {
    let out = accept(guest, code, auth_code);
    if !out.success() {
        guest.fail_with(&format!("invite accept failed:\n{out}"));
    }
    assert_eq!(
        out.json,
        Some(serde_json::json!({"role": role, "space_key": space})),
        "{out}"
    );
}

/// Asserts that `out` failed with exit code 1 and printed exactly `error: MESSAGE`.
pub fn refused(out: &CliOutput, message: &str) {
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(out.stderr.trim(), format!("error: {message}"), "{out}");
    assert!(out.stdout.trim().is_empty(), "{out}");
}

/// `invite list [SPACE] --json` on `host`.
pub fn invitations(host: &Node, space: Option<&str>) -> Vec<Value> {
    let mut args = vec!["invite", "list"];
    args.extend(space);
    match host.ok(&args) {
        Value::Array(list) => list,
        other => host.fail_with(&format!("invite list printed {other}, not an array")),
    }
}

/// The invitation `id` as `invite list --json` shows it (asserting it is listed once).
pub fn listed(host: &Node, id: &str) -> Value {
    let list = invitations(host, None);
    let found: Vec<&Value> = list.iter().filter(|i| i["invitation_id"] == id).collect();
    match found[..] {
        [one] => one.clone(),
        _ => host.fail_with(&format!("invitation {id} is not listed once: {list:?}")),
    }
}

/// Asserts the host's view of invitation `id`: its state, reason, attempts left and uses.
pub fn assert_listed(
    host: &Node,
    id: &str,
    state: &str,
    reason: Option<&str>,
    attempts_left: u64,
    uses: u64,
) -> Value {
    let v = listed(host, id);
    assert_eq!(v["state"], state, "{v}");
    assert_eq!(v["reason"].as_str(), reason, "{v}");
    assert_eq!(v["attempts_left"], attempts_left, "{v}");
    assert_eq!(v["uses"], uses, "{v}");
    v
}

/// `space members SPACE --json` as identity key -> role.
pub fn members(node: &Node, space: &str) -> BTreeMap<String, String> {
    let v = node.ok(&["space", "members", space]);
    v.as_array()
        .unwrap_or_else(|| node.fail_with(&format!("space members printed {v}")))
        .iter()
        .map(|m| {
            (
                m["identity_key"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits (at most [`CONVERGE`]) until `node` lists `who` with `role` in `space`.
pub fn wait_for_role(node: &Node, space: &str, who: &str, role: &str) {
    let start = Instant::now();
    loop {
        let seen = members(node, space);
        if seen.get(who).map(String::as_str) == Some(role) {
            return;
        }
        if start.elapsed() > CONVERGE {
            node.fail_with(&format!(
                "{who} is not {role} after {CONVERGE:?}; members: {seen:?}"
            ));
        }
        thread::sleep(POLL);
    }
}

/// Length of the data feed of device `device` in `space`, as `node`'s `status` shows it (0
/// when the node holds no such feed).
pub fn data_length(node: &Node, space: &str, device: &str) -> u64 {
    node.feeds(space)
        .iter()
        .filter(|f| f["designation"] == "data" && f["device_key"] == device)
        .map(|f| f["length"].as_u64().unwrap())
        .sum()
}
