//! The swarm of one space: which known peers to connect to.
//!
//! [`SwarmCore`] is sans-IO. It learns candidates (device key + addresses) from signaling and
//! hears which devices are connected; on every `tick(now)` it asks to dial the most preferred
//! unconnected candidates until `max_originated` connections it started are up.
//!
//! The preference order alternates between two orders of all candidates: XOR distance of
//! device keys from ours (deterministic, and close peers pick each other) and this swarm's
//! own random order (a keyed hash of the device key under a salt drawn from the node's
//! seeded RNG, so nobody can choose a key that everyone prefers). Nearest-only dialling
//! splits a large swarm: once a top-bit half of the key space is big enough to fill every
//! member's slots inside it (about 9 peers), no dial crosses to the other half; the random
//! half of the order joins the halves (see the tests for numbers).
//!
//! Failed dials back off exponentially (250 ms doubling to 10 s); so does a peer whose
//! connection closes before a channel opened on it (it refused us, or had accepted all the
//! connections it takes), so that the slot goes to the next candidate meanwhile. The backoff
//! resets once a channel opens. Accepting is bounded by the network actor. Connections are
//! never dropped to make room for preferred ones: the overlay changes only as peers come and
//! go.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use crate::types::{Backoff, PublicKey};

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Candidate {
    addrs: Vec<SocketAddr>,
    /// Position in this swarm's random order (lower first).
    rank: [u8; 32],
    retry_at: Option<Instant>,
    /// Grows with dials that failed, or connections closed before a channel opened, since
    /// the last channel.
    backoff: Backoff,
    dialing: bool,
}

/// How many dials a swarm may have going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// Up to this many connections we started, dialing ones included (a space's swarm).
    Originated(usize),
    /// Up to this many dials at once, whatever is connected: every candidate is dialed, and
    /// again only once its connection closes (`SwarmCore::seeking`).
    InFlight(usize),
}

/// Topology decisions for one space.
#[derive(Debug)]
pub struct SwarmCore {
    me: PublicKey,
    budget: Budget,
    salt: [u8; 32],
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
    /// `salt` orders the random half of the preferences; draw it from the node's RNG.
    pub fn new(me: PublicKey, max_originated: usize, salt: [u8; 32]) -> Self {
        Self::with_budget(me, Budget::Originated(max_originated), salt)
    }

    /// A swarm that meets every candidate rather than keeping a few connections: it dials
    /// each one it is not connected to, at most `max_in_flight` at a time (a recovering
    /// device asking every member under its identity topic, `identity_topics.rs`).
    pub fn seeking(me: PublicKey, max_in_flight: usize, salt: [u8; 32]) -> Self {
        Self::with_budget(me, Budget::InFlight(max_in_flight), salt)
    }

    fn with_budget(me: PublicKey, budget: Budget, salt: [u8; 32]) -> Self {
        SwarmCore {
            me,
            budget,
            salt,
            candidates: BTreeMap::new(),
            connected: BTreeMap::new(),
        }
    }

