//! Tests of `PresenceCore`: one rule each, a small in-process mesh of cores for relays, and
//! a proptest over random event sequences. No runtime: time is an `Instant` moved by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::time::Instant;

use super::*;
use crate::types::{KeyPair, PublicKey};

const INTERVAL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(20);

fn config() -> PresenceConfig {
    PresenceConfig {
        interval: INTERVAL,
        timeout: TIMEOUT,
    }
}

fn key(n: u8) -> KeyPair {
    KeyPair::generate(&mut ChaCha20Rng::from_seed([n; 32]))
}

fn space() -> PublicKey {
    key(200).public()
}

/// Device `n` of identity `100 + n`.
struct Peer {
    device: KeyPair,
    identity: PublicKey,
}

fn peer(n: u8) -> Peer {
    Peer {
        device: key(n),
        identity: key(100 + n).public(),
    }
}

fn members(peers: &[&Peer]) -> PresenceInput {
    PresenceInput::Members {
        devices: peers
            .iter()
            .map(|p| (p.device.public(), p.identity))
            .collect(),
        identities: peers.iter().map(|p| p.identity).collect(),
    }
}

fn core_of(p: &Peer) -> PresenceCore {
    PresenceCore::new(config(), space(), p.device.clone(), p.identity)
}

fn frame(p: &Peer, seq: u64, age_ms: u32) -> PresenceFrame {
    PresenceFrame {
        announcement: Announcement::sign(&space(), &p.device, seq),
        age_ms,
    }
}

fn sends(out: &[PresenceOutput]) -> Vec<(ChannelId, PresenceFrame)> {
    out.iter()
        .filter_map(|o| match o {
            PresenceOutput::Send { channel, frame } => Some((*channel, *frame)),
            _ => None,
        })
        .collect()
}

/// A core of `me` with members `all` and one channel (id 1) to `other`, started at `t0`.
fn single(me: &Peer, other: &Peer, all: &[&Peer], t0: Instant) -> PresenceCore {
    let mut c = core_of(me);
    c.handle(t0, PresenceInput::Start { wall_ms: 1_000 });
    c.handle(t0, members(all));
    c.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 1,
            device: other.device.public(),
            identity: Some(other.identity),
        },
    );
    c
}

fn receive(
    c: &mut PresenceCore,
    now: Instant,
    channel: ChannelId,
    f: PresenceFrame,
) -> Vec<PresenceOutput> {
    c.handle(now, PresenceInput::Received { channel, frame: f })
}

#[test]
fn a_device_is_online_after_its_announce() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b], t0);
    assert!(!core.is_online(t0, &b.device.public()));
    assert!(!core.online_identities(t0).contains(&b.identity));
    let out = receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(out.contains(&PresenceOutput::Heard {
        device: b.device.public(),
        identity: b.identity
    }));
    assert!(core.is_online(t0, &b.device.public()));
    assert!(core.online_identities(t0).contains(&b.identity));
    // This device is always online.
    assert!(core.is_online(t0, &a.device.public()));
}

#[test]
fn a_device_is_offline_exactly_when_silent_longer_than_the_timeout() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b], t0);
    receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(core.is_online(t0 + TIMEOUT, &b.device.public()));
    assert!(!core.is_online(t0 + TIMEOUT + Duration::from_millis(1), &b.device.public()));
    assert!(!core
        .online_identities(t0 + TIMEOUT + Duration::from_millis(1))
        .contains(&b.identity));
    // A frame's age counts as silence.
    let t1 = t0 + Duration::from_secs(60);
    receive(&mut core, t1, 1, frame(&b, 6, 5_000));
    assert!(core.is_online(t1 + TIMEOUT - Duration::from_secs(5), &b.device.public()));
    assert!(!core.is_online(
        t1 + TIMEOUT - Duration::from_secs(5) + Duration::from_millis(1),
        &b.device.public()
    ));
}

