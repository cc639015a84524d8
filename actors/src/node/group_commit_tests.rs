//! Group commit on a real sled store: concurrent writers share blocks and flushes, each is
//! answered once durable, and every acknowledged write is there after a reopen.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::SledStore;
use crate::types::FixedClock;

async fn open(dir: &std::path::Path) -> NodeHandle {
    Node::open(NodeConfig {
        store: Arc::new(SledStore::open(&dir.join("store")).unwrap()),
        rng_seed: [9; 32],
        clock: Arc::new(FixedClock::new(1_700_000_000_000)),
        listen: None,
        network: None,
    })
    .await
    .unwrap()
}

fn data_feed_length(status: &NodeStatus) -> u64 {
    status.spaces[0]
        .feeds
        .iter()
        .find(|f| f.designation == "data")
        .map(|f| f.length)
        .unwrap()
}

#[actix::test]
async fn concurrent_writes_share_blocks_and_all_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.identity_create(None).await.unwrap();
    let space = node.space_create(Some("s".into())).await.unwrap().space_key;
    // A lone write on an idle space is one block of its own.
    node.object_add(&space, json!({"n": -1})).await.unwrap();
    assert_eq!(data_feed_length(&node.status().await.unwrap()), 1);
    let writers = 200;
    let writes = (0..writers).map(|n| {
        let node = node.clone();
        let space = space.clone();
        async move { node.object_add(&space, json!({"n": n})).await }
    });
    let ids: Vec<String> = futures_util::future::join_all(writes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), writers);
    let blocks = data_feed_length(&node.status().await.unwrap()) - 1;
    // The first write of the burst commits alone; the others gather behind it.
    assert!(
        (2..=writers as u64 / 2).contains(&blocks),
        "{writers} concurrent writes took {blocks} blocks"
    );
    node.shutdown().await.unwrap();
    drop(node);
    // Reopen (the store of the first node is closed once its actors are gone; a second
    // process in effect): every acknowledged write is there.
    actix::clock::sleep(std::time::Duration::from_millis(50)).await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("store"), &copy.path().join("store"));
    let node = open(copy.path()).await;
    let all = node.query(&space, QueryRequest::default()).await.unwrap();
    assert_eq!(all.len(), writers + 1);
    for id in ids {
        node.object_get(&space, &id).await.unwrap();
    }
}

/// Copies a store directory (the first node's actors may still hold the original open).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
