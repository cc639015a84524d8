//! Merges the peer views of several signal servers into one stream of [`PeerEvent`]s: a
//! peer is available while at least one server announces it, with the union of the
//! addresses the servers report (server order, deduplicated, at most [`MAX_ADDRS`]). An
//! event goes out only when that merged view changes. Sans-IO, ordered.

use std::collections::BTreeMap;

use super::client_core::PeerEvent;
use super::wire::{PeerInfo, Topic, MAX_ADDRS};
use crate::types::PublicKey;

#[derive(Debug, Default)]
pub struct PeerMerge {
    /// Per (topic, peer): what each server (by index) announced.
    seen: BTreeMap<(Topic, PublicKey), BTreeMap<usize, PeerInfo>>,
    /// Per (topic, peer): what was last reported.
    reported: BTreeMap<(Topic, PublicKey), PeerInfo>,
}

impl PeerMerge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies server `server`'s event; returns the event for the swarm, if any.
    pub fn apply(&mut self, server: usize, event: PeerEvent) -> Option<PeerEvent> {
        let key = (event.topic, event.peer.device_key);
        let views = self.seen.entry(key).or_default();
        if event.available {
            views.insert(server, event.peer);
        } else {
            views.remove(&server);
        }
        if views.is_empty() {
            self.seen.remove(&key);
            let peer = self.reported.remove(&key)?;
            return Some(PeerEvent {
                topic: key.0,
                available: false,
                peer,
            });
        }
        let mut addrs = Vec::new();
        for addr in views.values().flat_map(|p| p.addrs.iter()) {
            if addrs.len() < MAX_ADDRS && !addrs.contains(addr) {
                addrs.push(*addr);
            }
        }
        let merged = PeerInfo {
            device_key: key.1,
            addrs,
        };
        if self.reported.get(&key) == Some(&merged) {
            return None;
        }
        self.reported.insert(key, merged.clone());
        Some(PeerEvent {
            topic: key.0,
            available: true,
            peer: merged,
        })
    }

    /// Forgets a topic the swarm left (no events).
    pub fn forget_topic(&mut self, topic: &Topic) {
        self.seen.retain(|(t, _), _| t != topic);
        self.reported.retain(|(t, _), _| t != topic);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn ev(available: bool, addrs: &[u16]) -> PeerEvent {
        PeerEvent {
            topic: [1; 32],
            available,
            peer: PeerInfo {
                device_key: PublicKey::from_bytes([5; 32]),
                addrs: addrs
                    .iter()
                    .map(|p| SocketAddr::from(([10, 0, 0, 5], *p)))
                    .collect(),
            },
        }
    }

    #[test]
    fn available_while_any_server_says_so_with_merged_addrs() {
        let mut m = PeerMerge::new();
        assert_eq!(m.apply(0, ev(true, &[1, 2])), Some(ev(true, &[1, 2])));
        assert_eq!(m.apply(0, ev(true, &[1, 2])), None);
        assert_eq!(m.apply(1, ev(true, &[2, 3])), Some(ev(true, &[1, 2, 3])));
        assert_eq!(m.apply(0, ev(false, &[1, 2])), Some(ev(true, &[2, 3])));
        assert_eq!(m.apply(1, ev(false, &[])), Some(ev(false, &[2, 3])));
        assert_eq!(m.apply(1, ev(false, &[])), None, "already gone");
        assert!(m.seen.is_empty() && m.reported.is_empty());
    }

    #[test]
    fn merged_addrs_are_capped_and_topics_forgotten() {
        let mut m = PeerMerge::new();
        m.apply(0, ev(true, &[1, 2, 3, 4, 5, 6]));
        let out = m.apply(1, ev(true, &[7, 8, 9, 10])).unwrap();
        assert_eq!(out.peer.addrs.len(), MAX_ADDRS);
        m.forget_topic(&[1; 32]);
        assert_eq!(m.apply(0, ev(false, &[])), None);
        assert_eq!(m.apply(0, ev(true, &[1])), Some(ev(true, &[1])));
    }
}