#[test]
fn it_announces_every_interval_on_member_channels_only() {
    let (a, b, stranger) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = core_of(&a);
    let out = core.handle(t0, PresenceInput::Start { wall_ms: 1_000 });
    assert_eq!(
        out,
        vec![PresenceOutput::SetTimer {
            at: t0 + INTERVAL,
            timer: PresenceTimer::Announce
        }]
    );
    core.handle(t0, members(&[&a, &b]));
    for (channel, p) in [(1, &b), (2, &stranger)] {
        core.handle(
            t0,
            PresenceInput::ChannelOpened {
                channel,
                device: p.device.public(),
                identity: Some(p.identity),
            },
        );
    }
    let t1 = t0 + INTERVAL;
    let out = core.handle(
        t1,
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: 11_000,
        },
    );
    let sent = sends(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    assert_eq!(sent[0].0, 1);
    assert_eq!(sent[0].1.announcement.device, a.device.public());
    assert_eq!(sent[0].1.announcement.seq, 11_000);
    assert!(sent[0].1.announcement.verify(&space()).is_ok());
    assert!(out.contains(&PresenceOutput::SetTimer {
        at: t1 + INTERVAL,
        timer: PresenceTimer::Announce
    }));
    // The seq grows even if the wall clock does not.
    let out = core.handle(
        t1 + INTERVAL,
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: 5,
        },
    );
    assert_eq!(sends(&out)[0].1.announcement.seq, 11_001);
}

#[test]
fn a_node_without_control_state_sends_and_takes_no_presence() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = core_of(&a);
    core.handle(t0, PresenceInput::Start { wall_ms: 1 });
    let out = core.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 1,
            device: b.device.public(),
            identity: Some(b.identity),
        },
    );
    assert!(sends(&out).is_empty());
    let out = receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(out.is_empty());
    assert!(!core.is_online(t0, &b.device.public()));
    let out = core.handle(
        t0 + INTERVAL,
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: 2,
        },
    );
    assert!(sends(&out).is_empty());
}

#[test]
fn frames_from_a_channel_whose_peer_is_not_a_member_are_ignored() {
    let (a, b, stranger) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    // Channel 1 goes to the stranger; b is a member but its frame comes over that channel.
    let mut core = single(&a, &stranger, &[&a, &b], t0);
    assert!(receive(&mut core, t0, 1, frame(&b, 5, 0)).is_empty());
    assert!(receive(&mut core, t0, 1, frame(&stranger, 5, 0)).is_empty());
    assert!(!core.is_online(t0, &b.device.public()));
    assert_eq!(core.tracked(), 0);
    // An unknown channel id, too.
    assert!(receive(&mut core, t0, 9, frame(&b, 5, 0)).is_empty());
}

#[test]
fn a_forged_announcement_is_refused() {
    // m (a member) claims to be b: the frame names b's device but m signed it.
    let (a, b, m) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = single(&a, &m, &[&a, &b, &m], t0);
    let mut forged = frame(&m, 5, 0);
    forged.announcement.device = b.device.public();
    let out = receive(&mut core, t0, 1, forged);
    assert_eq!(
        out,
        vec![PresenceOutput::Refused {
            channel: 1,
            device: b.device.public()
        }]
    );
    assert!(!core.is_online(t0, &b.device.public()));
    // A real announcement of b, with its seq tampered with, fails the same way.
    let mut tampered = frame(&b, 5, 0);
    tampered.announcement.seq = 6;
    assert!(matches!(
        receive(&mut core, t0, 1, tampered)[..],
        [PresenceOutput::Refused { .. }]
    ));
    // One made for another space does not verify here.
    let other_space = PresenceFrame {
        announcement: Announcement::sign(&key(201).public(), &b.device, 7),
        age_ms: 0,
    };
    assert!(matches!(
        receive(&mut core, t0, 1, other_space)[..],
        [PresenceOutput::Refused { .. }]
    ));
    assert!(!core.is_online(t0, &b.device.public()));
    // Forgeries leave no trace: b's real announcement is taken after them.
    let out = receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(
        matches!(out[..], [PresenceOutput::Heard { .. }, ..]),
        "{out:?}"
    );
}

#[test]
fn an_announcement_of_a_device_the_space_does_not_know_is_ignored() {
    let (a, b, outsider) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b], t0);
    // Validly signed by the outsider's own key, relayed by member b.
    assert!(receive(&mut core, t0, 1, frame(&outsider, 5, 0)).is_empty());
    assert!(!core.is_online(t0, &outsider.device.public()));
    assert_eq!(core.tracked(), 0);
}

