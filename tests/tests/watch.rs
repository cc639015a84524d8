//! `watch SPACE --json` streams one JSON line per change; the API's watch streams carry
//! heartbeats, are capped (503 past `--max-watches`), and a closed one releases its socket
//! and subscription without waiting for an event.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{http, LineStream, Node};
use serde_json::Value;

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes sure the watcher is subscribed: adds probe objects of `probe_type` until the
/// watcher reports one (bounded), then drains whatever else it printed for the probes.
/// Returns the ids of the probes added.
fn sync(node: &Node, space: &str, watch: &LineStream, probe_type: &str) -> Vec<String> {
    let start = Instant::now();
    let mut probes = Vec::new();
    loop {
        let id = node.add(
            space,
            &format!(r#"{{"@type":"{probe_type}","probe":true}}"#),
        );
        probes.push(id);
        if let Some(ev) = watch.next_json(Duration::from_millis(500)) {
            assert_eq!(ev["kind"], "added", "probe event: {ev}");
            assert!(
                probes.iter().any(|p| ev["id"] == p.as_str()),
                "first event is not for a probe: {ev}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "watcher reported nothing within 20 s; stderr:\n{}",
            watch.stderr_text()
        );
    }
    // Drain the events of any later probes.
    while watch.next_line(Duration::from_millis(300)).is_some() {}
    probes
}

fn expect_event(watch: &LineStream, what: &str) -> Value {
    watch.next_json(EVENT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "no watch event for {what} within {EVENT_TIMEOUT:?}; watcher stderr:\n{}",
            watch.stderr_text()
        )
    })
}

fn check_event(ev: &Value, space: &str, id: &str, kind: &str) {
    assert_eq!(ev["space_key"], space, "space_key: {ev}");
    assert_eq!(ev["id"], id, "id: {ev}");
    assert_eq!(ev["kind"], kind, "kind: {ev}");
    assert_eq!(ev["object"]["@id"], id, "object: {ev}");
}

