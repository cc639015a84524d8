//! Whole nodes over real QUIC on loopback: a line of static peers (A - B - C, A and C never
//! connect), three nodes that find each other through a signaling server, and a removed
//! member's blocks relayed by an honest member.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;

use super::test_util::{channel_peers, count, eventually, loopback, real_node};
use super::MeshConfig;
use crate::credentials::Role;
use crate::db::{ObjectId, SpaceDoc};
use crate::feed::{Block, Payload};
use crate::node::{NodeError, NodeHandle};
use crate::space::{GetHeads, IngestBlocks, SpaceRecord};
use crate::store::{Key, MemStore, Store};
use crate::transport::NetEnv;
use crate::types::{decode, Hash, KeyPair, PublicKey, Timeframe};

/// The node's `echo_connections_total` counter for one side (`dialed` or `accepted`).
async fn connections(node: &NodeHandle, side: &str) -> u64 {
    let name = format!("echo_connections_total{{side=\"{side}\"}}");
    let status = node.status().await.unwrap();
    status.counters.get(&name).copied().unwrap_or(0)
}

async fn node(seed: u8, mesh: MeshConfig) -> (NodeHandle, SocketAddr) {
    real_node(seed, Arc::new(MemStore::new()), mesh).await
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

/// A block of `space` that `store`'s node signs with its own data feed key, bypassing its
/// role check: what a modified node of a removed member could send.
fn rogue_block(store: &MemStore, space: &str, heads: &crate::replication::Heads) -> Block {
    let space_key: PublicKey = space.parse().unwrap();
    let record: SpaceRecord =
        decode(&store.get(&Key::space(&space_key)).unwrap().unwrap()).unwrap();
    let feed = record.data_feed;
    let secret: [u8; 32] = store
        .get(&Key::feed_secret(&feed))
        .unwrap()
        .unwrap()
        .try_into()
        .unwrap();
    let seq = heads.get(&feed).copied().unwrap_or(0);
    let prev = match seq.checked_sub(1) {
        Some(last) => decode::<Block>(&store.get(&Key::block(&feed, last)).unwrap().unwrap())
            .unwrap()
            .hash(),
        None => Hash::default(),
    };
    let mut timeframe = Timeframe::new();
    for (f, len) in heads {
        if *len > 0 {
            timeframe.advance(*f, len - 1);
        }
    }
    let mut doc = SpaceDoc::new(4242);
    let update = doc
        .add(ObjectId::from_parts(9, 9), &json!({"rogue": true}))
        .unwrap()
        .update;
    Block::sign(
        &KeyPair::from_secret(secret),
        seq,
        prev,
        timeframe,
        Payload::Mutation(update),
    )
    .unwrap()
}

/// B reaches A only through C. A removes B: B learns it and its own node refuses its next
/// write; C closes B's channel. A block B signs all the same after its removal (a modified
/// node) is denied by C, kept, and relayed to A, which denies it too: nobody applies it, and
/// A keeps its channel with C, the honest relayer, whose next write still reaches A.
#[actix::test]
async fn a_removed_members_blocks_are_denied_everywhere_and_relayers_keep_their_channels() {
    let (a, a_addr) = node(7, MeshConfig::default()).await;
    let (c, c_addr) = node(
        9,
        MeshConfig {
            static_peers: vec![a_addr],
            ..Default::default()
        },
    )
    .await;
    let b_store = Arc::new(MemStore::new());
    let (b, _) = real_node(
        8,
        b_store.clone(),
        MeshConfig {
            static_peers: vec![c_addr],
            ..Default::default()
        },
    )
    .await;
    let space = shared_space(&a, &[&b, &c]).await;
    eventually("b may write", || async {
        b.object_add(&space, json!({"n": 1})).await.is_ok()
    })
    .await;
    eventually("a sees b's write through c", || async {
        count(&a, &space).await == 1
    })
    .await;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Removed)
        .await
        .unwrap();
    eventually("b learns it was removed", || async {
        let verdicts = b.space_verdicts(&space).await.unwrap();
        verdicts.members.get(&b_identity).map(String::as_str) == Some("removed")
    })
    .await;
    let refused = b.object_add(&space, json!({"n": 2})).await;
    assert!(
        matches!(
            refused,
            Err(NodeError::Space(
                crate::space::SpaceRequestError::Forbidden(_)
            ))
        ),
        "{refused:?}"
    );

    // A modified node would sign anyway; the block goes to C as B's node would send it.
    let b_space = b.space_actor(&space).await.unwrap();
    let heads = b_space.send(GetHeads).await.unwrap();
    let rogue = rogue_block(&b_store, &space, &heads);
    let rogue_key = format!("{}:{}", rogue.feed_key.to_hex(), rogue.seq);
    let report = c
        .space_actor(&space)
        .await
        .unwrap()
        .send(IngestBlocks(vec![rogue]))
        .await
        .unwrap();
    assert_eq!((report.stored, report.denied), (1, 1), "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    eventually("a holds the rogue block as denied", || async {
        let verdicts = a.space_verdicts(&space).await.unwrap();
        verdicts.denied.contains_key(&rogue_key)
    })
    .await;
    assert_eq!(count(&a, &space).await, 1, "a never applies it");
    assert_eq!(count(&c, &space).await, 1, "c never applies it");
    assert_eq!(
        a.space_verdicts(&space).await.unwrap(),
        c.space_verdicts(&space).await.unwrap(),
        "a and c reach the same verdicts"
    );
    c.object_add(&space, json!({"from": "c"})).await.unwrap();
    eventually("c's next write reaches a", || async {
        count(&a, &space).await == 2
    })
    .await;
    assert_eq!(
        channel_peers(&a, &space).await,
        vec![c.device_key().to_hex()],
        "a kept its channel with c"
    );
}

/// A guest whose static peer is its invitation's host already has a connection to it when
/// the space opens: the static peer is known by that connection's address and not dialed
/// a second time (the second connection would replace the first and close the channels
/// on it, and for a moment the host would have no channel with the guest).
#[actix::test]
async fn a_static_peer_reached_through_an_invitation_is_not_dialed_again() {
    let (host, host_addr) = node(41, MeshConfig::default()).await;
    let (guest, _) = node(
        42,
        MeshConfig {
            static_peers: vec![host_addr],
            ..Default::default()
        },
    )
    .await;
    let space = host.space_create(None).await.unwrap().space_key;
    host.object_add(&space, json!({"from": "host"}))
        .await
        .unwrap();
    let invitation = host
        .invite_create(&space, crate::invitation::InviteOptions::default())
        .await
        .unwrap();
    guest
        .invite_accept(
            &invitation.invitation_code,
            invitation.auth_code,
            20_000,
            None,
        )
        .await
        .unwrap();
    eventually("the guest sees the host's object", || async {
        count(&guest, &space).await == 1
    })
    .await;
    // Some dialing rounds of the static peer (every 250 ms) pass.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(connections(&guest, "dialed").await, 1);
    assert_eq!(connections(&host, "accepted").await, 1);
    assert_eq!(
        channel_peers(&host, &space).await,
        vec![guest.device_key().to_hex()]
    );
}