#[test]
fn a_member_channel_peer_without_admitted_feeds_is_known_by_its_hello() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = core_of(&a);
    core.handle(t0, PresenceInput::Start { wall_ms: 1 });
    // b's identity is a member, its device has no admitted feed yet.
    core.handle(
        t0,
        PresenceInput::Members {
            devices: BTreeMap::from([(a.device.public(), a.identity)]),
            identities: BTreeSet::from([a.identity, b.identity]),
        },
    );
    let out = core.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 1,
            device: b.device.public(),
            identity: Some(b.identity),
        },
    );
    assert_eq!(sends(&out).len(), 1, "greeted with our announcement");
    receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(core.online_identities(t0).contains(&b.identity));
}

#[test]
fn duplicates_and_old_seqs_are_dropped_and_not_relayed() {
    let (a, b, c) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b, &c], t0);
    core.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 2,
            device: c.device.public(),
            identity: Some(c.identity),
        },
    );
    let out = receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert_eq!(sends(&out), vec![(2, frame(&b, 5, 0))], "relayed to c once");
    let later = t0 + INTERVAL;
    assert!(receive(&mut core, later, 2, frame(&b, 5, 0)).is_empty());
    assert!(receive(&mut core, later, 1, frame(&b, 4, 0)).is_empty());
    // A duplicate does not refresh: b goes offline a timeout after its real announcement.
    assert!(!core.is_online(t0 + TIMEOUT + Duration::from_millis(1), &b.device.public()));
}

#[test]
fn at_most_one_announcement_per_device_per_half_interval() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b], t0);
    assert!(!receive(&mut core, t0, 1, frame(&b, 5, 0)).is_empty());
    let soon = t0 + INTERVAL / 2 - Duration::from_millis(1);
    assert!(receive(&mut core, soon, 1, frame(&b, 6, 0)).is_empty());
    let out = receive(&mut core, t0 + INTERVAL / 2, 1, frame(&b, 7, 0));
    assert!(matches!(out[..], [PresenceOutput::Heard { .. }]), "{out:?}");
}

#[test]
fn a_stale_frame_counts_for_its_seq_but_is_offline_and_not_relayed() {
    let (a, b, c) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b, &c], t0);
    core.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 2,
            device: c.device.public(),
            identity: Some(c.identity),
        },
    );
    let stale = ms(TIMEOUT) + 1;
    assert!(receive(&mut core, t0, 1, frame(&b, 5, stale)).is_empty());
    assert!(!core.is_online(t0, &b.device.public()));
    assert!(receive(&mut core, t0 + INTERVAL, 1, frame(&b, 5, 0)).is_empty());
}

fn ms(d: Duration) -> u32 {
    d.as_millis() as u32
}

#[test]
fn a_removed_member_is_offline_at_once_and_forgotten() {
    let (a, b) = (peer(1), peer(2));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b], t0);
    receive(&mut core, t0, 1, frame(&b, 5, 0));
    assert!(core.is_online(t0, &b.device.public()));
    core.handle(t0, members(&[&a]));
    assert!(!core.is_online(t0, &b.device.public()));
    assert_eq!(core.tracked(), 0);
    // Its channel is no member channel any more: nothing goes there.
    let out = core.handle(
        t0 + INTERVAL,
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: 50_000,
        },
    );
    assert!(sends(&out).is_empty(), "{out:?}");
}

#[test]
fn a_new_member_channel_gets_the_catch_up_with_ages() {
    let (a, b, c) = (peer(1), peer(2), peer(3));
    let t0 = Instant::now();
    let mut core = single(&a, &b, &[&a, &b, &c], t0);
    receive(&mut core, t0, 1, frame(&b, 5, 0));
    let t1 = t0 + Duration::from_secs(3);
    let out = core.handle(
        t1,
        PresenceInput::ChannelOpened {
            channel: 2,
            device: c.device.public(),
            identity: Some(c.identity),
        },
    );
    let sent = sends(&out);
    assert_eq!(sent.len(), 2, "{out:?}");
    assert!(sent.iter().all(|(ch, f)| *ch == 2 && f.age_ms == 3_000));
    let devices: BTreeSet<_> = sent.iter().map(|(_, f)| f.announcement.device).collect();
    assert_eq!(
        devices,
        BTreeSet::from([a.device.public(), b.device.public()])
    );
    // Only once.
    let out = core.handle(t1, members(&[&a, &b, &c]));
    assert!(sends(&out).is_empty());
}

