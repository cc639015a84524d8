//! Peer networking between real `echo-node` processes on loopback: convergence through a
//! standalone signaling server (with a latency measurement), a line of static peers, offline
//! writers, a node killed mid-stream, an embedded signaling server, and the CLI contract of
//! the networking commands.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{
    converge, eventually, free_udp_port, is_key_hex, share, Node, Signal, CONVERGE, POLL,
};
use serde_json::json;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A `space members --json` answer as (identity key, role) pairs.
fn member_roles(members: &serde_json::Value) -> BTreeSet<(String, String)> {
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["identity_key"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn three_nodes_converge_through_a_signaling_server() {
    let signal = Signal::start();
    let flags = ["--signal", &signal.arg()];
    let a = Node::networked("a", &flags);
    let b = Node::networked("b", &flags);
    let c = Node::networked("c", &flags);
    let space = share(&a, &[&b, &c]);

    let members = a.ok(&["space", "members", &space]);
    let roles = member_roles(&members);
    let expected: BTreeSet<(String, String)> = [
        (a.identity_key(), "owner".to_owned()),
        (b.identity_key(), "editor".to_owned()),
        (c.identity_key(), "editor".to_owned()),
    ]
    .into();
    assert_eq!(roles, expected, "{members}");

    // One write on each node is visible on every node.
    let mut ids = BTreeSet::new();
    ids.insert(a.add(&space, r#"{"@type":"Note","from":"a"}"#));
    ids.insert(b.add(&space, r#"{"@type":"Note","from":"b"}"#));
    ids.insert(c.add(&space, r#"{"@type":"Note","from":"c"}"#));
    let all = [("a", &a), ("b", &b), ("c", &c)];
    converge(&all, &space, &ids);
    // The members list replicated too, and every node has found peers.
    // (Roles, that is: `online` is each node's own view of presence and may differ.)
    let on_c = c.ok(&["space", "members", &space]);
    assert_eq!(member_roles(&on_c), roles, "members on c: {on_c}");
    for (name, node) in all {
        assert!(!node.peers(&space).is_empty(), "{name} has no peers");
    }

    // Latency: a write on A (through A's local API) until C's local API returns it.
    let (api_a, api_c) = (a.api(), c.api());
    let mut latencies = Vec::new();
    let mut acks = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        let id = api_a.add(&space, &json!({"@type": "Ping", "i": i}));
        acks.push(start.elapsed());
        eventually(
            "a's write to reach c",
            CONVERGE,
            Duration::from_millis(2),
            || api_c.has(&space, &id).then_some(()),
        );
        latencies.push(start.elapsed());
        ids.insert(id);
    }
    let med = median(latencies.clone());
    println!(
        "write on A -> visible on C (3 nodes via signaling, loopback, debug build): \
         median {:.1} ms over {} writes (min {:.1} ms, max {:.1} ms)",
        med.as_secs_f64() * 1e3,
        latencies.len(),
        latencies.iter().min().unwrap().as_secs_f64() * 1e3,
        latencies.iter().max().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "  of which the durable write on A (HTTP 201): median {:.1} ms",
        median(acks).as_secs_f64() * 1e3
    );
    converge(&all, &space, &ids);
}

#[test]
fn a_line_of_static_peers_relays_both_ways() {
    let a = Node::networked("a", &[]);
    let a_addr = a.listen_addr().to_string();
    let b = Node::networked("b", &["--peer", &a_addr]);
    let b_addr = b.listen_addr().to_string();
    let c = Node::networked("c", &["--peer", &b_addr]);
    let space = share(&a, &[&b, &c]);
    let c_device = c.device_key();
    let a_device = a.device_key();
    let check_line = || {
        let a_peers = a.peers(&space);
        assert!(
            !a_peers.contains(&c_device),
            "A must never connect to C: {a_peers:?}"
        );
        let c_peers = c.peers(&space);
        assert!(
            !c_peers.contains(&a_device),
            "C must never connect to A: {c_peers:?}"
        );
    };

    let mut ids = BTreeSet::new();
    ids.insert(a.add(&space, r#"{"from":"a"}"#));
    check_line();
    let all = [("a", &a), ("b", &b), ("c", &c)];
    converge(&all, &space, &ids);
    check_line();
    ids.insert(c.add(&space, r#"{"from":"c"}"#));
    converge(&all, &space, &ids);
    check_line();
    assert_eq!(a.peers(&space), vec![b.device_key()], "A talks to B only");
    let b_peers: BTreeSet<String> = b.peers(&space).into_iter().collect();
    assert_eq!(b_peers, [a_device, c_device].into(), "B talks to A and C");
}

#[test]
fn offline_writers_catch_up() {
    let signal = Signal::start();
    let flags = ["--signal", &signal.arg()];
    let mut a = Node::networked("a", &flags);
    let mut b = Node::networked("b", &flags);
    let space = share(&a, &[&b]);
    let mut ids = BTreeSet::new();
    ids.insert(b.add(&space, r#"{"from":"b","n":0}"#));
    let both = [("a", &a), ("b", &b)];
    converge(&both, &space, &ids);

    // B is down while A writes.
    b.stop();
    for n in 0..10 {
        ids.insert(a.add(&space, &format!(r#"{{"from":"a","n":{n}}}"#)));
    }
    b.start_net(&flags);
    converge(&[("a", &a), ("b", &b)], &space, &ids);

    // The reverse: A (B's only peer) is down while B writes.
    a.stop();
    for n in 1..=10 {
        ids.insert(b.add(&space, &format!(r#"{{"from":"b","n":{n}}}"#)));
    }
    assert_eq!(b.ids(&space), ids, "B keeps its own writes while alone");
    a.start_net(&flags);
    converge(&[("a", &a), ("b", &b)], &space, &ids);
}

#[test]
fn a_node_killed_mid_stream_catches_up_after_restart() {
    let a = Node::networked("a", &[]);
    let a_addr = a.listen_addr().to_string();
    let flags = ["--peer", a_addr.as_str()];
    let mut c = Node::networked("c", &flags);
    let space = share(&a, &[&c]);
    let first = a.add(&space, r#"{"n":-1}"#);
    converge(&[("a", &a), ("c", &c)], &space, &[first.clone()].into());

    let api = a.api();
    let writer_space = space.clone();
    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let writer = thread::spawn(move || {
        (0..100)
            .map(|n| {
                let id = api.add(&writer_space, &json!({"n": n}));
                progress.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                id
            })
            .collect::<Vec<_>>()
    });
    // Kill C while A is writing (after 25 of its 100 writes), and bring it back at once.
    eventually(
        "A to write 25 objects",
        CONVERGE,
        Duration::from_millis(5),
        || (written.load(Ordering::SeqCst) >= 25).then_some(()),
    );
    c.kill9();
    let at_kill = written.load(Ordering::SeqCst);
    c.start_net(&flags);
    let at_restart = written.load(Ordering::SeqCst);
    println!("C killed after {at_kill} of A's writes, back after {at_restart}");
    assert!(
        at_restart < 100,
        "A finished writing before C was back; the test did not restart C mid-stream"
    );
    let written = writer.join().unwrap();
    assert_eq!(written.len(), 100);
    let mut ids: BTreeSet<String> = written.into_iter().collect();
    ids.insert(first);
    converge(&[("a", &a), ("c", &c)], &space, &ids);
}

#[test]
fn embedded_signaling_server() {
    let port = free_udp_port();
    let signal_addr = format!("127.0.0.1:{port}");
    let mut a = Node::new();
    a.start_net(&["--serve-signal", &signal_addr]);
    assert!(
        a.ready_line().contains(&signal_addr) && a.ready_line().contains("ready"),
        "the ready line names the signaling server: {}",
        a.ready_line()
    );
    a.ok(&["identity", "create", "--name", "a"]);
    let b = Node::networked("b", &["--signal", &signal_addr]);
    let space = share(&a, &[&b]);
    let mut ids = BTreeSet::new();
    ids.insert(a.add(&space, r#"{"from":"a"}"#));
    ids.insert(b.add(&space, r#"{"from":"b"}"#));
    converge(&[("a", &a), ("b", &b)], &space, &ids);
    assert_eq!(a.peers(&space), vec![b.device_key()]);
}

#[test]
fn networking_cli_contract() {
    // `run` shows the bound peer address in its ready line and in status.
    let mut a = Node::new();
    a.start_with(&["--listen", "127.0.0.1:0", "--json"]);
    let ready: serde_json::Value = serde_json::from_str(a.ready_line()).unwrap();
    let listen = ready["listen"].as_str().unwrap().to_owned();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "ready line must carry the bound address: {ready}"
    );
    assert_eq!(a.listen_addr().to_string(), listen);
    a.ok(&["identity", "create"]);
    let space = a.ok(&["space", "create", "--name", "team"]);
    let key = space["space_key"].as_str().unwrap().to_owned();
    let status = a.status();
    assert_eq!(status["spaces"][0]["peers"], json!([]), "{status}");
    let human = a.cli_plain(&["status"]);
    assert!(human.stdout.contains(&listen), "{human}");
    assert!(human.stdout.contains("no connected peers"), "{human}");

    // Members: the owner alone; add-member defaults to editor, --role changes it (200).
    let members = a.ok(&["space", "members", "team"]);
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members[0]["role"], "owner");
    let other = valid_key(0xab);
    assert_eq!(
        a.ok(&["space", "add-member", "team", &other])["role"],
        "editor"
    );
    assert_eq!(
        a.ok(&["space", "add-member", "team", &other, "--role", "reader"])["role"],
        "reader"
    );
    let human = a.cli_plain(&["space", "members", "team"]);
    assert!(
        human.stdout.contains("IDENTITY_KEY") && human.stdout.contains(&other),
        "{human}"
    );
    let (url, token) = (a.api_url(), a.api_token());
    let post = |path: &str, body: &str| {
        echo_tests::http(&url, "POST", path, Some(&token), Some(body.as_bytes()))
    };
    let res = post(
        &format!("/v1/spaces/{key}/members"),
        &json!({"identity_key": valid_key(0xcd), "role": "admin"}).to_string(),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let res = post(
        &format!("/v1/spaces/{key}/members"),
        &json!({"identity_key": valid_key(0xcd)}).to_string(),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json().unwrap()["role"], "editor");
    for bad in [
        json!({"identity_key": valid_key(0xcd), "role": "owner"}),
        json!({"identity_key": "nope"}),
        json!({"role": "editor"}),
        json!({"identity_key": valid_key(0xcd), "extra": 1}),
    ] {
        let res = post(&format!("/v1/spaces/{key}/members"), &bad.to_string());
        assert_eq!(res.status, 400, "{bad}: {}", res.body);
        assert!(res.json().unwrap()["error"].is_string(), "{}", res.body);
    }
    // Joining a space the node has is not an error (a join that timed out waiting is run
    // again): 200 with the space, where a new join answers 201.
    let res = post("/v1/spaces/join", &json!({"space_key": key}).to_string());
    assert_eq!(res.status, 200, "joining a space we have: {}", res.body);
    assert_eq!(
        res.json().unwrap(),
        json!({"space_key": key, "name": "team"}),
        "{}",
        res.body
    );
    let res = post("/v1/spaces/join", "{}");
    assert_eq!(res.status, 400, "{}", res.body);
    let res = echo_tests::http(
        &url,
        "GET",
        &format!("/v1/spaces/{key}/members"),
        Some(&token),
        None,
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json().unwrap().as_array().unwrap().len(), 3);

    // Usage errors exit 2 before anything happens.
    let usage = |args: &[&str]| {
        let out = a.cli(args);
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(!out.stderr.trim().is_empty(), "{out}");
    };
    usage(&["space", "join", "not-a-key"]);
    usage(&["space", "add-member", "team", "xyz"]);
    usage(&["space", "add-member", "team", &other, "--role", "owner"]);
    usage(&["run", "--listen", "nowhere"]);
    usage(&["run", "--peer", "127.0.0.1:0"]);
    usage(&["run", "--peer", "0.0.0.0:7400"]);
    usage(&["run", "--signal", "example:1"]);
    usage(&["run", "--serve-signal", "127.0.0.1"]);
    usage(&["run", "--max-accepted", "0"]);
    usage(&["signal"]);
    usage(&["signal", "--listen", "x"]);

    // A member that is not OWNER/ADMIN cannot add members; joining again only waits again.
    let mut b = Node::new();
    b.start_net(&["--peer", &listen]);
    b.ok(&["identity", "create"]);
    let b_identity = b.identity_key();
    assert!(is_key_hex(&b_identity));
    a.ok(&["space", "add-member", "team", &b_identity]);
    let joined = b.ok(&["space", "join", &key, "--name", "joined"]);
    assert_eq!(joined, json!({"space_key": key, "name": "joined"}));
    assert_eq!(b.ok(&["space", "join", &key]), joined, "a second join");
    eventually("b to see its membership", CONVERGE, POLL, || {
        let members = b.ok(&["space", "members", "joined"]);
        (members.as_array().map_or(0, Vec::len) == 4).then_some(())
    });
    let out = b.fails(&["space", "add-member", "joined", &valid_key(0xef)]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(b.peers(&key), vec![a.device_key()]);
    b.stop();
    a.stop();
}

#[test]
fn standalone_signaling_server_stops_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut server = Signal::start();
        assert_ne!(server.addr().port(), 0);
        let status = server.terminate(signal);
        assert!(
            status.success(),
            "SIG{signal} must exit 0: {status}\n{}",
            server.logs()
        );
    }
    // The human ready line names the address too.
    let port = free_udp_port();
    let mut child = std::process::Command::new(echo_tests::echo_node())
        .args(["signal", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("ready") && line.contains(&format!("127.0.0.1:{port}")),
        "{line}"
    );
}

/// The hex key of a real ed25519 point (made up keys such as "ab" x 32 are refused).
fn valid_key(seed: u8) -> String {
    echo_actors::types::KeyPair::from_secret([seed; 32])
        .public()
        .to_hex()
}
