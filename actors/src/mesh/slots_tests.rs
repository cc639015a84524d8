//! The slot rules of `AcceptSlots`, one test per rule, and a proptest over random
//! sequences of arrivals, proofs, departures and penalties.

use super::*;
use proptest::prelude::*;

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn limits(max_accepted: usize, max_unproven: usize) -> SlotLimits {
    SlotLimits {
        max_accepted,
        max_unproven,
    }
}

#[test]
fn default_limits_leave_half_the_slots_to_strangers() {
    assert_eq!(SlotLimits::new(10), limits(10, 5));
    assert_eq!(SlotLimits::new(3), limits(3, 2));
    assert_eq!(SlotLimits::new(1), limits(1, 1));
    assert_eq!(SlotLimits::new(0), limits(0, 0));
}

#[test]
fn unknown_devices_hold_at_most_max_unproven_slots() {
    let now = Instant::now();
    let mut s = AcceptSlots::new(limits(10, 3));
    for i in 0..3 {
        assert_eq!(s.admit(false), Admission::Accept);
        s.insert(i, key(i as u8), addr(1000 + i as u16), false, now);
    }
    assert_eq!(s.admit(false), Admission::Refuse(Refusal::Busy));
    // A known device still gets in, without evicting anyone (slots are free).
    assert_eq!(s.admit(true), Admission::Accept);
    // Once one stranger proves a shared space, it no longer counts as unproven.
    s.proven(&key(0));
    assert_eq!(s.unproven(), 2);
    assert_eq!(s.admit(false), Admission::Accept);
}

#[test]
fn a_known_device_evicts_the_oldest_unproven_stranger_when_full() {
    let t0 = Instant::now();
    let mut s = AcceptSlots::new(limits(3, 3));
    s.insert(7, key(7), addr(7), false, t0 + Duration::from_millis(5));
    s.insert(3, key(3), addr(3), false, t0 + Duration::from_millis(1));
    s.insert(9, key(9), addr(9), true, t0);
    assert_eq!(s.admit(false), Admission::Refuse(Refusal::Full));
    // 9 is older but known, so the oldest unknown one (3) goes.
    assert_eq!(s.admit(true), Admission::AcceptEvicting(3));
    s.proven(&key(3));
    s.proven(&key(7));
    assert_eq!(s.admit(true), Admission::Refuse(Refusal::Full));
    s.remove(7);
    assert_eq!(s.admit(true), Admission::Accept);
}

#[test]
fn a_penalized_address_waits_one_second_doubling_to_thirty() {
    let t0 = Instant::now();
    let mut s = AcceptSlots::new(SlotLimits::new(10));
    let a = addr(4000);
    assert!(s.may_handshake(t0, a));
    let mut now = t0;
    let mut waits = vec![];
    for _ in 0..7 {
        s.penalize(now, a);
        let mut wait = Duration::ZERO;
        while !s.may_handshake(now + wait, a) {
            wait += Duration::from_millis(250);
        }
        waits.push(wait.as_secs());
        now += wait;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    // Other addresses (another port on the same host) are not affected.
    assert!(s.may_handshake(now, addr(4001)));
}

#[test]
fn proof_lifts_a_penalty_and_old_penalties_are_forgotten() {
    let t0 = Instant::now();
    let mut s = AcceptSlots::new(SlotLimits::new(10));
    s.penalize(t0, addr(1));
    s.penalize(t0, addr(2));
    assert!(!s.may_handshake(t0, addr(1)));
    s.insert(1, key(1), addr(1), false, t0);
    s.proven(&key(1));
    assert!(s.may_handshake(t0, addr(1)));
    assert_eq!(s.penalized(), 1);
    assert!(!s.may_handshake(t0, addr(2)));
    assert!(s.may_handshake(t0 + PENALTY_FORGET, addr(2)));
    assert_eq!(s.penalized(), 0);
}

#[test]
fn penalties_are_bounded_and_drop_the_oldest_first() {
    let t0 = Instant::now();
    let mut s = AcceptSlots::new(SlotLimits::new(10));
    for i in 0..(MAX_PENALTIES as u32 + 10) {
        let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9));
        s.penalize(t0 + Duration::from_millis(i as u64), a);
    }
    assert_eq!(s.penalized(), MAX_PENALTIES);
    // The first ten were dropped, the newest are still refused.
    let now = t0 + Duration::from_millis(MAX_PENALTIES as u64 + 10);
    assert!(s.may_handshake(now, SocketAddr::from(([10, 0, 0, 0], 9))));
    assert!(!s.may_handshake(now, SocketAddr::from(([10, 0, 16, 9], 9))));
}

#[derive(Debug, Clone)]
enum Op {
    Arrive { device: u8, known: bool },
    Prove(u8),
    Leave(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..24, any::<bool>()).prop_map(|(device, known)| Op::Arrive { device, known }),
        1 => (0u8..24).prop_map(Op::Prove),
        1 => (0u8..24).prop_map(Op::Leave),
    ]
}

proptest! {
    /// Whatever arrives, the limits hold, and a known device is refused only when every
    /// slot is held by a known or proven peer.
    #[test]
    fn limits_hold_and_members_are_never_kept_out_by_strangers(
        max_accepted in 0usize..8,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let t0 = Instant::now();
        let mut s = AcceptSlots::new(SlotLimits::new(max_accepted));
        let mut ids: BTreeMap<u8, u64> = BTreeMap::new();
        for (n, op) in ops.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(n as u64);
            match op {
                Op::Arrive { device, known } => {
                    if ids.contains_key(&device) {
                        continue;
                    }
                    let strangers_hold_a_slot = s.unproven() > 0;
                    match s.admit(known) {
                        Admission::Accept => {}
                        Admission::AcceptEvicting(old) => {
                            prop_assert!(known);
                            s.remove(old);
                            ids.retain(|_, id| *id != old);
                        }
                        Admission::Refuse(Refusal::Full) => {
                            prop_assert_eq!(s.len(), max_accepted);
                            prop_assert!(!(known && strangers_hold_a_slot));
                            continue;
                        }
                        Admission::Refuse(Refusal::Busy) => {
                            prop_assert!(!known);
                            continue;
                        }
                    }
                    s.insert(n as u64, key(device), addr(device as u16), known, now);
                    ids.insert(device, n as u64);
                }
                Op::Prove(device) => s.proven(&key(device)),
                Op::Leave(device) => {
                    if let Some(id) = ids.remove(&device) {
                        s.remove(id);
                    }
                }
            }
            prop_assert!(s.len() <= max_accepted);
            prop_assert!(s.unproven() <= SlotLimits::new(max_accepted).max_unproven);
            prop_assert_eq!(s.len(), ids.len());
        }
    }
}
