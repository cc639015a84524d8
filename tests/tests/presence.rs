//! Presence between real `echo-node` processes on loopback QUIC: `space members` shows a
//! member online while its node runs, offline once it has been silent for the timeout (here
//! after a kill -9), and online again after a restart; presence is never written to feeds.
//! The nodes run with short hidden presence intervals (200 ms, offline after 1 s) so that
//! the test takes seconds, not the default 10 s / 20 s.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{data_length, share, Node, CONVERGE, POLL};

const INTERVAL_MS: &str = "200";
const TIMEOUT_MS: &str = "1000";
const TIMEOUT: Duration = Duration::from_millis(1000);

fn presence_flags() -> Vec<&'static str> {
    vec![
        "--presence-interval-ms",
        INTERVAL_MS,
        "--presence-timeout-ms",
        TIMEOUT_MS,
    ]
}

/// `space members SPACE --json` as identity key -> online, asserting every entry has a
/// boolean `online`.
fn online(node: &Node, space: &str) -> BTreeMap<String, bool> {
    let v = node.ok(&["space", "members", space]);
    v.as_array()
        .unwrap_or_else(|| node.fail_with(&format!("space members printed {v}")))
        .iter()
        .map(|m| {
            let online = m["online"]
                .as_bool()
                .unwrap_or_else(|| node.fail_with(&format!("no boolean `online` in {m}")));
            (m["identity_key"].as_str().unwrap().to_owned(), online)
        })
        .collect()
}

/// Waits (at most [`CONVERGE`]) until `node` shows `who` as `want` in `space`; returns how
/// long that took.
fn wait_online(node: &Node, space: &str, who: &str, want: bool) -> Duration {
    let start = Instant::now();
    loop {
        let seen = online(node, space);
        if seen.get(who) == Some(&want) {
            return start.elapsed();
        }
        if start.elapsed() > CONVERGE {
            node.fail_with(&format!(
                "{who} is not online={want} after {CONVERGE:?}: {seen:?}"
            ));
        }
        thread::sleep(POLL);
    }
}

#[test]
fn a_member_is_online_while_its_node_runs_and_offline_after_a_kill() {
    let flags = presence_flags();
    let a = Node::networked("a", &flags);
    let mut b_flags = flags.clone();
    let a_addr = a.listen_addr().to_string();
    b_flags.extend(["--peer", a_addr.as_str()]);
    let mut b = Node::networked("b", &b_flags);
    let space = share(&a, &[&b]);
    let (a_id, b_id) = (a.identity_key(), b.identity_key());

    // Each side sees the other online, and itself always.
    let t = Instant::now();
    wait_online(&a, &space, &b_id, true);
    wait_online(&b, &space, &a_id, true);
    println!("online on both sides {:?} after the join", t.elapsed());
    assert!(online(&a, &space)[&a_id], "a sees itself online");

    // Announcements keep coming: B stays online for three timeouts while it runs, and none
    // of it lands in a feed (B's and A's data feeds keep their lengths on both nodes).
    let lengths = |n: &Node| {
        (
            data_length(n, &space, &a.device_key()),
            data_length(n, &space, &b.device_key()),
        )
    };
    let (on_a, on_b) = (lengths(&a), lengths(&b));
    let until = Instant::now() + TIMEOUT * 3;
    while Instant::now() < until {
        assert!(online(&a, &space)[&b_id], "b dropped offline while running");
        thread::sleep(POLL);
    }
    assert_eq!(lengths(&a), on_a, "presence wrote to a feed on a");
    assert_eq!(lengths(&b), on_b, "presence wrote to a feed on b");

    // kill -9: no goodbye, so A notices by silence, about TIMEOUT later (never before the
    // last announcement has aged past it).
    b.kill9();
    let killed = Instant::now();
    wait_online(&a, &space, &b_id, false);
    let took = killed.elapsed();
    assert!(
        took + Duration::from_millis(300) >= TIMEOUT,
        "b went offline {took:?} after the kill, before the {TIMEOUT:?} timeout"
    );
    println!("b offline on a {took:?} after kill -9 (timeout {TIMEOUT:?})");

    // Back on the same data dir: online again, on both sides.
    let t = Instant::now();
    b.start_net(&b_flags);
    wait_online(&a, &space, &b_id, true);
    wait_online(&b, &space, &a_id, true);
    println!("online again {:?} after the restart", t.elapsed());
}
