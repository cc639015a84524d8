//! The invitation cores driven against each other in memory: one host, any number of
//! guests, frames delivered in a chosen or random order. Rule tests check the guest's
//! states, the reasons it reports and the host's persisted records; a proptest checks the
//! invariants under random interleavings and codes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::guest::{GuestParams, Outcome};
use super::host::MAX_ATTEMPTS;
use super::*;
use crate::credentials::{authorize_device, Role};
use crate::types::{KeyPair, PublicKey};

pub(super) const T0: u64 = 1_700_000_000_000;
pub(super) const MINUTE: u64 = 60_000;
pub(super) const DAY: u64 = 24 * 60 * MINUTE;
pub(super) const ID: [u8; 16] = [7; 16];

pub(super) fn record(auth: AuthMethod, multi_use: bool) -> InvitationRecord {
    InvitationRecord {
        id: ID,
        space_key: PublicKey::from_bytes([9; 32]),
        role: Role::Editor,
        auth,
        pin: (auth == AuthMethod::Pin).then(|| "123456".to_string()),
        guest_key: (auth == AuthMethod::Key).then(|| identity(1).public()),
        multi_use,
        created_ms: T0,
        lifetime_ms: DAY,
        handshake_timeout_ms: 3 * MINUTE,
        attempts_left: MAX_ATTEMPTS,
        uses: 0,
        state: InvitationState::Connecting,
        reason: None,
    }
}

pub(super) fn identity(n: u8) -> KeyPair {
    KeyPair::from_secret([n; 32])
}

pub(super) fn params(auth: AuthMethod, who: u8, pin: Option<&str>) -> GuestParams {
    GuestParams {
        invitation_id: ID,
        space_key: PublicKey::from_bytes([9; 32]),
        auth,
        expires_at_ms: T0 + DAY,
        kind: InvitationKind::Space,
        identity_key: identity(who).public(),
        pin: pin.map(str::to_string),
        timeout_ms: 3 * MINUTE,
    }
}

/// The device key of guest `who` (for a device invitation, who it introduces itself as).
pub(super) fn device_of(who: u8) -> KeyPair {
    KeyPair::from_secret([who + 100; 32])
}

/// The grant a device invitation's host (a device of identity 1) gives guest `device`.
pub(super) fn grant_for(device: PublicKey) -> DeviceGrant {
    let host = crate::credentials::Signer::for_device(
        identity(1).public(),
        device_of(1),
        authorize_device(&identity(1), device_of(1).public(), T0),
    );
    DeviceGrant {
        identity_key: identity(1).public(),
        name: Some("Bob".into()),
        device_credential: host.authorize_device(device, T0),
        halo_space_key: PublicKey::from_bytes([9; 32]),
        spaces: vec![PublicKey::from_bytes([10; 32])],
    }
}

/// One host and its guests (guest n is session n), joined in memory.
pub(super) struct World {
    pub(super) now: u64,
    rng: ChaCha20Rng,
    pub(super) host: HostCore,
    guests: BTreeMap<SessionId, (GuestCore, u8)>,
    /// Frames in flight: to the host, or to a guest.
    /// A guest's connection, its frames and its end, in order, to the host.
    to_host: Vec<(SessionId, HostInput)>,
    /// Frames to a guest, and the end of its connection, in the order sent.
    to_guest: Vec<(SessionId, GuestInput)>,
    /// Inputs the guests' actors owe them (signatures, admissions, connection events).
    guest_inputs: Vec<(SessionId, GuestInput)>,
    host_inputs: Vec<HostInput>,
    /// Everything the host put out, in order.
    pub(super) host_log: Vec<HostOutput>,
    /// Everything each guest put out, in order.
    pub(super) guest_log: BTreeMap<SessionId, Vec<GuestOutput>>,
    /// Each guest's states, in order, and its outcome.
    pub(super) states: BTreeMap<SessionId, Vec<InvitationState>>,
    pub(super) outcomes: BTreeMap<SessionId, Outcome>,
    /// The record as last persisted.
    pub(super) persisted: Option<InvitationRecord>,
}

impl World {
    pub(super) fn new(record: InvitationRecord) -> Self {
        Self::with_host(HostCore::new(record))
    }

    /// A world whose host holds a device invitation.
    pub(super) fn device(record: InvitationRecord) -> Self {
        Self::with_host(HostCore::for_device(record))
    }

