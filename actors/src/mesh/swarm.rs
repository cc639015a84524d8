//! The swarm of one space: which known peers to connect to.
//!
//! [`SwarmCore`] is sans-IO. It learns candidates (device key + addresses) from signaling and
//! hears which devices are connected; on every `tick(now)` it asks to dial the closest
//! unconnected candidates (XOR distance of device keys, so every peer's choice is
//! deterministic and the overlay spreads) until `max_originated` connections it started are
//! up. Failed dials back off exponentially (250 ms doubling to 10 s). Accepting is bounded by
//! the network actor.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use crate::types::PublicKey;

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Candidate {
    addrs: Vec<SocketAddr>,
    retry_at: Option<Instant>,
    failures: u32,
    dialing: bool,
}

/// Topology decisions for one space.
#[derive(Debug)]
pub struct SwarmCore {
    me: PublicKey,
    max_originated: usize,
    candidates: BTreeMap<PublicKey, Candidate>,
    /// Connected devices, and whether we originated the connection.
    connected: BTreeMap<PublicKey, bool>,
}

/// A dial the swarm wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub device: PublicKey,
    pub addrs: Vec<SocketAddr>,
}

fn distance(a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, byte) in d.iter_mut().enumerate() {
        *byte = a.as_bytes()[i] ^ b.as_bytes()[i];
    }
    d
}

impl SwarmCore {
    pub fn new(me: PublicKey, max_originated: usize) -> Self {
        SwarmCore {
            me,
            max_originated,
            candidates: BTreeMap::new(),
            connected: BTreeMap::new(),
        }
    }

    pub fn available(&mut self, device: PublicKey, addrs: Vec<SocketAddr>) {
        if device == self.me || addrs.is_empty() {
            return;
        }
        let c = self.candidates.entry(device).or_insert(Candidate {
            addrs: vec![],
            retry_at: None,
            failures: 0,
            dialing: false,
        });
        c.addrs = addrs;
    }

    pub fn left(&mut self, device: &PublicKey) {
        self.candidates.remove(device);
    }

    pub fn connected(&mut self, device: PublicKey, originated: bool) {
        self.connected.insert(device, originated);
        if let Some(c) = self.candidates.get_mut(&device) {
            c.dialing = false;
            c.failures = 0;
            c.retry_at = None;
        }
    }

    pub fn disconnected(&mut self, device: &PublicKey, now: Instant) {
        self.connected.remove(device);
        if let Some(c) = self.candidates.get_mut(device) {
            // Give the peer a moment before redialling (it may be restarting).
            c.retry_at = Some(now + BACKOFF_START);
        }
    }

    pub fn dial_failed(&mut self, device: &PublicKey, now: Instant) {
        if let Some(c) = self.candidates.get_mut(device) {
            c.dialing = false;
            c.failures = c.failures.saturating_add(1);
            let backoff = BACKOFF_START
                .saturating_mul(1 << c.failures.min(6))
                .min(BACKOFF_MAX);
            c.retry_at = Some(now + backoff);
        }
    }

    /// Number of connections we originated.
    pub fn originated(&self) -> usize {
        self.connected.values().filter(|o| **o).count()
    }

    /// Dials to start now.
    pub fn tick(&mut self, now: Instant) -> Vec<Dial> {
        let dialing = self.candidates.values().filter(|c| c.dialing).count();
        let budget = self
            .max_originated
            .saturating_sub(self.originated() + dialing);
        if budget == 0 {
            return Vec::new();
        }
        let mut eligible: Vec<_> = self
            .candidates
            .iter()
            .filter(|(d, c)| {
                !self.connected.contains_key(*d)
                    && !c.dialing
                    && c.retry_at.is_none_or(|t| t <= now)
            })
            .map(|(d, _)| *d)
            .collect();
        eligible.sort_by_key(|d| distance(d, &self.me));
        eligible
            .into_iter()
            .take(budget)
            .filter_map(|device| {
                let c = self.candidates.get_mut(&device)?;
                c.dialing = true;
                Some(Dial {
                    device,
                    addrs: c.addrs.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }
    fn addr(p: u16) -> Vec<SocketAddr> {
        vec![SocketAddr::from(([127, 0, 0, 1], p))]
    }

    #[tokio::test]
    async fn dials_closest_first_up_to_the_limit_and_backs_off() {
        let now = Instant::now();
        let mut s = SwarmCore::new(key(0), 2);
        for b in [8u8, 1, 4, 2] {
            s.available(key(b), addr(u16::from(b)));
        }
        s.available(key(0), addr(9)); // ourselves: ignored
        let dials = s.tick(now);
        assert_eq!(
            dials.iter().map(|d| d.device).collect::<Vec<_>>(),
            vec![key(1), key(2)]
        );
        assert!(s.tick(now).is_empty(), "budget used by dials in flight");
        s.connected(key(1), true);
        s.dial_failed(&key(2), now);
        let dials = s.tick(now);
        assert_eq!(
            dials.iter().map(|d| d.device).collect::<Vec<_>>(),
            vec![key(4)]
        );
        s.dial_failed(&key(4), now);
        // key(2) and key(4) are backing off; key(8) is next.
        assert_eq!(s.tick(now)[0].device, key(8));
        s.dial_failed(&key(8), now);
        assert!(s.tick(now).is_empty());
        assert!(!s.tick(now + Duration::from_secs(11)).is_empty());
        // Accepted connections do not use the budget.
        let mut s = SwarmCore::new(key(0), 1);
        s.available(key(1), addr(1));
        s.connected(key(1), false);
        s.available(key(2), addr(2));
        assert_eq!(s.tick(now).len(), 1);
    }
}
