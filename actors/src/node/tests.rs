//! Whole-node tests on the in-memory store: the typed API end to end, restart (state is
//! rebuilt from the feeds) and the crash model (only flushed writes survive, and every
//! acknowledged write was flushed).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::MemStore;
use crate::types::FixedClock;

async fn open(store: Arc<MemStore>, seed: u8) -> NodeHandle {
    Node::open(NodeConfig::local(
        store,
        [seed; 32],
        Arc::new(FixedClock::new(1_700_000_000_000)),
    ))
    .await
    .expect("node opens")
}

#[actix::test]
async fn identity_space_objects_round_trip() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 1).await;
    assert_eq!(
        node.space_create(None).await.unwrap_err().code(),
        "no_identity"
    );
    let created = node.identity_create(Some("Ada".into())).await.unwrap();
    assert_eq!(created.seed_phrase.split(' ').count(), 24);
    assert_eq!(
        node.identity_create(None).await.unwrap_err().code(),
        "identity_exists"
    );
    let shown = node.identity_show().await.unwrap();
    assert_eq!(shown.identity_key, created.identity_key);

    let space = node.space_create(Some("notes".into())).await.unwrap();
    let id = node
        .object_add("notes", json!({"@type": "task", "title": "a", "n": 1}))
        .await
        .unwrap();
    let other = node
        .object_add(
            &space.space_key,
            json!({"@type": "note", "ref": {"@ref": id}}),
        )
        .await
        .unwrap();
    let obj = node
        .object_update("notes", &id, json!({"n": 2, "tags": ["x"]}))
        .await
        .unwrap();
    assert_eq!(obj["n"], json!(2));
    assert_eq!(obj["@type"], json!("task"));
    node.text_insert("notes", &id, "body", 0, "héllo".into())
        .await
        .unwrap();
    assert_eq!(
        node.text_delete("notes", &id, "body", 1, 1).await.unwrap(),
        "hllo"
    );
    node.object_delete("notes", &other).await.unwrap();

    let tasks = node
        .query(
            "notes",
            QueryRequest {
                type_name: Some("task".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    let live = node.query("notes", QueryRequest::default()).await.unwrap();
    assert_eq!(live.len(), 1, "deleted objects are excluded");
    let all = node
        .query(
            "notes",
            QueryRequest {
                include_deleted: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);

    let status = node.status().await.unwrap();
    let feeds = &status.spaces[0].feeds;
    let control = feeds.iter().find(|f| f.designation == "control").unwrap();
    let data = feeds.iter().find(|f| f.designation == "data").unwrap();
    assert_eq!(control.length, 4, "genesis writes four credentials");
    assert_eq!(data.length, 6, "one block per acknowledged mutation");
}

#[actix::test]
async fn errors_are_typed_and_write_nothing() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 2).await;
    node.identity_create(None).await.unwrap();
    node.space_create(Some("s".into())).await.unwrap();
    assert_eq!(
        node.object_add("nope", json!({})).await.unwrap_err().code(),
        "space_not_found"
    );
    assert_eq!(
        node.object_add("s", json!([1])).await.unwrap_err().kind(),
        ErrorKind::BadRequest
    );
    assert_eq!(
        node.object_add("s", json!({"@bogus": 1}))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::BadRequest
    );
    assert_eq!(
        node.object_get("s", "not-an-id").await.unwrap_err().kind(),
        ErrorKind::BadRequest
    );
    let missing = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
    assert_eq!(
        node.object_get("s", missing).await.unwrap_err().code(),
        "object_not_found"
    );
    assert_eq!(
        node.object_update("s", missing, json!({}))
            .await
            .unwrap_err()
            .code(),
        "object_not_found"
    );
    let big = "x".repeat(2 << 20);
    assert_eq!(
        node.object_add("s", json!({ "big": big }))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TooLarge
    );
    let status = node.status().await.unwrap();
    let data_len: u64 = status
        .spaces
        .iter()
        .flat_map(|s| &s.feeds)
        .filter(|f| f.designation == "data")
        .map(|f| f.length)
        .sum();
    assert_eq!(data_len, 0, "no failed request wrote a block");
}

#[actix::test]
async fn restart_rebuilds_from_feeds_and_crash_keeps_acknowledged_writes() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 3).await;
    node.identity_create(None).await.unwrap();
    node.space_create(Some("s".into())).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(node.object_add("s", json!({"i": i})).await.unwrap());
    }
    node.object_update("s", &ids[3], json!({"i": null, "x": true}))
        .await
        .unwrap();
    node.text_insert("s", &ids[4], "t", 0, "abc".into())
        .await
        .unwrap();
    let before = node
        .query(
            "s",
            QueryRequest {
                include_deleted: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Every acknowledged write was flushed: a crash loses nothing.
    assert_eq!(store.unflushed(), 0);
    store.crash();
    let node = open(store.clone(), 4).await;
    let after = node
        .query(
            "s",
            QueryRequest {
                include_deleted: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(node.text_get("s", &ids[4], "t").await.unwrap(), "abc");
    // The restarted node keeps writing on the same feeds.
    node.object_add("s", json!({"after": "restart"}))
        .await
        .unwrap();
    let node = open(store.clone(), 5).await;
    assert_eq!(
        node.query("s", QueryRequest::default())
            .await
            .unwrap()
            .len(),
        21
    );
}

#[actix::test]
async fn watch_streams_changes_with_type_filter() {
    let store = Arc::new(MemStore::new());
    let node = open(store, 6).await;
    node.identity_create(None).await.unwrap();
    node.space_create(Some("s".into())).await.unwrap();
    let mut all = node.watch("s", None).await.unwrap();
    let mut tasks = node.watch("s", Some("task".into())).await.unwrap();
    let id = node
        .object_add("s", json!({"@type": "task"}))
        .await
        .unwrap();
    node.object_add("s", json!({"@type": "note"}))
        .await
        .unwrap();
    node.object_update("s", &id, json!({"done": true}))
        .await
        .unwrap();
    node.object_delete("s", &id).await.unwrap();
    let kinds: Vec<_> = (0..4).map(|_| all.try_recv().unwrap().kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Added,
            ChangeKind::Added,
            ChangeKind::Updated,
            ChangeKind::Deleted
        ]
    );
    let kinds: Vec<_> = (0..3).map(|_| tasks.try_recv().unwrap().kind).collect();
    assert_eq!(
        kinds,
        [ChangeKind::Added, ChangeKind::Updated, ChangeKind::Deleted]
    );
    assert!(tasks.try_recv().is_err());
}

#[actix::test]
async fn the_largest_value_is_accepted_and_one_byte_more_refused() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 5).await;
    node.identity_create(None).await.unwrap();
    node.space_create(Some("s".into())).await.unwrap();
    let data_len = |status: &NodeStatus| -> u64 {
        status
            .spaces
            .iter()
            .flat_map(|s| &s.feeds)
            .filter(|f| f.designation == "data")
            .map(|f| f.length)
            .sum()
    };
    let fill = crate::db::MAX_VALUE_BYTES - json!({ "b": "" }).to_string().len();
    let over = json!({ "b": "y".repeat(fill + 1) });
    let err = node.object_add("s", over).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert_eq!(data_len(&node.status().await.unwrap()), 0);
    // Exactly at the limit: one block of about 1 MiB, well within the block limit.
    let largest = json!({ "b": "y".repeat(fill) });
    assert_eq!(largest.to_string().len(), crate::db::MAX_VALUE_BYTES);
    let id = node.object_add("s", largest.clone()).await.unwrap();
    assert_eq!(data_len(&node.status().await.unwrap()), 1);
    drop(node);
    let node = open(store, 5).await;
    let got = node.object_get("s", &id.to_string()).await.unwrap();
    assert_eq!(got["b"], largest["b"]);
}