    fn with_host(host: HostCore) -> Self {
        let mut w = World {
            now: T0,
            rng: ChaCha20Rng::from_seed([3; 32]),
            host,
            guests: BTreeMap::new(),
            to_host: vec![],
            to_guest: vec![],
            guest_inputs: vec![],
            host_inputs: vec![],
            host_log: vec![],
            guest_log: BTreeMap::new(),
            states: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            persisted: None,
        };
        let out = w.host.start(w.now);
        w.host_out(out);
        w
    }

    pub(super) fn add_guest(&mut self, session: SessionId, params: GuestParams, who: u8) {
        let mut core = GuestCore::new(params);
        let out = core.start(self.now);
        self.guests.insert(session, (core, who));
        self.guest_out(session, out);
    }

    pub(super) fn host_in(&mut self, input: HostInput) {
        if std::env::var("INV_TRACE").is_ok() {
            eprintln!(
                "host <- {:?}",
                format!("{input:?}").chars().take(100).collect::<String>()
            );
        }
        let out = self.host.handle(self.now, input, &mut self.rng);
        self.host_out(out);
    }

    fn host_out(&mut self, out: Vec<HostOutput>) {
        for o in out {
            self.host_log.push(o.clone());
            match o {
                HostOutput::Persist(r) => self.persisted = Some(r),
                HostOutput::Send(s, f) => self.to_guest.push((s, GuestInput::Frame(f))),
                HostOutput::CloseSession(s) => self.to_guest.push((s, GuestInput::Disconnected)),
                HostOutput::Admit { session, .. } => self.host_inputs.push(HostInput::Admitted {
                    session,
                    result: Ok(()),
                }),
                HostOutput::AdmitDevice { session, device } => {
                    self.host_inputs.push(HostInput::DeviceAdmitted {
                        session,
                        result: Ok(Box::new(grant_for(device))),
                    })
                }
                HostOutput::SetTimer { .. } | HostOutput::SessionState(..) => {}
            }
        }
    }

    pub(super) fn guest_in(&mut self, session: SessionId, input: GuestInput) {
        if std::env::var("INV_TRACE").is_ok() {
            eprintln!("guest {session} <- {input:?}");
        }
        let Some((core, _)) = self.guests.get_mut(&session) else {
            return;
        };
        let out = core.handle(self.now, input);
        self.guest_out(session, out);
    }

    fn guest_out(&mut self, session: SessionId, out: Vec<GuestOutput>) {
        let who = self.guests[&session].1;
        for o in out {
            self.guest_log.entry(session).or_default().push(o.clone());
            match o {
                GuestOutput::FindHost => {
                    self.guest_inputs.push((session, GuestInput::Connected));
                    self.to_host
                        .push((session, HostInput::GuestConnected(session)));
                }
                GuestOutput::Send(f) => self.to_host.push((session, HostInput::Frame(session, f))),
                GuestOutput::SignChallenge(m) => {
                    // The guest's device signs, with its authorisation by the identity.
                    let device = KeyPair::from_secret([who + 100; 32]);
                    let auth = authorize_device(&identity(who), device.public(), T0);
                    self.guest_inputs.push((
                        session,
                        GuestInput::Signed {
                            signature: device.sign(&m),
                            device_auth: Box::new(auth),
                        },
                    ));
                }
                GuestOutput::PrepareAdmission => {
                    let device = KeyPair::from_secret([who + 100; 32]);
                    let auth = authorize_device(&identity(who), device.public(), T0);
                    self.guest_inputs.push((
                        session,
                        GuestInput::Prepared {
                            device_auth: Box::new(auth),
                            feeds: vec![PublicKey::from_bytes([who; 32])],
                        },
                    ));
                }
                GuestOutput::Close => self.to_host.push((session, HostInput::GuestGone(session))),
                GuestOutput::CheckAdmitted => {
                    // The space shows the admission iff the host admitted this identity.
                    let role = self.host_log.iter().find_map(|o| match o {
                        HostOutput::Admit {
                            identity_key, role, ..
                        } if *identity_key == identity(who).public() => Some(*role),
                        _ => None,
                    });
                    self.guest_inputs
                        .push((session, GuestInput::AdmissionChecked(role)));
                }
                GuestOutput::Adopt(_) => {
                    self.guest_inputs
                        .push((session, GuestInput::Adopted(Ok(()))));
                }
                GuestOutput::SetTimer { .. } => {}
                GuestOutput::State(s) => self.states.entry(session).or_default().push(s),
                GuestOutput::Done(outcome) => {
                    assert!(
                        self.outcomes.insert(session, outcome).is_none(),
                        "guest {session} ended twice"
                    );
                }
            }
        }
    }

