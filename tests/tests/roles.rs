//! Role changes concurrent with writes, between real `echo-node` processes on loopback.
//! Owner A and editors B and C are wired in a line of static peers (C dials A, B dials C),
//! so B reaches A only through C. Every peer must reach one verdict on every block: the
//! same objects, the same heads, the same (empty) set of denied blocks and the same members
//! and roles, and no peer closes the channel of an honest relayer.
//!
//! - A write B made while still an editor, relayed by C only after A demoted B, is accepted
//!   by A too (its causal past does not hold the demotion), and C's later writes reach A.
//! - A write B made offline, without having seen its demotion, is accepted everywhere; a
//!   write B attempts once it has seen its demotion is refused by B itself (403).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Duration;

use echo_tests::{converge, eventually, free_udp_port, share, Node, CONVERGE, POLL};
use serde_json::Value;

/// What a node logs when it drops a peer's replication channel.
const CLOSED: &str = "closing the channel";

/// A loopback address with a port that is free now, so that a node can come back on it.
fn fixed_addr() -> String {
    format!("127.0.0.1:{}", free_udp_port())
}

/// Owner A (listening on `a`), C (listening on `c`, dialling A) and B (dialling C only),
/// sharing one space in which B and C are editors; every node has written once and holds
/// the others' first writes. Returns the nodes, the space key and the ids written.
fn line(a: &str, c: &str) -> (Node, Node, Node, String, BTreeSet<String>) {
    let node_a = Node::networked("a", &["--listen", a]);
    let node_c = Node::networked("c", &["--listen", c, "--peer", a]);
    let node_b = Node::networked("b", &["--peer", c]);
    // C first: B reaches A only through C, so B's join waits for C to be in the space.
    let space = share(&node_a, &[&node_c, &node_b]);
    let mut ids = BTreeSet::new();
    ids.insert(node_b.add(&space, r#"{"from":"b","what":"probe"}"#));
    ids.insert(node_c.add(&space, r#"{"from":"c","what":"probe"}"#));
    ids.insert(node_a.add(&space, r#"{"from":"a","what":"probe"}"#));
    converge(
        &[("a", &node_a), ("b", &node_b), ("c", &node_c)],
        &space,
        &ids,
    );
    assert_eq!(
        node_b.peers(&space),
        vec![node_c.device_key()],
        "B talks to C only"
    );
    assert!(
        !node_a.peers(&space).contains(&node_b.device_key()),
        "A must never talk to B directly"
    );
    (node_a, node_b, node_c, space, ids)
}

/// `space members` as identity key -> role.
fn roles(node: &Node, space: &str) -> BTreeMap<String, String> {
    let members = node.ok(&["space", "members", space]);
    members
        .as_array()
        .unwrap_or_else(|| node.fail_with(&format!("members is not an array: {members}")))
        .iter()
        .map(|m| {
            let key = m["identity_key"].as_str().unwrap().to_owned();
            (key, m["role"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Waits until `node` sees `who` with `role`.
fn wait_role(node: &Node, name: &str, space: &str, who: &str, role: &str) {
    eventually(
        &format!("{name} to see the role {role}"),
        CONVERGE,
        POLL,
        || (roles(node, space).get(who).map(String::as_str) == Some(role)).then_some(()),
    );
}

/// `space verdicts`: heads, denied blocks, members and admitted feeds.
fn verdicts(node: &Node, space: &str) -> Value {
    node.ok(&["space", "verdicts", space])
}

/// Waits until every node reports the same verdicts, with nothing denied; returns them.
fn same_verdicts(nodes: &[(&str, &Node)], space: &str) -> Value {
    let (first_name, first) = nodes[0];
    eventually(
        "every node to report the same verdicts",
        CONVERGE,
        POLL,
        || {
            let reference = verdicts(first, space);
            nodes[1..]
                .iter()
                .all(|(_, n)| verdicts(n, space) == reference)
                .then_some(reference)
        },
    );
    let agreed = verdicts(first, space);
    for (name, node) in &nodes[1..] {
        let theirs = verdicts(node, space);
        assert_eq!(theirs, agreed, "verdicts of {name} vs {first_name}");
    }
    assert_eq!(
        agreed["denied"],
        serde_json::json!({}),
        "no honest block may be denied: {agreed}"
    );
    agreed
}

/// Length of `node`'s own data feed in `space` (`status`).
fn own_data_length(node: &Node, space: &str) -> u64 {
    let device = node.device_key();
    let feeds = node.feeds(space);
    let own: Vec<&Value> = feeds
        .iter()
        .filter(|f| f["designation"] == "data" && f["device_key"] == device.as_str())
        .collect();
    match own[..] {
        [feed] => feed["length"].as_u64().unwrap(),
        _ => node.fail_with(&format!("not one own data feed in {feeds:?}")),
    }
}

/// A write on `node` must be refused for its role (exit 1, "not allowed"), with no block.
fn refused(node: &Node, name: &str, space: &str) {
    let before = own_data_length(node, space);
    let out = node.fails(&["object", "add", space, r#"{"from":"reader"}"#]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not allowed"), "{name}: {out}");
    assert_eq!(
        own_data_length(node, space),
        before,
        "a refused write of {name} left a block"
    );
}

/// How often each node logged that it closed a peer's channel.
fn closes(nodes: &[(&str, &Node)]) -> BTreeMap<String, usize> {
    nodes
        .iter()
        .map(|(name, n)| (name.to_string(), n.logs().matches(CLOSED).count()))
        .collect()
}

/// The issue's repro: A is down while B writes X and C accepts it; A comes back and demotes
/// B; then C reconnects. A must take X from C (it was written while B was an editor), keep
/// C's channel open, and receive C's next write.
#[test]
fn a_write_relayed_after_its_writers_demotion_is_accepted_everywhere() {
    let (a_addr, c_addr) = (fixed_addr(), fixed_addr());
    let (mut a, b, mut c, space, mut ids) = line(&a_addr, &c_addr);
    let b_identity = b.identity_key();

    a.stop();
    let x = b.add(&space, r#"{"from":"b","what":"X"}"#);
    eventually("C to accept X", CONVERGE, POLL, || {
        c.ids(&space).contains(&x).then_some(())
    });
    c.stop();
    a.start_net(&["--listen", &a_addr]);
    let demoted = a.ok(&[
        "space",
        "add-member",
        &space,
        &b_identity,
        "--role",
        "reader",
    ]);
    assert_eq!(demoted["role"], "reader", "{demoted}");
    let a_new = a.add(&space, r#"{"from":"a","what":"after the demotion"}"#);
    assert!(
        !a.ids(&space).contains(&x),
        "A cannot hold X before C is back"
    );
    c.start_net(&["--listen", &c_addr, "--peer", &a_addr]);

    ids.extend([x.clone(), a_new]);
    let all = [("a", &a), ("b", &b), ("c", &c)];
    converge(&all, &space, &ids);
    let c_new = c.add(&space, r#"{"from":"c","what":"after C reconnected"}"#);
    ids.insert(c_new);
    converge(&all, &space, &ids);
    for (name, node) in all {
        wait_role(node, name, &space, &b_identity, "reader");
    }
    let agreed = same_verdicts(&all, &space);
    assert_eq!(agreed["members"][&b_identity], "reader", "{agreed}");
    refused(&b, "b", &space);

    // A keeps its channel with C: C is among A's peers throughout, and nobody closed one.
    let c_device = c.device_key();
    for _ in 0..10 {
        assert!(a.peers(&space).contains(&c_device), "A dropped C's channel");
        thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closes(&all).values().all(|n| *n == 0),
        "channels closed: {:?}",
        closes(&all)
    );

    // A restart does not change A's verdicts (it replays X against X's own past again).
    a.stop();
    a.start_net(&["--listen", &a_addr]);
    assert_eq!(verdicts(&a, &space), agreed, "A's verdicts after a restart");
    assert_eq!(a.ids(&space), ids, "A's objects after a restart");
}

/// B is demoted while it is cut off from everyone. Its offline write (made without having
/// seen the demotion) is accepted by every peer; once B has seen the demotion, B itself
/// refuses its next write. A, B and C end with the same objects, heads and verdicts.
#[test]
fn a_demoted_members_offline_write_gets_one_verdict_everywhere() {
    let (a_addr, c_addr) = (fixed_addr(), fixed_addr());
    let (a, mut b, c, space, mut ids) = line(&a_addr, &c_addr);
    let b_identity = b.identity_key();

    // Offline: B runs with no peer, and nobody dials it.
    b.stop();
    b.start_net(&[]);
    let y = b.add(&space, r#"{"from":"b","what":"offline"}"#);
    a.ok(&[
        "space",
        "add-member",
        &space,
        &b_identity,
        "--role",
        "reader",
    ]);
    wait_role(&c, "c", &space, &b_identity, "reader");
    let a_new = a.add(&space, r#"{"from":"a","what":"after the demotion"}"#);
    assert_eq!(
        roles(&b, &space).get(&b_identity).map(String::as_str),
        Some("editor"),
        "B cannot have seen its demotion while offline"
    );
    assert!(b.peers(&space).is_empty(), "B must be cut off");

    b.stop();
    b.start_net(&["--peer", &c_addr]);
    wait_role(&b, "b", &space, &b_identity, "reader");
    refused(&b, "b", &space);

    ids.extend([y, a_new]);
    let all = [("a", &a), ("b", &b), ("c", &c)];
    converge(&all, &space, &ids);
    let agreed = same_verdicts(&all, &space);
    assert_eq!(agreed["members"][&b_identity], "reader", "{agreed}");
    let heads: Vec<BTreeMap<String, u64>> = all
        .iter()
        .map(|(_, n)| {
            n.feeds(&space)
                .iter()
                .map(|f| {
                    let key = f["feed_key"].as_str().unwrap().to_owned();
                    (key, f["length"].as_u64().unwrap())
                })
                .collect()
        })
        .collect();
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]),
        "status shows different heads: {heads:?}"
    );
    assert!(
        closes(&all).values().all(|n| *n == 0),
        "channels closed: {:?}",
        closes(&all)
    );
}
