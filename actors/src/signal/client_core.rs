//! The signaling client for one server, as a sans-IO state machine: the topics we want to
//! be in, the connection state, reconnect backoff, and the peers the server announced.
//!
//! Call [`SignalClientCore::handle`] with the current time, an input and the node's RNG;
//! carry out the returned [`ClientOutput`]s in order. `Connect` asks for one connection
//! attempt, answered later by `Connected` or `Disconnected`. `SetTimer` asks for one
//! `Timer` input at (or after) `at`; stale timers are harmless. On every (re)connect the
//! core re-sends `Join` for every wanted topic. A disconnect reports no peer as gone: the
//! peers stay known until the server's answer to the re-join (ended by `Synced`) shows
//! who left meanwhile. Backoff starts at [`BACKOFF_START`], doubles per failure up to
//! [`BACKOFF_MAX`], resets on success; each wait is drawn from `[b/2, b]`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand_core::RngCore;
use tokio::time::Instant;

use super::wire::{announce_addrs, PeerInfo, SignalEvent, SignalRequest, Topic};
use crate::types::{Backoff, PublicKey};

/// First reconnect backoff.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// Largest reconnect backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A peer appeared in (or, with `available: false`, left) a topic: for the swarm.
#[derive(Clone, Debug, PartialEq, Eq, actix::Message)]
#[rtype(result = "()")]
pub struct PeerEvent {
    pub topic: Topic,
    pub available: bool,
    pub peer: PeerInfo,
}

/// The timers the core asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    Reconnect,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientInput {
    /// The swarm wants to be in `topic`.
    Join(Topic),
    /// The swarm no longer wants `topic`; its peers are forgotten without events.
    Leave(Topic),
    /// The connection attempt succeeded.
    Connected,
    /// The connection attempt failed or the connection ended.
    Disconnected,
    /// The server sent an event.
    Event(SignalEvent),
    /// A timer asked for with `SetTimer` fired.
    Timer(TimerKind),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send a request on the current connection.
    Send(SignalRequest),
    /// Start one connection attempt to the server.
    Connect,
    /// Deliver `Timer(kind)` at `at`.
    SetTimer { at: Instant, kind: TimerKind },
    /// Tell the swarm.
    Peer(PeerEvent),
}

/// Where the connection to the server stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Never needed yet.
    Idle,
    Connecting,
    Connected,
    /// Waiting until `until` to try again.
    Backoff {
        until: Instant,
    },
}

/// See the module docs.
#[derive(Debug)]
pub struct SignalClientCore {
    server: SocketAddr,
    our_addrs: Vec<SocketAddr>,
    wanted: BTreeSet<Topic>,
    state: ConnState,
    backoff: Backoff,
    peers: BTreeMap<Topic, BTreeMap<PublicKey, PeerInfo>>,
    /// Topics whose member list since the last (re)join has not been ended by `Synced`,
    /// with the peers announced so far.
    syncing: BTreeMap<Topic, BTreeSet<PublicKey>>,
}