    pub(super) fn pending(&self) -> usize {
        self.to_host.len() + self.to_guest.len() + self.guest_inputs.len() + self.host_inputs.len()
    }

    /// Delivers pending event number `i` (in a fixed order of the four queues). Frames on
    /// one connection stay in order: picking one delivers the oldest of its connection.
    pub(super) fn step(&mut self, mut i: usize) {
        if i < self.host_inputs.len() {
            let input = self.host_inputs.remove(i);
            return self.host_in(input);
        }
        i -= self.host_inputs.len();
        if i < self.to_host.len() {
            let session = self.to_host[i].0;
            let first = self
                .to_host
                .iter()
                .position(|(s, _)| *s == session)
                .unwrap();
            let (_, input) = self.to_host.remove(first);
            return self.host_in(input);
        }
        i -= self.to_host.len();
        if i < self.guest_inputs.len() {
            let (s, input) = self.guest_inputs.remove(i);
            return self.guest_in(s, input);
        }
        i -= self.guest_inputs.len();
        let session = self.to_guest[i].0;
        let first = self
            .to_guest
            .iter()
            .position(|(s, _)| *s == session)
            .unwrap();
        let (s, input) = self.to_guest.remove(first);
        self.guest_in(s, input);
    }

    pub(super) fn run(&mut self) {
        while self.pending() > 0 {
            self.step(0);
        }
    }

    pub(super) fn outcome(&self, session: SessionId) -> &Outcome {
        &self.outcomes[&session]
    }

    pub(super) fn reason(&self, session: SessionId) -> &str {
        self.outcome(session).reason.as_deref().unwrap_or("")
    }
}

use InvitationState as S;

#[test]
fn a_guest_with_the_right_pin_walks_every_state_to_success_and_is_admitted_first() {
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.run();
    assert_eq!(
        w.states[&1],
        [
            S::Connecting,
            S::Connected,
            S::ReadyForAuthentication,
            S::Authenticating,
            S::Success
        ]
    );
    assert_eq!(
        w.outcome(1).admitted,
        Some((PublicKey::from_bytes([9; 32]), Role::Editor))
    );
    // The host wrote the membership, then persisted the use, then answered.
    let admit = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::Admit { role: Role::Editor, identity_key, .. } if *identity_key == identity(2).public()))
        .expect("admitted");
    let persist = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::Persist(r) if r.uses == 1))
        .expect("persisted");
    let answered = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::Send(1, HostFrame::Admitted { .. })))
        .expect("answered");
    assert!(admit < persist && persist < answered);
    // Single use: the invitation is over, and a second guest is turned away.
    assert_eq!(w.host.state(), S::Success);
    assert_eq!(w.persisted.as_ref().unwrap().state, S::Success);
    w.add_guest(2, params(AuthMethod::Pin, 3, Some("123456")), 3);
    w.run();
    assert_eq!(w.outcome(2).state, S::Error);
    assert_eq!(w.reason(2), "the invitation is no longer valid");
}

#[test]
fn exactly_three_wrong_codes_end_the_invitation_for_every_guest_together() {
    let mut w = World::new(record(AuthMethod::Pin, true));
    for (session, code, reason) in [
        (1, "000000", "invalid auth code, 2 attempts left"),
        (2, "123457", "invalid auth code, 1 attempt left"),
        (3, "12345", "too many attempts"),
    ] {
        w.add_guest(
            session,
            params(AuthMethod::Pin, session as u8 + 1, Some(code)),
            session as u8 + 1,
        );
        w.run();
        assert_eq!(w.outcome(session).state, S::Error);
        assert_eq!(w.reason(session), reason);
        assert_eq!(
            w.persisted.as_ref().unwrap().attempts_left,
            MAX_ATTEMPTS - session as u8
        );
    }
    assert_eq!(w.host.state(), S::Error);
    assert_eq!(
        w.persisted.as_ref().unwrap().reason.as_deref(),
        Some("too many attempts")
    );
    // The right code is refused now.
    w.add_guest(4, params(AuthMethod::Pin, 5, Some("123456")), 5);
    w.run();
    assert_eq!(w.outcome(4).state, S::Error);
    assert!(!w
        .host_log
        .iter()
        .any(|o| matches!(o, HostOutput::Admit { .. })));
}

