//! Group commit on a real sled store: concurrent writers share blocks and flushes, each is
//! answered once durable, and every acknowledged write is there after a reopen.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::SledStore;
use crate::types::FixedClock;

async fn open(dir: &std::path::Path) -> NodeHandle {
    open_coalescing(dir, crate::space::DEFAULT_COALESCE).await
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

/// A Yjs client of `space` (synced from the node), typing into one note's text.
struct Typist {
    doc: yrs::Doc,
    actor: actix::Addr<crate::space::SpaceActor>,
}

const NOTE: &str = "01M80HVMX483891KEP5DSVDRB3";

impl Typist {
    async fn new(node: &NodeHandle, space: &str) -> Typist {
        use yrs::updates::decoder::Decode;
        use yrs::{Map, MapPrelim, ReadTxn, StateVector, TextPrelim, Transact};
        let actor = node.space_actor(space).await.unwrap();
        let doc = yrs::Doc::with_client_id(777);
        let objects = doc.get_or_insert_map("objects");
        let sv = yrs::updates::encoder::Encode::encode_v1(&StateVector::default());
        let diff = actor
            .send(crate::space::YjsDiff(sv))
            .await
            .unwrap()
            .unwrap();
        doc.transact_mut()
            .apply_update(yrs::Update::decode_v1(&diff).unwrap())
            .unwrap();
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            let note = objects.insert(&mut txn, NOTE, MapPrelim::default());
            note.insert(&mut txn, "@type", "Note");
            note.insert(&mut txn, "@deleted", false);
            note.insert(&mut txn, "@meta", MapPrelim::default());
            note.insert(&mut txn, "body", TextPrelim::new(""));
        }
        let update = doc.transact().encode_diff_v1(&before);
        let typist = Typist { doc, actor };
        typist.send(update).await.wait().await.unwrap();
        typist
    }

    async fn send(&self, update: Vec<u8>) -> crate::space::Durable {
        self.actor
            .send(crate::space::YjsApply(update))
            .await
            .unwrap()
            .unwrap()
    }

    /// Appends one character; answers once it is applied (not durable).
    async fn type_char(&self, c: char) -> crate::space::Durable {
        use yrs::{GetString, Map, ReadTxn, Text, Transact};
        let before = self.doc.transact().state_vector();
        {
            let objects = self.doc.get_or_insert_map("objects");
            let mut txn = self.doc.transact_mut();
            let Some(yrs::Out::YMap(note)) = objects.get(&txn, NOTE) else {
                panic!("no note")
            };
            let Some(yrs::Out::YText(body)) = note.get(&txn, "body") else {
                panic!("no body")
            };
            let end = body.get_string(&txn).len() as u32;
            body.insert(&mut txn, end, &c.to_string());
        }
        let update = self.doc.transact().encode_diff_v1(&before);
        self.send(update).await
    }
}

async fn open_coalescing(dir: &std::path::Path, coalesce: std::time::Duration) -> NodeHandle {
    Node::open(NodeConfig {
        coalesce,
        ..NodeConfig::local(
            Arc::new(SledStore::open(&dir.join("store")).unwrap()),
            [9; 32],
            Arc::new(FixedClock::new(1_700_000_000_000)),
        )
    })
    .await
    .unwrap()
}

#[actix::test]
async fn a_typists_quick_edits_share_blocks_no_more_than_one_per_window_and_all_are_durable() {
    let window = std::time::Duration::from_millis(20);
    let dir = tempfile::tempdir().unwrap();
    let node = open_coalescing(dir.path(), window).await;
    node.identity_create(None).await.unwrap();
    let space = node.space_create(None).await.unwrap().space_key;
    let typist = Typist::new(&node, &space).await;
    let before = data_feed_length(&node.status().await.unwrap());
    // 100 keystrokes 2 ms apart, each sent without waiting for its flush.
    let started = tokio::time::Instant::now();
    let mut durable = Vec::new();
    let text: String = ('a'..='z').cycle().take(100).collect();
    for c in text.chars() {
        durable.push(typist.type_char(c).await);
        actix::clock::sleep(std::time::Duration::from_millis(2)).await;
    }
    for d in durable {
        d.wait().await.unwrap();
    }
    let elapsed = started.elapsed();
    let blocks = data_feed_length(&node.status().await.unwrap()) - before;
    // Commits of streamed edits start at least a window apart.
    let most = elapsed.as_millis() as u64 / window.as_millis() as u64 + 1;
    assert!(
        (1..=most).contains(&blocks),
        "100 edits over {elapsed:?} took {blocks} blocks (at most {most})"
    );
    assert_eq!(node.text_get(&space, NOTE, "body").await.unwrap(), text);
    // An API write is not held by the window: a lone one right after is its own block.
    node.object_add(&space, json!({"n": 1})).await.unwrap();
    assert_eq!(
        data_feed_length(&node.status().await.unwrap()),
        before + blocks + 1
    );
    node.shutdown().await.unwrap();
    drop(node);
    actix::clock::sleep(std::time::Duration::from_millis(50)).await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("store"), &copy.path().join("store"));
    let node = open_coalescing(copy.path(), window).await;
    assert_eq!(node.text_get(&space, NOTE, "body").await.unwrap(), text);
}

#[actix::test]
async fn with_no_window_a_paced_typist_commits_each_edit_that_finds_the_queue_idle() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_coalescing(dir.path(), std::time::Duration::ZERO).await;
    node.identity_create(None).await.unwrap();
    let space = node.space_create(None).await.unwrap().space_key;
    let typist = Typist::new(&node, &space).await;
    let before = data_feed_length(&node.status().await.unwrap());
    // Each edit waits for its flush first: the queue is idle whenever one arrives.
    for c in "hello".chars() {
        typist.type_char(c).await.wait().await.unwrap();
    }
    let blocks = data_feed_length(&node.status().await.unwrap()) - before;
    assert_eq!(blocks, 5);
}