/// Issue 10 item 7 through the node API: duplicate, key-like, blank and control-character
/// space names, the same rule for identity display names, and keys that are not usable
/// ed25519 points; each refusal creates nothing.
#[actix::test]
async fn names_and_keys_are_validated_and_refusals_create_nothing() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 3).await;
    for bad in ["", "  ", "a\u{202E}b", "nul\0", &"ab".repeat(32)] {
        let err = node.identity_create(Some(bad.into())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{bad:?}: {err}");
    }
    node.identity_create(Some("Ada".into())).await.unwrap();
    let first = node.space_create(Some("notes".into())).await.unwrap();
    let err = node.space_create(Some("notes".into())).await.unwrap_err();
    assert!(
        matches!(&err, NodeError::Space(crate::space::SpaceRequestError::NameTaken(n, k)) if n == "notes" && *k == first.space_key)
    );
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Conflict, "name_taken")
    );
    for bad in [
        "",
        "\t",
        " notes",
        "x\u{2066}y",
        "bell\u{7}",
        &"x".repeat(257),
        &"0f".repeat(32),
    ] {
        let err = node.space_create(Some(bad.into())).await.unwrap_err();
        assert_eq!(err.code(), "invalid", "{bad:?}: {err}");
        assert!(err.to_string().contains("space name"), "{err}");
    }
    let zero = "0".repeat(64);
    let err = node
        .space_join(&zero, Some("other".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("small-order"), "{err}");
    let err = node
        .space_join(&first.space_key, Some("notes".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid", "already has it: {err}");
    for key in [
        zero.clone(),
        format!("01{}", "0".repeat(62)),
        "zz".repeat(32),
    ] {
        let err = node
            .space_add_member("notes", &key, crate::credentials::Role::Editor)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid", "{key}: {err}");
    }
    assert_eq!(node.space_list().await.unwrap().len(), 1);
    assert_eq!(node.space_members("notes").await.unwrap().len(), 1);
}
