//! Identity, daemon discovery and data-dir hygiene.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use echo_tests::{is_key_hex, mode, run_cli, Node};

#[test]
fn identity_create_then_show() {
    let node = Node::started();
    let created = node.ok(&["identity", "create", "--name", "alice"]);
    let identity_key = created["identity_key"].as_str().unwrap_or_default();
    let device_key = created["device_key"].as_str().unwrap_or_default();
    assert!(
        is_key_hex(identity_key),
        "identity_key not 64 hex: {created}"
    );
    assert!(is_key_hex(device_key), "device_key not 64 hex: {created}");
    assert_ne!(
        identity_key, device_key,
        "identity and device keys must differ"
    );

    let phrase = created["seed_phrase"].as_str().unwrap_or_default();
    let words: Vec<&str> = phrase.split_whitespace().collect();
    assert_eq!(
        words.len(),
        24,
        "seed phrase must have 24 words: {phrase:?}"
    );
    assert!(
        words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
        "seed phrase words must be lower-case BIP-39 words: {phrase:?}"
    );

    let shown = node.ok(&["identity", "show"]);
    assert_eq!(shown["identity_key"], identity_key, "show: {shown}");
    assert_eq!(shown["device_key"], device_key, "show: {shown}");
    assert_eq!(shown["name"], "alice", "show: {shown}");
    assert!(
        !shown.to_string().contains(phrase),
        "identity show must not print the seed phrase again: {shown}"
    );
    assert!(
        shown.get("seed_phrase").is_none(),
        "show leaks seed: {shown}"
    );

    // `status` agrees with the identity.
    let status = node.status();
    assert_eq!(status["identity_key"], identity_key, "status: {status}");
    assert_eq!(status["device_key"], device_key, "status: {status}");
}

#[test]
fn identity_create_without_name() {
    let node = Node::started();
    let created = node.ok(&["identity", "create"]);
    assert!(is_key_hex(
        created["identity_key"].as_str().unwrap_or_default()
    ));
    let shown = node.ok(&["identity", "show"]);
    assert_eq!(shown["identity_key"], created["identity_key"]);
    assert!(
        shown["name"].is_null(),
        "identity without --name should have a null name: {shown}"
    );
    // Without --device-name the CLI names the device after its host.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if !host.is_empty() {
        assert_eq!(shown["device_name"], host, "{shown}");
        let devices = node.ok(&["device", "list"]);
        assert_eq!(devices[0]["name"], host, "{devices}");
    }
}

#[test]
fn second_identity_create_fails_and_keeps_the_first() {
    let node = Node::started();
    let first = node.ok(&["identity", "create", "--name", "one"]);
    let out = node.fails(&["identity", "create", "--name", "two"]);
    assert!(
        out.stderr.to_lowercase().contains("identity"),
        "second create should say an identity exists:\n{out}"
    );
    let shown = node.ok(&["identity", "show"]);
    assert_eq!(shown["identity_key"], first["identity_key"]);
    assert_eq!(shown["name"], "one");
}

#[test]
fn commands_before_identity_fail_clearly() {
    let node = Node::started();
    let out = node.fails(&["space", "create", "--name", "x"]);
    assert!(
        out.stderr.to_lowercase().contains("identity"),
        "space create without identity should mention the missing identity:\n{out}"
    );
    let out = node.fails(&["identity", "show"]);
    assert!(
        out.stderr.to_lowercase().contains("identity"),
        "identity show without identity should say there is none:\n{out}"
    );
    // Status works without an identity: the device key exists from the start.
    let status = node.status();
    assert!(
        is_key_hex(status["device_key"].as_str().unwrap_or_default()),
        "status before identity: {status}"
    );
    assert!(status["identity_key"].is_null(), "status: {status}");
    // The node still works and can then create the identity.
    node.ok(&["identity", "create"]);
    node.ok(&["space", "create", "--name", "x"]);
}

