//! Invitations between real `echo-node` processes on loopback QUIC, through the CLI: a host
//! (the space's OWNER) runs `invite create`, guests run `invite accept CODE` and nothing
//! else: no `--peer`, no signaling server; the code carries the host's address and device
//! key. Every test asserts the exit codes, the exact reason a refused guest prints, and the
//! host's state as `invite list --json` and `space members --json` show it.
//!
//! The point of an accepted invitation is that the guest may write at once: every guest's
//! first `object add` after `invite accept` must succeed, with no retry.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{
    accept, accept_ok, assert_listed, converge, data_length, eventually, free_udp_port, http,
    invitations, invite, listed, members, now_ms, refused, wrong_code, Node, ACCEPT_TIMEOUT,
    CONVERGE, POLL,
};
use serde_json::{json, Value};

/// A host that owns a space named `team` holding one object; returns it, the space key and
/// the object's id.
fn host_with_space(extra: &[&str]) -> (Node, String, String) {
    let host = Node::networked("host", extra);
    let space = host.ok(&["space", "create", "--name", "team"]);
    let key = space["space_key"].as_str().unwrap().to_owned();
    let id = host.add(&key, r#"{"from":"host"}"#);
    (host, key, id)
}

/// `n` networked guests with identities, started in parallel.
fn guests(n: usize) -> Vec<Node> {
    thread::scope(|s| {
        let started: Vec<_> = (0..n)
            .map(|i| s.spawn(move || Node::networked(&format!("guest{i}"), &[])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The guest holds no space (a refused invitation records nothing).
fn holds_no_space(guest: &Node) {
    assert_eq!(guest.ok(&["space", "list"]), json!([]), "guest spaces");
}

#[test]
fn a_pin_invitation_admits_the_guest_whose_first_write_succeeds() {
    let (host, space, host_id) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let before = now_ms();
    let inv = invite(&host, &space, &[]);
    // The defaults: 1 day, editor, pin, single use.
    let day = 24 * 3600 * 1000;
    assert!(
        inv.expires_at >= before + day - 1000 && inv.expires_at <= now_ms() + day,
        "expires_at {} is not a day from now",
        inv.expires_at
    );
    let open = assert_listed(&host, &inv.id, "INIT", None, 3, 0);
    assert_eq!(
        open,
        json!({
            "invitation_id": inv.id, "space_key": space, "state": "INIT", "reason": null,
            "auth": "pin", "role": "editor", "multi_use": false, "attempts_left": 3,
            "uses": 0, "expires_at": inv.expires_at
        })
    );

    accept_ok(
        &guest,
        &inv.code,
        inv.auth_code.as_deref(),
        &space,
        "editor",
    );
    // The first write right after accept: no retry.
    let guest_id = guest.add(&space, r#"{"from":"guest"}"#);
    let ids = BTreeSet::from([host_id, guest_id]);
    converge(&[("host", &host), ("guest", &guest)], &space, &ids);

    assert_listed(&host, &inv.id, "SUCCESS", None, 3, 1);
    let expected = BTreeMap::from([
        (host.identity_key(), "owner".to_owned()),
        (guest.identity_key(), "editor".to_owned()),
    ]);
    assert_eq!(members(&host, &space), expected, "members on the host");
    assert_eq!(members(&guest, &space), expected, "members on the guest");
    assert_eq!(
        guest.ok(&["space", "list"]),
        json!([{"space_key": space, "name": null}])
    );
    // Single use: a second guest is refused, and the host's state does not change.
    let late = Node::networked("late", &[]);
    refused(
        &accept(&late, &inv.code, inv.auth_code.as_deref()),
        "invitation ERROR: the invitation is no longer valid",
    );
    holds_no_space(&late);
    assert_listed(&host, &inv.id, "SUCCESS", None, 3, 1);
    assert_eq!(members(&host, &space), expected);
}

#[test]
fn three_wrong_codes_end_the_invitation_and_the_right_code_is_refused_after() {
    let (host, space, _) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &[]);
    let pin = inv.auth_code.clone().unwrap();
    // No code at all (and no terminal to ask on): refused, and no attempt is used.
    refused(
        &accept(&guest, &inv.code, None),
        "invitation ERROR: this invitation needs the 6-digit auth code",
    );
    assert_listed(&host, &inv.id, "INIT", None, 3, 0);
    let wrong = wrong_code(&pin);
    for (left, says) in [(2, "2 attempts left"), (1, "1 attempt left")] {
        refused(
            &accept(&guest, &inv.code, Some(wrong)),
            &format!("invitation ERROR: invalid auth code, {says}"),
        );
        assert_listed(&host, &inv.id, "INIT", None, left, 0);
    }
    refused(
        &accept(&guest, &inv.code, Some(wrong)),
        "invitation ERROR: too many attempts",
    );
    refused(
        &accept(&guest, &inv.code, Some(&pin)),
        "invitation ERROR: the invitation is no longer valid",
    );
    assert_listed(&host, &inv.id, "ERROR", Some("too many attempts"), 0, 0);
    assert_eq!(
        members(&host, &space),
        BTreeMap::from([(host.identity_key(), "owner".to_owned())])
    );
    holds_no_space(&guest);
}

#[test]
fn an_expired_invitation_is_refused_as_expired() {
    let (host, space, _) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let before = now_ms();
    let inv = invite(&host, &space, &["--lifetime", "2s"]);
    assert!(
        inv.expires_at >= before + 2000 && inv.expires_at <= now_ms() + 2000,
        "expires_at {} is not 2 s from now",
        inv.expires_at
    );
    assert_listed(&host, &inv.id, "INIT", None, 3, 0);
    // Past the expiry by the clock both nodes read (one machine).
    while now_ms() <= inv.expires_at + 100 {
        thread::sleep(Duration::from_millis(50));
    }
    refused(
        &accept(&guest, &inv.code, inv.auth_code.as_deref()),
        "invitation EXPIRED: expired",
    );
    // The state says why; only ERROR carries a reason.
    assert_listed(&host, &inv.id, "EXPIRED", None, 3, 0);
    holds_no_space(&guest);
}

#[test]
fn a_cancelled_invitation_is_refused_as_cancelled() {
    let (host, space, _) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &[]);
    let cancelled = host.ok(&["invite", "cancel", &inv.id]);
    assert_eq!(cancelled["invitation_id"], inv.id.as_str(), "{cancelled}");
    assert_eq!(cancelled["state"], "CANCELLED", "{cancelled}");
    assert_eq!(
        cancelled,
        listed(&host, &inv.id),
        "cancel prints the listed state"
    );
    refused(
        &accept(&guest, &inv.code, inv.auth_code.as_deref()),
        "invitation CANCELLED: cancelled",
    );
    assert_listed(&host, &inv.id, "CANCELLED", None, 3, 0);
    holds_no_space(&guest);
    // An id nobody issued is not found (exit 1); a malformed one too, saying why.
    let unknown = "0".repeat(32);
    let out = host.fails(&["invite", "cancel", &unknown]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not found"), "{out}");
    let out = host.fails(&["invite", "cancel", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("not an invitation id"), "{out}");
}

#[test]
fn a_host_that_is_down_times_out_as_host_unreachable() {
    let (mut host, space, _) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &[]);
    host.stop();
    let start = Instant::now();
    let out = guest.cli(&[
        "invite",
        "accept",
        &inv.code,
        "--auth-code",
        inv.auth_code.as_deref().unwrap(),
        "--timeout",
        "2s",
    ]);
    let took = start.elapsed();
    refused(&out, "invitation TIMEOUT: host unreachable");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "a 2 s handshake timeout answered after {took:?}"
    );
    holds_no_space(&guest);
}

#[test]
fn a_persistent_invitation_and_its_wrong_code_survive_a_host_crash() {
    let addr = format!("127.0.0.1:{}", free_udp_port());
    let (mut host, space, host_id) = host_with_space(&["--listen", &addr]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &[]);
    let pin = inv.auth_code.clone().unwrap();
    refused(
        &accept(&guest, &inv.code, Some(wrong_code(&pin))),
        "invitation ERROR: invalid auth code, 2 attempts left",
    );
    // No clean shutdown: what the host answered must already be durable.
    host.kill9();
    host.start_net(&["--listen", &addr]);
    assert_eq!(host.listen_addr().to_string(), addr);
    assert_listed(&host, &inv.id, "INIT", None, 2, 0);

    // (The guest still holds its QUIC connection to the killed host and opens the
    // invitation stream on it; it only dials again once that connection's 10 s idle
    // timeout ends, so this accept takes about 10 s.)
    let start = Instant::now();
    accept_ok(&guest, &inv.code, Some(&pin), &space, "editor");
    println!(
        "invite accept after the host's restart took {:?}",
        start.elapsed()
    );
    let guest_id = guest.add(&space, r#"{"from":"guest"}"#);
    converge(
        &[("host", &host), ("guest", &guest)],
        &space,
        &BTreeSet::from([host_id, guest_id]),
    );
    assert_listed(&host, &inv.id, "SUCCESS", None, 2, 1);
    assert_eq!(
        members(&host, &space).get(&guest.identity_key()),
        Some(&"editor".to_owned())
    );
}

#[test]
fn a_multi_use_invitation_admits_three_guests() {
    let (host, space, host_id) = host_with_space(&[]);
    let [a, b, c]: [Node; 3] = guests(3).try_into().ok().unwrap();
    let inv = invite(&host, &space, &["--multi-use"]);
    let pin = inv.auth_code.clone().unwrap();
    // Three guests at once, each showing the outcome another way: `--json` alone (one
    // document), `--json --progress` (a JSON line per state) and for people (states on
    // stderr, `key: value` lines on stdout).
    let (plain, progress, human) = thread::scope(|s| {
        let plain = s.spawn(|| accept(&a, &inv.code, Some(&pin)));
        let progress = s.spawn(|| {
            b.cli(&[
                "invite",
                "accept",
                &inv.code,
                "--auth-code",
                &pin,
                "--progress",
                "--timeout",
                ACCEPT_TIMEOUT,
            ])
        });
        let human = s.spawn(|| {
            c.cli_plain(&[
                "invite",
                "accept",
                &inv.code,
                "--auth-code",
                &pin,
                "--timeout",
                ACCEPT_TIMEOUT,
            ])
        });
        (
            plain.join().unwrap(),
            progress.join().unwrap(),
            human.join().unwrap(),
        )
    });
    assert!(plain.success(), "{plain}");
    assert_eq!(
        plain.json,
        Some(json!({"role": "editor", "space_key": space})),
        "{plain}"
    );
    assert!(progress.success(), "{progress}");
    let lines: Vec<Value> = progress
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{progress}")))
        .collect();
    assert_eq!(
        lines,
        vec![
            json!({"state": "CONNECTING"}),
            json!({"state": "CONNECTED"}),
            json!({"state": "READY_FOR_AUTHENTICATION"}),
            json!({"state": "AUTHENTICATING"}),
            json!({"state": "SUCCESS", "space_key": space, "role": "editor"}),
        ],
        "{progress}"
    );
    assert!(human.success(), "{human}");
    assert_eq!(
        human.stderr.lines().collect::<Vec<_>>(),
        [
            "CONNECTING",
            "CONNECTED",
            "READY_FOR_AUTHENTICATION",
            "AUTHENTICATING",
            "SUCCESS"
        ],
        "{human}"
    );
    let shown: BTreeMap<&str, &str> = human
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    assert_eq!(
        shown,
        BTreeMap::from([("space_key", space.as_str()), ("role", "editor")]),
        "{human}"
    );

    // Each guest's first write succeeds.
    let mut ids = BTreeSet::from([host_id]);
    for (name, guest) in [("a", &a), ("b", &b), ("c", &c)] {
        ids.insert(guest.add(&space, &format!(r#"{{"from":"{name}"}}"#)));
    }
    converge(&[("host", &host)], &space, &ids);
    assert_listed(&host, &inv.id, "INIT", None, 3, 3);
    let mut expected = BTreeMap::from([(host.identity_key(), "owner".to_owned())]);
    for guest in [&a, &b, &c] {
        expected.insert(guest.identity_key(), "editor".to_owned());
    }
    assert_eq!(members(&host, &space), expected);
}

#[test]
fn a_key_invitation_admits_the_named_identity_only() {
    let (host, space, host_id) = host_with_space(&[]);
    let [guest, other]: [Node; 2] = guests(2).try_into().ok().unwrap();
    let inv = invite(
        &host,
        &space,
        &["--auth", "key", "--guest-key", &guest.identity_key()],
    );
    assert_eq!(inv.auth_code, None);
    assert_eq!(listed(&host, &inv.id)["auth"], "key");
    // Another identity is refused before any auth code is asked for: no attempt is used.
    refused(
        &accept(&other, &inv.code, None),
        "invitation ERROR: this invitation is for another identity",
    );
    holds_no_space(&other);
    assert_listed(&host, &inv.id, "INIT", None, 3, 0);
    // The named guest proves itself with its identity key: no code at all.
    accept_ok(&guest, &inv.code, None, &space, "editor");
    let guest_id = guest.add(&space, r#"{"from":"guest"}"#);
    converge(
        &[("host", &host), ("guest", &guest)],
        &space,
        &BTreeSet::from([host_id, guest_id]),
    );
    assert_listed(&host, &inv.id, "SUCCESS", None, 3, 1);
    let roles = members(&host, &space);
    assert_eq!(roles.get(&guest.identity_key()).unwrap(), "editor");
    assert!(!roles.contains_key(&other.identity_key()), "{roles:?}");
}

#[test]
fn a_reader_guest_cannot_write() {
    let (host, space, host_id) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &["--role", "reader"]);
    assert_eq!(listed(&host, &inv.id)["role"], "reader");
    accept_ok(
        &guest,
        &inv.code,
        inv.auth_code.as_deref(),
        &space,
        "reader",
    );
    assert_eq!(
        members(&host, &space).get(&guest.identity_key()).unwrap(),
        "reader"
    );
    let device = guest.device_key();

    // The CLI: exit 1 with the daemon's reason.
    let out = guest.fails(&["object", "add", &space, r#"{"from":"reader"}"#]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    let stderr = out.stderr.trim();
    assert!(stderr.starts_with("error: not allowed: member "), "{out}");
    assert!(
        stderr.ends_with(" is reader and may not write data"),
        "the reason names the role: {out}"
    );
    // The API: 403 with code `forbidden` and the same message.
    let api = guest.api();
    let res = http(
        &api.url,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        Some(&api.token),
        Some(br#"{"from":"reader"}"#),
    );
    assert_eq!(res.status, 403, "{}", res.body);
    let err = res.json().unwrap();
    assert_eq!(err["code"], "forbidden", "{err}");
    assert_eq!(
        format!("error: {}", err["error"].as_str().unwrap()),
        out.stderr.trim(),
        "{err}"
    );
    assert_eq!(
        data_length(&guest, &space, &device),
        0,
        "a refused write left a block"
    );

    // The reader still reads: a later write of the host reaches it. By then the host holds
    // the reader's feeds as they are: an empty data feed, and only its own objects.
    let later = host.add(&space, r#"{"from":"host","n":2}"#);
    let ids = BTreeSet::from([host_id, later]);
    converge(&[("guest", &guest), ("host", &host)], &space, &ids);
    eventually(
        "the host to hold the reader's feeds",
        CONVERGE,
        POLL,
        || {
            host.feeds(&space)
                .iter()
                .any(|f| f["device_key"] == device.as_str())
                .then_some(())
        },
    );
    assert_eq!(data_length(&host, &space, &device), 0);
    assert_eq!(host.ids(&space), ids);
    assert_eq!(guest.ids(&space), ids);
}

/// `--auth none`: anyone with the code gets in, without an auth code.
#[test]
fn a_no_auth_invitation_needs_no_code() {
    let (host, space, host_id) = host_with_space(&[]);
    let guest = Node::networked("guest", &[]);
    let inv = invite(&host, &space, &["--auth", "none"]);
    assert_eq!(listed(&host, &inv.id)["auth"], "none");
    let start = Instant::now();
    accept_ok(&guest, &inv.code, None, &space, "editor");
    println!(
        "invite accept (auth none, loopback, debug build) took {:?}",
        start.elapsed()
    );
    let guest_id = guest.add(&space, r#"{"from":"guest"}"#);
    converge(
        &[("host", &host)],
        &space,
        &BTreeSet::from([host_id, guest_id]),
    );
    let listed_for_space = invitations(&host, Some(&space));
    assert_eq!(listed_for_space.len(), 1, "{listed_for_space:?}");
    assert_eq!(listed_for_space[0]["state"], "SUCCESS");
    assert_eq!(
        invitations(&host, Some("team")),
        listed_for_space,
        "by name"
    );
}
