//! Device revocation between real `echo-node` processes on loopback QUIC. Bob has two
//! devices (the second recovered from his seed phrase) in Alice's space, with Carol as a
//! third member. Bob loses his phone and revokes it from his laptop while the phone,
//! partitioned away with Carol, keeps writing. Once the partition heals, Alice, Carol and
//! the laptop have all denied exactly the phone's late block, kept what it wrote before,
//! and refuse the phone's connections; `device list` shows it revoked. Carol, who showed
//! the late block to an app before the revocation reached her, tells it: a `deleted` watch
//! event, and her Yjs client closed with 4409 and refused when it offers the block back.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{eventually, join, share, Node, YjsClient, CONVERGE, POLL};
use serde_json::{json, Value};

/// The denied blocks of `space` on `node` whose reason is a revocation: "feed:seq" keys.
fn revoked_blocks(node: &Node, space: &str) -> BTreeSet<String> {
    let v = node.ok(&["space", "verdicts", space]);
    v["denied"]
        .as_object()
        .unwrap_or_else(|| node.fail_with(&format!("verdicts without `denied`: {v}")))
        .iter()
        .filter(|(_, why)| why.as_str().is_some_and(|w| w.contains("was revoked")))
        .map(|(k, _)| k.clone())
        .collect()
}

fn device<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_key"] == key)
        .unwrap_or_else(|| panic!("device {key} not in {list}"))
}

