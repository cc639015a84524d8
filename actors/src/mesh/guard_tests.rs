//! The membership guard over real QUIC on loopback: a device that knows a space's key but
//! was never added gets no channel and none of the space's data. The guard is the
//! connection layer's: the acceptor checks the opener's `Hello` with `AuthorizePeer`, and a
//! node opens a channel only to a device it knows as a member (`MayOpenTo`). Without the
//! first, the owner's data reaches the non-member (both tests fail); without the second,
//! the owner reveals the space and its identity to it in a `Hello` (the wire test fails).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::VarInt;
use serde_json::json;

use super::test_util::{count, eventually, loopback, real_node, NOW_MS};
use super::MeshConfig;
use crate::credentials::{authorize_device, Role};
use crate::node::NodeHandle;
use crate::replication::WireMessage;
use crate::signal::space_topic;
use crate::store::MemStore;
use crate::transport::{self, close, write_frame, NetEnv, TransportConfig};
use crate::types::{KeyPair, PublicKey};

async fn node(seed: u8, static_peers: Vec<SocketAddr>) -> (NodeHandle, SocketAddr) {
    let mesh = MeshConfig {
        static_peers,
        ..Default::default()
    };
    real_node(seed, Arc::new(MemStore::new()), mesh).await
}

/// Device keys of the peers `node` has an open channel with in `space`, and the total length
/// of the feeds it holds there.
async fn channel_peers_and_blocks(node: &NodeHandle, space: &str) -> (Vec<String>, u64) {
    let status = node.status().await.unwrap();
    let s = status.spaces.iter().find(|s| s.space_key == space).unwrap();
    (
        s.peers.iter().map(|p| p.device_key.clone()).collect(),
        s.feeds.iter().map(|f| f.length).sum(),
    )
}

#[actix::test]
async fn non_members_cannot_join_by_key_alone() {
    // a owns the space; m knows its key and joins, but nobody added it; b was added. Both
    // dial a.
    let (a, a_addr) = node(6, vec![]).await;
    let space = a.space_create(None).await.unwrap().space_key;
    a.object_add(&space, json!({"secret": true})).await.unwrap();
    let (m, _) = node(7, vec![a_addr]).await;
    m.space_join(&space, None).await.unwrap();
    let (b, _) = node(8, vec![a_addr]).await;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Editor)
        .await
        .unwrap();
    b.space_join(&space, None).await.unwrap();
    // The control: over the same path a serves b, which joined after m dialled, and takes
    // b's writes back.
    eventually("b sees a's secret", || async {
        count(&b, &space).await == 1
    })
    .await;
    eventually("b may write", || async {
        b.object_add(&space, json!({"from": "b"})).await.is_ok()
    })
    .await;
    eventually("a sees b's write", || async {
        count(&a, &space).await == 2
    })
    .await;
    // m got nothing: no block of any feed (its own two are empty), no genesis, no channel.
    let (m_peers, m_blocks) = channel_peers_and_blocks(&m, &space).await;
    assert!(m_peers.is_empty(), "m has a channel: {m_peers:?}");
    assert_eq!(m_blocks, 0, "m holds blocks of the space");
    assert_eq!(count(&m, &space).await, 0);
    assert!(m.space_members(&space).await.unwrap().is_empty());
    assert!(m.object_add(&space, json!({"x": 1})).await.is_err());
    let (a_peers, _) = channel_peers_and_blocks(&a, &space).await;
    assert_eq!(a_peers, vec![b.device_key().to_hex()], "a's channels");
    assert_eq!(a.space_members(&space).await.unwrap().len(), 2);
}

/// The guard's verdicts, seen from the wire: a non-member device with a valid credential of
/// its own identity connects to the owner and asks for the space by its topic.
#[actix::test]
async fn the_owner_refuses_a_non_members_hello_and_opens_nothing_to_it() {
    let (a, a_addr) = node(9, vec![]).await;
    let space = a.space_create(None).await.unwrap().space_key;
    a.object_add(&space, json!({"secret": true})).await.unwrap();
    let space_key: PublicKey = space.parse().unwrap();

    let identity = KeyPair::from_secret([21; 32]);
    let device = KeyPair::from_secret([22; 32]);
    let auth = authorize_device(&identity, device.public(), NOW_MS);
    let endpoint = transport::endpoint(
        NetEnv::Real { bind: loopback() },
        &device,
        &TransportConfig::new([23; 32]),
    )
    .unwrap();
    let (conn, peer) = transport::connect(&endpoint, a_addr).await.unwrap();
    assert_eq!(peer, a.device_key());
    let (mut send, mut recv) = transport::open_stream(&conn, transport::StreamKind::Replication)
        .await
        .unwrap();
    let hello = WireMessage::Hello {
        topic: space_topic(&space_key),
        device_auth: Box::new(auth),
    };
    write_frame(&mut send, &hello).await.unwrap();
    // AuthorizePeer: the stream is reset NOT_A_MEMBER (or the whole connection closed so,
    // whichever arrives first), and not one byte comes before.
    let not_a_member = VarInt::from_u32(close::NOT_A_MEMBER);
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), recv.read(&mut buf))
        .await
        .expect("a answers the Hello");
    match read {
        Err(quinn::ReadError::Reset(code)) => assert_eq!(code, not_a_member),
        Err(quinn::ReadError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(c))) => {
            assert_eq!(c.error_code, not_a_member);
        }
        other => panic!("a answered a non-member's Hello with {other:?}"),
    }
    // MayOpenTo: a opens no stream to us before it closes the connection NOT_A_MEMBER, as
    // it does once no channel is left (at the latest when its idle-without-channel timer
    // fires, 15 s). A stream a opened at any time would be waiting here.
    let ended = tokio::time::timeout(Duration::from_secs(30), conn.accept_bi())
        .await
        .expect("a closes the connection");
    match ended {
        Ok(_) => panic!("a opened a channel to a non-member"),
        Err(quinn::ConnectionError::ApplicationClosed(c)) => {
            assert_eq!(c.error_code, not_a_member);
        }
        Err(other) => panic!("connection ended otherwise: {other:?}"),
    }
    let (a_peers, _) = channel_peers_and_blocks(&a, &space).await;
    assert!(a_peers.is_empty(), "a lists a channel: {a_peers:?}");
}
