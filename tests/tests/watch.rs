//! `watch SPACE --json` streams one JSON line per change.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use echo_tests::{LineStream, Node};
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
