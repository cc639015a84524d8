//! Signaling over real loopback UDP: a `SignalServer` and three `SignalClient`s, each on its
//! own endpoint with its own device key, on a current-thread runtime + `LocalSet` (the
//! shape of a simulated host). Every wait is bounded.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;

use super::*;
use crate::transport::{self, close, NetEnv, TransportConfig};
use crate::types::{KeyPair, PublicKey};

struct Collector(mpsc::UnboundedSender<PeerEvent>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<PeerEvent> for Collector {
    type Result = ();
    fn handle(&mut self, msg: PeerEvent, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

fn endpoint(seed: u8) -> (quinn::Endpoint, PublicKey) {
    try_endpoint(seed, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn try_endpoint(seed: u8, bind: SocketAddr) -> Option<(quinn::Endpoint, PublicKey)> {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let device = KeyPair::generate(&mut rng);
    let ep = transport::endpoint(
        NetEnv::Real { bind },
        &device,
        &TransportConfig::new([seed; 32]),
    )
    .ok()?;
    Some((ep, device.public()))
}

fn run_local(test: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, test);
}

struct TestClient {
    addr: Addr<SignalClient>,
    key: PublicKey,
    local: SocketAddr,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    /// Available peers per topic, from the events so far.
    view: BTreeMap<Topic, BTreeMap<PublicKey, PeerInfo>>,
}

impl TestClient {
    fn start(seed: u8, server: SocketAddr) -> Self {
        let (ep, key) = endpoint(seed);
        let local = ep.local_addr().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let subscriber = Collector(tx).start().recipient();
        let rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
        let addr = SignalClient::new(ep, vec![server], vec![local], rng, subscriber).start();
        TestClient {
            addr,
            key,
            local,
            events,
            view: BTreeMap::new(),
        }
    }

    /// Applies events until the view of `topic` is exactly `want`; panics after `secs`.
    async fn wait_for(&mut self, topic: Topic, want: &BTreeSet<PublicKey>) {
        self.wait_for_within(topic, want, 10).await
    }

    async fn wait_for_within(&mut self, topic: Topic, want: &BTreeSet<PublicKey>, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let have: BTreeSet<PublicKey> = self
                .view
                .get(&topic)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            if &have == want {
                return;
            }
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("{:?}: view {have:?}, want {want:?}", self.key))
                .unwrap();
            let peers = self.view.entry(ev.topic).or_default();
            if ev.available {
                peers.insert(ev.peer.device_key, ev.peer);
            } else {
                assert!(
                    peers.remove(&ev.peer.device_key).is_some(),
                    "left before available"
                );
            }
        }
    }
}

#[test]
fn clients_find_each_other_and_a_garbage_client_is_closed() {
    run_local(async {
        let (server_ep, _) = endpoint(100);
        let server_addr = server_ep.local_addr().unwrap();
        let server = serve_signal(server_ep);
        let topic = space_topic(&PublicKey::from_bytes([42; 32]));

        let mut clients: Vec<TestClient> =
            (1..=3).map(|i| TestClient::start(i, server_addr)).collect();
        for c in &clients {
            c.addr.send(JoinTopic(topic)).await.unwrap();
        }
        let all: BTreeSet<PublicKey> = clients.iter().map(|c| c.key).collect();
        for c in clients.iter_mut() {
            let mut want = all.clone();
            want.remove(&c.key);
            c.wait_for(topic, &want).await;
        }
        // Each is announced at its own endpoint address (observed == announced here).
        let by_key: BTreeMap<PublicKey, SocketAddr> =
            clients.iter().map(|c| (c.key, c.local)).collect();
        for c in &clients {
            for (key, info) in &c.view[&topic] {
                assert_eq!(info.addrs, vec![by_key[key]]);
            }
        }

        // A client that sends garbage on its stream is closed with BAD_FRAME.
        let (raw_ep, _) = endpoint(200);
        let (conn, _) = transport::connect(&raw_ep, server_addr).await.unwrap();
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe])
            .await
            .unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
            .await
            .unwrap();
        match closed {
            quinn::ConnectionError::ApplicationClosed(c) => {
                assert_eq!(c.error_code, quinn::VarInt::from_u32(close::BAD_FRAME));
            }
            other => panic!("expected BAD_FRAME, got {other:?}"),
        }

        // The others keep working: one leaves, the rest see it go.
        let leaver = clients.remove(0);
        leaver.addr.send(LeaveTopic(topic)).await.unwrap();
        for c in clients.iter_mut() {
            let mut want = all.clone();
            want.remove(&c.key);
            want.remove(&leaver.key);
            c.wait_for(topic, &want).await;
        }
        let status = server.send(GetStatus).await.unwrap();
        assert_eq!(status.connections, 3);
        assert_eq!(status.topics[&topic].len(), 2);
        server.send(StopServer).await.unwrap();
    });
}

#[test]
fn clients_rejoin_a_restarted_server_and_drop_peers_that_left_meanwhile() {
    run_local(async {
        let (server_ep, _) = endpoint(101);
        let server_addr = server_ep.local_addr().unwrap();
        let server = serve_signal(server_ep);
        let topic = [7u8; 32];
        let mut clients: Vec<TestClient> = (11..=13)
            .map(|i| TestClient::start(i, server_addr))
            .collect();
        for c in &clients {
            c.addr.send(JoinTopic(topic)).await.unwrap();
        }
        let all: BTreeSet<PublicKey> = clients.iter().map(|c| c.key).collect();
        for c in clients.iter_mut() {
            let mut want = all.clone();
            want.remove(&c.key);
            c.wait_for(topic, &want).await;
        }

        // The server goes away; so does one client, while nobody can tell the others.
        server.send(StopServer).await.unwrap();
        let gone = clients.pop().unwrap();
        gone.addr.send(StopClient).await.unwrap();
        // Same address, same key, empty state once the old socket is released.
        let mut restarted = None;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            if let Some((ep, _)) = try_endpoint(101, server_addr) {
                restarted = Some(serve_signal(ep));
                break;
            }
        }
        let server = restarted.expect("server address still taken after 5 s");

        // The two left re-join on their own; the re-join's member list drops the third.
        for c in clients.iter_mut() {
            let mut want = all.clone();
            want.remove(&c.key);
            want.remove(&gone.key);
            c.wait_for_within(topic, &want, 30).await;
        }
        let status = server.send(GetStatus).await.unwrap();
        assert_eq!(status.topics[&topic].len(), 2);
        for c in &clients {
            let servers = c.addr.send(GetServers).await.unwrap();
            assert_eq!(servers, vec![(server_addr, ConnState::Connected)]);
        }
    });
}