fn assert_not_running_message(out: &echo_tests::CliOutput) {
    assert!(!out.success(), "expected failure:\n{out}");
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("running") || err.contains("daemon"),
        "message should say that no daemon is running:\n{out}"
    );
    assert!(!err.contains("panicked at"), "panicked:\n{out}");
}

#[test]
fn no_daemon_running_is_reported() {
    let node = Node::new();
    for args in [
        &["status"][..],
        &["identity", "create"],
        &["identity", "show"],
        &["space", "list"],
        &["object", "add", "s", "{}"],
        &["query", "s"],
    ] {
        let start = Instant::now();
        let out = node.cli(args);
        assert_not_running_message(&out);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "`{}` took {:?} to notice that no daemon runs",
            out.cmd,
            start.elapsed()
        );
    }
    // Same without --json.
    assert_not_running_message(&node.cli_plain(&["status"]));
}

#[test]
fn no_daemon_after_clean_stop() {
    let mut node = Node::started();
    node.ok(&["identity", "create"]);
    node.stop();
    assert_not_running_message(&node.cli(&["identity", "show"]));
}

#[test]
fn stale_api_json_after_kill9() {
    let mut node = Node::started();
    let created = node.ok(&["identity", "create"]);
    node.kill9();
    // api.json (if left behind) now points at a dead port.
    let start = Instant::now();
    let out = node.cli(&["identity", "show"]);
    assert_not_running_message(&out);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stale api.json took {:?} to detect",
        start.elapsed()
    );
    // The node starts again and the identity is still there.
    node.start();
    let shown = node.ok(&["identity", "show"]);
    assert_eq!(shown["identity_key"], created["identity_key"]);
}

#[test]
fn api_files_and_permissions() {
    let node = Node::started();
    let data = node.data_dir();
    let token_mode = mode(&data.join("api-token"));
    assert_eq!(
        token_mode & 0o777,
        0o600,
        "api-token must be mode 0600, is {token_mode:o}"
    );
    let dir_mode = mode(data);
    assert_eq!(
        dir_mode & 0o007,
        0,
        "data dir must not be accessible to others, mode is {dir_mode:o}"
    );
    let url = node.api_url();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "api.json url must be on 127.0.0.1: {url}"
    );
    let port: u16 = url["http://127.0.0.1:".len()..]
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("api.json url has no port: {url}"));
    assert_ne!(port, 0);
    assert!(node.api_token().len() >= 16, "api token looks too short");
}

#[test]
fn data_dir_from_env() {
    let node = Node::started();
    let created = node.ok(&["identity", "create"]);
    let out = run_cli(
        &["--json", "identity", "show"],
        &[("ECHO_DATA_DIR", node.data_dir())],
    );
    assert!(
        out.success(),
        "ECHO_DATA_DIR should select the data dir:\n{out}"
    );
    let shown = out.json.expect("JSON output");
    assert_eq!(shown["identity_key"], created["identity_key"]);
}

