//! Whole nodes over real QUIC on loopback: a line of static peers (A - B - C, A and C never
//! connect), and three nodes that find each other through a signaling server.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::test_util::{count, eventually};
use super::MeshConfig;
use crate::credentials::Role;
use crate::node::{NetworkConfig, Node, NodeConfig, NodeHandle};
use crate::store::MemStore;
use crate::transport::NetEnv;
use crate::types::FixedClock;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn node(seed: u8, mesh: MeshConfig) -> (NodeHandle, SocketAddr) {
    let node = Node::open(NodeConfig {
        store: Arc::new(MemStore::new()),
        rng_seed: [seed; 32],
        clock: Arc::new(FixedClock::new(1_700_000_000_000)),
        listen: None,
        network: Some(NetworkConfig {
            net: NetEnv::Real { bind: loopback() },
            mesh,
        }),
    })
    .await
    .unwrap();
    node.identity_create(None).await.unwrap();
    let addr = node
        .status()
        .await
        .unwrap()
        .listen
        .unwrap()
        .parse()
        .unwrap();
    (node, addr)
}

/// Makes `others` members of a new space on `owner` and has them join it.
async fn shared_space(owner: &NodeHandle, others: &[&NodeHandle]) -> String {
    let space = owner.space_create(None).await.unwrap().space_key;
    for n in others {
        let id = n.identity_show().await.unwrap().identity_key;
        owner
            .space_add_member(&space, &id, Role::Editor)
            .await
            .unwrap();
        n.space_join(&space, None).await.unwrap();
    }
    space
}

#[actix::test]
async fn a_line_of_static_peers_relays_both_ways() {
    let (a, a_addr) = node(1, MeshConfig::default()).await;
    let (b, b_addr) = node(
        2,
        MeshConfig {
            static_peers: vec![a_addr],
            ..Default::default()
        },
    )
    .await;
    let (c, _) = node(
        3,
        MeshConfig {
            static_peers: vec![b_addr],
            ..Default::default()
        },
    )
    .await;
    let space = shared_space(&a, &[&b, &c]).await;
    a.object_add(&space, json!({"from": "a"})).await.unwrap();
    eventually("c sees a's write through b", || async {
        count(&c, &space).await == 1
    })
    .await;
    eventually("c may write", || async {
        c.object_add(&space, json!({"from": "c"})).await.is_ok()
    })
    .await;
    eventually("a sees c's write through b", || async {
        count(&a, &space).await == 2
    })
    .await;
    let status = a.status().await.unwrap();
    let peers = &status.spaces[0].peers;
    assert_eq!(peers.len(), 1, "a only talks to b: {peers:?}");
    assert_eq!(peers[0].device_key, b.device_key().to_hex());
}

#[actix::test]
async fn three_nodes_converge_through_signaling() {
    let server_net = NetEnv::Real { bind: loopback() };
    let device = crate::types::KeyPair::from_secret([9; 32]);
    let endpoint = crate::transport::endpoint(
        server_net,
        &device,
        &crate::transport::TransportConfig::new([9; 32]),
    )
    .unwrap();
    let signal_addr = endpoint.local_addr().unwrap();
    let _server = crate::signal::serve_signal(endpoint);
    let mesh = || MeshConfig {
        signal_servers: vec![signal_addr],
        ..Default::default()
    };
    let (a, _) = node(4, mesh()).await;
    let (b, _) = node(5, mesh()).await;
    let (c, _) = node(6, mesh()).await;
    let space = shared_space(&a, &[&b, &c]).await;
    let id = a.object_add(&space, json!({"@type": "doc"})).await.unwrap();
    // The text field exists before b and c edit it concurrently (two peers creating the same
    // field at once is a map-key conflict in which one creation wins).
    a.text_insert(&space, &id, "t", 0, "a".into())
        .await
        .unwrap();
    for n in [&b, &c] {
        eventually("every node sees a's write", || async {
            count(n, &space).await == 1
        })
        .await;
    }
    eventually("b has the text", || async {
        b.text_get(&space, &id, "t").await.is_ok_and(|t| t == "a")
    })
    .await;
    eventually("c has the text", || async {
        c.text_get(&space, &id, "t").await.is_ok_and(|t| t == "a")
    })
    .await;
    eventually("b may write", || async {
        b.text_insert(&space, &id, "t", 0, "b".into()).await.is_ok()
    })
    .await;
    eventually("c may write", || async {
        c.text_insert(&space, &id, "t", 0, "c".into()).await.is_ok()
    })
    .await;
    eventually("all converge", || async {
        let texts = [
            a.text_get(&space, &id, "t").await.unwrap_or_default(),
            b.text_get(&space, &id, "t").await.unwrap_or_default(),
            c.text_get(&space, &id, "t").await.unwrap_or_default(),
        ];
        texts[0].len() == 3 && texts.iter().all(|t| *t == texts[0])
    })
    .await;
}

#[actix::test]
async fn removing_a_member_closes_its_channel_and_stops_its_writes() {
    let (a, a_addr) = node(7, MeshConfig::default()).await;
    let (b, _) = node(
        8,
        MeshConfig {
            static_peers: vec![a_addr],
            ..Default::default()
        },
    )
    .await;
    let space = shared_space(&a, &[&b]).await;
    eventually("b may write", || async {
        b.object_add(&space, json!({"n": 1})).await.is_ok()
    })
    .await;
    eventually("a sees b's write", || async {
        count(&a, &space).await == 1
    })
    .await;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Removed)
        .await
        .unwrap();
    eventually("a drops b's channel", || async {
        a.status().await.unwrap().spaces[0].peers.is_empty()
    })
    .await;
    // Whatever b writes now never reaches a.
    let _ = b.object_add(&space, json!({"n": 2})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&a, &space).await, 1);
    let members = a.space_members(&space).await.unwrap();
    assert!(members
        .iter()
        .any(|m| m.identity_key == b_identity && m.role == "removed"));
}
