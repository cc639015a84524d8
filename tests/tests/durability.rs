//! Acknowledged writes survive a clean stop, a SIGKILL right after the last ack, and
//! repeated crashes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use echo_tests::Node;
use serde_json::Value;

/// Everything a restart must preserve, as printed by the CLI.
fn state(node: &Node, space: &str) -> Vec<Value> {
    vec![
        node.ok(&["identity", "show"]),
        node.ok(&["space", "list"]),
        node.ok(&["query", space, "--include-deleted"]),
        node.ok(&["query", space]),
        node.ok(&["query", space, "--type", "Doc"]),
        Value::from(node.feeds(space)),
    ]
}

#[test]
fn writes_survive_sigterm_and_restart() {
    let (mut node, space) = Node::with_space("main");
    node.ok(&["space", "create", "--name", "second"]);
    let a = node.add(
        &space,
        r#"{"@type":"Doc","title":"a","n":1,"nested":{"x":[1,2,{"y":true}]}}"#,
    );
    let b = node.add(
        &space,
        &format!(r#"{{"@type":"Doc","link":{{"@ref":"{a}"}}}}"#),
    );
    let c = node.add(&space, r#"{"@type":"Other","body":"héllo wörld"}"#);
    node.ok(&[
        "object",
        "update",
        &space,
        &a,
        r#"{"n":2,"nested":{"z":"new"}}"#,
    ]);
    node.ok_any(&["text", "insert", &space, &c, "body", "5", ",🦀"]);
    node.ok_any(&["text", "delete", &space, &c, "body", "0", "1"]);
    node.ok_any(&["object", "delete", &space, &b]);
    node.add("second", r#"{"in":"second"}"#);

    let before = state(&node, &space);
    let second_before = node.ok(&["query", "second"]);
    let status_before = node.status();
    assert_eq!(node.feed_length(&space, "data"), 7);

    node.stop();
    node.start();

    let after = state(&node, &space);
    assert_eq!(before, after, "state changed across SIGTERM + restart");
    assert_eq!(second_before, node.ok(&["query", "second"]));
    let status_after = node.status();
    assert_eq!(status_before["device_key"], status_after["device_key"]);
    assert_eq!(status_before["identity_key"], status_after["identity_key"]);
    assert_eq!(status_before["spaces"], status_after["spaces"]);
    assert_eq!(
        node.ok(&["text", "get", &space, &c, "body"])["text"],
        "éllo,🦀 wörld"
    );

    // And the node keeps working after the restart: text stays collaborative text.
    node.ok_any(&["text", "insert", &space, &c, "body", "0", "H"]);
    assert_eq!(
        node.ok(&["text", "get", &space, &c, "body"])["text"],
        "Héllo,🦀 wörld"
    );
    node.add(&space, r#"{"@type":"Doc","title":"after restart"}"#);
    assert_eq!(node.feed_length(&space, "data"), 9);
    node.stop();
}

/// What the test expects of one object after the crash.
#[derive(Default, Debug)]
struct Expected {
    n: i64,
    text: String,
    deleted: bool,
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let (mut node, space) = Node::with_space("main");
    let mut model: BTreeMap<String, Expected> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut mutations = 0u64;

    // 50 mutations as fast as the CLI allows: 20 adds, 15 updates, 10 text inserts,
    // 5 deletes, interleaved. No reads in between; the kill follows the last ack.
    for i in 0..20 {
        let id = node.add(&space, &format!(r#"{{"@type":"Item","i":{i},"n":0}}"#));
        mutations += 1;
        model.insert(id.clone(), Expected::default());
        order.push(id);
        if i % 4 == 3 {
            // after every 4th add: 3 updates, 2 text inserts, 1 delete (5 rounds -> 15/10/5)
            let k = order.len();
            for (j, id) in order[k - 3..].iter().enumerate() {
                let e = model.get_mut(id).unwrap();
                e.n += 1 + j as i64;
                let patch = format!(r#"{{"n":{}}}"#, e.n);
                node.ok(&["object", "update", &space, id, &patch]);
                mutations += 1;
            }
            for id in &order[k - 2..] {
                let e = model.get_mut(id).unwrap();
                let idx = e.text.chars().count().to_string();
                let piece = format!("é{i}🦀");
                node.ok_any(&["text", "insert", &space, id, "t", &idx, &piece]);
                e.text.push_str(&piece);
                mutations += 1;
            }
            let victim = order[k - 4].clone();
            node.ok_any(&["object", "delete", &space, &victim]);
            model.get_mut(&victim).unwrap().deleted = true;
            mutations += 1;
        }
    }
    assert_eq!(mutations, 50);
    node.kill9();

    node.start();
    let all = node.query(&space, &["--include-deleted"]);
    let got: BTreeMap<String, &Value> = all
        .iter()
        .map(|o| (o["@id"].as_str().unwrap().to_owned(), o))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        model.keys().collect::<Vec<_>>(),
        "objects lost or invented by the crash"
    );
    for (i, id) in order.iter().enumerate() {
        let o = got[id];
        let e = &model[id];
        assert_eq!(o["i"], i as i64, "{o}");
        assert_eq!(o["n"], e.n, "update lost for {id}: {o}");
        assert_eq!(o["@deleted"], e.deleted, "delete lost for {id}: {o}");
        if e.text.is_empty() {
            assert!(o.get("t").is_none(), "{o}");
        } else {
            assert_eq!(o["t"], e.text.as_str(), "text edit lost for {id}: {o}");
        }
    }
    assert_eq!(node.query(&space, &[]).len(), 15);
    assert_eq!(node.feed_length(&space, "data"), mutations);
    assert_eq!(node.feed_length(&space, "control"), 4);
    node.stop();
}

#[test]
fn restarts_cleanly_after_repeated_sigkill() {
    let (mut node, space) = Node::with_space("main");
    let mut ids: Vec<String> = Vec::new();
    let mut text = String::new();
    let doc = node.add(&space, r#"{"@type":"Doc"}"#);
    let mut mutations = 1u64;
    for cycle in 0..3 {
        let id = node.add(&space, &format!(r#"{{"@type":"Item","cycle":{cycle}}}"#));
        ids.push(id);
        let piece = format!("c{cycle}ü");
        let idx = text.chars().count().to_string();
        node.ok_any(&["text", "insert", &space, &doc, "t", &idx, &piece]);
        text.push_str(&piece);
        mutations += 2;
        node.kill9();
        node.start();

        let items = node.query(&space, &["--type", "Item"]);
        let got: Vec<&str> = items.iter().map(|o| o["@id"].as_str().unwrap()).collect();
        assert_eq!(got, ids, "cycle {cycle}: items after restart");
        assert_eq!(
            node.ok(&["text", "get", &space, &doc, "t"])["text"],
            text.as_str(),
            "cycle {cycle}: text after restart"
        );
        assert_eq!(node.feed_length(&space, "data"), mutations, "cycle {cycle}");
        assert_eq!(node.feed_length(&space, "control"), 4, "cycle {cycle}");
    }
    // A fresh space after the crashes works, and a final clean stop exits 0.
    node.ok(&["space", "create", "--name", "later"]);
    node.add("later", "{}");
    node.stop();
    node.start();
    assert_eq!(node.query("later", &[]).len(), 1);
    assert_eq!(node.query(&space, &["--type", "Item"]).len(), 3);
    node.stop();
}
