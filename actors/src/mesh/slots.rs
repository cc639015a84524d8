//! [`AcceptSlots`]: which peers may hold the connections this node accepts (sans-IO).
//!
//! Every accepted connection holds one of `max_accepted` slots. A connection is *unproven*
//! until a replication channel opens on it; then it is *proven* (the peer showed that it
//! shares a space with us). The rules, so that strangers cannot keep members out:
//! - Unknown devices (not known as members of any of our spaces, never proven) may hold at
//!   most `max_unproven` slots at a time; past that they are refused.
//! - A known device that finds every slot taken evicts the oldest unproven connection of an
//!   unknown device; if there is none, it is refused (`Full`).
//! - A connection that ends without ever showing a shared space (the connection actor's
//!   Hello deadline, or a refused Hello) penalizes its remote address: further connections
//!   from it are refused before the TLS handshake for a backoff of 1 s doubling to 30 s. A
//!   penalty is lifted once that address proves itself, and forgotten once it has not
//!   grown for [`PENALTY_FORGET`]; at most [`MAX_PENALTIES`] addresses are remembered (the
//!   oldest are dropped first).
//!
//! Inputs are the methods below, with `now` passed in; outputs are their return values. The
//! caller (`NetworkActor`) closes and starts connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use crate::types::{Backoff, PublicKey};

/// The first wait of a penalized address.
pub const PENALTY_START: Duration = Duration::from_secs(1);
/// The longest wait of a penalized address.
pub const PENALTY_MAX: Duration = Duration::from_secs(30);
/// A penalty that has not grown for this long is forgotten.
pub const PENALTY_FORGET: Duration = Duration::from_secs(300);
/// Most penalized addresses remembered.
pub const MAX_PENALTIES: usize = 4096;

/// Limits on accepted connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLimits {
    /// Most accepted connections in all.
    pub max_accepted: usize,
    /// Most accepted connections of unknown devices that have not proven a shared space.
    pub max_unproven: usize,
}

impl SlotLimits {
    /// `max_accepted` slots, of which unknown devices may hold up to half (at least one).
    pub fn new(max_accepted: usize) -> Self {
        SlotLimits {
            max_accepted,
            max_unproven: max_accepted.div_ceil(2).min(max_accepted),
        }
    }
}

/// The answer to a device that completed the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// Accept, after closing this (unproven, unknown) connection to make room.
    AcceptEvicting(u64),
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is held by known or proven peers.
    Full,
    /// An unknown device, and unknown devices hold all the slots they may.
    Busy,
}

#[derive(Debug, Clone)]
struct Slot {
    device: PublicKey,
    remote: SocketAddr,
    since: Instant,
    known: bool,
    proven: bool,
}

#[derive(Debug, Clone)]
struct Penalty {
    until: Instant,
    grown: Instant,
    backoff: Backoff,
}

/// See the module docs.
#[derive(Debug)]
pub struct AcceptSlots {
    limits: SlotLimits,
    slots: BTreeMap<u64, Slot>,
    penalties: BTreeMap<SocketAddr, Penalty>,
}

impl AcceptSlots {
    pub fn new(limits: SlotLimits) -> Self {
        AcceptSlots {
            limits,
            slots: BTreeMap::new(),
            penalties: BTreeMap::new(),
        }
    }

    /// Accepted connections held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slots held by unknown devices that have not proven a shared space.
    pub fn unproven(&self) -> usize {
        self.slots
            .values()
            .filter(|s| !s.known && !s.proven)
            .count()
    }

    /// Addresses currently remembered as penalized.
    pub fn penalized(&self) -> usize {
        self.penalties.len()
    }

    /// Before the TLS handshake: may `remote` try? No while its penalty runs.
    pub fn may_handshake(&mut self, now: Instant, remote: SocketAddr) -> bool {
        self.forget_old(now);
        self.penalties.get(&remote).is_none_or(|p| now >= p.until)
    }

    /// After the handshake: may a device (known as a member or not) hold a slot?
    pub fn admit(&self, known: bool) -> Admission {
        let full = self.slots.len() >= self.limits.max_accepted;
        if known {
            if !full {
                return Admission::Accept;
            }
            return match self.oldest_unproven() {
                Some(id) => Admission::AcceptEvicting(id),
                None => Admission::Refuse(Refusal::Full),
            };
        }
        if full {
            Admission::Refuse(Refusal::Full)
        } else if self.unproven() >= self.limits.max_unproven {
            Admission::Refuse(Refusal::Busy)
        } else {
            Admission::Accept
        }
    }

    /// A connection took a slot (after [`Self::admit`] said so).
    pub fn insert(
        &mut self,
        id: u64,
        device: PublicKey,
        remote: SocketAddr,
        known: bool,
        now: Instant,
    ) {
        self.slots.insert(
            id,
            Slot {
                device,
                remote,
                since: now,
                known,
                proven: false,
            },
        );
    }

    /// A channel opened with `device`: its slot is proven, and its address forgiven.
    pub fn proven(&mut self, device: &PublicKey) {
        for slot in self.slots.values_mut().filter(|s| s.device == *device) {
            slot.proven = true;
            self.penalties.remove(&slot.remote);
        }
    }

    /// Connection `id` ended (or was never ours): frees its slot, if it held one, and
    /// returns the remote address it had.
    pub fn remove(&mut self, id: u64) -> Option<SocketAddr> {
        self.slots.remove(&id).map(|s| s.remote)
    }

    /// A connection from `remote` ended without showing a shared space, or was refused.
    pub fn penalize(&mut self, now: Instant, remote: SocketAddr) {
        self.forget_old(now);
        if !self.penalties.contains_key(&remote) && self.penalties.len() >= MAX_PENALTIES {
            let oldest = self
                .penalties
                .iter()
                .min_by_key(|(addr, p)| (p.grown, **addr))
                .map(|(addr, _)| *addr);
            if let Some(addr) = oldest {
                self.penalties.remove(&addr);
            }
        }
        let p = self.penalties.entry(remote).or_insert(Penalty {
            until: now,
            grown: now,
            backoff: Backoff::new(PENALTY_START, PENALTY_MAX),
        });
        p.until = now + p.backoff.fail();
        p.grown = now;
    }

    fn oldest_unproven(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| !s.known && !s.proven)
            .min_by_key(|(id, s)| (s.since, **id))
            .map(|(id, _)| *id)
    }

    fn forget_old(&mut self, now: Instant) {
        self.penalties
            .retain(|_, p| now.saturating_duration_since(p.grown) < PENALTY_FORGET);
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
