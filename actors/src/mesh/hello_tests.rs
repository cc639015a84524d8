//! `HelloCore` driven without QUIC: two cores joined by an in-memory pair that carries
//! their streams and answers their questions to spaces from a membership table. The rule
//! tests check outputs exactly; the proptest delivers every pending event in a random order
//! (both sides opening the same spaces at once) and checks that each side ends with exactly
//! one channel per shared space, on the same stream as the other side, and holds no stream
//! that is neither a channel nor ended.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::credentials::authorize_device;
use crate::space::PeerRefused;
use crate::types::KeyPair;

const NOW_MS: u64 = 1_700_000_000_000;

fn space(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

/// A device with its `AuthorizedDevice` credential.
struct Device {
    key: PublicKey,
    auth: Box<Credential>,
}

fn device(seed: u8) -> Device {
    let identity = KeyPair::from_secret([seed; 32]);
    let device = KeyPair::from_secret([seed.wrapping_add(100); 32]);
    Device {
        key: device.public(),
        auth: Box::new(authorize_device(&identity, device.public(), NOW_MS)),
    }
}

fn hello(space: &PublicKey, d: &Device) -> FirstFrame {
    FirstFrame::Hello {
        topic: space_topic(space),
        device_auth: d.auth.clone(),
    }
}

/// The close of a connection whose peer showed no shared space.
fn stranger_close() -> HelloOutput {
    HelloOutput::Close {
        code: close::NOT_A_MEMBER,
        reason: "not a member",
        stranger: true,
    }
}

fn reset(stream: StreamId, code: u32) -> HelloOutput {
    HelloOutput::Reset { stream, code }
}

fn t0() -> Instant {
    Instant::now()
}

#[test]
fn an_accepted_connection_has_two_seconds_a_dialed_one_fifteen() {
    let (a, b) = (device(1), device(2));
    let now = t0();
    let mut accepted = HelloCore::new(a.key, b.key, false);
    assert_eq!(
        accepted.start(now),
        vec![HelloOutput::SetTimer {
            at: now + STRANGER_DEADLINE,
            timer: HelloTimer::Deadline
        }]
    );
    assert_eq!(STRANGER_DEADLINE, Duration::from_secs(2));
    let mut dialed = HelloCore::new(a.key, b.key, true);
    assert_eq!(
        dialed.start(now),
        vec![HelloOutput::SetTimer {
            at: now + IDLE_NO_CHANNEL,
            timer: HelloTimer::Deadline
        }]
    );
    // The deadline closes a connection with no open channel as a stranger's ...
    let out = accepted.handle(
        now + STRANGER_DEADLINE,
        HelloInput::Timer(HelloTimer::Deadline),
    );
    assert_eq!(out, vec![stranger_close()]);
    assert!(accepted.is_closed());
    assert!(accepted
        .handle(now, HelloInput::OpenWanted(space(1)))
        .is_empty());
}

/// Brings `core` (the acceptor) to an open channel for `s` on `stream` from `peer`.
fn accept_channel(core: &mut HelloCore, s: PublicKey, stream: StreamId, peer: &Device) {
    let now = t0();
    let out = core.handle(
        now,
        HelloInput::First {
            stream,
            frame: hello(&s, peer),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::Lookup {
            stream,
            topic: space_topic(&s)
        }]
    );
    let out = core.handle(
        now,
        HelloInput::Found {
            stream,
            space: Some(s),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::Authorize {
            stream,
            space: s,
            device_auth: peer.auth.clone()
        }]
    );
    let out = core.handle(
        now,
        HelloInput::Authorized {
            stream,
            result: Ok(()),
        },
    );
    assert_eq!(out, vec![HelloOutput::AnswerHello { stream, space: s }]);
    let out = core.handle(
        now,
        HelloInput::Answered {
            stream,
            result: Ok(()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::StartChannel {
            stream,
            space: s,
            peer_auth: peer.auth.clone(),
            leaving: false
        }]
    );
}

/// The peer's stream `stream` asks for `s` (which we hold); returns what the core does
/// once the credential check gives `result`.
fn incoming_hello(
    core: &mut HelloCore,
    s: PublicKey,
    stream: StreamId,
    peer: &Device,
    result: Result<(), String>,
) -> Vec<HelloOutput> {
    core.handle(
        t0(),
        HelloInput::First {
            stream,
            frame: hello(&s, peer),
        },
    );
    core.handle(
        t0(),
        HelloInput::Found {
            stream,
            space: Some(s),
        },
    );
    core.handle(
        t0(),
        HelloInput::Authorized {
            stream,
            result: result.map_err(PeerRefused::from),
        },
    )
}

/// We open `s` (allowed) on `stream` and the peer answers with `answer`; returns the
/// core's outputs for the answer.
fn open_ours(
    core: &mut HelloCore,
    s: PublicKey,
    stream: StreamId,
    answer: FirstFrame,
) -> Vec<HelloOutput> {
    core.handle(t0(), HelloInput::OpenWanted(s));
    core.handle(
        t0(),
        HelloInput::MayOpen {
            space: s,
            allowed: true,
        },
    );
    core.handle(t0(), HelloInput::Opened { space: s, stream });
    core.handle(
        t0(),
        HelloInput::Answer {
            stream,
            frame: answer,
        },
    )
}

#[test]
fn a_member_opens_a_channel_and_the_deadline_then_passes() {
    let (a, b) = (device(1), device(2));
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(t0());
    accept_channel(&mut core, space(7), 1, &b);
    assert_eq!(core.open_channels(), vec![space(7)]);
    assert!(core
        .handle(t0(), HelloInput::Timer(HelloTimer::Deadline))
        .is_empty());
    // A second stream for the same space is a duplicate.
    let out = incoming_hello(&mut core, space(7), 2, &b, Ok(()));
    assert_eq!(
        out,
        vec![HelloOutput::Reset {
            stream: 2,
            code: close::DUPLICATE
        }]
    );
}

#[test]
fn a_refused_hello_closes_a_connection_without_channels_and_only_resets_otherwise() {
    let (a, b) = (device(1), device(2));
    let mut core = HelloCore::new(a.key, b.key, false);
    // Unknown topic, no channel: the stream is reset and the connection closed.
    core.handle(
        t0(),
        HelloInput::First {
            stream: 1,
            frame: hello(&space(9), &b),
        },
    );
    let out = core.handle(
        t0(),
        HelloInput::Found {
            stream: 1,
            space: None,
        },
    );
    assert_eq!(
        out,
        vec![
            HelloOutput::Reset {
                stream: 1,
                code: close::NOT_A_MEMBER
            },
            stranger_close()
        ]
    );
    // With a channel open, a refusal (not a member of the other space) resets only.
    let mut core = HelloCore::new(a.key, b.key, false);
    accept_channel(&mut core, space(7), 1, &b);
    let out = incoming_hello(&mut core, space(8), 3, &b, Err("not a member".into()));
    assert_eq!(
        out,
        vec![HelloOutput::Reset {
            stream: 3,
            code: close::NOT_A_MEMBER
        }]
    );
    assert!(!core.is_closed());
}

#[test]
fn a_first_frame_that_is_not_a_hello_closes_a_strangers_connection_or_resets_the_stream() {
    let (a, b) = (device(1), device(2));
    let mut core = HelloCore::new(a.key, b.key, false);
    let out = core.handle(
        t0(),
        HelloInput::First {
            stream: 1,
            frame: FirstFrame::NotHello("a Heads frame".into()),
        },
    );
    assert_eq!(out, vec![stranger_close()]);
    let mut core = HelloCore::new(a.key, b.key, false);
    accept_channel(&mut core, space(7), 1, &b);
    for (stream, frame) in [
        (2, FirstFrame::NotHello("a malformed frame".into())),
        (3, FirstFrame::Gone("stream ended".into())),
    ] {
        let out = core.handle(t0(), HelloInput::First { stream, frame });
        assert_eq!(out, vec![reset(stream, close::PROTOCOL)]);
    }
    // A silent or ended stream of a stranger is only reset: the deadline deals with it.
    let mut core = HelloCore::new(a.key, b.key, false);
    let out = core.handle(
        t0(),
        HelloInput::First {
            stream: 1,
            frame: FirstFrame::Gone("no frame within 10 s".into()),
        },
    );
    assert_eq!(out, vec![reset(1, close::PROTOCOL)]);
}

#[test]
fn opening_asks_the_space_first_and_checks_the_answer() {
    let (a, b) = (device(1), device(2));
    let s = space(7);
    let mut core = HelloCore::new(a.key, b.key, true);
    assert_eq!(
        core.handle(t0(), HelloInput::OpenWanted(s)),
        vec![HelloOutput::AskMayOpen(s)]
    );
    // Asked again while checking: nothing more.
    assert!(core.handle(t0(), HelloInput::OpenWanted(s)).is_empty());
    // Not allowed: nothing is opened, and a later offer asks again.
    assert!(core
        .handle(
            t0(),
            HelloInput::MayOpen {
                space: s,
                allowed: false
            }
        )
        .is_empty());
    assert_eq!(
        core.handle(t0(), HelloInput::OpenWanted(s)),
        vec![HelloOutput::AskMayOpen(s)]
    );
    assert_eq!(
        core.handle(
            t0(),
            HelloInput::MayOpen {
                space: s,
                allowed: true
            }
        ),
        vec![HelloOutput::OpenStream(s)]
    );
    assert!(core
        .handle(
            t0(),
            HelloInput::Opened {
                space: s,
                stream: 5
            }
        )
        .is_empty());
    // An answer for another space's topic is a protocol error; the channel is not open.
    let out = core.handle(
        t0(),
        HelloInput::Answer {
            stream: 5,
            frame: hello(&space(8), &b),
        },
    );
    assert_eq!(out, vec![reset(5, close::PROTOCOL)]);
    // Again, with the right answer, and a credential that does not check out.
    let out = open_ours(&mut core, s, 6, hello(&s, &b));
    assert_eq!(
        out,
        vec![HelloOutput::Authorize {
            stream: 6,
            space: s,
            device_auth: b.auth.clone()
        }]
    );
    let out = core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 6,
            result: Err("not a member".into()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::Reset {
            stream: 6,
            code: close::NOT_A_MEMBER
        }]
    );
    assert!(core.open_channels().is_empty());
    // And once more, accepted.
    open_ours(&mut core, s, 7, hello(&s, &b));
    let out = core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 7,
            result: Ok(()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::StartChannel {
            stream: 7,
            space: s,
            peer_auth: b.auth.clone(),
            leaving: false
        }]
    );
    assert_eq!(core.open_channels(), vec![s]);
    // The channel ends; the space may be opened again.
    core.handle(t0(), HelloInput::ChannelEnded(s));
    assert!(core.open_channels().is_empty());
    assert_eq!(
        core.handle(t0(), HelloInput::OpenWanted(s)),
        vec![HelloOutput::AskMayOpen(s)]
    );
}

