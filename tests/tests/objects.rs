//! The object contract through the CLI: add/get/update/delete, queries, references, space
//! addressing, collaborative text and feed lengths in `status`.

#![allow(clippy::unwrap_used)]

use echo_tests::{is_key_hex, is_ulid, json, Node};
use serde_json::Value;

/// Ids of a query result, in order.
fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|o| o["@id"].as_str().expect("object without @id").to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn add_and_get_round_trip() {
    let (node, space) = Node::with_space("main");
    let id = node.add(
        &space,
        r#"{"@type":"Person","name":"Ada","age":36,"big":1234567890123,"neg":-5,
            "score":1.5,"active":true,
            "max":9223372036854775807,"min":-9223372036854775808,"p53":9007199254740993,
            "float1":1.0,"tags":["a",2,{"k":"v"}],
            "address":{"city":"London","zip":"N1","geo":{"lat":51}},
            "@meta":{"keys":[{"source":"test","id":"x1"}]}}"#,
    );
    let obj = node.ok(&["object", "get", &space, &id]);
    assert_eq!(obj["@id"], id.as_str(), "{obj}");
    assert_eq!(obj["@type"], "Person", "{obj}");
    assert_eq!(obj["@deleted"], false, "{obj}");
    assert_eq!(
        obj["@meta"],
        json(r#"{"keys":[{"source":"test","id":"x1"}]}"#),
        "{obj}"
    );
    assert_eq!(obj["name"], "Ada");
    assert!(obj["age"].is_i64(), "integer must stay an integer: {obj}");
    assert_eq!(obj["age"], 36);
    assert!(
        obj["big"].is_i64(),
        "large integer must stay an integer: {obj}"
    );
    assert_eq!(obj["big"], 1234567890123_i64);
    assert_eq!(obj["neg"], -5);
    assert_eq!(obj["max"], i64::MAX, "{obj}");
    assert_eq!(obj["min"], i64::MIN, "{obj}");
    assert_eq!(
        obj["p53"], 9007199254740993_i64,
        "2^53+1 must stay exact: {obj}"
    );
    assert!(
        obj["float1"].is_f64() && obj["float1"] == 1.0,
        "1.0 stays a float: {obj}"
    );
    assert!(obj["score"].is_f64(), "{obj}");
    assert_eq!(obj["score"], 1.5);
    assert_eq!(obj["active"], true);
    assert_eq!(obj["tags"], json(r#"["a",2,{"k":"v"}]"#));
    assert_eq!(
        obj["address"],
        json(r#"{"city":"London","zip":"N1","geo":{"lat":51}}"#)
    );
    // Nothing else appears.
    let keys: Vec<&String> = obj.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "@deleted", "@id", "@meta", "@type", "active", "address", "age", "big", "float1", "max",
        "min", "name", "neg", "p53", "score", "tags",
    ];
    expected.sort();
    let mut got: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    got.sort();
    assert_eq!(got, expected, "{obj}");

    // An object without @type or @meta.
    let bare = node.add(&space, r#"{"x":1}"#);
    let obj = node.ok(&["object", "get", &space, &bare]);
    assert_eq!(obj["x"], 1);
    assert!(
        obj["@type"].is_null(),
        "@type of an untyped object should be null/absent: {obj}"
    );
    assert_eq!(obj["@deleted"], false);
    // Empty object is fine too.
    let empty = node.add(&space, "{}");
    assert_ne!(empty, bare);
    assert_ne!(empty, id);
}

#[test]
fn update_is_a_merge_patch() {
    let (node, space) = Node::with_space("main");
    let id = node.add(
        &space,
        r#"{"@type":"Person","name":"Ada","nick":"A","tags":["x","y"],
            "address":{"city":"London","zip":"N1","geo":{"lat":51,"lon":0}}}"#,
    );
    let after = node.ok(&[
        "object",
        "update",
        &space,
        &id,
        r#"{"nick":null,"age":37,"tags":["z"],"address":{"city":"Paris","geo":{"lon":null}},
            "missing":null}"#,
    ]);
    assert_eq!(
        after["@id"],
        id.as_str(),
        "update returns the object: {after}"
    );
    assert_eq!(after["name"], "Ada", "untouched field kept: {after}");
    assert!(after.get("nick").is_none(), "null removes a field: {after}");
    assert!(
        after.get("missing").is_none(),
        "null for an absent field adds nothing: {after}"
    );
    assert_eq!(after["age"], 37);
    assert_eq!(
        after["tags"],
        json(r#"["z"]"#),
        "arrays are replaced: {after}"
    );
    assert_eq!(
        after["address"],
        json(r#"{"city":"Paris","zip":"N1","geo":{"lat":51}}"#),
        "nested objects merge: {after}"
    );
    assert_eq!(after["@type"], "Person");
    let got = node.ok(&["object", "get", &space, &id]);
    assert_eq!(got, after, "get agrees with the update's result");

    // Replacing an object with a scalar and back.
    let after = node.ok(&["object", "update", &space, &id, r#"{"address":"gone"}"#]);
    assert_eq!(after["address"], "gone");
    let after = node.ok(&[
        "object",
        "update",
        &space,
        &id,
        r#"{"address":{"city":"Rome"}}"#,
    ]);
    assert_eq!(after["address"], json(r#"{"city":"Rome"}"#));
    // Changing @type.
    let after = node.ok(&["object", "update", &space, &id, r#"{"@type":"Human"}"#]);
    assert_eq!(after["@type"], "Human");
    assert_eq!(
        node.query(&space, &["--type", "Person"]).len(),
        0,
        "type change must be reflected in queries"
    );
    assert_eq!(ids(&node.query(&space, &["--type", "Human"])), vec![id]);
}

#[test]
fn delete_is_soft() {
    let (node, space) = Node::with_space("main");
    let keep = node.add(&space, r#"{"@type":"Task","title":"keep"}"#);
    let gone = node.add(&space, r#"{"@type":"Task","title":"gone"}"#);
    node.ok_any(&["object", "delete", &space, &gone]);

    let obj = node.ok(&["object", "get", &space, &gone]);
    assert_eq!(
        obj["@deleted"], true,
        "deleted object still readable: {obj}"
    );
    assert_eq!(obj["title"], "gone", "fields kept on soft delete: {obj}");

    assert_eq!(ids(&node.query(&space, &[])), vec![keep.clone()]);
    assert_eq!(
        ids(&node.query(&space, &["--type", "Task"])),
        vec![keep.clone()]
    );
    assert_eq!(
        ids(&node.query(&space, &["--where", "title=gone"])),
        Vec::<String>::new()
    );
    let all = node.query(&space, &["--include-deleted"]);
    assert_eq!(ids(&all), sorted(vec![keep.clone(), gone.clone()]));
    let deleted: Vec<&Value> = all.iter().filter(|o| o["@deleted"] == true).collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["@id"], gone.as_str());
    assert_eq!(
        ids(&node.query(&space, &["--include-deleted", "--where", "title=gone"])),
        vec![gone.clone()]
    );
}

#[test]
fn queries_by_type_path_and_value_kind() {
    let (node, space) = Node::with_space("main");
    let ada = node.add(
        &space,
        r#"{"@type":"Person","name":"Ada","age":36,"active":true,"address":{"city":"London"}}"#,
    );
    let bob = node.add(
        &space,
        r#"{"@type":"Person","name":"Bob","age":"36","active":false,"address":{"city":"Paris"}}"#,
    );
    let cyd = node.add(
        &space,
        r#"{"@type":"Person","name":"Cyd","age":40,"active":true,"address":{"city":"London"}}"#,
    );
    let org = node.add(
        &space,
        r#"{"@type":"Org","name":"Acme","address":{"city":"London"},"size":36}"#,
    );

    let all = node.query(&space, &[]);
    assert_eq!(
        ids(&all),
        sorted(vec![ada.clone(), bob.clone(), cyd.clone(), org.clone()]),
        "query returns every live object ordered by id"
    );
    // Full objects are returned.
    let ada_obj = all.iter().find(|o| o["@id"] == ada.as_str()).unwrap();
    assert_eq!(ada_obj["address"]["city"], "London");
    assert_eq!(ada_obj["@type"], "Person");

    let people = node.query(&space, &["--type", "Person"]);
    assert_eq!(
        ids(&people),
        sorted(vec![ada.clone(), bob.clone(), cyd.clone()])
    );
    assert_eq!(
        ids(&node.query(&space, &["--type", "Org"])),
        vec![org.clone()]
    );
    assert!(node.query(&space, &["--type", "Nobody"]).is_empty());

    // Dotted path.
    assert_eq!(
        ids(&node.query(&space, &["--where", "address.city=London"])),
        sorted(vec![ada.clone(), cyd.clone(), org.clone()])
    );
    assert_eq!(
        ids(&node.query(
            &space,
            &["--type", "Person", "--where", "address.city=London"]
        )),
        sorted(vec![ada.clone(), cyd.clone()])
    );
    // Numbers match numbers, not strings; a quoted JSON string matches the string.
    assert_eq!(
        ids(&node.query(&space, &["--where", "age=36"])),
        vec![ada.clone()]
    );
    assert_eq!(
        ids(&node.query(&space, &["--where", r#"age="36""#])),
        vec![bob.clone()]
    );
    assert_eq!(
        ids(&node.query(&space, &["--where", "size=36"])),
        vec![org.clone()]
    );
    // Booleans.
    assert_eq!(
        ids(&node.query(&space, &["--where", "active=true"])),
        sorted(vec![ada.clone(), cyd.clone()])
    );
    assert_eq!(
        ids(&node.query(&space, &["--where", "active=false"])),
        vec![bob.clone()]
    );
    // Unparseable VALUE is a plain string.
    assert_eq!(
        ids(&node.query(&space, &["--where", "name=Ada"])),
        vec![ada.clone()]
    );
    assert_eq!(
        ids(&node.query(&space, &["--where", "name=Ada Lovelace"])),
        Vec::<String>::new()
    );
    // Several conditions all hold.
    assert_eq!(
        ids(&node.query(
            &space,
            &[
                "--where",
                "active=true",
                "--where",
                "address.city=London",
                "--where",
                "age=40"
            ]
        )),
        vec![cyd.clone()]
    );
    // Paths that do not exist match nothing.
    assert!(node
        .query(&space, &["--where", "address.country=UK"])
        .is_empty());
    assert!(node
        .query(&space, &["--where", "name.first=Ada"])
        .is_empty());
}

#[test]
fn references_including_dangling() {
    let (node, space) = Node::with_space("main");
    let a = node.add(&space, r#"{"@type":"Person","name":"A"}"#);
    let b = node.add(
        &space,
        &format!(
            r#"{{"@type":"Person","name":"B","friend":{{"@ref":"{a}"}},"list":[{{"@ref":"{a}"}}]}}"#
        ),
    );
    let obj = node.ok(&["object", "get", &space, &b]);
    assert_eq!(
        obj["friend"],
        json(&format!(r#"{{"@ref":"{a}"}}"#)),
        "{obj}"
    );
    assert_eq!(obj["list"][0]["@ref"], a.as_str(), "{obj}");

    // A reference to an object that does not exist is fine.
    let ghost = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let c = node.add(
        &space,
        &format!(r#"{{"@type":"Person","name":"C","friend":{{"@ref":"{ghost}"}}}}"#),
    );
    let obj = node.ok(&["object", "get", &space, &c]);
    assert_eq!(obj["friend"]["@ref"], ghost, "{obj}");
    // Updating a reference (to the dangling one and back).
    let obj = node.ok(&[
        "object",
        "update",
        &space,
        &b,
        &format!(r#"{{"friend":{{"@ref":"{ghost}"}}}}"#),
    ]);
    assert_eq!(obj["friend"]["@ref"], ghost, "{obj}");
    // Deleting the target leaves the reference in place.
    node.ok_any(&["object", "delete", &space, &a]);
    let obj = node.ok(&["object", "get", &space, &b]);
    assert_eq!(obj["list"][0]["@ref"], a.as_str(), "{obj}");
    // Query by reference value.
    let found = node.query(
        &space,
        &["--where", &format!(r#"friend={{"@ref":"{ghost}"}}"#)],
    );
    assert_eq!(ids(&found), sorted(vec![b.clone(), c.clone()]));
}

#[test]
fn spaces_by_name_and_key() {
    let (node, main) = Node::with_space("main");
    let work = node.ok(&["space", "create", "--name", "work"]);
    let work_key = work["space_key"].as_str().unwrap().to_owned();
    assert!(is_key_hex(&work_key), "{work}");
    assert_ne!(work_key, main);
    let unnamed = node.ok(&["space", "create"]);
    let unnamed_key = unnamed["space_key"].as_str().unwrap().to_owned();

    let list = node.ok(&["space", "list"]);
    let list = list.as_array().expect("space list is an array");
    assert_eq!(list.len(), 3, "{list:?}");
    for (key, name) in [
        (&main, Value::from("main")),
        (&work_key, Value::from("work")),
        (&unnamed_key, Value::Null),
    ] {
        let entry = list
            .iter()
            .find(|s| s["space_key"] == key.as_str())
            .unwrap_or_else(|| panic!("space {key} missing from {list:?}"));
        assert_eq!(entry["name"], name, "{entry}");
    }

    // Add by name, read by key and the other way round.
    let id = node.add("work", r#"{"@type":"Note","n":1}"#);
    assert_eq!(node.ok(&["object", "get", &work_key, &id])["n"], 1);
    let id2 = node.add(&work_key, r#"{"@type":"Note","n":2}"#);
    assert_eq!(node.ok(&["object", "get", "work", &id2])["n"], 2);
    // Spaces are separate.
    assert_eq!(node.query("work", &[]).len(), 2);
    assert!(node.query("main", &[]).is_empty());
    assert!(node.query(&unnamed_key, &[]).is_empty());
    let out = node.fails(&["object", "get", "main", &id]);
    assert!(
        out.stderr.contains(&id) || out.stderr.to_lowercase().contains("not found"),
        "object of another space must be not found:\n{out}"
    );

    // A name already in use is refused, so a name never becomes ambiguous (validation.rs
    // checks the 409 body).
    let d1 = node.ok(&["space", "create", "--name", "dup"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = node.fails(&["space", "create", "--name", "dup"]);
    assert!(
        out.stderr.contains("already taken") && out.stderr.contains(&d1),
        "a taken space name must be refused:\n{out}"
    );
    node.add("dup", "{}");
    node.add(&d1, "{}");

    // Unknown space.
    let out = node.fails(&["object", "add", "nosuch", "{}"]);
    assert!(
        out.stderr.contains("nosuch"),
        "unknown space error should name it:\n{out}"
    );
    node.fails(&["query", "nosuch"]);
    node.fails(&["object", "add", &"ab".repeat(32), "{}"]);

    // Unknown object (valid id).
    let missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    for args in [
        &["object", "get", "main", missing][..],
        &["object", "update", "main", missing, "{}"],
        &["object", "delete", "main", missing],
        &["text", "get", "main", missing, "body"],
        &["text", "insert", "main", missing, "body", "0", "x"],
    ] {
        let out = node.fails(args);
        assert!(
            out.stderr.contains(missing) || out.stderr.to_lowercase().contains("not found"),
            "unknown object should be reported as not found:\n{out}"
        );
    }
}

#[test]
fn text_edits_count_characters() {
    let (node, space) = Node::with_space("main");
    let id = node.add(&space, r#"{"@type":"Doc","body":"héllo","n":5}"#);
    let text = |field: &str| -> Value { node.ok(&["text", "get", &space, &id, field]) };
    assert_eq!(text("body"), json(r#"{"text":"héllo"}"#));

    node.ok_any(&["text", "insert", &space, &id, "body", "1", "🦀ü"]);
    assert_eq!(text("body")["text"], "h🦀üéllo");
    // Insert at the very end (index == length in characters).
    node.ok_any(&["text", "insert", &space, &id, "body", "7", "!"]);
    assert_eq!(text("body")["text"], "h🦀üéllo!");
    node.ok_any(&["text", "delete", &space, &id, "body", "0", "2"]);
    assert_eq!(text("body")["text"], "üéllo!");
    node.ok_any(&["text", "delete", &space, &id, "body", "5", "1"]);
    assert_eq!(text("body")["text"], "üéllo");

    // A missing field becomes a text field on first insert.
    node.ok_any(&["text", "insert", &space, &id, "title", "0", "日本語"]);
    node.ok_any(&["text", "insert", &space, &id, "title", "2", "の"]);
    assert_eq!(text("title")["text"], "日本の語");

    // The object shows text fields as strings.
    let obj = node.ok(&["object", "get", &space, &id]);
    assert_eq!(obj["body"], "üéllo", "{obj}");
    assert_eq!(obj["title"], "日本の語", "{obj}");
    assert_eq!(obj["n"], 5);

    // A query can match a text field's current content.
    assert_eq!(
        ids(&node.query(&space, &["--where", "title=日本の語"])),
        vec![id.clone()]
    );

    // Non-text fields are refused.
    node.fails(&["text", "insert", &space, &id, "n", "0", "x"]);
    node.fails(&["text", "get", &space, &id, "n"]);
    // Reserved fields are not text.
    node.fails(&["text", "insert", &space, &id, "@type", "0", "x"]);
}

#[test]
fn status_lists_feeds_that_grow_with_writes() {
    let (node, space) = Node::with_space("main");
    let identity = node.ok(&["identity", "show"]);
    let status = node.status();
    assert_eq!(status["device_key"], identity["device_key"], "{status}");
    assert_eq!(status["identity_key"], identity["identity_key"], "{status}");
    assert!(
        status.get("listen").is_some(),
        "status lacks `listen`: {status}"
    );

    let feeds = node.feeds(&space);
    assert_eq!(feeds.len(), 2, "one control and one data feed: {feeds:?}");
    for f in &feeds {
        assert!(
            is_key_hex(f["feed_key"].as_str().unwrap_or_default()),
            "{f}"
        );
        assert_eq!(f["device_key"], identity["device_key"], "{f}");
    }
    assert_ne!(feeds[0]["feed_key"], feeds[1]["feed_key"]);
    let space_entry = status["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["space_key"] == space.as_str())
        .unwrap()
        .clone();
    assert_eq!(space_entry["name"], "main");

    assert_eq!(
        node.feed_length(&space, "control"),
        4,
        "genesis has 4 blocks"
    );
    assert_eq!(node.feed_length(&space, "data"), 0, "no writes yet");

    let id = node.add(&space, r#"{"@type":"Doc","body":"abc"}"#);
    assert_eq!(node.feed_length(&space, "data"), 1);
    node.ok(&["object", "update", &space, &id, r#"{"x":1}"#]);
    node.ok_any(&["text", "insert", &space, &id, "body", "3", "d"]);
    node.ok_any(&["text", "delete", &space, &id, "body", "0", "1"]);
    assert_eq!(node.feed_length(&space, "data"), 4);
    // Failed mutations write nothing.
    node.fails(&["object", "add", &space, r#"{"@bad":1}"#]);
    node.fails(&["text", "delete", &space, &id, "body", "0", "99"]);
    node.fails(&[
        "object",
        "update",
        &space,
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        r#"{"x":1}"#,
    ]);
    // Reads write nothing.
    node.ok(&["object", "get", &space, &id]);
    node.query(&space, &[]);
    assert_eq!(node.feed_length(&space, "data"), 4);
    node.ok_any(&["object", "delete", &space, &id]);
    assert_eq!(node.feed_length(&space, "data"), 5);
    assert_eq!(node.feed_length(&space, "control"), 4);

    // A second space has its own feeds.
    let other = node.ok(&["space", "create", "--name", "other"])["space_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(node.feed_length(&other, "control"), 4);
    assert_eq!(node.feed_length(&other, "data"), 0);
    assert_eq!(node.feed_length(&space, "data"), 5);
    let all_feeds: Vec<Value> = node
        .feeds(&space)
        .into_iter()
        .chain(node.feeds(&other))
        .collect();
    let mut keys: Vec<&str> = all_feeds
        .iter()
        .map(|f| f["feed_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "feed keys must be distinct: {all_feeds:?}");
}

#[test]
fn ids_are_ulids_and_increase() {
    let (node, space) = Node::with_space("main");
    let mut last = String::new();
    for i in 0..5 {
        let id = node.add(&space, &format!(r#"{{"i":{i}}}"#));
        assert!(is_ulid(&id));
        assert!(id > last, "ids should increase: {last} then {id}");
        last = id;
    }
    let items = node.query(&space, &[]);
    let got: Vec<i64> = items.iter().map(|o| o["i"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4], "ordered by id = insertion order");
}
