//! Device invitations, the cores driven against each other in memory (the harness of
//! `tests.rs`): a new device authenticates like a space guest, asks `AdmitDevice`, and takes
//! on the host's grant; the rules of codes, attempts and uses are the space invitation's.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::guest::GuestParams;
use super::host::MAX_ATTEMPTS;
use super::tests::{device_of, grant_for, identity, params, record, World, DAY, ID, T0};
use super::*;
use crate::credentials::Role;
use crate::types::PublicKey;

use InvitationState as S;

const HALO: [u8; 32] = [9; 32];

/// Guest `who`, a fresh device, on a device invitation.
fn device_params(auth: AuthMethod, who: u8, pin: Option<&str>) -> GuestParams {
    GuestParams {
        kind: InvitationKind::Device,
        identity_key: device_of(who).public(),
        ..params(auth, who, pin)
    }
}

#[test]
fn a_new_device_walks_every_state_and_is_authorised_before_it_succeeds() {
    let mut w = World::device(record(AuthMethod::Pin, false));
    w.add_guest(1, device_params(AuthMethod::Pin, 2, Some("123456")), 2);
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
        Some((PublicKey::from_bytes(HALO), Role::Owner))
    );
    // The host authorised exactly this device, persisted the use, then answered.
    let authorised = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::AdmitDevice { session: 1, device } if *device == device_of(2).public()))
        .expect("authorised");
    let persist = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::Persist(r) if r.uses == 1))
        .expect("persisted");
    let answered = w
        .host_log
        .iter()
        .position(|o| matches!(o, HostOutput::Send(1, HostFrame::DeviceAdmitted(_))))
        .expect("answered");
    assert!(authorised < persist && persist < answered);
    assert!(!w
        .host_log
        .iter()
        .any(|o| matches!(o, HostOutput::Admit { .. })));
    // The guest introduced itself with its device key, asked AdmitDevice (never Admit) and
    // was handed the grant to take on.
    let log = &w.guest_log[&1];
    assert!(log.contains(&GuestOutput::Send(GuestFrame::Introduce {
        invitation_id: ID,
        identity_key: device_of(2).public(),
    })));
    assert!(log.contains(&GuestOutput::Send(GuestFrame::AdmitDevice)));
    assert!(!log.contains(&GuestOutput::PrepareAdmission));
    let grant = log
        .iter()
        .find_map(|o| match o {
            GuestOutput::Adopt(g) => Some(g.clone()),
            _ => None,
        })
        .expect("adopted");
    // The grant's credential is the host device's AuthorizedDevice for the guest: a chain
    // of two links from the identity (the guest's first).
    let chain = grant
        .device_credential
        .verify_device_authorization(Some(identity(1).public()), device_of(2).public())
        .unwrap();
    assert_eq!(
        chain.devices,
        [device_of(2).public(), device_of(1).public()]
    );
    assert_eq!(w.host.state(), S::Success);
}

