//! The signaling wire protocol: what a client asks ([`SignalRequest`]) and what the server
//! tells it ([`SignalEvent`]), one postcard frame each on the single bi-stream the client
//! opens. The sender's device key is never in a message: the server takes it from the TLS
//! handshake, so nobody can join a topic as someone else.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::types::PublicKey;

/// A swarm topic: an opaque 32-byte rendezvous name.
pub type Topic = [u8; 32];

/// Most addresses announced for one peer; extra ones are dropped.
pub const MAX_ADDRS: usize = 8;

/// Most topics one connection may be joined to at once.
pub const MAX_TOPICS_PER_CONN: usize = 256;

/// The swarm topic of a space. A keyed hash of the space key, so a signaling server learns
/// which peers meet, never which space they share.
pub fn space_topic(space_key: &PublicKey) -> Topic {
    blake3::derive_key("echo-rs swarm topic v1", space_key.as_bytes())
}

/// A peer as the signaling server announces it: its device key (from its TLS certificate)
/// and the addresses it can be reached at, best first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerInfo {
    pub device_key: PublicKey,
    pub addrs: Vec<SocketAddr>,
}

/// Client -> server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalRequest {
    /// Join `topic`, reachable at `addrs` (the server adds the address it observed). Joining
    /// a topic again updates the addresses and answers with the member list again.
    Join {
        topic: Topic,
        addrs: Vec<SocketAddr>,
    },
    /// Leave `topic`. Leaving a topic not joined is a no-op.
    Leave { topic: Topic },
}

/// Server -> client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalEvent {
    /// `peer` is in `topic` (new, or its addresses changed).
    PeerAvailable { topic: Topic, peer: PeerInfo },
    /// `device_key` is no longer in `topic`.
    PeerLeft { topic: Topic, device_key: PublicKey },
    /// Ends the member list that answers a `Join`: every member of `topic` at join time
    /// has now been announced. A reconnecting client drops the peers it knew that were not
    /// announced again.
    Synced { topic: Topic },
}

/// The addresses announced for a peer: the server-observed address first (when it is
/// usable and not already listed), then the announced ones in order, without duplicates,
/// unspecified IPs or port 0, at most [`MAX_ADDRS`].
pub fn announce_addrs(observed: Option<SocketAddr>, announced: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(MAX_ADDRS);
    for addr in observed.iter().chain(announced.iter()) {
        if out.len() == MAX_ADDRS {
            break;
        }
        if usable(addr) && !out.contains(addr) {
            out.push(*addr);
        }
    }
    out
}

fn usable(addr: &SocketAddr) -> bool {
    addr.port() != 0 && !addr.ip().is_unspecified()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::{decode, encode};

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn space_topic_is_keyed_and_stable() {
        let k1 = PublicKey::from_bytes([1; 32]);
        let k2 = PublicKey::from_bytes([2; 32]);
        assert_eq!(space_topic(&k1), space_topic(&k1));
        assert_ne!(space_topic(&k1), space_topic(&k2));
        assert_ne!(&space_topic(&k1), k1.as_bytes());
        assert_ne!(space_topic(&k1), *blake3::hash(k1.as_bytes()).as_bytes());
    }

    #[test]
    fn announce_addrs_puts_observed_first_dedups_and_caps() {
        let obs = a("10.0.0.1:5000");
        assert_eq!(announce_addrs(Some(obs), &[]), vec![obs]);
        assert_eq!(announce_addrs(None, &[]), Vec::<SocketAddr>::new());
        let listed = [a("192.168.1.2:7000"), obs, a("192.168.1.2:7000")];
        assert_eq!(
            announce_addrs(Some(obs), &listed),
            vec![obs, a("192.168.1.2:7000")]
        );
        let junk = [a("0.0.0.0:7000"), a("[::]:7000"), a("1.2.3.4:0")];
        assert_eq!(announce_addrs(Some(obs), &junk), vec![obs]);
        let many: Vec<SocketAddr> = (1..=20)
            .map(|i| SocketAddr::from(([10, 0, 1, i], 9000)))
            .collect();
        let out = announce_addrs(Some(obs), &many);
        assert_eq!(out.len(), MAX_ADDRS);
        assert_eq!(out[0], obs);
        assert_eq!(out[1..], many[..MAX_ADDRS - 1]);
    }

    #[test]
    fn messages_round_trip_through_the_codec() {
        let req = SignalRequest::Join {
            topic: [7; 32],
            addrs: vec![a("127.0.0.1:1"), a("[::1]:2")],
        };
        assert_eq!(
            decode::<SignalRequest>(&encode(&req).unwrap()).unwrap(),
            req
        );
        let ev = SignalEvent::PeerAvailable {
            topic: [9; 32],
            peer: PeerInfo {
                device_key: PublicKey::from_bytes([3; 32]),
                addrs: vec![a("127.0.0.1:1")],
            },
        };
        assert_eq!(decode::<SignalEvent>(&encode(&ev).unwrap()).unwrap(), ev);
        assert!(decode::<SignalRequest>(&[1, 0xff, 0xff]).is_err());
    }
}
