//! Tests of [`SignalServerCore`]: scenarios, then a proptest that every connection's view of
//! each topic, rebuilt from the events it received, is the membership minus itself.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use proptest::prelude::*;

use super::server_core::*;
use super::wire::*;
use crate::transport::close;
use crate::types::PublicKey;

fn key(i: u8) -> PublicKey {
    PublicKey::from_bytes([i; 32])
}
fn remote(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 4000 + u16::from(i)))
}
fn topic(i: u8) -> Topic {
    [i; 32]
}
fn connect(s: &mut SignalServerCore, conn: ConnId, dev: u8) -> Vec<ServerOutput> {
    s.handle(ServerInput::Connected {
        conn,
        device: key(dev),
        remote: remote(dev),
    })
}
fn join(
    s: &mut SignalServerCore,
    conn: ConnId,
    t: u8,
    addrs: Vec<SocketAddr>,
) -> Vec<ServerOutput> {
    s.handle(ServerInput::Request {
        conn,
        req: SignalRequest::Join {
            topic: topic(t),
            addrs,
        },
    })
}
fn leave(s: &mut SignalServerCore, conn: ConnId, t: u8) -> Vec<ServerOutput> {
    s.handle(ServerInput::Request {
        conn,
        req: SignalRequest::Leave { topic: topic(t) },
    })
}
fn avail(conn: ConnId, t: u8, dev: u8) -> ServerOutput {
    ServerOutput::Send {
        conn,
        event: SignalEvent::PeerAvailable {
            topic: topic(t),
            peer: PeerInfo {
                device_key: key(dev),
                addrs: vec![remote(dev)],
            },
        },
    }
}
fn left(conn: ConnId, t: u8, dev: u8) -> ServerOutput {
    ServerOutput::Send {
        conn,
        event: SignalEvent::PeerLeft {
            topic: topic(t),
            device_key: key(dev),
        },
    }
}
fn synced(conn: ConnId, t: u8) -> ServerOutput {
    ServerOutput::Send {
        conn,
        event: SignalEvent::Synced { topic: topic(t) },
    }
}

#[test]
fn join_announces_both_ways_and_ends_with_synced() {
    let mut s = SignalServerCore::new();
    assert!(connect(&mut s, 1, 1).is_empty());
    assert!(connect(&mut s, 2, 2).is_empty());
    assert!(connect(&mut s, 3, 3).is_empty());
    assert_eq!(join(&mut s, 1, 0, vec![]), vec![synced(1, 0)]);
    assert_eq!(
        join(&mut s, 2, 0, vec![]),
        vec![avail(2, 0, 1), synced(2, 0), avail(1, 0, 2)]
    );
    assert_eq!(
        join(&mut s, 3, 0, vec![]),
        vec![
            avail(3, 0, 1),
            avail(3, 0, 2),
            synced(3, 0),
            avail(1, 0, 3),
            avail(2, 0, 3)
        ]
    );
    assert_eq!(s.members(&topic(0)), vec![key(1), key(2), key(3)]);
    // Another topic is separate.
    assert_eq!(join(&mut s, 3, 1, vec![]), vec![synced(3, 1)]);
    assert_eq!(s.topics(), vec![topic(0), topic(1)]);
}