#[test]
fn a_revoked_phone_is_denied_by_every_peer_after_a_partition_and_shut_out() {
    let alice = Node::networked("alice", &[]);
    let a_addr = alice.listen_addr().to_string();
    let via_alice = ["--peer", a_addr.as_str()];
    let mut laptop = Node::new();
    laptop.start_net(&via_alice);
    let created = laptop.ok(&["identity", "create", "--name", "bob"]);
    let seed = created["seed_phrase"].as_str().unwrap().to_owned();
    let mut carol = Node::networked("carol", &via_alice);
    let space = share(&alice, &[&laptop, &carol]);

    // Bob's phone: the same identity, recovered from the phrase; it joins as Bob.
    let mut phone = Node::new();
    phone.start_net(&via_alice);
    phone.ok(&["identity", "recover", "--seed-phrase", &seed]);
    assert_eq!(phone.identity_key(), laptop.identity_key());
    join(&phone, &space);
    let before = phone.add(&space, r#"{"from":"phone, before"}"#);
    eventually("the phone's first object on alice", CONVERGE, POLL, || {
        alice.ids(&space).contains(&before).then_some(())
    });
    let phone_key = phone.device_key();
    let listed = laptop.ok(&["device", "list"]);
    assert_eq!(device(&listed, &phone_key)["revoked"], false, "{listed}");
    assert_eq!(device(&listed, &laptop.device_key())["this_device"], true);

    // Bad requests: a device cannot revoke itself; unknown and malformed keys.
    let own = laptop.fails(&["device", "revoke", &laptop.device_key()]);
    assert_eq!(own.status.code(), Some(1), "{own}");
    assert!(own.stderr.contains("cannot revoke itself"), "{own}");
    let unknown = laptop.fails(&["device", "revoke", &alice.device_key()]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown}");
    assert!(
        unknown.stderr.contains("not a device of this identity"),
        "{unknown}"
    );
    let malformed = laptop.fails(&["device", "revoke", "xyz"]);
    assert_eq!(malformed.status.code(), Some(2), "{malformed}");

    // The partition: phone and carol only see each other.
    phone.kill9();
    carol.kill9();
    let revoked = laptop.ok(&["device", "revoke", &phone_key]);
    assert_eq!(revoked["device_key"], phone_key.as_str(), "{revoked}");
    // In the shared space and in the identity space (which the phone joined when it
    // recovered the identity, and where the laptop knows it), skipping nothing.
    let revoked_in = revoked["revoked_in"].as_array().unwrap();
    assert_eq!(revoked_in.len(), 2, "{revoked}");
    assert!(revoked_in.contains(&serde_json::json!(space)), "{revoked}");
    assert_eq!(revoked["skipped"], serde_json::json!([]), "{revoked}");
    let listed = laptop.ok(&["device", "list"]);
    assert_eq!(device(&listed, &phone_key)["revoked"], true, "{listed}");
    assert_eq!(device(&listed, &phone_key)["online"], false, "{listed}");
    // Revoking again writes nothing new.
    let again = laptop.ok(&["device", "revoke", &phone_key]);
    assert_eq!(again["already_in"], revoked["revoked_in"], "{again}");
    assert_eq!(again["revoked_in"], serde_json::json!([]), "{again}");

    phone.start_net(&[]);
    let p_addr = phone.listen_addr().to_string();
    carol.start_net(&["--peer", &p_addr]);
    let late = phone.add(&space, r#"{"from":"phone, after its revocation"}"#);
    eventually(
        "carol to hold the phone's late object",
        CONVERGE,
        POLL,
        || carol.ids(&space).contains(&late).then_some(()),
    );
    assert!(revoked_blocks(&carol, &space).is_empty());

    // Carol, still on her own, shows the late object to an app: a watch stream and a real
    // Yjs client.
    carol.stop();
    carol.start_net(&[]);
    let mut watch = carol.spawn_stream(&["watch", &space]);
    let mut app = YjsClient::connect(&carol, &space);
    app.ok(json!({"cmd": "synced"}));
    let late_from = "phone, after its revocation";
    app.ok(json!({"cmd": "wait", "id": late, "field": "from", "equals": late_from}));

    // The heal: the laptop reaches carol (and alice), carol gets the revocation and relays
    // the late block.
    let c_addr = carol.listen_addr().to_string();
    laptop.stop();
    laptop.start_net(&["--peer", &a_addr, "--peer", &c_addr]);
    let denied = eventually(
        "alice and carol to deny the late block",
        CONVERGE,
        POLL,
        || {
            let on_alice = revoked_blocks(&alice, &space);
            let on_carol = revoked_blocks(&carol, &space);
            (!on_alice.is_empty() && on_alice == on_carol).then_some(on_alice)
        },
    );
    assert_eq!(denied.len(), 1, "exactly the late block: {denied:?}");
    let on_laptop = eventually("the laptop to deny it too", CONVERGE, POLL, || {
        let d = revoked_blocks(&laptop, &space);
        (!d.is_empty()).then_some(d)
    });
    assert_eq!(on_laptop, denied);

    // Carol's rebuild took the late object out, and she told her app: the watch stream
    // reports it deleted, and the Yjs client is closed with 4409.
    let event = loop {
        let event = watch
            .next_json(CONVERGE)
            .unwrap_or_else(|| carol.fail_with("no watch event for the late object"));
        if event["id"] == late.as_str() {
            break event;
        }
    };
    assert_eq!(event["id"], late.as_str(), "{event}");
    assert_eq!(event["kind"], "deleted", "{event}");
    assert_eq!(event["object"]["@deleted"], true, "{event}");
    assert_eq!(
        event["object"]["from"], late_from,
        "its last rendering: {event}"
    );
    let closed = app.ok(json!({"cmd": "wait_close"}));
    assert_eq!(closed["code"], 4409, "{closed}");
    assert!(
        closed["reason"].as_str().unwrap().contains("revocation"),
        "{closed}"
    );
    // The client reconnects with the same document and offers the late object back:
    // refused (4409 again), and carol still does not show it.
    let closed = app.ok(json!({"cmd": "wait_close"}));
    assert_eq!(closed["code"], 4409, "{closed}");
    assert!(
        closed["reason"].as_str().unwrap().contains("denied"),
        "{closed}"
    );
    app.ok(json!({"cmd": "quit"}));
    watch.kill();
    assert!(
        !carol.ids(&space).contains(&late),
        "the app brought it back"
    );
    for (name, node) in [("alice", &alice), ("carol", &carol), ("laptop", &laptop)] {
        let ids = node.ids(&space);
        assert!(
            ids.contains(&before),
            "{name} lost what the phone wrote before"
        );
        assert!(!ids.contains(&late), "{name} shows the late object");
    }

    // Life goes on for everyone else.
    let after = laptop.add(&space, r#"{"from":"laptop, after"}"#);
    eventually("the laptop's object on carol", CONVERGE, POLL, || {
        carol.ids(&space).contains(&after).then_some(())
    });

    // The phone, back online, is shut out: no peer opens the space to it. (First the
    // channel to the killed phone must be gone: its connection lingers until the QUIC idle
    // timeout, 10 s.)
    phone.stop();
    eventually(
        "alice to drop the killed phone's channel",
        CONVERGE,
        POLL,
        || (!alice.peers(&space).contains(&phone_key)).then_some(()),
    );
    phone.start_net(&via_alice);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(
            !alice.peers(&space).contains(&phone_key),
            "alice opened the space to the revoked phone"
        );
        thread::sleep(POLL);
    }
    assert!(
        !phone.ids(&space).contains(&after),
        "the phone got new data"
    );

    // It is told, though: alice answers its Hello with the credentials that say so. Its own
    // status and device list say that it is revoked, and it refuses its own writes.
    eventually(
        "the phone's status to say it is revoked",
        CONVERGE,
        POLL,
        || (phone.status()["revoked"] == true).then_some(()),
    );
    let listed = phone.ok(&["device", "list"]);
    let this = device(&listed, &phone_key);
    assert_eq!(this["this_device"], true, "{listed}");
    assert_eq!(this["revoked"], true, "{listed}");
    assert_eq!(device(&listed, &laptop.device_key())["revoked"], false);
    let human = phone.cli_plain(&["status"]);
    assert!(human.success(), "{human}");
    assert!(
        human
            .stdout
            .contains("this device was revoked by its identity"),
        "{human}"
    );
    let refused = phone.fails(&["object", "add", &space, r#"{"from":"phone, told"}"#]);
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(
        refused.stderr.starts_with("error: not allowed: "),
        "{refused}"
    );
    assert!(!alice.peers(&space).contains(&phone_key));
}