#[test]
fn the_attempt_count_survives_a_host_restart() {
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("111111")), 2);
    w.run();
    let saved = w.persisted.clone().unwrap();
    assert_eq!(saved.attempts_left, 2);
    // A new host core from the record, as after a restart.
    let mut w = World::new(saved);
    for (session, code) in [(1, "222222"), (2, "333333")] {
        w.add_guest(session, params(AuthMethod::Pin, 2, Some(code)), 2);
        w.run();
    }
    assert_eq!(w.reason(2), "too many attempts");
    assert_eq!(w.host.state(), S::Error);
}

#[test]
fn key_auth_admits_the_named_identity_only() {
    let mut w = World::new(record(AuthMethod::Key, true));
    w.add_guest(1, params(AuthMethod::Key, 1, None), 1);
    w.run();
    assert_eq!(w.outcome(1).state, S::Success);
    // Another identity is refused at once, without costing an attempt.
    w.add_guest(2, params(AuthMethod::Key, 2, None), 2);
    w.run();
    assert_eq!(w.outcome(2).state, S::Error);
    assert_eq!(w.reason(2), "this invitation is for another identity");
    assert_eq!(w.host.record().attempts_left, MAX_ATTEMPTS);
    // The named identity's device with a signature of the wrong message costs one.
    let device = KeyPair::from_secret([101; 32]);
    let auth = authorize_device(&identity(1), device.public(), T0);
    let w = key_auth_with(|_| device.sign(b"some other message"), auth);
    assert_eq!(w.reason(1), "invalid auth code, 2 attempts left");
}

/// Runs a `key` invitation for identity 1 whose guest answers the challenge with
/// `sign(challenge message)` and `device_auth` instead of what its own device would.
fn key_auth_with(
    sign: impl Fn(&[u8]) -> crate::types::Signature,
    device_auth: crate::credentials::Credential,
) -> World {
    let mut w = World::new(record(AuthMethod::Key, true));
    w.add_guest(1, params(AuthMethod::Key, 1, None), 1);
    while w.pending() > 0 {
        let signed = w
            .guest_inputs
            .iter()
            .position(|(_, i)| matches!(i, GuestInput::Signed { .. }));
        let Some(i) = signed else {
            w.step(0);
            continue;
        };
        let (s, _) = w.guest_inputs.remove(i);
        let challenge = w
            .host_log
            .iter()
            .rev()
            .find_map(|o| match o {
                HostOutput::Send(to, HostFrame::AuthRequired { challenge, .. }) if *to == s => {
                    Some(*challenge)
                }
                _ => None,
            })
            .unwrap();
        let signature = sign(&challenge_message(&ID, &challenge));
        w.guest_in(
            s,
            GuestInput::Signed {
                signature,
                device_auth: Box::new(device_auth.clone()),
            },
        );
    }
    w
}

#[test]
fn key_auth_takes_a_device_authorised_through_a_chain_of_two() {
    // Device 102 was authorised by device 100, which the identity key authorised.
    let first = KeyPair::from_secret([100; 32]);
    let first_auth = authorize_device(&identity(1), first.public(), T0);
    let second = KeyPair::from_secret([102; 32]);
    let second_auth =
        crate::credentials::Signer::for_device(identity(1).public(), first, first_auth)
            .authorize_device(second.public(), T0);
    let w = key_auth_with(|m| second.sign(m), second_auth);
    assert_eq!(w.outcome(1).state, S::Success);
}

