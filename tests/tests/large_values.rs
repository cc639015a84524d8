//! Large values between real `echo-node` processes (issue 7): a member that was away
//! catches up on a backlog far larger than one frame (300 objects of 20 KB, then six of
//! 1 MB and one at the API's 1 MiB limit), and a later small write reaches it too; a
//! newcomer that joins after the backlog exists receives its own membership and
//! everything; and a value one byte over the API's limit is refused with a clear error by
//! the API (413) and the CLI (exit 1), while one at the limit is accepted.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use echo_tests::{eventually, http, join, share, Node, CONVERGE, POLL};
use serde_json::{json, Value};

/// The API's limit on one value (the serialized JSON of an added object).
const MAX_VALUE_BYTES: usize = 1 << 20;
/// How long a member may take to catch up on one backlog.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Feed key -> length of `space` on `node`, from `status` (cheap: no objects are read).
fn heads(node: &Node, space: &str) -> BTreeMap<String, u64> {
    node.feeds(space)
        .iter()
        .map(|f| {
            (
                f["feed_key"].as_str().unwrap().to_owned(),
                f["length"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits until `node` holds every feed of `space` as long as `source` does; how long it took.
fn catch_up(name: &str, node: &Node, source: &Node, space: &str, bound: Duration) -> Duration {
    let target = heads(source, space);
    let start = Instant::now();
    loop {
        let have = heads(node, space);
        if have == target {
            return start.elapsed();
        }
        if start.elapsed() > bound {
            node.fail_with(&format!(
                "{name} did not catch up within {bound:?}: it holds {have:?}, the source {target:?}"
            ));
        }
        thread::sleep(POLL);
    }
}

/// An object `{"i": i, "b": "<fill>"}` whose filler is `len` characters.
fn blob(i: usize, len: usize) -> Value {
    json!({ "i": i, "b": "x".repeat(len) })
}

/// The largest object the API accepts: exactly [`MAX_VALUE_BYTES`] of JSON.
fn largest(i: usize) -> Value {
    let overhead = blob(i, 0).to_string().len();
    let v = blob(i, MAX_VALUE_BYTES - overhead);
    assert_eq!(v.to_string().len(), MAX_VALUE_BYTES);
    v
}

#[test]
fn a_member_that_was_away_and_a_newcomer_catch_up_on_large_objects() {
    let a = Node::networked("a", &[]);
    let a_addr = a.listen_addr().to_string();
    let flags = ["--peer", a_addr.as_str()];
    let mut b = Node::networked("b", &flags);
    let space = share(&a, &[&b]);
    // B is admitted (and A has its admission) before it goes away.
    let mut ids = BTreeSet::new();
    ids.insert(b.add(&space, r#"{"from":"b"}"#));
    catch_up("a", &a, &b, &space, CONVERGE);
    b.stop();

    // 300 objects of 20 KB: about 6 MB, 256 blocks of which no longer fit in one frame.
    let api = a.api();
    let start = Instant::now();
    for i in 0..300 {
        ids.insert(api.add(&space, &blob(i, 20_000)));
    }
    println!("A wrote 300 objects of 20 KB in {:?}", start.elapsed());
    b.start_net(&flags);
    let took = catch_up("b", &b, &a, &space, CATCH_UP);
    println!("B caught up on 300 objects of 20 KB in {took:?} (debug build, loopback)");
    assert_eq!(b.ids(&space), ids, "B holds every object");
    // A later small write follows at once.
    let later = api.add(&space, &json!({"later": true}));
    let b_api = b.api();
    eventually("A's later write to reach B", CONVERGE, POLL, || {
        b_api.has(&space, &later).then_some(())
    });
    ids.insert(later);

    // Six objects of 1 MB and one at the limit, while B is away again.
    b.stop();
    let mut big = Vec::new();
    for i in 0..6 {
        big.push(api.add(&space, &blob(1000 + i, 1_000_000)));
    }
    big.push(api.add(&space, &largest(2000)));
    b.start_net(&flags);
    let took = catch_up("b", &b, &a, &space, CATCH_UP);
    println!("B caught up on 6 objects of 1 MB and one of 1 MiB in {took:?}");
    let b_api = b.api();
    for id in &big {
        let res = http(
            &b_api.url,
            "GET",
            &format!("/v1/spaces/{space}/objects/{id}"),
            Some(&b_api.token),
            None,
        );
        assert_eq!(res.status, 200, "{id} on B");
        let len = res.json().unwrap()["b"].as_str().unwrap().len();
        assert!(len >= 1_000_000, "{id} on B has {len} characters");
    }
    ids.extend(big);

    // A newcomer, added after the backlog exists: it must receive its own membership
    // (behind megabytes of data on the owner's feeds), become writable and hold it all.
    let c = Node::networked("c", &flags);
    let identity = c.identity_key();
    a.ok(&["space", "add-member", &space, &identity]);
    let start = Instant::now();
    join(&c, &space);
    println!("C became writable {:?} after joining", start.elapsed());
    ids.insert(c.add(&space, r#"{"from":"c"}"#));
    let members = c.ok(&["space", "members", &space]);
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["identity_key"] == identity.as_str() && m["role"] == "editor"),
        "{members}"
    );
    catch_up("c", &c, &a, &space, CATCH_UP);
    catch_up("a", &a, &c, &space, CONVERGE);
    catch_up("b", &b, &a, &space, CONVERGE);
    assert_eq!(c.ids(&space), ids, "C holds every object");
    assert_eq!(b.ids(&space), ids, "B holds every object");
}

#[test]
fn the_largest_value_is_accepted_and_one_byte_more_refused_by_api_and_cli() {
    let (node, space) = Node::with_space("s");
    let api = node.api();
    let over = blob(1, MAX_VALUE_BYTES - blob(1, 0).to_string().len() + 1).to_string();
    let path = format!("/v1/spaces/{space}/objects");
    let res = http(
        &api.url,
        "POST",
        &path,
        Some(&api.token),
        Some(over.as_bytes()),
    );
    assert_eq!(res.status, 413, "{}", res.body);
    let err = res.json().unwrap();
    assert_eq!(err["code"], "too_large", "{err}");
    assert!(err["error"].as_str().unwrap().contains("bytes"), "{err}");
    // The CLI says so too and exits 1. The object comes from a file (`@FILE`): it is too
    // large for one command-line argument.
    let file = node.data_dir().with_file_name("over.json");
    std::fs::write(&file, &over).unwrap();
    let arg = format!("@{}", file.display());
    let out = node.fails(&["object", "add", &space, &arg]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("too large"), "{out}");
    assert_eq!(node.feed_length(&space, "data"), 0, "nothing was written");
    // Exactly at the limit: accepted, by the CLI from a file as well.
    std::fs::write(&file, largest(2).to_string()).unwrap();
    let id = node.add(&space, &arg);
    assert_eq!(node.ids(&space), BTreeSet::from([id]));
    assert_eq!(node.feed_length(&space, "data"), 1);
}