/// Two cores joined in memory. Events wait in one pool and are delivered in an order the
/// test chooses.
struct Pair {
    devices: [Device; 2],
    cores: [HelloCore; 2],
    /// Spaces each side holds, and whether the other side is a member there.
    holds: [BTreeMap<PublicKey, bool>; 2],
    pending: Vec<(usize, HelloInput)>,
    next_stream: StreamId,
    /// Open channels per side: space -> stream.
    open: [BTreeMap<PublicKey, StreamId>; 2],
    /// Streams a side's actor holds (not yet a channel, reset or finished).
    held: [BTreeSet<StreamId>; 2],
    closed: [bool; 2],
}

impl Pair {
    fn new(holds: [BTreeMap<PublicKey, bool>; 2]) -> Self {
        let devices = [device(1), device(2)];
        let cores = [
            HelloCore::new(devices[0].key, devices[1].key, true),
            HelloCore::new(devices[1].key, devices[0].key, false),
        ];
        Pair {
            devices,
            cores,
            holds,
            pending: vec![],
            next_stream: 1,
            open: [BTreeMap::new(), BTreeMap::new()],
            held: [BTreeSet::new(), BTreeSet::new()],
            closed: [false, false],
        }
    }

    fn deliver(&mut self, index: usize) {
        // One task of the actor opens a stream, writes the Hello, reports `Opened`, then
        // reads the answer: `Answer` never overtakes `Opened` of its stream.
        let mut index = index;
        if let (side, HelloInput::Answer { stream, .. }) = &self.pending[index] {
            let (side, stream) = (*side, *stream);
            if let Some(first) = self.pending.iter().position(|(s, i)| {
                *s == side && matches!(i, HelloInput::Opened { stream: o, .. } if *o == stream)
            }) {
                index = first;
            }
        }
        let (side, input) = self.pending.remove(index);
        if self.closed[side] {
            return;
        }
        let shown = format!("{input:?}");
        let outputs = self.cores[side].handle(t0(), input);
        if std::env::var("HELLO_TRACE").is_ok() {
            let short: String = shown.chars().take(90).collect();
            let outs: Vec<String> = outputs
                .iter()
                .map(|o| format!("{o:?}").chars().take(60).collect())
                .collect();
            eprintln!("{side} <- {short}\n     -> {outs:?}");
        }
        for o in outputs {
            self.carry_out(side, o);
        }
    }