#[test]
fn a_device_invitation_refuses_a_space_admission_and_a_space_invitation_a_device() {
    // A space guest on a device invitation asks Admit: refused.
    let mut w = World::device(record(AuthMethod::Pin, false));
    w.add_guest(1, params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.run();
    assert_eq!(w.outcome(1).state, S::Error);
    assert_eq!(w.reason(1), "unexpected frame in the handshake");
    assert!(!w
        .host_log
        .iter()
        .any(|o| matches!(o, HostOutput::Admit { .. } | HostOutput::AdmitDevice { .. })));
    // A device guest on a space invitation asks AdmitDevice: refused.
    let mut w = World::new(record(AuthMethod::Pin, false));
    w.add_guest(1, device_params(AuthMethod::Pin, 2, Some("123456")), 2);
    w.run();
    assert_eq!(w.outcome(1).state, S::Error);
    assert_eq!(w.reason(1), "unexpected frame in the handshake");
    assert!(!w
        .host_log
        .iter()
        .any(|o| matches!(o, HostOutput::Admit { .. } | HostOutput::AdmitDevice { .. })));
    assert_eq!(w.host.record().uses, 0);
}

#[test]
fn three_wrong_codes_end_a_device_invitation_too() {
    let mut w = World::device(record(AuthMethod::Pin, true));
    for s in 1..=3 {
        w.add_guest(
            s,
            device_params(AuthMethod::Pin, s as u8 + 1, Some("000000")),
            s as u8 + 1,
        );
        w.run();
    }
    assert_eq!(w.reason(1), "invalid auth code, 2 attempts left");
    assert_eq!(w.reason(3), "too many attempts");
    assert_eq!(w.host.state(), S::Error);
    assert_eq!(w.persisted.as_ref().unwrap().attempts_left, 0);
    w.add_guest(4, device_params(AuthMethod::Pin, 5, Some("123456")), 5);
    w.run();
    assert_eq!(w.outcome(4).state, S::Error);
    assert!(!w
        .host_log
        .iter()
        .any(|o| matches!(o, HostOutput::AdmitDevice { .. })));
}

/// A device guest alone, driven to the point where it has sent `AdmitDevice`.
fn guest_at_admit_device() -> GuestCore {
    let mut g = GuestCore::new(device_params(AuthMethod::None, 2, None));
    g.start(T0);
    g.handle(T0, GuestInput::Connected);
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthRequired {
            method: AuthMethod::None,
            challenge: [1; 32],
        }),
    );
    let out = g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthResult(AuthOutcome::Accepted)),
    );
    assert_eq!(out, [GuestOutput::Send(GuestFrame::AdmitDevice)]);
    g
}

fn done(out: &[GuestOutput]) -> Option<&Outcome> {
    out.iter().find_map(|o| match o {
        GuestOutput::Done(outcome) => Some(outcome),
        _ => None,
    })
}

#[test]
fn a_connection_lost_before_the_grant_is_an_error_and_after_it_changes_nothing() {
    let mut g = guest_at_admit_device();
    let out = g.handle(T0, GuestInput::Disconnected);
    let outcome = done(&out).expect("ended");
    assert_eq!(outcome.state, S::Error);
    assert!(outcome
        .reason
        .as_deref()
        .unwrap()
        .contains("ask for a new device invitation"));
    assert!(!out.contains(&GuestOutput::CheckAdmitted));

    let mut g = guest_at_admit_device();
    let grant = grant_for(device_of(2).public());
    let out = g.handle(
        T0,
        GuestInput::Frame(HostFrame::DeviceAdmitted(Box::new(grant.clone()))),
    );
    assert_eq!(out, [GuestOutput::Adopt(Box::new(grant))]);
    assert!(g.handle(T0, GuestInput::Disconnected).is_empty());
    let out = g.handle(T0, GuestInput::Adopted(Ok(())));
    assert_eq!(
        done(&out).unwrap().admitted,
        Some((PublicKey::from_bytes(HALO), Role::Owner))
    );
    assert_eq!(g.state(), S::Success);
}

#[test]
fn a_grant_for_another_identity_space_a_second_grant_and_a_failed_adoption_are_errors() {
    let mut g = guest_at_admit_device();
    let mut other = grant_for(device_of(2).public());
    other.halo_space_key = PublicKey::from_bytes([8; 32]);
    let out = g.handle(
        T0,
        GuestInput::Frame(HostFrame::DeviceAdmitted(Box::new(other))),
    );
    assert_eq!(done(&out).unwrap().state, S::Error);
    assert!(!out.iter().any(|o| matches!(o, GuestOutput::Adopt(_))));

    let mut g = guest_at_admit_device();
    let grant = Box::new(grant_for(device_of(2).public()));
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::DeviceAdmitted(grant.clone())),
    );
    let out = g.handle(T0, GuestInput::Frame(HostFrame::DeviceAdmitted(grant)));
    assert_eq!(
        done(&out).unwrap().reason.as_deref(),
        Some("the host broke the invitation protocol")
    );

    let mut g = guest_at_admit_device();
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::DeviceAdmitted(Box::new(grant_for(
            device_of(2).public(),
        )))),
    );
    let out = g.handle(T0, GuestInput::Adopted(Err("disk full".into())));
    let outcome = done(&out).unwrap();
    assert_eq!(
        (outcome.state, outcome.reason.as_deref()),
        (S::Error, Some("disk full"))
    );
    assert_eq!(outcome.admitted, None);
}