impl SignalClientCore {
    /// A client for `server` that announces `our_addrs` (at most [`super::wire::MAX_ADDRS`]
    /// usable ones are kept).
    pub fn new(server: SocketAddr, our_addrs: &[SocketAddr]) -> Self {
        SignalClientCore {
            server,
            our_addrs: announce_addrs(None, our_addrs),
            wanted: BTreeSet::new(),
            state: ConnState::Idle,
            backoff: Backoff::new(BACKOFF_START, BACKOFF_MAX),
            peers: BTreeMap::new(),
            syncing: BTreeMap::new(),
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    /// The backoff the next failure will wait (before jitter).
    pub fn next_backoff(&self) -> Duration {
        self.backoff.peek()
    }

    /// Peers currently known in `topic`, in key order.
    pub fn peers(&self, topic: &Topic) -> Vec<PeerInfo> {
        self.peers
            .get(topic)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn handle(
        &mut self,
        now: Instant,
        input: ClientInput,
        rng: &mut impl RngCore,
    ) -> Vec<ClientOutput> {
        let mut out = Vec::new();
        match input {
            ClientInput::Join(topic) => {
                if !self.wanted.insert(topic) {
                    return out;
                }
                match self.state {
                    ConnState::Idle => {
                        self.state = ConnState::Connecting;
                        out.push(ClientOutput::Connect);
                    }
                    ConnState::Connected => self.send_join(topic, &mut out),
                    ConnState::Connecting | ConnState::Backoff { .. } => {}
                }
            }
            ClientInput::Leave(topic) => {
                if !self.wanted.remove(&topic) {
                    return out;
                }
                self.peers.remove(&topic);
                self.syncing.remove(&topic);
                if self.state == ConnState::Connected {
                    out.push(ClientOutput::Send(SignalRequest::Leave { topic }));
                }
            }
            ClientInput::Connected => {
                self.state = ConnState::Connected;
                self.backoff.reset();
                let wanted: Vec<Topic> = self.wanted.iter().copied().collect();
                for topic in wanted {
                    self.send_join(topic, &mut out);
                }
            }
            ClientInput::Disconnected => {
                if matches!(self.state, ConnState::Connecting | ConnState::Connected) {
                    let wait = jitter(self.backoff.fail(), rng);
                    let until = now + wait;
                    self.state = ConnState::Backoff { until };
                    self.syncing.clear();
                    out.push(ClientOutput::SetTimer {
                        at: until,
                        kind: TimerKind::Reconnect,
                    });
                }
            }
            ClientInput::Timer(TimerKind::Reconnect) => {
                if let ConnState::Backoff { until } = self.state {
                    if now >= until {
                        self.state = ConnState::Connecting;
                        out.push(ClientOutput::Connect);
                    }
                }
            }
            ClientInput::Event(event) => {
                if self.state == ConnState::Connected {
                    self.event(event, &mut out);
                }
            }
        }
        out
    }

    fn send_join(&mut self, topic: Topic, out: &mut Vec<ClientOutput>) {
        self.syncing.insert(topic, BTreeSet::new());
        out.push(ClientOutput::Send(SignalRequest::Join {
            topic,
            addrs: self.our_addrs.clone(),
        }));
    }

    fn event(&mut self, event: SignalEvent, out: &mut Vec<ClientOutput>) {
        match event {
            SignalEvent::PeerAvailable { topic, peer } => {
                if !self.wanted.contains(&topic) {
                    return; // in flight across our Leave
                }
                if let Some(seen) = self.syncing.get_mut(&topic) {
                    seen.insert(peer.device_key);
                }
                let known = self.peers.entry(topic).or_default();
                if known.get(&peer.device_key) == Some(&peer) {
                    return;
                }
                known.insert(peer.device_key, peer.clone());
                out.push(ClientOutput::Peer(PeerEvent {
                    topic,
                    available: true,
                    peer,
                }));
            }
            SignalEvent::PeerLeft { topic, device_key } => {
                if let Some(seen) = self.syncing.get_mut(&topic) {
                    seen.remove(&device_key);
                }
                self.forget(topic, device_key, out);
            }
            SignalEvent::Synced { topic } => {
                let Some(seen) = self.syncing.remove(&topic) else {
                    return;
                };
                let gone: Vec<PublicKey> = self
                    .peers
                    .get(&topic)
                    .map(|m| m.keys().filter(|k| !seen.contains(*k)).copied().collect())
                    .unwrap_or_default();
                for key in gone {
                    self.forget(topic, key, out);
                }
            }
        }
    }

    fn forget(&mut self, topic: Topic, key: PublicKey, out: &mut Vec<ClientOutput>) {
        let Some(known) = self.peers.get_mut(&topic) else {
            return;
        };
        if let Some(peer) = known.remove(&key) {
            out.push(ClientOutput::Peer(PeerEvent {
                topic,
                available: false,
                peer,
            }));
        }
        if known.is_empty() {
            self.peers.remove(&topic);
        }
    }
}

/// A wait drawn uniformly from `[base/2, base]` (millisecond resolution).
pub fn jitter(base: Duration, rng: &mut impl RngCore) -> Duration {
    let max = base.as_millis() as u64;
    let min = max.div_ceil(2);
    let span = max - min + 1;
    Duration::from_millis(min + rng.next_u64() % span)
}