#[test]
fn watch_reports_adds_updates_and_deletes() {
    let (node, space) = Node::with_space("main");
    let mut watch = node.spawn_stream(&["watch", "main"]);
    sync(&node, &space, &watch, "Probe");

    let id = node.add(
        &space,
        r#"{"@type":"Person","name":"Ada","address":{"city":"London"}}"#,
    );
    let ev = expect_event(&watch, "add");
    check_event(&ev, &space, &id, "added");
    assert_eq!(ev["object"]["@type"], "Person");
    assert_eq!(ev["object"]["name"], "Ada");
    assert_eq!(ev["object"]["@deleted"], false);

    node.ok(&[
        "object",
        "update",
        &space,
        &id,
        r#"{"name":"Ada L.","address":{"zip":"N1"}}"#,
    ]);
    let ev = expect_event(&watch, "update");
    check_event(&ev, &space, &id, "updated");
    assert_eq!(
        ev["object"]["name"], "Ada L.",
        "object after the change: {ev}"
    );
    assert_eq!(ev["object"]["address"]["city"], "London", "{ev}");
    assert_eq!(ev["object"]["address"]["zip"], "N1", "{ev}");

    node.ok_any(&["text", "insert", &space, &id, "bio", "0", "hï"]);
    let ev = expect_event(&watch, "text insert");
    check_event(&ev, &space, &id, "updated");
    assert_eq!(ev["object"]["bio"], "hï", "{ev}");

    node.ok_any(&["object", "delete", &space, &id]);
    let ev = expect_event(&watch, "delete");
    check_event(&ev, &space, &id, "deleted");
    assert_eq!(ev["object"]["@deleted"], true, "{ev}");

    // Reads and failed writes produce no events.
    node.ok(&["object", "get", &space, &id]);
    node.query(&space, &[]);
    node.fails(&["object", "add", &space, r#"{"@bad":1}"#]);
    if let Some(line) = watch.next_line(Duration::from_millis(700)) {
        panic!("unexpected watch line after reads/failed writes: {line}");
    }
    assert!(watch.try_status().is_none(), "watcher exited early");
    watch.kill();
}

#[test]
fn watch_type_filter_and_other_spaces() {
    let (node, space) = Node::with_space("main");
    let other = node.ok(&["space", "create", "--name", "other"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let org = node.add(&space, r#"{"@type":"Org","name":"Acme"}"#);
    let mut watch = node.spawn_stream(&["watch", &space, "--type", "Person"]);
    sync(&node, &space, &watch, "Person");

    // Another type, then the watched type: only the latter shows up.
    node.add(&space, r#"{"@type":"Org","name":"Other Org"}"#);
    node.ok(&["object", "update", &space, &org, r#"{"size":10}"#]);
    node.ok_any(&["object", "delete", &space, &org]);
    // The same type in another space must not show up either.
    node.add(&other, r#"{"@type":"Person","name":"Elsewhere"}"#);
    let p = node.add(&space, r#"{"@type":"Person","name":"Bo"}"#);
    let ev = expect_event(&watch, "add of a Person");
    check_event(&ev, &space, &p, "added");
    assert_eq!(ev["object"]["name"], "Bo");

    node.ok(&["object", "update", &space, &p, r#"{"age":3}"#]);
    let ev = expect_event(&watch, "update of a Person");
    check_event(&ev, &space, &p, "updated");
    assert_eq!(ev["object"]["age"], 3);

    node.ok_any(&["object", "delete", &space, &p]);
    let ev = expect_event(&watch, "delete of a Person");
    check_event(&ev, &space, &p, "deleted");

    if let Some(line) = watch.next_line(Duration::from_millis(700)) {
        panic!("unexpected watch line: {line}");
    }
    watch.kill();
}

#[test]
fn watch_fails_clearly() {
    let (node, _space) = Node::with_space("main");
    let mut watch = node.spawn_stream(&["watch", "nosuch"]);
    let status = watch.wait(Duration::from_secs(15));
    let status = status.expect("watch on an unknown space should exit");
    assert!(!status.success(), "watch on an unknown space exited 0");
    assert!(
        !watch.stderr_text().trim().is_empty(),
        "watch on an unknown space printed no message"
    );

    let idle = Node::new();
    let mut watch = idle.spawn_stream(&["watch", "main"]);
    let status = watch
        .wait(Duration::from_secs(15))
        .expect("watch without a daemon should exit");
    assert!(!status.success());
    let err = watch.stderr_text().to_lowercase();
    assert!(
        err.contains("running") || err.contains("daemon"),
        "watch without a daemon: {err}"
    );
}

#[test]
fn watch_ends_when_the_daemon_stops() {
    let (mut node, space) = Node::with_space("main");
    let mut watch = node.spawn_stream(&["watch", &space]);
    sync(&node, &space, &watch, "Probe");
    node.stop();
    let status = watch.wait(Duration::from_secs(15));
    assert!(
        status.is_some(),
        "watch kept running for 15 s after its daemon stopped"
    );
}

/// A raw watch request on its own connection: `GET .../watch?type=T`, its response head
/// read (so the daemon has subscribed it), the socket returned open.
fn open_watch(addr: &str, token: &str, space: &str, type_name: &str) -> (u16, TcpStream) {
    let mut s = send_watch(addr, token, space, type_name);
    (read_status(&mut s), s)
}

/// Sends a watch request on a new connection, without waiting for the answer.
fn send_watch(addr: &str, token: &str, space: &str, type_name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "GET /v1/spaces/{space}/watch?type={type_name} HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    s
}

/// Reads a response head; its status. (What follows the head in the same read, if any,
/// is dropped: callers that read on look for whole chunks.)
fn read_status(s: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            other => panic!("response head cut off ({other:?}) after {head:?}"),
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Open file descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn authority(node: &Node) -> String {
    node.api_url()
        .strip_prefix("http://")
        .expect("http url")
        .to_owned()
}

fn status_ok(node: &Node, token: &str, when: &str) {
    let r = http(&node.api_url(), "GET", "/v1/status", Some(token), None);
    assert_eq!(r.status, 200, "/v1/status {when}: {}", r.body);
}

/// Waits (bounded) until `pid` has at most `limit` open fds; the last count.
fn settle_fds(pid: u32, limit: usize, within: Duration) -> usize {
    let start = Instant::now();
    loop {
        let n = fd_count(pid);
        if n <= limit || start.elapsed() > within {
            return n;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn closed_watches_release_their_sockets_without_any_event() {
    const WATCHES: usize = 20_000;
    const BATCH: usize = 500;
    const SLACK: usize = 8;
    let (node, space) = Node::with_space("main");
    let (addr, token, pid) = (authority(&node), node.api_token(), node.pid());
    // Warm up (the first watch and status open whatever the daemon keeps open after).
    drop(open_watch(&addr, &token, &space, "Never"));
    status_ok(&node, &token, "at the start");
    let baseline = settle_fds(pid, 0, Duration::from_millis(500));
    let rss_before = rss_kib(pid);
    let start = Instant::now();
    let mut peak = 0;
    for batch in 0..WATCHES / BATCH {
        // All requests of a batch first, then their answers: the daemon works while the
        // test writes.
        let mut open: Vec<TcpStream> = (0..BATCH)
            .map(|_| send_watch(&addr, &token, &space, "Never"))
            .collect();
        for s in &mut open {
            assert_eq!(read_status(s), 200, "watch in batch {batch}");
        }
        peak = peak.max(fd_count(pid));
        // A type that never matches: no event will ever be written to these streams.
        drop(open);
        status_ok(&node, &token, &format!("after batch {batch}"));
    }
    let opened = start.elapsed();
    let after = settle_fds(pid, baseline + SLACK, Duration::from_secs(10));
    let settled = start.elapsed();
    eprintln!(
        "{WATCHES} watches opened and dropped in {opened:?}; fds: baseline {baseline}, \
         peak {peak}, after {after} (settled at {settled:?}); RSS {rss_before} -> {} KiB",
        rss_kib(pid)
    );
    assert!(
        after <= baseline + SLACK,
        "the daemon holds {after} fds after {WATCHES} closed watches (baseline {baseline})"
    );
    // Never more than one batch (and the slack) open at once: closed ones went at once.
    assert!(
        peak <= baseline + BATCH + SLACK + BATCH / 10,
        "{peak} fds open at a batch's end (baseline {baseline}, batch {BATCH})"
    );
    // Subscriptions went with the sockets: a watch still works and gets its events.
    let mut watch = node.spawn_stream(&["watch", &space, "--type", "Probe"]);
    sync(&node, &space, &watch, "Probe");
    watch.kill();
    status_ok(&node, &token, "at the end");
}

#[test]
fn a_watch_past_the_cap_is_refused_with_503_json() {
    let mut node = Node::new();
    node.start_with(&["--max-watches", "3"]);
    node.ok(&["identity", "create"]);
    let space = node.ok(&["space", "create", "--name", "main"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (addr, token) = (authority(&node), node.api_token());
    let mut open: Vec<TcpStream> = (0..3)
        .map(|i| {
            let (status, s) = open_watch(&addr, &token, &space, "T");
            assert_eq!(status, 200, "watch {i} of 3");
            s
        })
        .collect();
    let r = http(
        &node.api_url(),
        "GET",
        &format!("/v1/spaces/{space}/watch"),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 503, "a 4th watch: {}", r.body);
    let body = r.json().expect("JSON error body");
    assert_eq!(body["code"], "too_many_watches", "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains('3')),
        "{body}"
    );
    // Other requests are not capped.
    status_ok(&node, &token, "with every watch slot taken");
    // A closed watch gives its slot back.
    drop(open.pop());
    let start = Instant::now();
    loop {
        let (status, s) = open_watch(&addr, &token, &space, "T");
        if status == 200 {
            open.push(s);
            break;
        }
        assert_eq!(status, 503);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the slot of a closed watch was not given back within 10 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_watches_carry_heartbeat_lines_then_events() {
    let mut node = Node::new();
    node.start_with(&["--watch-heartbeat-ms", "100"]);
    node.ok(&["identity", "create"]);
    let space = node.ok(&["space", "create", "--name", "main"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, mut s) = open_watch(&authority(&node), &node.api_token(), &space, "Task");
    assert_eq!(status, 200);
    // A heartbeat is one chunk holding an empty line.
    const BEAT: &[u8] = b"1\r\n\n\r\n";
    let mut raw = Vec::new();
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while raw.windows(BEAT.len()).filter(|w| *w == BEAT).count() < 3 {
        if let Ok(n) = s.read(&mut buf) {
            assert!(
                n > 0,
                "the stream ended: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fewer than 3 heartbeats in 10 s at 100 ms: {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    assert!(
        raw.chunks(BEAT.len()).all(|c| c == BEAT),
        "an idle stream carries only heartbeats: {:?}",
        String::from_utf8_lossy(&raw)
    );
    let id = node.add(&space, r#"{"@type":"Task","title":"after beats"}"#);
    let start = Instant::now();
    while !String::from_utf8_lossy(&raw).contains(&id) {
        if let Ok(n) = s.read(&mut buf) {
            assert!(n > 0, "the stream ended before the event");
            raw.extend_from_slice(&buf[..n]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no event line after the heartbeats"
        );
    }
    // The CLI skips heartbeats: `watch` prints events only.
    let mut watch = node.spawn_stream(&["watch", &space, "--type", "Task"]);
    sync(&node, &space, &watch, "Task");
    let id = node.add(&space, r#"{"@type":"Task","title":"cli"}"#);
    thread::sleep(Duration::from_millis(500)); // several heartbeats go by
    let ev = expect_event(&watch, "add after heartbeats");
    check_event(&ev, &space, &id, "added");
    watch.kill();
}