#[test]
fn key_auth_refuses_a_device_of_another_identity_and_a_signature_by_another_device() {
    // A device authorised by identity 2 signs correctly for itself: not the named identity.
    let stranger = KeyPair::from_secret([103; 32]);
    let stranger_auth = authorize_device(&identity(2), stranger.public(), T0);
    let w = key_auth_with(|m| stranger.sign(m), stranger_auth);
    assert_eq!(w.reason(1), "invalid auth code, 2 attempts left");
    // Identity 1's authorisation of device 101, but another key signed.
    let device = KeyPair::from_secret([101; 32]);
    let auth = authorize_device(&identity(1), device.public(), T0);
    let w = key_auth_with(|m| stranger.sign(m), auth);
    assert_eq!(w.reason(1), "invalid auth code, 2 attempts left");
    // Identity 1's device, signing for itself, whose authorisation it forged.
    let forged = crate::credentials::Signer {
        issuer: identity(1).public(),
        key: device.clone(),
        chain: None,
    }
    .authorize_device(device.public(), T0);
    let w = key_auth_with(|m| device.sign(m), forged);
    assert_eq!(w.reason(1), "invalid auth code, 2 attempts left");
}

#[test]
fn none_auth_needs_no_code() {
    let mut w = World::new(record(AuthMethod::None, false));
    w.add_guest(1, params(AuthMethod::None, 2, None), 2);
    w.run();
    assert_eq!(w.outcome(1).state, S::Success);
}

#[test]
fn a_pin_invitation_without_a_code_or_with_another_method_fails_clearly() {
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, None), 2);
    w.run();
    assert_eq!(w.states[&1], [S::Error]);
    assert_eq!(w.reason(1), "this invitation needs the 6-digit auth code");
    // The code says `none` but the host asks for a PIN: not trusted.
    w.add_guest(2, params(AuthMethod::None, 2, None), 2);
    w.run();
    assert_eq!(w.outcome(2).state, S::Error);
    assert_eq!(
        w.reason(2),
        "the host asked for 'pin' auth, the invitation says 'none'"
    );
}

#[test]
fn expiry_ends_the_invitation_on_both_sides() {
    // Expired before the host even started again.
    let mut r = record(AuthMethod::Pin, false);
    r.created_ms = T0 - DAY - 1;
    let w = World::new(r);
    assert_eq!(w.host.state(), S::Expired);
    assert_eq!(w.persisted.as_ref().unwrap().state, S::Expired);
    // A guest whose code expired never connects.
    let mut p = params(AuthMethod::Pin, 2, Some("123456"));
    p.expires_at_ms = T0;
    let mut g = GuestCore::new(p);
    let out = g.start(T0);
    assert_eq!(
        out,
        vec![
            GuestOutput::State(S::Expired),
            GuestOutput::Close,
            GuestOutput::Done(Outcome {
                state: S::Expired,
                admitted: None,
                reason: Some("expired".into())
            })
        ]
    );
    // Expiry in the middle of a handshake: the guest waiting for the challenge is told.
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.step(0); // the host hears of the connection
    w.now = T0 + DAY;
    w.host_in(HostInput::Timer(HostTimer::Expiry));
    w.run();
    assert_eq!(w.outcome(1).state, S::Expired);
    assert_eq!(w.host.state(), S::Expired);
}

#[test]
fn cancel_ends_the_handshakes_in_flight_and_turns_new_guests_away() {
    let mut w = World::new(record(AuthMethod::Pin, true));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.step(0);
    w.host_in(HostInput::Cancel);
    w.run();
    assert_eq!(w.outcome(1).state, S::Cancelled);
    assert_eq!(w.reason(1), "cancelled");
    assert_eq!(w.persisted.as_ref().unwrap().state, S::Cancelled);
    w.add_guest(2, params(AuthMethod::Pin, 3, Some("123456")), 3);
    w.run();
    assert_eq!(w.outcome(2).state, S::Cancelled);
}

#[test]
fn timeouts_end_the_handshake_with_their_reason() {
    // The host's handshake timer for a guest that stalls.
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.step(0);
    w.host_in(HostInput::Timer(HostTimer::Handshake(1)));
    w.run();
    assert_eq!(w.outcome(1).state, S::Timeout);
    // The guest's own timer, host never reached.
    let mut g = GuestCore::new(params(AuthMethod::Pin, 2, Some("123456")));
    let out = g.start(T0);
    assert!(out.contains(&GuestOutput::SetTimer {
        at_ms: T0 + 3 * MINUTE,
        timer: GuestTimer::Handshake
    }));
    let out = g.handle(T0 + 3 * MINUTE, GuestInput::Timer(GuestTimer::Handshake));
    assert!(
        matches!(out.last(), Some(GuestOutput::Done(Outcome { state: S::Timeout, reason: Some(r), .. })) if r == "host unreachable")
    );
    // ... and nothing after the terminal state.
    assert!(g.handle(T0, GuestInput::Connected).is_empty());
}

