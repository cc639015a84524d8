//! Tests of [`SignalClientCore`]: joining, re-joining after reconnect, reconciliation after
//! `Synced`, backoff doubling, cap and reset, and jitter bounds.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::time::Instant;

use super::client_core::*;
use super::wire::*;
use crate::types::PublicKey;

fn server() -> SocketAddr {
    "10.9.9.9:7000".parse().unwrap()
}
fn ours() -> Vec<SocketAddr> {
    vec!["10.0.0.1:5000".parse().unwrap()]
}
fn topic(i: u8) -> Topic {
    [i; 32]
}
fn peer(i: u8) -> PeerInfo {
    PeerInfo {
        device_key: PublicKey::from_bytes([i; 32]),
        addrs: vec![SocketAddr::from(([10, 0, 0, i], 5000))],
    }
}
fn join_req(t: u8) -> ClientOutput {
    ClientOutput::Send(SignalRequest::Join {
        topic: topic(t),
        addrs: ours(),
    })
}
fn available(t: u8, p: PeerInfo) -> ClientInput {
    ClientInput::Event(SignalEvent::PeerAvailable {
        topic: topic(t),
        peer: p,
    })
}
fn peer_ev(t: u8, available: bool, p: PeerInfo) -> ClientOutput {
    ClientOutput::Peer(PeerEvent {
        topic: topic(t),
        available,
        peer: p,
    })
}

struct Harness {
    core: SignalClientCore,
    now: Instant,
    rng: ChaCha20Rng,
}

impl Harness {
    fn new() -> Self {
        Harness {
            core: SignalClientCore::new(server(), &ours()),
            now: Instant::now(),
            rng: ChaCha20Rng::seed_from_u64(7),
        }
    }
    fn on(&mut self, input: ClientInput) -> Vec<ClientOutput> {
        self.core.handle(self.now, input, &mut self.rng)
    }
    /// Disconnects and returns the backoff wait asked for.
    fn fail(&mut self) -> Duration {
        let out = self.on(ClientInput::Disconnected);
        match out.as_slice() {
            [ClientOutput::SetTimer {
                at,
                kind: TimerKind::Reconnect,
            }] => *at - self.now,
            other => panic!("expected one reconnect timer, got {other:?}"),
        }
    }
}

#[test]
fn first_join_connects_then_joins_everything_wanted() {
    let mut h = Harness::new();
    assert_eq!(h.core.state(), ConnState::Idle);
    assert_eq!(
        h.on(ClientInput::Join(topic(2))),
        vec![ClientOutput::Connect]
    );
    assert!(
        h.on(ClientInput::Join(topic(1))).is_empty(),
        "already connecting"
    );
    assert!(
        h.on(ClientInput::Join(topic(2))).is_empty(),
        "already wanted"
    );
    assert_eq!(h.on(ClientInput::Connected), vec![join_req(1), join_req(2)]);
    assert_eq!(h.on(ClientInput::Join(topic(3))), vec![join_req(3)]);
    assert_eq!(h.core.state(), ConnState::Connected);
}

#[test]
fn peers_are_reported_once_and_updates_pass_through() {
    let mut h = Harness::new();
    h.on(ClientInput::Join(topic(1)));
    h.on(ClientInput::Connected);
    assert_eq!(h.on(available(1, peer(5))), vec![peer_ev(1, true, peer(5))]);
    assert!(
        h.on(available(1, peer(5))).is_empty(),
        "no change, no event"
    );
    let mut moved = peer(5);
    moved.addrs.push("192.168.1.5:1".parse().unwrap());
    assert_eq!(
        h.on(available(1, moved.clone())),
        vec![peer_ev(1, true, moved.clone())]
    );
    assert!(h.on(available(9, peer(6))).is_empty(), "topic not wanted");
    let gone = ClientInput::Event(SignalEvent::PeerLeft {
        topic: topic(1),
        device_key: peer(5).device_key,
    });
    assert_eq!(h.on(gone.clone()), vec![peer_ev(1, false, moved)]);
    assert!(h.on(gone).is_empty(), "unknown peer");
    assert!(h.core.peers(&topic(1)).is_empty());
}