    fn carry_out(&mut self, side: usize, o: HelloOutput) {
        let other = 1 - side;
        match o {
            HelloOutput::AskMayOpen(space) => {
                let allowed = self.holds[side].get(&space).copied().unwrap_or(false);
                self.pending
                    .push((side, HelloInput::MayOpen { space, allowed }));
            }
            HelloOutput::OpenStream(space) => {
                let stream = self.next_stream;
                self.next_stream += 1;
                self.held[side].insert(stream);
                self.pending
                    .push((side, HelloInput::Opened { space, stream }));
                self.held[other].insert(stream);
                let frame = hello(&space, &self.devices[side]);
                self.pending
                    .push((other, HelloInput::First { stream, frame }));
            }
            HelloOutput::Lookup { stream, topic } => {
                let space = self.holds[side]
                    .keys()
                    .find(|s| space_topic(s) == topic)
                    .copied();
                self.pending
                    .push((side, HelloInput::Found { stream, space }));
            }
            HelloOutput::Authorize { stream, space, .. } => {
                let member = self.holds[side].get(&space).copied().unwrap_or(false);
                let result = if member {
                    Ok(())
                } else {
                    Err("not a member".into())
                };
                self.pending
                    .push((side, HelloInput::Authorized { stream, result }));
            }
            HelloOutput::AnswerHello { stream, space } => {
                self.pending.push((
                    side,
                    HelloInput::Answered {
                        stream,
                        result: Ok(()),
                    },
                ));
                let frame = hello(&space, &self.devices[side]);
                self.pending
                    .push((other, HelloInput::Answer { stream, frame }));
            }
            HelloOutput::StartChannel { stream, space, .. } => {
                if self.held[side].remove(&stream) {
                    self.open[side].insert(space, stream);
                } else {
                    // The stream was already given up: the channel ends at once.
                    self.pending.push((side, HelloInput::ChannelEnded(space)));
                }
            }
            HelloOutput::StopChannel(space) => {
                self.open[side].remove(&space);
            }
            HelloOutput::Reset { stream, .. } | HelloOutput::Finish { stream } => {
                if !self.held[side].remove(&stream) {
                    // Not ours (any more): nothing to end.
                    return;
                }
                // The other side sees the stream end: as the answer it waits for, or as
                // the end of a channel on it.
                if let Some((space, _)) = self.open[other].iter().find(|(_, s)| **s == stream) {
                    let space = *space;
                    self.open[other].remove(&space);
                    self.pending.push((other, HelloInput::ChannelEnded(space)));
                } else {
                    self.pending.push((
                        other,
                        HelloInput::Answer {
                            stream,
                            frame: FirstFrame::Gone("reset".into()),
                        },
                    ));
                }
            }
            HelloOutput::Close { .. } => {
                self.closed[side] = true;
                self.closed[other] = true;
            }
            HelloOutput::SetTimer { .. } => {}
        }
    }
}