/// Cores joined by channels; `drive` delivers every frame until none is left, counting
/// frames per (from, to).
struct Mesh {
    peers: Vec<Peer>,
    cores: Vec<PresenceCore>,
    /// (core, channel) -> (other core, its channel id for us).
    links: BTreeMap<(usize, ChannelId), (usize, ChannelId)>,
    queue: Vec<(usize, ChannelId, PresenceFrame)>,
    delivered: BTreeMap<(usize, usize, PublicKey, u64), usize>,
}

impl Mesh {
    fn new(n: u8, edges: &[(usize, usize)], t0: Instant) -> Mesh {
        let peers: Vec<Peer> = (1..=n).map(peer).collect();
        let all: Vec<&Peer> = peers.iter().collect();
        let mut cores: Vec<PresenceCore> = peers.iter().map(core_of).collect();
        for (i, c) in cores.iter_mut().enumerate() {
            c.handle(
                t0,
                PresenceInput::Start {
                    wall_ms: 1_000 + i as u64,
                },
            );
            c.handle(t0, members(&all));
        }
        let mut mesh = Mesh {
            peers,
            cores,
            links: BTreeMap::new(),
            queue: vec![],
            delivered: BTreeMap::new(),
        };
        for &(x, y) in edges {
            mesh.links.insert((x, y as u64), (y, x as u64));
            mesh.links.insert((y, x as u64), (x, y as u64));
            for (me, other) in [(x, y), (y, x)] {
                let out = mesh.cores[me].handle(
                    t0,
                    PresenceInput::ChannelOpened {
                        channel: other as u64,
                        device: mesh.peers[other].device.public(),
                        identity: Some(mesh.peers[other].identity),
                    },
                );
                mesh.push(me, out);
            }
        }
        mesh
    }

    fn push(&mut self, from: usize, out: Vec<PresenceOutput>) {
        for (channel, frame) in sends(&out) {
            self.queue.push((from, channel, frame));
        }
    }

    fn drive(&mut self, now: Instant) {
        while !self.queue.is_empty() {
            let (from, channel, frame) = self.queue.remove(0);
            // A frame to a core that is gone is lost.
            let Some(&(to, their_channel)) = self.links.get(&(from, channel)) else {
                continue;
            };
            let a = frame.announcement;
            *self
                .delivered
                .entry((from, to, a.device, a.seq))
                .or_default() += 1;
            let out = receive(&mut self.cores[to], now, their_channel, frame);
            self.push(to, out);
        }
    }

    fn tick(&mut self, now: Instant, wall_ms: u64) {
        for i in 0..self.cores.len() {
            let out = self.cores[i].handle(
                now,
                PresenceInput::Timer {
                    timer: PresenceTimer::Announce,
                    wall_ms,
                },
            );
            self.push(i, out);
        }
        self.drive(now);
    }
}

#[test]
fn presence_crosses_hops_a_sees_c_through_b() {
    let t0 = Instant::now();
    let mut mesh = Mesh::new(3, &[(0, 1), (1, 2)], t0);
    mesh.drive(t0);
    let c = mesh.peers[2].device.public();
    let a = mesh.peers[0].device.public();
    assert!(mesh.cores[0].is_online(t0, &c));
    assert!(mesh.cores[2].is_online(t0, &a));
    // Kept online by the announcements, every interval.
    let mut now = t0;
    for round in 1..=5u64 {
        now += INTERVAL;
        mesh.tick(now, 1_000_000 * round);
        assert!(mesh.cores[0].is_online(now + TIMEOUT, &c));
    }
    // C stops: A sees it offline once the timeout passes.
    mesh.cores.truncate(2);
    mesh.links.retain(|(x, _), (y, _)| *x < 2 && *y < 2);
    now += INTERVAL;
    mesh.tick(now, 9_000_000);
    assert!(mesh.cores[0].is_online(now - INTERVAL + TIMEOUT, &c));
    assert!(!mesh.cores[0].is_online(now - INTERVAL + TIMEOUT + Duration::from_millis(1), &c));
}

