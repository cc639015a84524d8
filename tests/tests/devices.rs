//! A second device joining an identity, and recovery getting the spaces back, between real
//! `echo-node` processes on loopback QUIC: `device invite` / `device join` (then both
//! devices write, a space created on either reaches the other, each lists the other), the
//! refusals a user can hit, and `identity recover` on a fresh data dir that gets every
//! space of the identity from a live device, or, with every device lost, from another
//! member (reached by `--peer` or through signaling alone), after which the recovered
//! device invites a new one.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use echo_tests::{eventually, Node, Signal, CLI_TIMEOUT, CONVERGE, POLL};

/// `device invite --json` on `host`: the code and the auth code.
fn device_invite(host: &Node, extra: &[&str]) -> (String, Option<String>) {
    let mut args = vec!["device", "invite"];
    args.extend_from_slice(extra);
    let v = host.ok(&args);
    let code = v["invitation_code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("echo1"), "{v}");
    (code, v["auth_code"].as_str().map(str::to_owned))
}

fn device_join(node: &Node, code: &str, auth_code: Option<&str>) -> echo_tests::CliOutput {
    device_join_with(node, code, auth_code, &[])
}

fn device_join_with(
    node: &Node,
    code: &str,
    auth_code: Option<&str>,
    extra: &[&str],
) -> echo_tests::CliOutput {
    let mut args = vec!["device", "join", code, "--timeout", "30s"];
    args.extend_from_slice(extra);
    if let Some(auth) = auth_code {
        args.extend(["--auth-code", auth]);
    }
    node.cli_bounded(&args, CONVERGE + CLI_TIMEOUT)
}

fn space_keys(node: &Node) -> BTreeSet<String> {
    node.ok(&["space", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["space_key"].as_str().unwrap().to_owned())
        .collect()
}

/// `device list` on `node`: device key -> name (`null` for none).
fn device_names(node: &Node) -> BTreeMap<String, serde_json::Value> {
    node.ok(&["device", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device_key"].as_str().unwrap().to_owned(),
                d["name"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_joined_device_gets_every_space_and_both_devices_write() {
    let laptop = Node::networked("bob", &[]);
    let notes = laptop.ok(&["space", "create", "--name", "notes"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = laptop.add(&notes, r#"{"from":"laptop"}"#);
    let (code, pin) = device_invite(&laptop, &[]);
    let pin = pin.expect("pin auth by default");

    let mut phone = Node::new();
    phone.start_net(&[]);
    let out = device_join_with(&phone, &code, Some(&pin), &["--device-name", "phone"]);
    if !out.success() {
        phone.fail_with(&format!("device join failed:\n{out}"));
    }
    let joined = out.json.clone().unwrap();
    let keys: Vec<&str> = joined
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["device_key", "identity_key", "pending", "spaces"],
        "{joined}"
    );
    assert_eq!(joined["identity_key"], laptop.identity_key().as_str());
    assert_eq!(joined["device_key"], phone.device_key().as_str());
    assert_eq!(joined["spaces"], serde_json::json!([notes]), "{joined}");
    assert_eq!(joined["pending"], serde_json::json!([]), "{joined}");
    assert_eq!(phone.identity_key(), laptop.identity_key());

    // The phone writes at once, and each sees the other's objects.
    let from_phone = phone.add(&notes, r#"{"from":"phone"}"#);
    let from_laptop = laptop.add(&notes, r#"{"from":"laptop, after"}"#);
    let all: BTreeSet<String> = [first, from_phone, from_laptop].into();
    for node in [&laptop, &phone] {
        eventually("every object on both devices", CONVERGE, POLL, || {
            (node.ids(&notes) == all).then_some(())
        });
    }

    // A space the phone creates reaches the laptop through the identity's list.
    let diary = phone.ok(&["space", "create"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_diary = phone.add(&diary, r#"{"from":"phone"}"#);
    eventually("the laptop joins the phone's space", CONVERGE, POLL, || {
        space_keys(&laptop).contains(&diary).then_some(())
    });
    eventually(
        "the phone's object in it on the laptop",
        CONVERGE,
        POLL,
        || laptop.ids(&diary).contains(&in_diary).then_some(()),
    );
    assert_eq!(space_keys(&laptop), [notes.clone(), diary.clone()].into());
    assert_eq!(space_keys(&phone), [notes, diary].into());

    // Each lists both devices, by the names they gave themselves: the phone at its join,
    // the laptop with `device rename` (a DeviceProfile each, through the identity space).
    let renamed = laptop.ok(&["device", "rename", "Bob's laptop"]);
    assert_eq!(
        renamed,
        json!({"device_key": laptop.device_key(), "name": "Bob's laptop", "shown": true})
    );
    let both = BTreeMap::from([
        (laptop.device_key(), json!("Bob's laptop")),
        (phone.device_key(), json!("phone")),
    ]);
    for node in [&laptop, &phone] {
        eventually(
            "both devices listed with their names",
            CONVERGE,
            POLL,
            || (device_names(node) == both).then_some(()),
        );
    }
    let shown = phone.ok(&["identity", "show"]);
    assert_eq!(shown["device_name"], "phone", "{shown}");
    // A name the node would refuse is a usage error, and changes nothing.
    let out = phone.cli(&["device", "rename", " "]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert_eq!(device_names(&phone), both);
    // The invitation was used once and is over.
    let listed = laptop.ok(&["invite", "list"]);
    assert_eq!(listed[0]["state"], "SUCCESS", "{listed}");
    assert_eq!(listed[0]["uses"], 1, "{listed}");
}

#[test]
fn device_join_refuses_a_node_with_an_identity_a_wrong_code_and_a_space_code() {
    let laptop = Node::networked("bob", &[]);
    let space = laptop.ok(&["space", "create"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, pin) = device_invite(&laptop, &[]);
    let pin = pin.unwrap();

    let other = Node::networked("carol", &[]);
    let out = device_join(&other, &code, Some(&pin));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("already has an identity"), "{out}");
    assert!(out.stderr.contains("fresh data dir"), "{out}");

    let mut fresh = Node::new();
    fresh.start_net(&[]);
    let wrong = if pin == "000000" { "111111" } else { "000000" };
    let out = device_join(&fresh, &code, Some(wrong));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("2 attempts left"), "{out}");
    // Nothing was taken on.
    let shown = fresh.cli(&["identity", "show"]);
    assert!(!shown.success(), "{shown}");

    let space_code = laptop.ok(&["invite", "create", &space])["invitation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = device_join(&fresh, &space_code, Some(&pin));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("space invitation"), "{out}");
    let out = fresh.cli(&["device", "invite", "--auth", "key"]);
    assert_eq!(out.status.code(), Some(2), "not a value of --auth: {out}");

    // The right code still works after one wrong one.
    let out = device_join(&fresh, &code, Some(&pin));
    assert!(out.success(), "{out}");
    assert_eq!(fresh.identity_key(), laptop.identity_key());
}

#[test]
fn recovery_on_a_fresh_data_dir_gets_every_space_from_a_live_device() {
    let mut laptop = Node::new();
    laptop.start_net(&[]);
    let created = laptop.ok(&["identity", "create", "--name", "bob"]);
    let phrase = created["seed_phrase"].as_str().unwrap().to_owned();
    let a = laptop.ok(&["space", "create"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = laptop.ok(&["space", "create"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = laptop.add(&a, r#"{"from":"laptop"}"#);

    let peer = laptop.listen_addr().to_string();
    let mut restored = Node::new();
    restored.start_net(&["--peer", &peer]);
    let recovered = restored.ok(&["identity", "recover", "--seed-phrase", &phrase]);
    assert_eq!(recovered["identity_key"], created["identity_key"]);
    eventually(
        "every space of the identity comes back",
        CONVERGE,
        POLL,
        || (space_keys(&restored) == [a.clone(), b.clone()].into()).then_some(()),
    );
    eventually("the objects come back", CONVERGE, POLL, || {
        restored.ids(&a).contains(&before).then_some(())
    });
    // Writable once its own feeds are admitted (it admits them itself, as the identity).
    let after = eventually("the restored device may write", CONVERGE, POLL, || {
        let out = restored.cli(&["object", "add", &b, r#"{"from":"restored"}"#]);
        out.success()
            .then(|| out.json.unwrap()["id"].as_str().unwrap().to_owned())
    });
    eventually(
        "the restored device's write on the laptop",
        CONVERGE,
        POLL,
        || laptop.ids(&b).contains(&after).then_some(()),
    );
}

#[test]
fn with_every_device_lost_recovery_gets_the_spaces_back_from_another_member() {
    let alice = Node::networked("alice", &[]);
    let a_addr = alice.listen_addr().to_string();
    recovery_from_another_member(&alice, &["--peer", &a_addr]);
}

/// The same with signaling only: the recovered device knows no peer and no space topic; it
/// finds Alice under Bob's identity topic, where she listens as a member of his space.
#[test]
fn with_every_device_lost_recovery_through_signaling_alone_gets_the_spaces_back() {
    let signal = Signal::start();
    let alice = Node::networked("alice", &["--signal", &signal.arg()]);
    recovery_from_another_member(&alice, &["--signal", &signal.arg()]);
}

/// Bob's only device (started with `net`) shares a space with `alice` and is lost; Bob
/// recovers on a fresh node started with `net`, which gets the space back from Alice.
fn recovery_from_another_member(alice: &Node, net: &[&str]) {
    let mut laptop = Node::new();
    laptop.start_net(net);
    let created = laptop.ok(&["identity", "create", "--name", "bob"]);
    let phrase = created["seed_phrase"].as_str().unwrap().to_owned();
    let space = echo_tests::share(alice, &[&laptop]);
    let before = laptop.add(&space, r#"{"from":"laptop"}"#);
    eventually("alice holds the laptop's write", CONVERGE, POLL, || {
        alice.ids(&space).contains(&before).then_some(())
    });
    // The laptop is lost, and with it Bob's identity space.
    laptop.kill9();

    let mut restored = Node::new();
    restored.start_net(net);
    restored.ok(&["identity", "recover", "--seed-phrase", &phrase]);
    eventually(
        "alice names the space to the recovered device",
        CONVERGE,
        POLL,
        || (space_keys(&restored) == [space.clone()].into()).then_some(()),
    );
    let after = eventually("the recovered device may write", CONVERGE, POLL, || {
        let out = restored.cli(&["object", "add", &space, r#"{"from":"restored"}"#]);
        out.success()
            .then(|| out.json.unwrap()["id"].as_str().unwrap().to_owned())
    });
    eventually("writes cross both ways", CONVERGE, POLL, || {
        (alice.ids(&space).contains(&after) && restored.ids(&space).contains(&before)).then_some(())
    });
    // Nobody held Bob's identity space any more: the recovered device re-founded it from the
    // phrase (the same genesis), so it lists the space there and admits a new device, which
    // gets the space from that list.
    let (code, auth) = device_invite(&restored, &[]);
    let mut phone = Node::new();
    phone.start_net(net);
    let joined = device_join(&phone, &code, auth.as_deref());
    assert!(joined.success(), "{joined}");
    eventually(
        "the new device gets the space from the identity's list",
        CONVERGE,
        POLL,
        || (space_keys(&phone) == [space.clone()].into()).then_some(()),
    );
    // The recovered device lists the new one (and the lost laptop, which the shared space
    // still knows).
    let phone_key = joined.json.as_ref().unwrap()["device_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let restored_key = restored.ok(&["identity", "show"])["device_key"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        "the recovered device lists the new one",
        CONVERGE,
        POLL,
        || {
            let devices = device_names(&restored);
            (devices.contains_key(&phone_key) && devices.contains_key(&restored_key)).then_some(())
        },
    );
}