    pub fn available(&mut self, device: PublicKey, addrs: Vec<SocketAddr>) {
        if device == self.me || addrs.is_empty() {
            return;
        }
        let rank = *blake3::keyed_hash(&self.salt, device.as_bytes()).as_bytes();
        let c = self.candidates.entry(device).or_insert(Candidate {
            addrs: vec![],
            rank,
            retry_at: None,
            backoff: Backoff::new(BACKOFF_START, BACKOFF_MAX),
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
            c.retry_at = None;
        }
    }

    /// A replication channel of this space opened with `device`: it is a good peer.
    pub fn channel_opened(&mut self, device: &PublicKey) {
        if let Some(c) = self.candidates.get_mut(device) {
            c.backoff.reset();
        }
    }

    pub fn disconnected(&mut self, device: &PublicKey, now: Instant) {
        self.connected.remove(device);
        if let Some(c) = self.candidates.get_mut(device) {
            // Give the peer a moment before redialling (it may be restarting); longer each
            // time if it keeps closing on us before any channel opens.
            c.retry_at = Some(now + c.backoff.fail());
        }
    }

    pub fn dial_failed(&mut self, device: &PublicKey, now: Instant) {
        if let Some(c) = self.candidates.get_mut(device) {
            c.dialing = false;
            c.retry_at = Some(now + c.backoff.fail());
        }
    }

    /// Number of connections we originated.
    pub fn originated(&self) -> usize {
        self.connected.values().filter(|o| **o).count()
    }

    /// Every candidate, most preferred first: alternately the next XOR-nearest and the next
    /// in our random order, each once.
    fn preferences(&self) -> Vec<PublicKey> {
        let mut near: Vec<([u8; 32], PublicKey)> = self
            .candidates
            .keys()
            .map(|d| (distance(d, &self.me), *d))
            .collect();
        near.sort_unstable();
        let mut random: Vec<([u8; 32], PublicKey)> =
            self.candidates.iter().map(|(d, c)| (c.rank, *d)).collect();
        random.sort_unstable();
        let mut seen = BTreeSet::new();
        let mut order = Vec::with_capacity(near.len());
        for ((_, n), (_, r)) in near.into_iter().zip(random) {
            for d in [n, r] {
                if seen.insert(d) {
                    order.push(d);
                }
            }
        }
        order
    }

    /// Dials to start now.
    pub fn tick(&mut self, now: Instant) -> Vec<Dial> {
        let dialing = self.candidates.values().filter(|c| c.dialing).count();
        let budget = match self.budget {
            Budget::Originated(max) => max.saturating_sub(self.originated() + dialing),
            Budget::InFlight(max) => max.saturating_sub(dialing),
        };
        if budget == 0 {
            return Vec::new();
        }
        let eligible: Vec<PublicKey> = self
            .preferences()
            .into_iter()
            .filter(|d| {
                !self.connected.contains_key(d)
                    && self
                        .candidates
                        .get(d)
                        .is_some_and(|c| !c.dialing && c.retry_at.is_none_or(|t| t <= now))
            })
            .take(budget)
            .collect();
        eligible
            .into_iter()
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
    fn devices(dials: &[Dial]) -> Vec<PublicKey> {
        dials.iter().map(|d| d.device).collect()
    }

    /// A swarm of `me` that knows candidates `key(1..=n)`.
    fn swarm(me: u8, n: u8, max: usize, salt: [u8; 32]) -> SwarmCore {
        let mut s = SwarmCore::new(key(me), max, salt);
        for b in 1..=n {
            s.available(key(b), addr(u16::from(b)));
        }
        s
    }

    #[tokio::test]
    async fn dials_alternate_between_the_nearest_and_a_salted_random_order() {
        let now = Instant::now();
        let mut s = swarm(0, 40, 4, [7; 32]);
        s.available(key(0), addr(99)); // ourselves: ignored
        let first = devices(&s.tick(now));
        assert_eq!(first.len(), 4);
        // Slots 0 and 2 are the two nearest of what slots 1 and 3 left.
        let rest: Vec<PublicKey> = (1..=40u8)
            .map(key)
            .filter(|k| *k != first[1] && *k != first[3])
            .collect();
        let mut near = rest.clone();
        near.sort_by_key(|d| distance(d, &key(0)));
        assert_eq!(vec![first[0], first[2]], near[..2].to_vec());
        // The same salt always gives the same choice; other salts other random picks, while
        // the nearest stays first.
        assert_eq!(devices(&swarm(0, 40, 4, [7; 32]).tick(now)), first);
        let mut randoms = BTreeSet::new();
        for salt in 0..20u8 {
            let picks = devices(&swarm(0, 40, 4, [salt; 32]).tick(now));
            assert_eq!(picks[0], key(1), "the nearest comes first");
            randoms.insert(picks[1]);
        }
        assert!(
            randoms.len() > 5,
            "random picks follow the salt: {randoms:?}"
        );
        assert!(s.tick(now).is_empty(), "budget used by dials in flight");
    }

    #[tokio::test]
    async fn a_seeking_swarm_meets_every_candidate_a_few_at_a_time_and_again_after_a_close() {
        let now = Instant::now();
        let mut s = SwarmCore::seeking(key(0), 3, [2; 32]);
        for b in 1..=10u8 {
            s.available(key(b), addr(u16::from(b)));
        }
        let mut met = BTreeSet::new();
        // Connections that stay up do not use the budget: all ten are met, three at a time.
        for round in 0..4 {
            let dials = devices(&s.tick(now));
            assert_eq!(dials.len(), if round < 3 { 3 } else { 1 }, "round {round}");
            assert!(s.tick(now).is_empty(), "three in flight at most");
            for d in dials {
                assert!(met.insert(d), "{d:?} dialed twice while connected");
                s.connected(d, true);
            }
        }
        assert_eq!(met.len(), 10);
        assert!(s.tick(now).is_empty(), "everyone connected: nobody to dial");
        // A failed dial is retried after its backoff; a closed connection too.
        s.disconnected(&key(4), now);
        assert!(s.tick(now).is_empty());
        assert_eq!(devices(&s.tick(now + BACKOFF_START)), vec![key(4)]);
        s.dial_failed(&key(4), now + BACKOFF_START);
        assert!(
            s.tick(now + BACKOFF_START * 2).is_empty(),
            "backing off longer"
        );
        assert_eq!(devices(&s.tick(now + BACKOFF_START * 3)), vec![key(4)]);
        // A space's swarm with the same budget stops at three connections.
        let mut s = swarm(0, 10, 3, [2; 32]);
        for d in devices(&s.tick(now)) {
            s.connected(d, true);
        }
        assert!(s.tick(now).is_empty());
    }

    #[tokio::test]
    async fn failed_dials_back_off_and_their_slots_go_to_the_next_candidates() {
        let now = Instant::now();
        let mut s = swarm(0, 4, 2, [1; 32]);
        let dials = devices(&s.tick(now));
        assert_eq!(dials.len(), 2);
        s.connected(dials[0], true);
        s.dial_failed(&dials[1], now);
        let next = devices(&s.tick(now));
        assert_eq!(next.len(), 1);
        assert!(!dials.contains(&next[0]));
        s.dial_failed(&next[0], now);
        let last = devices(&s.tick(now));
        assert_eq!(last.len(), 1);
        s.dial_failed(&last[0], now);
        // Everyone else is backing off (250 ms after one failure).
        assert!(s.tick(now).is_empty());
        assert!(s.tick(now + Duration::from_millis(249)).is_empty());
        assert_eq!(s.tick(now + Duration::from_millis(250)).len(), 1);
        // Accepted connections do not use the budget.
        let mut s = swarm(0, 2, 1, [1; 32]);
        s.connected(key(1), false);
        assert_eq!(devices(&s.tick(now)), vec![key(2)]);
    }

    #[tokio::test]
    async fn a_peer_that_closes_before_any_channel_backs_off_until_one_opens() {
        let now = Instant::now();
        // It accepts and closes at once (it is full, or refuses us): the slot goes to the
        // next candidate meanwhile.
        let mut s = swarm(0, 2, 1, [1; 32]);
        let peer = devices(&s.tick(now))[0];
        s.connected(peer, true);
        s.disconnected(&peer, now);
        let other = devices(&s.tick(now));
        assert_eq!(other.len(), 1);
        assert_ne!(other[0], peer);
        // Again and again: 250 ms, then 500 ms, then 1 s.
        let mut s = swarm(0, 1, 1, [1; 32]);
        let mut t = now;
        assert_eq!(devices(&s.tick(t)), vec![key(1)]);
        for wait in [250u64, 500, 1_000] {
            s.connected(key(1), true);
            s.disconnected(&key(1), t);
            let due = t + Duration::from_millis(wait);
            assert!(s.tick(due - Duration::from_millis(1)).is_empty());
            assert_eq!(devices(&s.tick(due)), vec![key(1)]);
            t = due;
        }
        // Once a channel opened, a later drop is retried after 250 ms again.
        s.connected(key(1), true);
        s.channel_opened(&key(1));
        s.disconnected(&key(1), t);
        assert!(s.tick(t + Duration::from_millis(249)).is_empty());
        assert_eq!(
            devices(&s.tick(t + Duration::from_millis(250))),
            vec![key(1)]
        );
    }
}

/// A model of a whole swarm: `n` peers with random keys (from a seeded RNG), each with its own
/// `SwarmCore` and salt. Every tick each peer's dials are carried out at once: a dial links
/// both ends and opens a channel, unless the target already accepted `MAX_ACCEPTED`
/// connections, which closes it again (as the network actor does). Links are undirected.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod model_tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    use super::*;

    const TICK: Duration = Duration::from_millis(250);
    const MAX_ORIGINATED: usize = 4;
    /// The daemon's default.
    const MAX_ACCEPTED: usize = 10;

    struct Model {
        keys: Vec<PublicKey>,
        cores: Vec<SwarmCore>,
        index: BTreeMap<PublicKey, usize>,
        links: BTreeSet<(usize, usize)>,
        accepted: Vec<usize>,
        now: Instant,
    }

    impl Model {
        fn new(n: usize, seed: u64) -> Self {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut bytes = || {
                let mut b = [0u8; 32];
                rng.fill_bytes(&mut b);
                b
            };
            let keys: Vec<PublicKey> = (0..n).map(|_| PublicKey::from_bytes(bytes())).collect();
            let cores = keys
                .iter()
                .map(|k| SwarmCore::new(*k, MAX_ORIGINATED, bytes()))
                .collect();
            Model {
                index: keys.iter().enumerate().map(|(i, k)| (*k, i)).collect(),
                keys,
                cores,
                links: BTreeSet::new(),
                accepted: vec![0; n],
                now: Instant::now(),
            }
        }

        /// Peers `i` and `j` learn of each other (signaling).
        fn meet(&mut self, i: usize, j: usize) {
            let address = vec![SocketAddr::from(([127, 0, 0, 1], 1))];
            self.cores[i].available(self.keys[j], address.clone());
            self.cores[j].available(self.keys[i], address);
        }

        fn run(&mut self, ticks: usize) {
            for _ in 0..ticks {
                for i in 0..self.keys.len() {
                    for dial in self.cores[i].tick(self.now) {
                        let j = self.index[&dial.device];
                        let (me, peer) = (self.keys[i], self.keys[j]);
                        self.cores[i].connected(peer, true);
                        if self.accepted[j] >= MAX_ACCEPTED {
                            self.cores[i].disconnected(&peer, self.now);
                            continue;
                        }
                        self.accepted[j] += 1;
                        self.cores[j].connected(me, false);
                        self.cores[i].channel_opened(&peer);
                        self.cores[j].channel_opened(&me);
                        self.links.insert((i.min(j), i.max(j)));
                    }
                }
                self.now += TICK;
            }
        }

        /// Number of connected components of the link graph.
        fn components(&self) -> usize {
            let n = self.keys.len();
            let mut root: Vec<usize> = (0..n).collect();
            fn find(root: &mut [usize], x: usize) -> usize {
                let mut x = x;
                while root[x] != x {
                    root[x] = root[root[x]];
                    x = root[x];
                }
                x
            }
            for &(a, b) in &self.links {
                let (ra, rb) = (find(&mut root, a), find(&mut root, b));
                root[ra] = rb;
            }
            (0..n).filter(|&x| find(&mut root, x) == x).count()
        }
    }

    /// Everyone learns of everyone at once (a swarm formed, or restarted, all together).
    fn all_at_once(n: usize, seed: u64) -> Model {
        let mut m = Model::new(n, seed);
        for i in 0..n {
            for j in i + 1..n {
                m.meet(i, j);
            }
        }
        m.run(120);
        m
    }

    /// Peers arrive one by one, a second apart.
    fn one_by_one(n: usize, seed: u64) -> Model {
        let mut m = Model::new(n, seed);
        for j in 1..n {
            for i in 0..j {
                m.meet(i, j);
            }
            m.run(4);
        }
        m.run(120);
        m
    }

    /// Nearest-only dialling split 87% of 32-peer swarms that formed at once (100% at 64
    /// peers, 22% at 24, none at 16, where a top-bit half cannot fill every member's four
    /// slots inside it). With half the slots in each peer's random order, none split.
    #[test]
    fn large_swarms_stay_connected_however_they_form() {
        for n in [16, 32, 64] {
            let seeds = if n == 64 { 40 } else { 100 };
            for seed in 0..seeds {
                for (how, m) in [
                    ("all at once", all_at_once(n, seed)),
                    ("one by one", one_by_one(n, seed)),
                ] {
                    let parts = m.components();
                    assert_eq!(
                        parts, 1,
                        "{n} peers ({how}), seed {seed}: {parts} components"
                    );
                    // Every peer filled its slots, and nobody accepted beyond its limit.
                    for (i, core) in m.cores.iter().enumerate() {
                        assert_eq!(
                            core.originated(),
                            MAX_ORIGINATED,
                            "{n} peers ({how}), seed {seed}: peer {i}"
                        );
                    }
                    assert!(m.accepted.iter().all(|a| *a <= MAX_ACCEPTED));
                }
            }
        }
    }
}