/// A connected guest is asked for its PIN and the host accepts it.
fn pin_accepted(g: &mut GuestCore) {
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthRequired {
            method: AuthMethod::Pin,
            challenge: [0; 32],
        }),
    );
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthResult(AuthOutcome::Accepted)),
    );
}

#[test]
fn a_lost_connection_before_the_verdict_reconnects_after_it_fails() {
    let mut g = GuestCore::new(params(AuthMethod::Pin, 2, Some("123456")));
    g.start(T0);
    g.handle(T0, GuestInput::Connected);
    let out = g.handle(T0, GuestInput::Disconnected);
    assert_eq!(
        out,
        vec![GuestOutput::State(S::Connecting), GuestOutput::FindHost]
    );
    g.handle(T0, GuestInput::Connected);
    pin_accepted(&mut g);
    let out = g.handle(T0, GuestInput::Disconnected);
    assert!(matches!(
        out.last(),
        Some(GuestOutput::Done(Outcome {
            state: S::Error,
            ..
        }))
    ));
}

#[test]
fn multi_use_admits_three_guests() {
    let mut w = World::new(record(AuthMethod::Pin, true));
    for s in 1..=3 {
        w.add_guest(
            s,
            params(AuthMethod::Pin, s as u8 + 1, Some("123456")),
            s as u8 + 1,
        );
    }
    w.run();
    for s in 1..=3 {
        assert_eq!(w.outcome(s).state, S::Success);
    }
    assert_eq!(w.persisted.as_ref().unwrap().uses, 3);
    assert!(!w.host.state().is_terminal());
}

proptest! {
    /// Guests with right and wrong codes, all events in a random order: every guest ends
    /// exactly once; a success always follows the host's admission and persisted use; at
    /// most 3 wrong codes are ever counted and none succeeds after the third; a single-use
    /// invitation admits at most one guest.
    #[test]
    fn handshakes_end_once_and_the_rules_hold_in_any_order(
        codes in proptest::collection::vec(any::<bool>(), 1..7),
        multi_use in any::<bool>(),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..300),
    ) {
        let mut w = World::new(record(AuthMethod::Pin, multi_use));
        for (i, right) in codes.iter().enumerate() {
            let code = if *right { "123456" } else { "654321" };
            w.add_guest(i as u64 + 1, params(AuthMethod::Pin, i as u8 + 2, Some(code)), i as u8 + 2);
        }
        let mut order = order.into_iter();
        while w.pending() > 0 {
            let i = order.next().map(|ix| ix.index(w.pending())).unwrap_or(0);
            w.step(i);
        }
        prop_assert_eq!(w.outcomes.len(), codes.len(), "every guest ended");
        let successes: Vec<_> = w.outcomes.iter().filter(|(_, o)| o.state == S::Success).map(|(s, _)| *s).collect();
        for s in &successes {
            prop_assert!(codes[(*s - 1) as usize], "a wrong code succeeded");
            let admit = w.host_log.iter().position(|o| matches!(o, HostOutput::Admit { session, .. } if session == s));
            let answer = w.host_log.iter().position(|o| matches!(o, HostOutput::Send(x, HostFrame::Admitted { .. }) if x == s));
            prop_assert!(admit.is_some() && admit < answer);
        }
        if !multi_use {
            prop_assert!(successes.len() <= 1);
        }
        let record = w.host.record();
        let wrong_counted = MAX_ATTEMPTS - record.attempts_left;
        prop_assert!(wrong_counted <= MAX_ATTEMPTS);
        if record.attempts_left == 0 {
            prop_assert_eq!(record.state, S::Error);
            // Nobody was admitted after the third wrong code was counted.
            let third = w.host_log.iter().position(|o| matches!(o, HostOutput::Persist(r) if r.attempts_left == 0)).unwrap();
            let admitted_after = w.host_log[third..].iter().any(|o| matches!(o, HostOutput::Admit { .. }));
            prop_assert!(!admitted_after);
        }
        // Every use and every counted code was persisted.
        if let Some(saved) = &w.persisted {
            prop_assert_eq!(saved.uses, record.uses);
            prop_assert_eq!(saved.attempts_left, record.attempts_left);
        } else {
            prop_assert_eq!(record.uses, 0);
            prop_assert_eq!(record.attempts_left, MAX_ATTEMPTS);
        }
    }
}