#[test]
fn second_daemon_on_same_dir_is_refused() {
    let mut node = Node::started();
    node.ok(&["identity", "create"]);
    let url_before = node.api_url();
    let token_before = node.api_token();

    let mut second = std::process::Command::new(echo_tests::echo_node())
        .args(["--data-dir", node.data_dir().to_str().unwrap(), "run"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = echo_tests::wait_bounded(&mut second, Duration::from_secs(15));
    let mut err = String::new();
    if let Some(mut s) = second.stderr.take() {
        use std::io::Read;
        let _ = s.read_to_string(&mut err);
    }
    match status {
        None => node.fail_with("a second `run` on a busy data dir kept running"),
        Some(s) if s.success() => node.fail_with("a second `run` on a busy data dir exited 0"),
        Some(_) => {}
    }
    assert!(!err.trim().is_empty(), "second daemon failed silently");
    // The first daemon is untouched and still reachable.
    assert_eq!(node.api_url(), url_before, "second daemon rewrote api.json");
    assert_eq!(
        node.api_token(),
        token_before,
        "second daemon rewrote api-token"
    );
    node.ok(&["identity", "show"]);
    node.stop();
}

#[test]
fn run_options_api_and_listen() {
    // A free loopback port for the API.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The peer port is really bound now: take a free one.
    let peer_port = echo_tests::free_udp_port();
    let mut node = Node::new();
    node.start_with(&[
        "--api",
        &format!("127.0.0.1:{port}"),
        "--listen",
        &format!("127.0.0.1:{peer_port}"),
    ]);
    assert_eq!(
        node.api_url().trim_end_matches('/'),
        format!("http://127.0.0.1:{port}"),
        "--api must choose the API address"
    );
    let status = node.status();
    assert!(
        status["listen"]
            .as_str()
            .is_some_and(|l| l == format!("127.0.0.1:{peer_port}")),
        "status must report the --listen address: {status}"
    );
    node.stop();

    // The local API is loopback only.
    let mut bad = Node::new();
    let out = run_cli(
        &[
            "--data-dir",
            bad.data_dir().to_str().unwrap(),
            "run",
            "--api",
            "0.0.0.0:0",
        ],
        &[],
    );
    assert!(
        !out.success(),
        "a non-loopback --api must be refused:\n{out}"
    );
    assert!(!out.stderr.trim().is_empty(), "no message:\n{out}");
    // And a bad data dir path (a file) is refused with a message.
    let file = bad.data_dir().with_file_name("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run_cli(&["--data-dir", file.to_str().unwrap(), "run"], &[]);
    assert!(!out.success(), "a file as data dir must be refused:\n{out}");
    assert!(!out.stderr.trim().is_empty(), "no message:\n{out}");
    assert!(!out.stderr.contains("panicked at"), "panicked:\n{out}");
    // The refused runs left nothing in the way of a normal start.
    bad.start();
    bad.ok(&["status"]);
    bad.stop();
}

#[test]
fn data_dir_defaults_to_xdg() {
    let xdg = tempfile::tempdir().unwrap();
    let out = run_cli(&["status"], &[("XDG_DATA_HOME", xdg.path())]);
    assert_not_running_message(&out);
    assert!(
        out.stderr.contains(xdg.path().to_str().unwrap()),
        "without --data-dir or ECHO_DATA_DIR the data dir is under $XDG_DATA_HOME, and the \
         message should name it:\n{out}"
    );
    assert!(
        !xdg.path().join("echo-rs").join("api.json").exists(),
        "a client command must not create daemon files"
    );
}

#[test]
fn stale_api_json_with_port_taken_by_another_process() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut node = Node::started();
    node.ok(&["identity", "create"]);
    let url = node.api_url();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    node.kill9();

    // Something else now listens on the dead daemon's port: it accepts connections and
    // never answers.
    let listener = match std::net::TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => panic!("could not take over {addr} after kill -9: {e}"),
    };
    listener.set_nonblocking(true).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let squatter = std::thread::spawn(move || {
        let mut held = Vec::new();
        let start = Instant::now();
        while !done2.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(40) {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        held.len()
    });

    let args = [
        "--data-dir",
        node.data_dir().to_str().unwrap(),
        "--json",
        "identity",
        "show",
    ];
    let out = echo_tests::run_cli_bounded(&args, &[], Duration::from_secs(15));
    done.store(true, Ordering::Relaxed);
    let connections = squatter.join().unwrap();
    let out = out.unwrap_or_else(|| {
        panic!(
            "with a stale api.json whose port another process took over (it accepted \
             {connections} connection(s) and never answered), `echo-node identity show` \
             hung for 15 s instead of saying that no daemon is running"
        )
    });
    assert!(!out.success(), "{out}");
    assert!(!out.stderr.trim().is_empty(), "no message:\n{out}");
}
