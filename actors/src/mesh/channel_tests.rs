//! Two (or three) whole nodes in one runtime, their channels wired by in-memory pipes
//! instead of QUIC: membership by key, admission of the joiner's feeds, replication both
//! ways, and multi-hop relay through an intermediary. A hand-wired pipe skips the
//! connection layer's membership guard; `guard_tests` checks that guard over real QUIC.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::json;
use tokio::sync::mpsc;

use super::connection::PeerLeaving;
use super::test_util::{count, eventually};
use super::*;
use crate::credentials::Role;
use crate::node::{Node, NodeConfig, NodeHandle, QueryRequest};
use crate::replication::{ReplMessage, WireDecoder, WireEncoder};
use crate::store::MemStore;
use crate::types::FixedClock;

async fn node(seed: u8) -> NodeHandle {
    let node = Node::open(NodeConfig {
        store: Arc::new(MemStore::new()),
        rng_seed: [seed; 32],
        clock: Arc::new(FixedClock::new(1_700_000_000_000)),
        listen: None,
        coalesce: crate::space::DEFAULT_COALESCE,
        network: None,
    })
    .await
    .unwrap();
    node.identity_create(None).await.unwrap();
    node
}

/// Wires a channel between `a` and `b` for `space` (hex key) through two pipes.
async fn link(
    a: &NodeHandle,
    b: &NodeHandle,
    space: &str,
) -> (Addr<ChannelActor>, Addr<ChannelActor>) {
    let key = space.parse().unwrap();
    let (a_out, a_rx) = mpsc::unbounded_channel::<ReplMessage>();
    let (b_out, b_rx) = mpsc::unbounded_channel::<ReplMessage>();
    let ca = ChannelActor::new(
        a.space_actor(space).await.unwrap(),
        key,
        b.device_key(),
        None,
        a_out,
    )
    .start();
    let cb = ChannelActor::new(
        b.space_actor(space).await.unwrap(),
        key,
        a.device_key(),
        None,
        b_out,
    )
    .start();
    pipe(a_rx, cb.clone());
    pipe(b_rx, ca.clone());
    (ca, cb)
}

fn pipe(mut rx: mpsc::UnboundedReceiver<ReplMessage>, to: Addr<ChannelActor>) {
    actix::spawn(async move {
        // Through the wire form and its codec, as the stream would carry it.
        let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
        while let Some(msg) = rx.recv().await {
            let bytes = crate::types::encode(&enc.encode(msg)).unwrap();
            let msg = dec.decode(crate::types::decode(&bytes).unwrap()).unwrap();
            if to.send(Inbound(msg)).await.is_err() {
                break;
            }
        }
    });
}

#[actix::test]
async fn member_added_by_key_joins_replicates_and_writes() {
    let a = node(1).await;
    let b = node(2).await;
    let space = a.space_create(Some("s".into())).await.unwrap().space_key;
    a.object_add(&space, json!({"from": "a", "n": 1}))
        .await
        .unwrap();
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Editor)
        .await
        .unwrap();
    b.space_join(&space, None).await.unwrap();
    link(&a, &b, &space).await;

    eventually("b sees a's object", || async {
        count(&b, &space).await == 1
    })
    .await;
    // b's feeds get admitted, then b's writes reach a.
    eventually("b may write", || async {
        b.object_add(&space, json!({"from": "b"})).await.is_ok()
    })
    .await;
    eventually("a sees b's object", || async {
        count(&a, &space).await == 2
    })
    .await;
    let members = a.space_members(&space).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        a.query(&space, QueryRequest::default()).await.unwrap(),
        b.query(&space, QueryRequest::default()).await.unwrap()
    );
}

#[actix::test]
async fn blocks_cross_an_intermediary_and_readers_cannot_write() {
    let a = node(3).await;
    let b = node(4).await;
    let c = node(5).await;
    let space = a.space_create(None).await.unwrap().space_key;
    for (n, role) in [(&b, Role::Editor), (&c, Role::Reader)] {
        let id = n.identity_show().await.unwrap().identity_key;
        a.space_add_member(&space, &id, role).await.unwrap();
        n.space_join(&space, None).await.unwrap();
    }
    // Line a - b - c: a and c never talk directly.
    link(&a, &b, &space).await;
    link(&b, &c, &space).await;
    let id = a
        .object_add(&space, json!({"@type": "t", "text": "hi"}))
        .await
        .unwrap();
    eventually("c sees a's object via b", || async {
        count(&c, &space).await == 1
    })
    .await;
    a.text_insert(&space, &id, "body", 0, "hello".into())
        .await
        .unwrap();
    eventually("c sees a's text via b", || async {
        c.text_get(&space, &id, "body")
            .await
            .is_ok_and(|t| t == "hello")
    })
    .await;
    // c is a reader: its writes are refused locally.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.object_add(&space, json!({"x": 1})).await.is_err());
}

/// Records what a channel tells its connection about a leaving peer.
struct LeavingRecorder(mpsc::UnboundedSender<PeerLeaving>);

impl Actor for LeavingRecorder {
    type Context = Context<Self>;
}

impl Handler<PeerLeaving> for LeavingRecorder {
    type Result = ();
    fn handle(&mut self, msg: PeerLeaving, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

/// The connection checks a Hello's credential before it starts the channel, and the space
/// may remove the peer in between (an answer is written meanwhile). The channel checks
/// again once it watches the space: a peer removed in that gap is told and let go, not
/// served for good (the channel would otherwise wait for a control change that may never
/// come).
#[actix::test]
async fn a_channel_started_after_its_peer_was_removed_lets_it_go() {
    let a = node(6).await;
    let b = node(7).await;
    let space = a.space_create(None).await.unwrap().space_key;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Editor)
        .await
        .unwrap();
    let auth = b.device_auth_for_tests().await;
    a.space_remove_member(&space, &b_identity).await.unwrap();

    let (tx, mut told) = mpsc::unbounded_channel();
    let recorder = LeavingRecorder(tx).start();
    let (out, _rx) = mpsc::unbounded_channel::<ReplMessage>();
    let channel = ChannelActor::new(
        a.space_actor(&space).await.unwrap(),
        space.parse().unwrap(),
        b.device_key(),
        Some(auth),
        out,
    )
    .on_leaving(recorder.recipient(), 7)
    .start();
    let leaving = tokio::time::timeout(Duration::from_secs(5), told.recv())
        .await
        .expect("the channel never found its peer removed")
        .unwrap();
    assert_eq!(
        (leaving.space_key.to_hex(), leaving.stream),
        (space.clone(), 7)
    );
    eventually("the channel stops after its grace", || async {
        !channel.connected()
    })
    .await;
}
