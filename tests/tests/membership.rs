//! Membership changes between real `echo-node` processes on loopback QUIC, through the
//! CLI: `space join` that answers once the node may write, `space set-role`, and
//! `space remove-member` (whose member is then refused locally and shut out by the host,
//! and told of its removal even when it was switched off while it happened).
//! Every member node runs with the host as `--peer`, so it keeps dialling the host whatever
//! its membership: the host, not the dialler, decides who gets a channel.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{
    accept_ok, converge, data_length, eventually, invite, join, members, wait_for_role, Node,
    CONVERGE, JOIN_TIMEOUT, POLL,
};
use serde_json::json;

/// A host that owns a space named `team` holding one object, and a member node (identity
/// `member`, not in the space yet) with the host as its static peer. Returns them, the space
/// key and the host's object id.
fn host_and_member() -> (Node, Node, String, String) {
    let host = Node::networked("host", &[]);
    let space = host.ok(&["space", "create", "--name", "team"]);
    let key = space["space_key"].as_str().unwrap().to_owned();
    let id = host.add(&key, r#"{"from":"host"}"#);
    let member = Node::networked("member", &["--peer", &host.listen_addr().to_string()]);
    (host, member, key, id)
}

/// A membership change's answer: exactly the member's key, its new role and whether it is
/// online (which depends on presence timing here, so only its type is fixed).
fn assert_member(answer: &serde_json::Value, identity: &str, role: &str) {
    let online = answer["online"].as_bool();
    assert!(online.is_some(), "{answer}");
    assert_eq!(
        answer,
        &json!({"identity_key": identity, "role": role, "online": online.unwrap()})
    );
}

/// The member joins the space as an EDITOR through an invitation and writes an object;
/// both nodes converge on it and the host's. Returns both objects' ids.
fn editor_writes(host: &Node, member: &Node, space: &str, host_id: String) -> BTreeSet<String> {
    let inv = invite(host, space, &[]);
    accept_ok(member, &inv.code, inv.auth_code.as_deref(), space, "editor");
    let member_id = member.add(space, r#"{"from":"member"}"#);
    let ids = BTreeSet::from([host_id, member_id]);
    converge(&[("host", host), ("member", member)], space, &ids);
    ids
}

/// `object add` on `node` must fail for its role: exit 1, "not allowed", no block written.
fn write_refused(node: &Node, space: &str) -> String {
    let device = node.device_key();
    let before = data_length(node, space, &device);
    let out = node.fails(&["object", "add", space, r#"{"from":"refused"}"#]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.starts_with("error: not allowed: "), "{out}");
    assert_eq!(
        data_length(node, space, &device),
        before,
        "a refused write left a block"
    );
    out.stderr
}

#[test]
fn a_joined_member_writes_at_once() {
    let (host, member, space, host_id) = host_and_member();
    let identity = member.identity_key();
    let added = host.ok(&["space", "add-member", &space, &identity]);
    // Just added: no channel to it yet, so no presence either.
    assert_eq!(
        added,
        json!({"identity_key": identity, "role": "editor", "online": false})
    );
    let timeout = format!("{}s", JOIN_TIMEOUT.as_secs());
    let start = Instant::now();
    let out = member.cli_bounded(
        &[
            "space",
            "join",
            &space,
            "--name",
            "ours",
            "--timeout",
            &timeout,
        ],
        JOIN_TIMEOUT + Duration::from_secs(20),
    );
    println!(
        "space join answered after {:?} (loopback, debug build)",
        start.elapsed()
    );
    assert!(out.success(), "{out}");
    assert_eq!(
        out.json,
        Some(json!({"space_key": space, "name": "ours"})),
        "{out}"
    );
    // The first write right after join: no retry.
    let member_id = member.add("ours", r#"{"from":"member"}"#);
    let ids = BTreeSet::from([host_id, member_id]);
    converge(&[("host", &host), ("member", &member)], &space, &ids);
    let expected = BTreeMap::from([
        (host.identity_key(), "owner".to_owned()),
        (identity, "editor".to_owned()),
    ]);
    assert_eq!(members(&host, &space), expected);
    assert_eq!(members(&member, &space), expected);
}

#[test]
fn a_join_without_membership_times_out_and_a_later_join_waits_again() {
    let (host, member, space, host_id) = host_and_member();
    let start = Instant::now();
    let out = member.cli(&["space", "join", &space, "--timeout", "2s"]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stdout.trim().is_empty(), "{out}");
    let identity = member.identity_key();
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: joined space {space}, but this node may not write in it yet: not admitted \
             after 2s: no peer has shown this node a membership for identity {identity} yet (a \
             member must add it, and this node must reach a peer); the space is kept and the \
             node keeps trying; run `echo-node space join {space}` again to wait again"
        ),
        "{out}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "a 2 s join wait answered after {took:?}"
    );
    // The node keeps the space (and cannot write in it).
    assert_eq!(
        member.ok(&["space", "list"]),
        json!([{"space_key": space, "name": null}])
    );
    let out = member.fails(&["object", "add", &space, r#"{"from":"member"}"#]);
    assert_eq!(out.status.code(), Some(1), "{out}");

    // Once the member is added, joining again waits until it may write.
    host.ok(&["space", "add-member", &space, &identity]);
    let start = Instant::now();
    join(&member, &space);
    println!(
        "the second space join answered after {:?} (the host had refused this node before)",
        start.elapsed()
    );
    let member_id = member.add(&space, r#"{"from":"member"}"#);
    converge(
        &[("host", &host), ("member", &member)],
        &space,
        &BTreeSet::from([host_id, member_id]),
    );
}

#[test]
fn a_reader_promoted_to_editor_writes_once_the_promotion_replicated() {
    let (host, member, space, host_id) = host_and_member();
    let identity = member.identity_key();
    host.ok(&["space", "add-member", &space, &identity, "--role", "reader"]);
    join(&member, &space);
    assert_eq!(members(&member, &space)[&identity], "reader");
    let reason = write_refused(&member, &space);
    println!("a READER's write: {}", reason.trim());

    let promoted = host.ok(&["space", "set-role", &space, &identity, "editor"]);
    assert_member(&promoted, &identity, "editor");
    assert_eq!(members(&host, &space)[&identity], "editor");
    wait_for_role(&member, &space, &identity, "editor");
    // Promoted as far as the member knows: its next write (one try) succeeds.
    let member_id = member.add(&space, r#"{"from":"member"}"#);
    converge(
        &[("host", &host), ("member", &member)],
        &space,
        &BTreeSet::from([host_id, member_id]),
    );
    let expected = BTreeMap::from([
        (host.identity_key(), "owner".to_owned()),
        (identity.clone(), "editor".to_owned()),
    ]);
    assert_eq!(members(&host, &space), expected);
    assert_eq!(members(&member, &space), expected);

    // The OWNER's role is fixed; nobody can be made OWNER (a usage error).
    let out = host.fails(&["space", "set-role", &space, &host.identity_key(), "reader"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("error: not allowed: cannot set role: ")
            && out
                .stderr
                .trim_end()
                .ends_with(" may not change its own role"),
        "{out}"
    );
    let out = host.cli(&["space", "set-role", &space, &identity, "owner"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    // A member that is not OWNER/ADMIN may not change roles.
    let out = member.fails(&["space", "set-role", &space, &identity, "admin"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("error: not allowed: cannot set role: ")
            && out
                .stderr
                .trim_end()
                .ends_with(" may not change membership (needs ADMIN or OWNER)"),
        "{out}"
    );
    // Nor can anyone give a role to an identity that is not a member.
    let stranger = echo_actors::types::KeyPair::from_secret([0xab; 32])
        .public()
        .to_hex();
    let out = host.fails(&["space", "set-role", &space, &stranger, "editor"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: invalid request: {stranger} is not a member of this space (see `echo-node \
             space members`)"
        ),
        "{out}"
    );
    assert_eq!(members(&host, &space), expected);
}

#[test]
fn a_removed_member_is_refused_locally_and_shut_out_by_the_host() {
    let (host, member, space, host_id) = host_and_member();
    let identity = member.identity_key();
    let device = member.device_key();
    let ids = editor_writes(&host, &member, &space, host_id);
    assert_eq!(host.peers(&space), vec![device.clone()]);

    let removed = host.ok(&["space", "remove-member", &space, &identity]);
    assert_member(&removed, &identity, "removed");
    assert_eq!(members(&host, &space)[&identity], "removed");
    // The member learns of it (in the grace its channel keeps), then refuses its own writes.
    wait_for_role(&member, &space, &identity, "removed");
    write_refused(&member, &space);

    // The host closes the member's channels and opens none again, though the member keeps
    // dialling it (the host is its --peer).
    let start = Instant::now();
    while host.peers(&space).contains(&device) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the host still has a channel with the removed member after 10 s: {}",
            host.status()
        );
        thread::sleep(POLL);
    }
    println!(
        "the host closed the removed member's channel after {:?}",
        start.elapsed()
    );
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        assert!(
            !host.peers(&space).contains(&device),
            "the removed member got a channel again: {}",
            host.status()
        );
        thread::sleep(Duration::from_millis(250));
    }
    assert!(member.peers(&space).is_empty(), "{}", member.status());
    assert_eq!(host.ids(&space), ids);
    assert_eq!(data_length(&host, &space, &device), 1);

    // The OWNER cannot be removed.
    let out = host.fails(&["space", "remove-member", &space, &host.identity_key()]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("error: not allowed: cannot remove member: ")
            && out
                .stderr
                .trim_end()
                .ends_with(" may not change its own role"),
        "{out}"
    );
    assert_eq!(members(&host, &space)[&host.identity_key()], "owner");
}

#[test]
fn a_member_removed_while_switched_off_is_told_when_it_comes_back() {
    let (host, mut member, space, host_id) = host_and_member();
    let host_addr = host.listen_addr().to_string();
    let identity = member.identity_key();
    let device = member.device_key();
    let ids = editor_writes(&host, &member, &space, host_id);

    // The member's laptop is off; the host removes it and writes on.
    member.stop();
    eventually(
        "the host to drop the member's channel",
        CONVERGE,
        POLL,
        || (!host.peers(&space).contains(&device)).then_some(()),
    );
    let removed = host.ok(&["space", "remove-member", &space, &identity]);
    assert_member(&removed, &identity, "removed");
    let later = host.add(&space, r#"{"from":"host, after the removal"}"#);

    // Back on, the member dials the host, which opens no channel to it but answers its
    // Hello with the credentials: the member learns of its removal and refuses its writes.
    member.start_net(&["--peer", &host_addr]);
    wait_for_role(&member, &space, &identity, "removed");
    write_refused(&member, &space);
    let status = member.status();
    let ours = status["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["space_key"] == space.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(ours["role"], "removed", "{status}");

    // It is never a peer of the host, it stops asking, and it got no data written since.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        assert!(
            !host.peers(&space).contains(&device),
            "the removed member got a channel: {}",
            host.status()
        );
        thread::sleep(Duration::from_millis(250));
    }
    assert!(member.peers(&space).is_empty(), "{}", member.status());
    assert!(!member.ids(&space).contains(&later));
    let mut all = ids;
    all.insert(later);
    assert_eq!(host.ids(&space), all);
}