#[test]
fn in_a_looped_mesh_each_announcement_crosses_each_channel_at_most_once() {
    let t0 = Instant::now();
    // Every pair of 5 cores connected: the worst loop.
    let edges: Vec<(usize, usize)> = (0..5)
        .flat_map(|x| ((x + 1)..5).map(move |y| (x, y)))
        .collect();
    let mut mesh = Mesh::new(5, &edges, t0);
    mesh.drive(t0);
    let mut now = t0;
    for round in 1..=3u64 {
        now += INTERVAL;
        mesh.tick(now, 1_000_000 * round);
    }
    assert!(!mesh.delivered.is_empty());
    assert!(
        mesh.delivered.values().all(|n| *n == 1),
        "{:?}",
        mesh.delivered
    );
    for (i, core) in mesh.cores.iter().enumerate() {
        assert_eq!(core.online_devices(now).len(), 5, "core {i}");
    }
    // Per tick at most devices x directed channels frames.
    let per_round = mesh
        .delivered
        .keys()
        .filter(|(_, _, _, seq)| *seq == 3_000_000)
        .count();
    assert!(per_round <= 5 * edges.len() * 2, "{per_round}");
}

#[test]
fn memory_stays_bounded_by_the_known_devices() {
    let a = peer(1);
    let t0 = Instant::now();
    let mut core = core_of(&a);
    core.handle(t0, PresenceInput::Start { wall_ms: 1 });
    // More known devices than MAX_TRACKED, all announcing through one member channel.
    let relay = peer(2);
    let many: Vec<KeyPair> = (0..(MAX_TRACKED + 10) as u64)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            KeyPair::generate(&mut ChaCha20Rng::from_seed(seed))
        })
        .collect();
    let mut devices: BTreeMap<PublicKey, PublicKey> =
        many.iter().map(|k| (k.public(), relay.identity)).collect();
    devices.insert(relay.device.public(), relay.identity);
    core.handle(
        t0,
        PresenceInput::Members {
            devices,
            identities: BTreeSet::from([a.identity, relay.identity]),
        },
    );
    core.handle(
        t0,
        PresenceInput::ChannelOpened {
            channel: 1,
            device: relay.device.public(),
            identity: Some(relay.identity),
        },
    );
    for k in &many {
        let f = PresenceFrame {
            announcement: Announcement::sign(&space(), k, 5),
            age_ms: 0,
        };
        receive(&mut core, t0, 1, f);
        assert!(core.tracked() <= MAX_TRACKED);
    }
    assert_eq!(core.tracked(), MAX_TRACKED);
    // Unknown devices never take memory.
    for n in 0..50u8 {
        receive(&mut core, t0, 1, frame(&peer(50 + n), 9, 0));
    }
    assert_eq!(core.tracked(), MAX_TRACKED);
    // The devices leave the control state: forgotten once offline.
    core.handle(t0, members(&[&a, &relay]));
    assert_eq!(core.tracked(), MAX_TRACKED, "still online, kept");
    core.handle(
        t0 + TIMEOUT + Duration::from_millis(1),
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: 2,
        },
    );
    assert_eq!(core.tracked(), 0);
}

