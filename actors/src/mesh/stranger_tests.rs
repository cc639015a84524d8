//! Strangers against the accepted-connection slots, over real QUIC on loopback: rogue
//! clients with throwaway (valid) ed25519 certificates that reconnect as soon as they are
//! closed cannot keep a member from replicating; each rogue connection is closed within the
//! Hello deadline, and a rogue that keeps coming back is refused before its TLS handshake.
//! A stranger whose first frame is not a Hello gets the connection closed `NOT_A_MEMBER`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::VarInt;
use serde_json::json;

use super::hello::STRANGER_DEADLINE;
use super::test_util::{channel_peers, count, eventually, loopback, open_node, real_node};
use super::MeshConfig;
use crate::credentials::Role;
use crate::replication::{Heads, WireMessage};
use crate::store::MemStore;
use crate::transport::{self, close, NetEnv, TransportConfig, TransportError};
use crate::types::KeyPair;

/// What the rogues saw.
#[derive(Debug, Default)]
struct RogueStats {
    /// Connections that completed the handshake, and how long each was held open.
    held: Vec<Duration>,
    /// How each of those ended (close code).
    codes: Vec<u64>,
    /// Attempts refused before the TLS handshake finished.
    refused: usize,
}

/// A rogue client: connects to `target`, sends nothing, and reconnects the moment it is
/// closed or refused, until `stop`.
async fn rogue(n: u8, target: SocketAddr, stop: Arc<AtomicBool>, stats: Arc<Mutex<RogueStats>>) {
    let device = KeyPair::from_secret([100 + n; 32]);
    let endpoint = transport::endpoint(
        NetEnv::Real { bind: loopback() },
        &device,
        &TransportConfig::new([n; 32]),
    )
    .unwrap();
    while !stop.load(Ordering::Relaxed) {
        match transport::connect(&endpoint, target).await {
            Ok((conn, _)) => {
                let start = Instant::now();
                let reason = conn.closed().await;
                let code = match reason {
                    quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
                    _ => u64::MAX,
                };
                let mut s = stats.lock().unwrap();
                s.held.push(start.elapsed());
                s.codes.push(code);
            }
            Err(TransportError::Handshake(_)) => {
                stats.lock().unwrap().refused += 1;
                // As soon as possible, without spinning a core.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("rogue {n}: {e}"),
        }
    }
}

#[actix::test]
async fn rogue_reconnecting_strangers_cannot_keep_a_member_from_replicating() {
    // a accepts at most 4 connections. b is a member that has replicated with a before.
    let mesh = MeshConfig {
        max_accepted: 4,
        ..Default::default()
    };
    let (a, a_addr) = real_node(41, Arc::new(MemStore::new()), mesh).await;
    let space = a.space_create(None).await.unwrap().space_key;
    a.object_add(&space, json!({"from": "a"})).await.unwrap();
    let b_store = Arc::new(MemStore::new());
    let b_mesh = MeshConfig {
        static_peers: vec![a_addr],
        ..Default::default()
    };
    let (b, _) = real_node(42, b_store.clone(), b_mesh.clone()).await;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    a.space_add_member(&space, &b_identity, Role::Editor)
        .await
        .unwrap();
    b.space_join(&space, None).await.unwrap();
    eventually("b may write", || async {
        b.object_add(&space, json!({"from": "b", "n": 1}))
            .await
            .is_ok()
    })
    .await;
    eventually("a holds b's first write", || async {
        count(&a, &space).await == 2
    })
    .await;
    b.shutdown().await.unwrap();

    // Twelve rogues, three times a's slots, flood it.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(RogueStats::default()));
    let rogues: Vec<_> = (0..12)
        .map(|n| actix::spawn(rogue(n, a_addr, stop.clone(), stats.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // b comes back (same store, same device) while the flood goes on, and writes.
    let b = open_node(42, b_store, b_mesh).await;
    b.object_add(&space, json!({"from": "b", "n": 2}))
        .await
        .unwrap();
    let started = Instant::now();
    eventually("a holds b's write made during the flood", || async {
        count(&a, &space).await == 3
    })
    .await;
    let caught_up = started.elapsed();
    // And the flood keeps going a while, with b connected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        channel_peers(&a, &space).await,
        vec![b.device_key().to_hex()],
        "a's channels"
    );
    stop.store(true, Ordering::Relaxed);
    for r in rogues {
        r.abort();
    }

    let stats = stats.lock().unwrap();
    eprintln!(
        "b's write reached a after {caught_up:?}; rogues: {} connections held (longest {:?}), {} refused before TLS",
        stats.held.len(),
        stats.held.iter().max(),
        stats.refused
    );
    assert!(!stats.held.is_empty(), "no rogue ever connected");
    // Every rogue connection ended within the Hello deadline (plus scheduling slack), closed
    // as not a member, or refused for want of a slot.
    let slack = Duration::from_millis(1500);
    for (held, code) in stats.held.iter().zip(&stats.codes) {
        assert!(
            *held <= STRANGER_DEADLINE + slack,
            "a rogue held a connection for {held:?}"
        );
        assert!(
            *code == u64::from(close::NOT_A_MEMBER) || *code == u64::from(close::NORMAL),
            "a rogue connection ended with code {code}"
        );
    }
    assert!(
        stats.codes.contains(&u64::from(close::NOT_A_MEMBER)),
        "no rogue was closed by the Hello deadline"
    );
    // Rogues that kept coming back were refused cheaply (their addresses are penalized).
    assert!(stats.refused > 0, "no rogue was refused before TLS");
}

/// Connects as a stranger, opens a stream, writes `bytes`, and returns how the connection
/// ended and how long it took.
async fn stranger_sends(target: SocketAddr, seed: u8, bytes: Vec<u8>) -> (u64, Duration) {
    let device = KeyPair::from_secret([seed; 32]);
    let endpoint = transport::endpoint(
        NetEnv::Real { bind: loopback() },
        &device,
        &TransportConfig::new([seed; 32]),
    )
    .unwrap();
    let (conn, _) = transport::connect(&endpoint, target).await.unwrap();
    let start = Instant::now();
    let (mut send, _recv) = transport::open_stream(&conn, transport::StreamKind::Replication)
        .await
        .unwrap();
    send.write_all(&bytes).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("the connection is closed");
    match ended {
        quinn::ConnectionError::ApplicationClosed(c) => {
            (c.error_code.into_inner(), start.elapsed())
        }
        other => panic!("connection ended otherwise: {other:?}"),
    }
}

#[actix::test]
async fn a_strangers_malformed_or_non_hello_first_frame_closes_the_connection_not_a_member() {
    let (a, a_addr) = real_node(43, Arc::new(MemStore::new()), MeshConfig::default()).await;
    a.space_create(None).await.unwrap();
    let not_a_member = VarInt::from_u32(close::NOT_A_MEMBER).into_inner();
    // A frame whose body does not decode.
    let mut garbage = 3u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
    // A frame header announcing more than the frame limit.
    let huge = u32::MAX.to_be_bytes().to_vec();
    // A well-formed frame that is not a Hello.
    let heads = {
        let body = crate::types::encode(&WireMessage::Heads(Heads::default())).unwrap();
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&body);
        v
    };
    for (seed, bytes, what) in [
        (61, garbage, "garbage"),
        (62, huge, "huge"),
        (63, heads, "Heads"),
    ] {
        let (code, took) = stranger_sends(a_addr, seed, bytes).await;
        assert_eq!(code, not_a_member, "{what}: closed with {code}");
        assert!(
            took < STRANGER_DEADLINE,
            "{what}: closed after {took:?}, by the deadline rather than the frame"
        );
    }
    // a keeps serving.
    assert!(a.status().await.is_ok());
}

/// A node takes connections before its first space opens (an invitation's guest has none
/// yet); with nothing shared, the Hello deadline then ends them.
#[actix::test]
async fn a_node_without_spaces_accepts_connections_until_the_hello_deadline() {
    let (_a, a_addr) = real_node(44, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let device = KeyPair::from_secret([64; 32]);
    let endpoint = transport::endpoint(
        NetEnv::Real { bind: loopback() },
        &device,
        &TransportConfig::new([64; 32]),
    )
    .unwrap();
    let (conn, _) = transport::connect(&endpoint, a_addr).await.unwrap();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        conn.close_reason().is_none(),
        "closed before the deadline: {:?}",
        conn.close_reason()
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("closed by the deadline");
    let took = start.elapsed();
    match ended {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, VarInt::from_u32(close::NOT_A_MEMBER));
        }
        other => panic!("connection ended otherwise: {other:?}"),
    }
    assert!(
        took >= STRANGER_DEADLINE - Duration::from_millis(300)
            && took <= STRANGER_DEADLINE + Duration::from_millis(1500),
        "closed after {took:?}"
    );
}