#[test]
fn a_space_guest_ignores_a_grant_and_a_device_guest_a_space_admission() {
    // `Admitted` to a device guest, `DeviceAdmitted` to a space guest: protocol errors.
    let mut g = guest_at_admit_device();
    let out = g.handle(
        T0,
        GuestInput::Frame(HostFrame::Admitted {
            space_key: PublicKey::from_bytes(HALO),
            role: Role::Owner,
        }),
    );
    assert_eq!(done(&out).unwrap().state, S::Error);
    let mut g = GuestCore::new(params(AuthMethod::None, 2, None));
    g.start(T0);
    g.handle(T0, GuestInput::Connected);
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthRequired {
            method: AuthMethod::None,
            challenge: [1; 32],
        }),
    );
    g.handle(
        T0,
        GuestInput::Frame(HostFrame::AuthResult(AuthOutcome::Accepted)),
    );
    let out = g.handle(
        T0,
        GuestInput::Frame(HostFrame::DeviceAdmitted(Box::new(grant_for(
            device_of(2).public(),
        )))),
    );
    assert_eq!(
        done(&out).unwrap().reason.as_deref(),
        Some("the host broke the invitation protocol")
    );
}

proptest! {
    /// New devices with right and wrong codes, all events in a random order: every guest
    /// ends exactly once; a success always follows the host's authorisation of that very
    /// device and the persisted use; a single-use invitation authorises at most one device;
    /// at most 3 wrong codes are counted.
    #[test]
    fn device_handshakes_end_once_and_the_rules_hold_in_any_order(
        codes in proptest::collection::vec(any::<bool>(), 1..6),
        multi_use in any::<bool>(),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..300),
    ) {
        let mut w = World::device(record(AuthMethod::Pin, multi_use));
        for (i, right) in codes.iter().enumerate() {
            let code = if *right { "123456" } else { "654321" };
            let who = i as u8 + 2;
            w.add_guest(i as u64 + 1, device_params(AuthMethod::Pin, who, Some(code)), who);
        }
        let mut order = order.into_iter();
        while w.pending() > 0 {
            let i = order.next().map(|ix| ix.index(w.pending())).unwrap_or(0);
            w.step(i);
        }
        prop_assert_eq!(w.outcomes.len(), codes.len(), "every guest ended");
        let successes: Vec<u64> = w.outcomes.iter().filter(|(_, o)| o.state == S::Success).map(|(s, _)| *s).collect();
        for s in &successes {
            prop_assert!(codes[(*s - 1) as usize], "a wrong code succeeded");
            let device = device_of(*s as u8 + 1).public();
            let authorised = w.host_log.iter().position(|o| matches!(o, HostOutput::AdmitDevice { session, device: d } if session == s && *d == device));
            let answer = w.host_log.iter().position(|o| matches!(o, HostOutput::Send(x, HostFrame::DeviceAdmitted(_)) if x == s));
            prop_assert!(authorised.is_some() && authorised < answer);
        }
        if !multi_use {
            prop_assert!(successes.len() <= 1);
        }
        prop_assert!(MAX_ATTEMPTS - w.host.record().attempts_left <= MAX_ATTEMPTS);
        prop_assert!(w.host.record().uses as usize >= successes.len());
        prop_assert!(w.now < T0 + DAY);
    }
}
