//! The signaling server as a sans-IO state machine: which connection is which device, and
//! which devices are in which topic. Feed it [`ServerInput`]s with [`SignalServerCore::handle`]
//! and carry out the returned [`ServerOutput`]s in order.
//!
//! Contract: every member of a topic has been told (by `PeerAvailable` / `PeerLeft`) exactly
//! who else is in it. One connection per device: a newer connection of the same device
//! replaces the older, which is closed with `DUPLICATE`. A connection that is closed by the
//! core is forgotten at once; its later `Disconnected` is ignored. All maps are ordered, so
//! the outputs for a given input sequence are always the same.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::wire::{
    announce_addrs, PeerInfo, SignalEvent, SignalRequest, Topic, MAX_TOPICS_PER_CONN,
};
use crate::transport::close;
use crate::types::PublicKey;

/// Identifies one accepted connection; chosen by the caller, never reused.
pub type ConnId = u64;

/// What happened on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerInput {
    /// A connection authenticated as `device` from `remote`.
    Connected {
        conn: ConnId,
        device: PublicKey,
        remote: SocketAddr,
    },
    /// A request arrived on `conn`.
    Request { conn: ConnId, req: SignalRequest },
    /// `conn` is gone (closed by either side, or lost).
    Disconnected { conn: ConnId },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOutput {
    /// Send `event` on `conn`.
    Send { conn: ConnId, event: SignalEvent },
    /// Close `conn` with an application error `code` (see `transport::close`).
    Close {
        conn: ConnId,
        code: u32,
        reason: String,
    },
}

#[derive(Debug)]
struct ConnState {
    device: PublicKey,
    remote: SocketAddr,
    topics: BTreeSet<Topic>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct SignalServerCore {
    conns: BTreeMap<ConnId, ConnState>,
    /// The live connection of each device.
    devices: BTreeMap<PublicKey, ConnId>,
    /// Members of each topic with what was announced for them. No empty entries.
    topics: BTreeMap<Topic, BTreeMap<PublicKey, PeerInfo>>,
}

impl SignalServerCore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one input; returns what to send and close, in order.
    pub fn handle(&mut self, input: ServerInput) -> Vec<ServerOutput> {
        let mut out = Vec::new();
        match input {
            ServerInput::Connected {
                conn,
                device,
                remote,
            } => self.connected(conn, device, remote, &mut out),
            ServerInput::Request { conn, req } => match req {
                SignalRequest::Join { topic, addrs } => self.join(conn, topic, &addrs, &mut out),
                SignalRequest::Leave { topic } => self.leave(conn, topic, &mut out),
            },
            ServerInput::Disconnected { conn } => self.drop_conn(conn, &mut out),
        }
        out
    }

    /// The members of `topic`, in key order (for tests, metrics and the proptest).
    pub fn members(&self, topic: &Topic) -> Vec<PublicKey> {
        self.topics
            .get(topic)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Topics with at least one member.
    pub fn topics(&self) -> Vec<Topic> {
        self.topics.keys().copied().collect()
    }

    /// Number of live connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn connected(
        &mut self,
        conn: ConnId,
        device: PublicKey,
        remote: SocketAddr,
        out: &mut Vec<ServerOutput>,
    ) {
        // A reused id is a caller bug; treat it as the old connection having ended.
        self.drop_conn(conn, out);
        if let Some(&old) = self.devices.get(&device) {
            out.push(ServerOutput::Close {
                conn: old,
                code: close::DUPLICATE,
                reason: "replaced by a newer connection of the same device".into(),
            });
            self.drop_conn(old, out);
        }
        self.devices.insert(device, conn);
        self.conns.insert(
            conn,
            ConnState {
                device,
                remote,
                topics: BTreeSet::new(),
            },
        );
    }

    fn join(
        &mut self,
        conn: ConnId,
        topic: Topic,
        addrs: &[SocketAddr],
        out: &mut Vec<ServerOutput>,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if !state.topics.contains(&topic) && state.topics.len() >= MAX_TOPICS_PER_CONN {
            out.push(ServerOutput::Close {
                conn,
                code: close::PROTOCOL,
                reason: format!("joined more than {MAX_TOPICS_PER_CONN} topics"),
            });
            self.drop_conn(conn, out);
            return;
        }
        state.topics.insert(topic);
        let me = PeerInfo {
            device_key: state.device,
            addrs: announce_addrs(Some(state.remote), addrs),
        };
        let members = self.topics.entry(topic).or_default();
        // The joiner learns everyone already there, then that the list is complete.
        for peer in members.values().filter(|p| p.device_key != me.device_key) {
            out.push(ServerOutput::Send {
                conn,
                event: SignalEvent::PeerAvailable {
                    topic,
                    peer: peer.clone(),
                },
            });
        }
        out.push(ServerOutput::Send {
            conn,
            event: SignalEvent::Synced { topic },
        });
        // Everyone else learns the joiner, unless nothing changed.
        if members.get(&me.device_key) == Some(&me) {
            return;
        }
        for key in members.keys().filter(|k| **k != me.device_key) {
            if let Some(&other) = self.devices.get(key) {
                out.push(ServerOutput::Send {
                    conn: other,
                    event: SignalEvent::PeerAvailable {
                        topic,
                        peer: me.clone(),
                    },
                });
            }
        }
        members.insert(me.device_key, me);
    }

    fn leave(&mut self, conn: ConnId, topic: Topic, out: &mut Vec<ServerOutput>) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if state.topics.remove(&topic) {
            let device = state.device;
            self.remove_member(topic, device, out);
        }
    }

    /// Forgets `conn` (if known) and tells the other members of its topics.
    fn drop_conn(&mut self, conn: ConnId, out: &mut Vec<ServerOutput>) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if self.devices.get(&state.device) == Some(&conn) {
            self.devices.remove(&state.device);
        }
        for topic in state.topics {
            self.remove_member(topic, state.device, out);
        }
    }

    fn remove_member(&mut self, topic: Topic, device: PublicKey, out: &mut Vec<ServerOutput>) {
        let Some(members) = self.topics.get_mut(&topic) else {
            return;
        };
        if members.remove(&device).is_none() {
            return;
        }
        for key in members.keys() {
            if let Some(&other) = self.devices.get(key) {
                out.push(ServerOutput::Send {
                    conn: other,
                    event: SignalEvent::PeerLeft {
                        topic,
                        device_key: device,
                    },
                });
            }
        }
        if members.is_empty() {
            self.topics.remove(&topic);
        }
    }
}