#[test]
fn a_connection_lost_after_admit_ends_in_what_the_space_shows() {
    let admitted_until_admit = |g: &mut GuestCore| {
        g.start(T0);
        g.handle(T0, GuestInput::Connected);
        pin_accepted(g);
        let auth = authorize_device(&identity(2), KeyPair::from_secret([7; 32]).public(), T0);
        let out = g.handle(
            T0,
            GuestInput::Prepared {
                device_auth: Box::new(auth),
                feeds: vec![],
            },
        );
        assert!(matches!(
            out.as_slice(),
            [GuestOutput::Send(GuestFrame::Admit { .. })]
        ));
        // The connection goes before `Admitted` arrives: the core asks, it does not guess.
        assert_eq!(
            g.handle(T0, GuestInput::Disconnected),
            vec![GuestOutput::CheckAdmitted]
        );
        assert_eq!(g.state(), S::Authenticating);
    };
    // The admission shows up: SUCCESS with the role the space gives.
    let mut g = GuestCore::new(params(AuthMethod::Pin, 2, Some("123456")));
    admitted_until_admit(&mut g);
    let out = g.handle(T0, GuestInput::AdmissionChecked(Some(Role::Reader)));
    assert_eq!(
        out.last(),
        Some(&GuestOutput::Done(Outcome {
            state: S::Success,
            admitted: Some((PublicKey::from_bytes([9; 32]), Role::Reader)),
            reason: None,
        }))
    );
    // It does not: ERROR, never a success.
    let mut g = GuestCore::new(params(AuthMethod::Pin, 2, Some("123456")));
    admitted_until_admit(&mut g);
    let out = g.handle(T0, GuestInput::AdmissionChecked(None));
    assert!(matches!(
        out.last(),
        Some(GuestOutput::Done(Outcome {
            state: S::Error,
            admitted: None,
            ..
        }))
    ));
    // An answer nobody asked for changes nothing.
    let mut g = GuestCore::new(params(AuthMethod::Pin, 2, Some("123456")));
    g.start(T0);
    assert!(g
        .handle(T0, GuestInput::AdmissionChecked(Some(Role::Editor)))
        .is_empty());
}

#[test]
fn an_admission_finished_after_its_guest_went_still_counts_as_the_use() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut host = HostCore::new(record(AuthMethod::None, false));
    host.start(T0);
    host.handle(T0, HostInput::GuestConnected(1), &mut rng);
    host.handle(
        T0,
        HostInput::Frame(
            1,
            GuestFrame::Introduce {
                invitation_id: ID,
                identity_key: identity(2).public(),
            },
        ),
        &mut rng,
    );
    host.handle(
        T0,
        HostInput::Frame(1, GuestFrame::Authenticate(AuthProof::None)),
        &mut rng,
    );
    let auth = authorize_device(&identity(2), KeyPair::from_secret([7; 32]).public(), T0);
    let out = host.handle(
        T0,
        HostInput::Frame(
            1,
            GuestFrame::Admit {
                device_auth: Box::new(auth),
                feeds: vec![],
            },
        ),
        &mut rng,
    );
    assert!(matches!(
        out.as_slice(),
        [HostOutput::Admit { session: 1, .. }]
    ));
    // The guest's connection goes while the admission is being written.
    assert!(host
        .handle(T0, HostInput::GuestGone(1), &mut rng)
        .is_empty());
    let out = host.handle(
        T0,
        HostInput::Admitted {
            session: 1,
            result: Ok(()),
        },
        &mut rng,
    );
    // Written, so used: persisted as SUCCESS (single use), nothing sent to nobody.
    assert!(
        matches!(out.as_slice(), [HostOutput::Persist(r)] if r.uses == 1 && r.state == S::Success),
        "{out:?}"
    );
    assert_eq!(host.state(), S::Success);
    // A second guest is too late.
    let out = host.handle(T0, HostInput::GuestConnected(2), &mut rng);
    assert!(out.contains(&HostOutput::Send(
        2,
        HostFrame::Ended(EndReason::NoLongerValid)
    )));
}