#[test]
fn huge_intervals_are_clamped_and_never_overflow() {
    let a = peer(1);
    let mut core = PresenceCore::new(
        PresenceConfig {
            interval: Duration::MAX,
            timeout: Duration::MAX,
        },
        space(),
        a.device.clone(),
        a.identity,
    );
    assert_eq!(core.config().interval, PresenceConfig::MAX_INTERVAL);
    let out = core.handle(Instant::now(), PresenceInput::Start { wall_ms: u64::MAX });
    assert_eq!(out.len(), 1);
    let b = peer(2);
    core.handle(Instant::now(), members(&[&a, &b]));
    core.handle(
        Instant::now(),
        PresenceInput::ChannelOpened {
            channel: 1,
            device: b.device.public(),
            identity: Some(b.identity),
        },
    );
    receive(&mut core, Instant::now(), 1, frame(&b, u64::MAX, u32::MAX));
    let out = core.handle(
        Instant::now(),
        PresenceInput::Timer {
            timer: PresenceTimer::Announce,
            wall_ms: u64::MAX,
        },
    );
    assert_eq!(sends(&out)[0].1.announcement.seq, u64::MAX);
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u16),
    Receive {
        channel: u8,
        device: u8,
        seq: u8,
        age: u16,
        forged: bool,
    },
    Tick,
    Open(u8),
    Close(u8),
    Members(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u16..30_000).prop_map(Op::Advance),
        (0u8..4, 0u8..5, 0u8..20, 0u16..25_000, any::<bool>()).prop_map(
            |(channel, device, seq, age, forged)| Op::Receive {
                channel,
                device,
                seq,
                age,
                forged
            }
        ),
        Just(Op::Tick),
        (0u8..4).prop_map(Op::Open),
        (0u8..4).prop_map(Op::Close),
        any::<u8>().prop_map(Op::Members),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever happens, nothing panics, and a device is online exactly while the silence
    /// since it was last heard (less the frame's age) is at most the timeout.
    #[test]
    fn online_exactly_while_silence_is_within_the_timeout(ops in proptest::collection::vec(op(), 1..80)) {
        let me = peer(1);
        let others: Vec<Peer> = (2..7).map(peer).collect();
        let t0 = Instant::now();
        let mut now = t0;
        let mut core = core_of(&me);
        core.handle(now, PresenceInput::Start { wall_ms: 1 });
        let mut all: Vec<&Peer> = vec![&me];
        all.extend(others.iter());
        core.handle(now, members(&all));
        // Device -> the instant it was last heard, less its age (the model).
        let mut heard: BTreeMap<PublicKey, Instant> = BTreeMap::new();
        let mut seqs: BTreeMap<u8, u64> = BTreeMap::new();
        let mut wall = 1u64;
        for op in ops {
            match op {
                Op::Advance(ms) => now += Duration::from_millis(u64::from(ms)),
                Op::Receive { channel, device, seq, age, forged } => {
                    let p = &others[device as usize];
                    let s = seqs.entry(device).or_insert(0);
                    *s += u64::from(seq);
                    let mut f = frame(p, *s, u32::from(age));
                    if forged {
                        f.announcement.signature = Announcement::sign(&space(), &me.device, *s).signature;
                    }
                    let out = receive(&mut core, now, u64::from(channel), f);
                    for o in &out {
                        if let PresenceOutput::Heard { device, .. } = o {
                            prop_assert!(!forged);
                            let origin = now - Duration::from_millis(u64::from(age));
                            let e = heard.entry(*device).or_insert(origin);
                            *e = (*e).max(origin);
                        }
                    }
                }
                Op::Tick => {
                    wall += 10_000;
                    core.handle(now, PresenceInput::Timer { timer: PresenceTimer::Announce, wall_ms: wall });
                }
                Op::Open(c) => {
                    let p = &others[c as usize];
                    core.handle(now, PresenceInput::ChannelOpened {
                        channel: u64::from(c),
                        device: p.device.public(),
                        identity: Some(p.identity),
                    });
                }
                Op::Close(c) => {
                    core.handle(now, PresenceInput::ChannelClosed { channel: u64::from(c) });
                }
                Op::Members(mask) => {
                    let mut list: Vec<&Peer> = vec![&me];
                    list.extend(others.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, p)| p));
                    core.handle(now, members(&list));
                    for (i, p) in others.iter().enumerate() {
                        if mask & (1 << i) == 0 {
                            heard.remove(&p.device.public());
                        }
                    }
                }
            }
            for p in &others {
                let d = p.device.public();
                let expected = heard.get(&d).is_some_and(|h| now.duration_since(*h) <= TIMEOUT);
                prop_assert_eq!(core.is_online(now, &d), expected, "device {}", d.short());
            }
            prop_assert!(core.tracked() <= others.len());
        }
    }
}