fn holds(entries: &[(u8, bool)]) -> BTreeMap<PublicKey, bool> {
    entries.iter().map(|(n, m)| (space(*n), *m)).collect()
}

proptest! {
    /// Both sides offer every space at once, events arrive in any order: the shared spaces
    /// end with one channel each, on the same stream on both sides; the others with none;
    /// no side holds a stream that is neither a channel nor ended.
    #[test]
    fn racing_opens_end_with_one_channel_per_shared_space_on_both_sides(
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..400),
        reoffers in 0usize..3,
    ) {
        // Space 1 and 2 are shared; 3 is only on side 0 (side 1 is not a member there).
        let mut pair = Pair::new([
            holds(&[(1, true), (2, true), (3, false)]),
            holds(&[(1, true), (2, true)]),
        ]);
        for side in 0..2 {
            for s in pair.holds[side].keys().copied().collect::<Vec<_>>() {
                pair.pending.push((side, HelloInput::OpenWanted(s)));
            }
        }
        let mut order = order.into_iter();
        for round in 0..=reoffers {
            while !pair.pending.is_empty() {
                let i = match order.next() {
                    Some(ix) => ix.index(pair.pending.len()),
                    None => 0,
                };
                pair.deliver(i);
            }
            // The network actor offers every space again now and then.
            if round < reoffers {
                for side in 0..2 {
                    for s in pair.holds[side].keys().copied().collect::<Vec<_>>() {
                        pair.pending.push((side, HelloInput::OpenWanted(s)));
                    }
                }
            }
        }
        prop_assert!(!pair.closed[0] && !pair.closed[1], "a member's connection was closed");
        let shared = [space(1), space(2)];
        for side in 0..2 {
            prop_assert_eq!(pair.open[side].keys().copied().collect::<Vec<_>>(), shared.to_vec());
            prop_assert_eq!(pair.cores[side].open_channels(), shared.to_vec());
            prop_assert!(pair.held[side].is_empty(), "side {} holds {:?}", side, pair.held[side]);
        }
        prop_assert_eq!(&pair.open[0], &pair.open[1]);
        for (space, stream) in &pair.open[0] {
            prop_assert_eq!(pair.cores[0].channel_stream(space), Some(*stream));
            prop_assert_eq!(pair.cores[1].channel_stream(space), Some(*stream));
        }
    }
}

