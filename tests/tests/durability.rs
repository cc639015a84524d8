//! Acknowledged writes survive a clean stop, a SIGKILL right after the last ack, and
//! repeated crashes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

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
        r#"{"@type":"Doc","title":"a","n":1,"nested":{"x":[1,2,{"y":true}]},
            "max":9223372036854775807,"p53":9007199254740993,"f":1.0,"neg":-2147483649}"#,
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
    let a_obj = node.ok(&["object", "get", &space, &a]);
    assert_eq!(a_obj["max"], i64::MAX, "{a_obj}");
    assert_eq!(a_obj["p53"], 9007199254740993_i64, "{a_obj}");
    assert!(a_obj["f"].is_f64(), "{a_obj}");
    assert_eq!(a_obj["neg"], -2147483649_i64, "{a_obj}");
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

#[test]
fn sigint_also_flushes_and_exits_cleanly() {
    let (mut node, space) = Node::with_space("main");
    let id = node.add(&space, r#"{"@type":"Doc","v":1}"#);
    node.ok(&["object", "update", &space, &id, r#"{"v":2}"#]);
    let status = node.terminate("INT");
    if !status.success() {
        node.fail_with(&format!("daemon exited with {status} after SIGINT"));
    }
    node.start();
    assert_eq!(node.ok(&["object", "get", &space, &id])["v"], 2);
    assert_eq!(node.feed_length(&space, "data"), 2);
    node.stop();
}

#[test]
fn concurrent_writers_all_land() {
    let (mut node, space) = Node::with_space("main");
    let doc = node.add(&space, r#"{"@type":"Doc","t":""}"#);
    const THREADS: usize = 4;
    const EACH: usize = 6;
    let ids: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let node = &node;
                let space = &space;
                let doc = &doc;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..EACH {
                        mine.push(node.add(space, &format!(r#"{{"@type":"W","t":{t},"i":{i}}}"#)));
                        // Everybody inserts at the start of the same text field.
                        node.ok_any(&[
                            "text",
                            "insert",
                            space,
                            doc,
                            "t",
                            "0",
                            &format!("[{t}{i}é]"),
                        ]);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = ids.into_iter().flatten().collect();
    all.sort();
    let mutations = (1 + 2 * THREADS * EACH) as u64;
    let check = |node: &Node| {
        let got: Vec<String> = node
            .query(&space, &["--type", "W"])
            .iter()
            .map(|o| o["@id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, all, "every acknowledged add is there, once");
        let text = node.ok(&["text", "get", &space, &doc, "t"])["text"]
            .as_str()
            .unwrap()
            .to_owned();
        for t in 0..THREADS {
            for i in 0..EACH {
                let piece = format!("[{t}{i}é]");
                assert_eq!(text.matches(&piece).count(), 1, "{piece} in {text:?}");
            }
        }
        assert_eq!(text.chars().count(), THREADS * EACH * 5, "{text:?}");
    };
    check(&node);
    // Group commit: every mutation is in exactly one commit, each commit is one block of
    // the data feed (concurrent writers share blocks, so there may be fewer than writes).
    // The counters are the node's: they also count the space's listing in the identity
    // space (one write, one commit).
    let counters = node.ok(&["status"])["counters"].clone();
    assert_eq!(
        counters["echo_commit_writes_total"].as_u64(),
        Some(mutations + 1)
    );
    let blocks = node.feed_length(&space, "data");
    assert_eq!(counters["echo_commits_total"].as_u64(), Some(blocks + 1));
    assert!((1..=mutations).contains(&blocks), "{blocks} blocks");
    node.kill9();
    node.start();
    check(&node);
    assert_eq!(node.feed_length(&space, "data"), blocks);
    node.stop();
}

#[test]
fn sigterm_right_after_ready_exits_cleanly() {
    // `ready` promises a serving daemon that handles SIGTERM; a stop sent the moment the
    // line appears must still be a clean exit 0, not death by the default signal action.
    let mut node = Node::new();
    for _ in 0..10 {
        node.start();
        node.stop();
    }
    node.start();
    node.ok(&["identity", "create"]);
    node.stop();
    node.start();
    node.ok(&["identity", "show"]);
    node.stop();
}

#[test]
fn sigkill_in_the_middle_of_writes_loses_no_acknowledged_write() {
    let (mut node, space) = Node::with_space("main");
    let mut acked: Vec<String> = Vec::new();
    for round in 0..2 {
        let pid = node.pid().to_string();
        let new: Vec<String> = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut mine = Vec::new();
                for i in 0..400 {
                    let out = node.cli(&[
                        "object",
                        "add",
                        &space,
                        &format!(r#"{{"r":{round},"i":{i}}}"#),
                    ]);
                    if !out.success() {
                        break; // the daemon is gone
                    }
                    let id = out
                        .json
                        .as_ref()
                        .and_then(|j| j["id"].as_str())
                        .map(str::to_owned);
                    mine.push(id.unwrap_or_else(|| panic!("add printed no id:\n{out}")));
                }
                mine
            });
            // Let some writes land, then kill the daemon while the writer keeps going.
            std::thread::sleep(Duration::from_millis(400 + 300 * round));
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap();
            assert!(killed.success());
            writer.join().unwrap()
        });
        node.kill9(); // reap
        assert!(
            !new.is_empty(),
            "round {round}: no write was acknowledged before the kill"
        );
        acked.extend(new);

        node.start();
        let items = node.query(&space, &[]);
        let got: Vec<String> = items
            .iter()
            .map(|o| o["@id"].as_str().unwrap().to_owned())
            .collect();
        for id in &acked {
            assert!(
                got.contains(id),
                "round {round}: acknowledged add {id} lost"
            );
        }
        // At most the one in-flight add may have landed without an ack.
        assert!(
            got.len() <= acked.len() + 1,
            "round {round}: {} objects but only {} acked",
            got.len(),
            acked.len()
        );
        assert_eq!(
            node.feed_length(&space, "data"),
            got.len() as u64,
            "round {round}: feed length must match the objects that exist"
        );
        // The node works after the crash; whatever landed is the base of the next round.
        node.add(&space, r#"{"after":"crash"}"#);
        acked = node
            .query(&space, &[])
            .iter()
            .map(|o| o["@id"].as_str().unwrap().to_owned())
            .collect();
    }
    node.stop();
}