#[test]
fn announced_addrs_get_the_observed_one_first() {
    let mut s = SignalServerCore::new();
    connect(&mut s, 1, 1);
    connect(&mut s, 2, 2);
    join(&mut s, 1, 0, vec![]);
    let lan: SocketAddr = "192.168.0.9:7000".parse().unwrap();
    let out = join(
        &mut s,
        2,
        0,
        vec![lan, remote(2), lan, "0.0.0.0:1".parse().unwrap()],
    );
    let expect = PeerInfo {
        device_key: key(2),
        addrs: vec![remote(2), lan],
    };
    assert_eq!(
        out.last().unwrap(),
        &ServerOutput::Send {
            conn: 1,
            event: SignalEvent::PeerAvailable {
                topic: topic(0),
                peer: expect
            }
        }
    );
    // An oversized list is cut to MAX_ADDRS.
    let many: Vec<SocketAddr> = (1..=200)
        .map(|i| SocketAddr::from(([10, 1, 0, i], 1)))
        .collect();
    let out = join(&mut s, 2, 0, many);
    match out.last().unwrap() {
        ServerOutput::Send {
            conn: 1,
            event: SignalEvent::PeerAvailable { peer, .. },
        } => {
            assert_eq!(peer.addrs.len(), MAX_ADDRS);
            assert_eq!(peer.addrs[0], remote(2));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rejoin_answers_again_and_broadcasts_only_changes() {
    let mut s = SignalServerCore::new();
    connect(&mut s, 1, 1);
    connect(&mut s, 2, 2);
    join(&mut s, 1, 0, vec![]);
    join(&mut s, 2, 0, vec![]);
    // Same addresses: the joiner hears the list again, nobody else hears anything.
    assert_eq!(
        join(&mut s, 2, 0, vec![]),
        vec![avail(2, 0, 1), synced(2, 0)]
    );
    // New addresses: the others hear the update.
    let lan: SocketAddr = "192.168.0.2:1".parse().unwrap();
    let out = join(&mut s, 2, 0, vec![lan]);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[2],
        ServerOutput::Send {
            conn: 1,
            event: SignalEvent::PeerAvailable {
                topic: topic(0),
                peer: PeerInfo {
                    device_key: key(2),
                    addrs: vec![remote(2), lan]
                }
            }
        }
    );
}

#[test]
fn leave_and_disconnect_tell_the_others() {
    let mut s = SignalServerCore::new();
    for i in 1..=3 {
        connect(&mut s, u64::from(i), i);
        join(&mut s, u64::from(i), 0, vec![]);
    }
    join(&mut s, 1, 1, vec![]);
    join(&mut s, 3, 1, vec![]);
    assert_eq!(leave(&mut s, 2, 0), vec![left(1, 0, 2), left(3, 0, 2)]);
    assert!(leave(&mut s, 2, 0).is_empty(), "second leave is a no-op");
    assert!(
        leave(&mut s, 2, 7).is_empty(),
        "leaving an unknown topic is a no-op"
    );
    assert_eq!(
        s.handle(ServerInput::Disconnected { conn: 1 }),
        vec![left(3, 0, 1), left(3, 1, 1)]
    );
    assert!(s.handle(ServerInput::Disconnected { conn: 1 }).is_empty());
    assert_eq!(s.handle(ServerInput::Disconnected { conn: 3 }), vec![]);
    assert!(s.topics().is_empty(), "empty topics are dropped");
    assert_eq!(s.connections(), 1);
}

#[test]
fn requests_on_unknown_connections_are_ignored() {
    let mut s = SignalServerCore::new();
    assert!(join(&mut s, 9, 0, vec![]).is_empty());
    assert!(leave(&mut s, 9, 0).is_empty());
    assert!(s.topics().is_empty());
}

#[test]
fn newer_connection_of_a_device_replaces_the_older() {
    let mut s = SignalServerCore::new();
    connect(&mut s, 1, 1);
    connect(&mut s, 2, 2);
    join(&mut s, 1, 0, vec![]);
    join(&mut s, 2, 0, vec![]);
    let out = connect(&mut s, 3, 1);
    assert_eq!(out.len(), 2);
    assert!(matches!(
        &out[0],
        ServerOutput::Close { conn: 1, code, .. } if *code == close::DUPLICATE
    ));
    assert_eq!(out[1], left(2, 0, 1));
    // The old connection's late requests and disconnect change nothing.
    assert!(join(&mut s, 1, 0, vec![]).is_empty());
    assert!(s.handle(ServerInput::Disconnected { conn: 1 }).is_empty());
    assert_eq!(s.members(&topic(0)), vec![key(2)]);
    assert_eq!(
        join(&mut s, 3, 0, vec![]),
        vec![avail(3, 0, 2), synced(3, 0), avail(2, 0, 1)]
    );
    // A reused connection id counts as the old connection ending.
    let out = connect(&mut s, 3, 4);
    assert_eq!(out, vec![left(2, 0, 1)]);
}

#[test]
fn too_many_topics_closes_the_connection() {
    let mut s = SignalServerCore::new();
    connect(&mut s, 1, 1);
    connect(&mut s, 2, 2);
    join(&mut s, 2, 0, vec![]);
    for i in 0..MAX_TOPICS_PER_CONN {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let out = s.handle(ServerInput::Request {
            conn: 1,
            req: SignalRequest::Join {
                topic: t,
                addrs: vec![],
            },
        });
        assert!(!out.iter().any(|o| matches!(o, ServerOutput::Close { .. })));
    }
    // Re-joining one it has is fine at the limit.
    assert!(!join(&mut s, 1, 0, vec![])
        .iter()
        .any(|o| matches!(o, ServerOutput::Close { .. })));
    let out = join(&mut s, 1, 200, vec![]);
    assert!(matches!(
        &out[0],
        ServerOutput::Close { conn: 1, code, .. } if *code == close::PROTOCOL
    ));
    assert_eq!(&out[1..], &[left(2, 0, 1)]);
    assert_eq!(s.topics(), vec![topic(0)]);
    assert_eq!(s.connections(), 1);
}

#[derive(Clone, Debug)]
enum Op {
    Connect(u8),
    Join(u8, u8),
    Leave(u8, u8),
    Disconnect(u8),
    /// A request or disconnect on a connection that is already gone.
    Stale(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let dev = 0u8..4;
    let t = 0u8..3;
    prop_oneof![
        2 => dev.clone().prop_map(Op::Connect),
        5 => (dev.clone(), t.clone()).prop_map(|(d, t)| Op::Join(d, t)),
        2 => (dev.clone(), t.clone()).prop_map(|(d, t)| Op::Leave(d, t)),
        1 => dev.clone().prop_map(Op::Disconnect),
        1 => (0u8..16, t).prop_map(|(c, t)| Op::Stale(c, t)),
    ]
}

/// What the test knows of each connection: its device and what it was told.
struct Peer {
    device: PublicKey,
    joined: BTreeSet<Topic>,
    view: BTreeMap<Topic, BTreeSet<PublicKey>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn every_view_matches_the_membership(ops in proptest::collection::vec(op(), 1..80)) {
        let mut s = SignalServerCore::new();
        let mut live: BTreeMap<ConnId, Peer> = BTreeMap::new();
        let mut latest: BTreeMap<u8, ConnId> = BTreeMap::new();
        let mut next: ConnId = 0;
        for op in ops {
            let (input, sender) = match op {
                Op::Connect(d) => {
                    next += 1;
                    latest.insert(d, next);
                    live.insert(next, Peer { device: key(d), joined: BTreeSet::new(), view: BTreeMap::new() });
                    (ServerInput::Connected { conn: next, device: key(d), remote: remote(d) }, None)
                }
                Op::Join(d, t) | Op::Leave(d, t) => {
                    let Some(&conn) = latest.get(&d) else { continue };
                    let Some(p) = live.get_mut(&conn) else { continue };
                    let req = if matches!(op, Op::Join(..)) {
                        p.joined.insert(topic(t));
                        p.view.insert(topic(t), BTreeSet::new());
                        SignalRequest::Join { topic: topic(t), addrs: vec![] }
                    } else {
                        p.joined.remove(&topic(t));
                        p.view.remove(&topic(t));
                        SignalRequest::Leave { topic: topic(t) }
                    };
                    (ServerInput::Request { conn, req }, Some(conn))
                }
                Op::Disconnect(d) => {
                    let Some(&conn) = latest.get(&d) else { continue };
                    live.remove(&conn);
                    (ServerInput::Disconnected { conn }, None)
                }
                Op::Stale(c, t) => {
                    let conn = ConnId::from(c);
                    if live.contains_key(&conn) { continue }
                    let input = if t == 0 {
                        ServerInput::Disconnected { conn }
                    } else {
                        ServerInput::Request { conn, req: SignalRequest::Join { topic: topic(t), addrs: vec![] } }
                    };
                    (input, None)
                }
            };
            for out in s.handle(input) {
                match out {
                    ServerOutput::Close { conn, code, .. } => {
                        prop_assert_eq!(code, close::DUPLICATE);
                        prop_assert!(live.remove(&conn).is_some(), "closed a dead connection");
                    }
                    ServerOutput::Send { conn, event } => {
                        let p = live.get_mut(&conn);
                        prop_assert!(p.is_some(), "sent to a dead connection: {:?}", event);
                        let p = p.unwrap();
                        match event {
                            SignalEvent::PeerAvailable { topic, peer } => {
                                prop_assert!(p.joined.contains(&topic), "event for a topic not joined");
                                prop_assert!(peer.device_key != p.device, "told about itself");
                                prop_assert_eq!(&peer.addrs, &vec![remote(peer.device_key.as_bytes()[0])]);
                                p.view.entry(topic).or_default().insert(peer.device_key);
                            }
                            SignalEvent::PeerLeft { topic, device_key } => {
                                prop_assert!(p.joined.contains(&topic), "event for a topic not joined");
                                let was = p.view.entry(topic).or_default().remove(&device_key);
                                prop_assert!(was, "PeerLeft for a peer never announced");
                            }
                            SignalEvent::Synced { topic } => {
                                prop_assert_eq!(Some(conn), sender, "Synced to a non-joiner");
                                prop_assert!(p.joined.contains(&topic));
                            }
                        }
                    }
                }
            }
            // The model's membership equals the server's, and every view matches it.
            let mut model: BTreeMap<Topic, BTreeSet<PublicKey>> = BTreeMap::new();
            for p in live.values() {
                for t in &p.joined {
                    model.entry(*t).or_default().insert(p.device);
                }
            }
            prop_assert_eq!(s.topics(), model.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(s.connections(), live.len());
            for (t, members) in &model {
                prop_assert_eq!(&s.members(t), &members.iter().copied().collect::<Vec<_>>());
            }
            for p in live.values() {
                for t in &p.joined {
                    let mut expect = model[t].clone();
                    expect.remove(&p.device);
                    prop_assert_eq!(&p.view[t], &expect, "view of {:?}", p.device);
                }
            }
        }
    }
}