#[test]
fn a_stranger_with_no_shared_space_is_closed_by_the_pair_too() {
    // Side 1 holds nothing side 0 offers, and is not a member of side 0's space.
    let mut pair = Pair::new([holds(&[(3, false)]), holds(&[(4, false)])]);
    pair.pending.push((0, HelloInput::OpenWanted(space(3))));
    pair.pending.push((1, HelloInput::OpenWanted(space(4))));
    while !pair.pending.is_empty() {
        pair.deliver(0);
    }
    // Neither may open to the other; the deadline then closes the connection.
    assert!(pair.open[0].is_empty() && pair.open[1].is_empty());
    let out = pair.cores[1].handle(
        t0() + IDLE_NO_CHANNEL,
        HelloInput::Timer(HelloTimer::Deadline),
    );
    assert!(matches!(
        out.as_slice(),
        [HelloOutput::Close { stranger: true, .. }]
    ));
}

#[test]
fn a_side_stream_holds_a_strangers_connection_and_the_deadline_restarts_when_it_ends() {
    let (a, b) = (device(1), device(2));
    let now = t0();
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(now);
    // An invitation handshake opens on the connection of a device that shares no space.
    assert!(core.handle(now, HelloInput::SideOpened(9)).is_empty());
    let late = now + STRANGER_DEADLINE;
    assert!(core
        .handle(late, HelloInput::Timer(HelloTimer::Deadline))
        .is_empty());
    // A Hello for a space we do not have is refused, but the connection stays.
    let out = core.handle(
        late,
        HelloInput::First {
            stream: 3,
            frame: hello(&space(5), &b),
        },
    );
    assert!(matches!(
        out.as_slice(),
        [HelloOutput::Lookup { stream: 3, .. }]
    ));
    let out = core.handle(
        late,
        HelloInput::Found {
            stream: 3,
            space: None,
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::Reset {
            stream: 3,
            code: close::NOT_A_MEMBER
        }]
    );
    // So does a first frame that is not a Hello.
    let out = core.handle(
        late,
        HelloInput::First {
            stream: 4,
            frame: FirstFrame::NotHello("a Heads frame".into()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::Reset {
            stream: 4,
            code: close::PROTOCOL
        }]
    );
    // An unknown side stream ending changes nothing.
    assert!(core.handle(late, HelloInput::SideEnded(8)).is_empty());
    // The handshake ends: the deadline starts again from now.
    let ended = late + Duration::from_secs(60);
    assert_eq!(
        core.handle(ended, HelloInput::SideEnded(9)),
        vec![HelloOutput::SetTimer {
            at: ended + STRANGER_DEADLINE,
            timer: HelloTimer::Deadline
        }]
    );
    // A stale deadline timer does not close early; the new one does.
    assert!(core
        .handle(ended, HelloInput::Timer(HelloTimer::Deadline))
        .is_empty());
    assert_eq!(
        core.handle(
            ended + STRANGER_DEADLINE,
            HelloInput::Timer(HelloTimer::Deadline)
        ),
        vec![stranger_close()]
    );
}

#[test]
fn a_side_stream_ending_on_a_connection_with_a_channel_sets_no_deadline() {
    let (a, b) = (device(1), device(2));
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(t0());
    core.handle(t0(), HelloInput::SideOpened(9));
    accept_channel(&mut core, space(7), 1, &b);
    assert!(core.handle(t0(), HelloInput::SideEnded(9)).is_empty());
    assert!(core
        .handle(
            t0() + STRANGER_DEADLINE,
            HelloInput::Timer(HelloTimer::Deadline)
        )
        .is_empty());
}

#[test]
fn a_vouched_side_stream_keeps_its_peer_from_being_reported_a_stranger() {
    let (a, b) = (device(1), device(2));
    let now = t0();
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(now);
    core.handle(now, HelloInput::SideOpened(9));
    // Vouching for a stream that is not open changes nothing.
    core.handle(now, HelloInput::SideVouched(8));
    core.handle(now, HelloInput::SideVouched(9));
    let ended = now + Duration::from_secs(30);
    core.handle(ended, HelloInput::SideEnded(9));
    let out = core.handle(
        ended + STRANGER_DEADLINE,
        HelloInput::Timer(HelloTimer::Deadline),
    );
    assert_eq!(
        out,
        vec![HelloOutput::Close {
            code: close::NOT_A_MEMBER,
            reason: "not a member",
            stranger: false,
        }]
    );
    // Without the vouch the same close is a stranger's.
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(now);
    core.handle(now, HelloInput::SideOpened(9));
    core.handle(now, HelloInput::SideVouched(8));
    core.handle(ended, HelloInput::SideEnded(9));
    let out = core.handle(
        ended + STRANGER_DEADLINE,
        HelloInput::Timer(HelloTimer::Deadline),
    );
    assert_eq!(out, vec![stranger_close()]);
}

#[test]
fn a_device_that_names_a_space_we_hold_is_refused_but_not_reported_a_stranger() {
    let (a, b) = (device(1), device(2));
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(t0());
    // It knows the space (its topic) and its credential is good, but it is no member yet:
    // refused, closed, not penalized.
    core.handle(
        t0(),
        HelloInput::First {
            stream: 1,
            frame: hello(&space(7), &b),
        },
    );
    core.handle(
        t0(),
        HelloInput::Found {
            stream: 1,
            space: Some(space(7)),
        },
    );
    let out = core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 1,
            result: Err(PeerRefused {
                reason: "identity b is not a member".into(),
                newcomer: true,
                former_member: false,
            }),
        },
    );
    assert_eq!(
        out,
        vec![
            reset(1, close::NOT_A_MEMBER),
            HelloOutput::Close {
                code: close::NOT_A_MEMBER,
                reason: "not a member",
                stranger: false,
            }
        ]
    );
    // A forged credential, or a REMOVED member's, is not a newcomer's: a stranger close.
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(t0());
    let out = incoming_hello(
        &mut core,
        space(7),
        1,
        &b,
        Err("device credential: bad".into()),
    );
    assert_eq!(out, vec![reset(1, close::NOT_A_MEMBER), stranger_close()]);
}