#[test]
fn reconnect_rejoins_keeps_peers_and_reconciles_on_synced() {
    let mut h = Harness::new();
    h.on(ClientInput::Join(topic(1)));
    h.on(ClientInput::Join(topic(2)));
    h.on(ClientInput::Connected);
    h.on(available(1, peer(5)));
    h.on(available(1, peer(6)));
    h.on(available(2, peer(7)));
    h.on(ClientInput::Event(SignalEvent::Synced { topic: topic(1) }));
    assert_eq!(h.core.peers(&topic(1)), vec![peer(5), peer(6)]);

    // Disconnect: nobody reported gone, a reconnect timer is set.
    let wait = h.fail();
    assert_eq!(h.core.peers(&topic(1)), vec![peer(5), peer(6)]);
    assert!(
        h.on(available(1, peer(8))).is_empty(),
        "events while down are stale"
    );
    // An early (stale) timer does nothing; the right one reconnects.
    assert!(h.on(ClientInput::Timer(TimerKind::Reconnect)).is_empty());
    h.now += wait;
    assert_eq!(
        h.on(ClientInput::Timer(TimerKind::Reconnect)),
        vec![ClientOutput::Connect]
    );
    assert!(
        h.on(ClientInput::Timer(TimerKind::Reconnect)).is_empty(),
        "one attempt at a time"
    );
    assert_eq!(h.on(ClientInput::Connected), vec![join_req(1), join_req(2)]);

    // The server's answer: 6 is still there, 5 left meanwhile, 9 is new.
    assert!(h.on(available(1, peer(6))).is_empty());
    assert_eq!(h.on(available(1, peer(9))), vec![peer_ev(1, true, peer(9))]);
    assert_eq!(
        h.on(ClientInput::Event(SignalEvent::Synced { topic: topic(1) })),
        vec![peer_ev(1, false, peer(5))]
    );
    assert_eq!(h.core.peers(&topic(1)), vec![peer(6), peer(9)]);
    // A second Synced without a re-join drops nothing.
    assert!(h
        .on(ClientInput::Event(SignalEvent::Synced { topic: topic(1) }))
        .is_empty());
    // Topic 2 is empty now.
    assert_eq!(
        h.on(ClientInput::Event(SignalEvent::Synced { topic: topic(2) })),
        vec![peer_ev(2, false, peer(7))]
    );
}

#[test]
fn leave_sends_leave_and_forgets_quietly() {
    let mut h = Harness::new();
    h.on(ClientInput::Join(topic(1)));
    h.on(ClientInput::Connected);
    h.on(available(1, peer(5)));
    assert_eq!(
        h.on(ClientInput::Leave(topic(1))),
        vec![ClientOutput::Send(SignalRequest::Leave { topic: topic(1) })]
    );
    assert!(h.core.peers(&topic(1)).is_empty());
    assert!(
        h.on(available(1, peer(6))).is_empty(),
        "late event for a left topic"
    );
    assert!(h.on(ClientInput::Leave(topic(1))).is_empty());
    // Left while down: not re-joined on reconnect.
    h.on(ClientInput::Join(topic(2)));
    h.on(ClientInput::Join(topic(3)));
    let wait = h.fail();
    assert!(h.on(ClientInput::Leave(topic(2))).is_empty());
    h.now += wait;
    h.on(ClientInput::Timer(TimerKind::Reconnect));
    assert_eq!(h.on(ClientInput::Connected), vec![join_req(3)]);
}

#[test]
fn backoff_doubles_caps_and_resets() {
    let mut h = Harness::new();
    h.on(ClientInput::Join(topic(1)));
    let mut base = BACKOFF_START;
    let mut bases = Vec::new();
    for _ in 0..10 {
        bases.push(base);
        let wait = h.fail();
        assert!(
            wait >= base / 2 && wait <= base,
            "{wait:?} outside [{:?}, {base:?}]",
            base / 2
        );
        // Disconnect while backing off is ignored (no second timer).
        assert!(h.on(ClientInput::Disconnected).is_empty());
        h.now += wait;
        assert_eq!(
            h.on(ClientInput::Timer(TimerKind::Reconnect)),
            vec![ClientOutput::Connect]
        );
        base = (base * 2).min(BACKOFF_MAX);
        assert_eq!(h.core.next_backoff(), base);
    }
    let ms: Vec<u64> = bases.iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(
        ms,
        vec![250, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000]
    );
    h.on(ClientInput::Connected);
    assert_eq!(h.core.next_backoff(), BACKOFF_START);
    let wait = h.fail();
    assert!(wait <= BACKOFF_START);
}

#[test]
fn jitter_stays_in_bounds_and_spreads() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for base_ms in [0u64, 1, 3, 250, 10_000] {
        let base = Duration::from_millis(base_ms);
        let waits: Vec<Duration> = (0..2000).map(|_| jitter(base, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w >= base / 2 && *w <= base));
        if base_ms >= 250 {
            let lo = waits.iter().min().unwrap();
            let hi = waits.iter().max().unwrap();
            assert!(
                *lo < base * 11 / 20 && *hi > base * 19 / 20,
                "{lo:?}..{hi:?}"
            );
        }
    }
    // Seeded: the same seed gives the same waits.
    let a: Vec<_> = {
        let mut r = ChaCha20Rng::seed_from_u64(3);
        (0..5).map(|_| jitter(BACKOFF_MAX, &mut r)).collect()
    };
    let b: Vec<_> = {
        let mut r = ChaCha20Rng::seed_from_u64(3);
        (0..5).map(|_| jitter(BACKOFF_MAX, &mut r)).collect()
    };
    assert_eq!(a, b);
}

#[test]
fn our_addrs_are_cleaned_and_capped() {
    let many: Vec<SocketAddr> = (1..=20)
        .map(|i| SocketAddr::from(([10, 0, 1, i], 1)))
        .collect();
    let mut core = SignalClientCore::new(server(), &many);
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let now = Instant::now();
    core.handle(now, ClientInput::Join(topic(1)), &mut rng);
    match core
        .handle(now, ClientInput::Connected, &mut rng)
        .as_slice()
    {
        [ClientOutput::Send(SignalRequest::Join { addrs, .. })] => {
            assert_eq!(addrs[..], many[..MAX_ADDRS])
        }
        other => panic!("{other:?}"),
    }
}