/// The refusal of a former member (a REMOVED identity, a revoked device).
fn former_member() -> PeerRefused {
    PeerRefused {
        reason: "identity b was removed from the space".into(),
        newcomer: false,
        former_member: true,
    }
}

#[test]
fn a_former_member_is_answered_with_a_leaving_channel_and_then_closed_as_a_stranger() {
    let (a, b) = (device(1), device(2));
    let now = t0();
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(now);
    let s = space(7);
    core.handle(
        now,
        HelloInput::First {
            stream: 1,
            frame: hello(&s, &b),
        },
    );
    core.handle(
        now,
        HelloInput::Found {
            stream: 1,
            space: Some(s),
        },
    );
    let out = core.handle(
        now,
        HelloInput::Authorized {
            stream: 1,
            result: Err(former_member()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::AnswerHello {
            stream: 1,
            space: s
        }]
    );
    let out = core.handle(
        now,
        HelloInput::Answered {
            stream: 1,
            result: Ok(()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::StartChannel {
            stream: 1,
            space: s,
            peer_auth: b.auth.clone(),
            leaving: true
        }]
    );
    // Not a channel peer of the space.
    assert!(core.open_channels().is_empty());
    assert_eq!(core.channel_stream(&s), None);
    // A second Hello for the space meanwhile is refused: one leaving channel at a time.
    let out = incoming_hello(&mut core, s, 3, &b, Err("removed".into()));
    assert_eq!(out, vec![reset(3, close::NOT_A_MEMBER)]);
    let out = core.handle(
        now,
        HelloInput::First {
            stream: 5,
            frame: hello(&s, &b),
        },
    );
    assert_eq!(out.len(), 1);
    core.handle(
        now,
        HelloInput::Found {
            stream: 5,
            space: Some(s),
        },
    );
    let out = core.handle(
        now,
        HelloInput::Authorized {
            stream: 5,
            result: Err(former_member()),
        },
    );
    assert_eq!(out, vec![reset(5, close::NOT_A_MEMBER)]);
    // The deadline does not cut the leaving channel short ...
    let at = now + STRANGER_DEADLINE;
    assert_eq!(
        core.handle(at, HelloInput::Timer(HelloTimer::Deadline)),
        vec![]
    );
    // ... and starts again once it ended; then the connection is closed as a stranger's.
    let later = at + Duration::from_secs(1);
    assert_eq!(
        core.handle(later, HelloInput::ChannelEnded(s)),
        vec![HelloOutput::SetTimer {
            at: later + STRANGER_DEADLINE,
            timer: HelloTimer::Deadline
        }]
    );
    assert_eq!(
        core.handle(
            later + STRANGER_DEADLINE,
            HelloInput::Timer(HelloTimer::Deadline)
        ),
        vec![stranger_close()]
    );
}

#[test]
fn a_former_member_that_answers_our_hello_gets_a_leaving_channel_others_a_reset() {
    let (a, b) = (device(1), device(2));
    let s = space(7);
    let mut core = HelloCore::new(a.key, b.key, true);
    core.start(t0());
    open_ours(&mut core, s, 2, hello(&s, &b));
    let out = core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 2,
            result: Err(former_member()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::StartChannel {
            stream: 2,
            space: s,
            peer_auth: b.auth.clone(),
            leaving: true
        }]
    );
    assert!(core.open_channels().is_empty());
    // While it runs, the space is not opened again.
    assert_eq!(core.handle(t0(), HelloInput::OpenWanted(s)), vec![]);
    core.handle(t0(), HelloInput::ChannelEnded(s));
    // Any other refusal of the answer resets our stream.
    open_ours(&mut core, s, 4, hello(&s, &b));
    let out = core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 4,
            result: Err("device credential: bad".into()),
        },
    );
    assert_eq!(out, vec![reset(4, close::NOT_A_MEMBER)]);
}

#[test]
fn a_channel_that_replaces_a_leaving_one_stops_it_first() {
    let (a, b) = (device(1), device(2));
    let s = space(7);
    let mut core = HelloCore::new(a.key, b.key, false);
    core.start(t0());
    open_ours(&mut core, s, 2, hello(&s, &b));
    core.handle(
        t0(),
        HelloInput::Authorized {
            stream: 2,
            result: Err(former_member()),
        },
    );
    // Re-admitted meanwhile, the peer opens the space again: accepted, and the leaving
    // channel is stopped before the new one starts.
    let out = incoming_hello(&mut core, s, 3, &b, Ok(()));
    assert_eq!(
        out,
        vec![
            HelloOutput::StopChannel(s),
            HelloOutput::AnswerHello {
                stream: 3,
                space: s
            }
        ]
    );
    let out = core.handle(
        t0(),
        HelloInput::Answered {
            stream: 3,
            result: Ok(()),
        },
    );
    assert_eq!(
        out,
        vec![HelloOutput::StartChannel {
            stream: 3,
            space: s,
            peer_auth: b.auth.clone(),
            leaving: false
        }]
    );
    assert_eq!(core.open_channels(), vec![s]);
}
