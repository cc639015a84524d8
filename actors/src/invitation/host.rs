//! [`HostCore`]: one invitation on the host, with every guest session on it (sans-IO).
//!
//! Call order: [`HostCore::start`] when the invitation is created or loaded after a restart
//! (it asks for the expiry timer, or ends an invitation that expired meanwhile), then
//! [`HostCore::handle`] with every input. Outputs are carried out in order; a `Persist`
//! must be durable before the outputs after it are carried out (the attempt count and the
//! uses survive a restart). After the invitation reaches a terminal state every input is
//! answered with `Ended` for the session it names.
//!
//! Rules:
//! - A guest introduces itself with the invitation id (and, for `key` auth, the identity
//!   named at creation); it gets the auth method and a fresh 32-byte challenge. For `key`
//!   auth a device of that identity signs the challenge and shows its `AuthorizedDevice`
//!   chain, which must verify and lead to the named identity.
//! - `pin` codes are compared in constant time. Exactly 3 wrong codes (or bad signatures)
//!   in all, whichever guests sent them, end the invitation (`ERROR`, too many attempts);
//!   each wrong code ends the session that sent it.
//! - A guest that authenticated asks to be admitted; the actor writes its membership (the
//!   invitation's role) and feeds in one durable batch and reports back; only then is the
//!   guest answered `Admitted`. A single-use invitation is then `SUCCESS`; a multi-use one
//!   stays open until it expires or is cancelled. A single-use invitation has at most one
//!   admission in flight. An admission being written always completes and counts as a use,
//!   even if the invitation is cancelled, expires or its guest goes meanwhile (the guest
//!   is answered `Admitted` if it is still there, and can see its membership otherwise).
//! - A device invitation (built with [`HostCore::for_device`]) admits a new device of the
//!   host's identity instead: the authenticated guest asks `AdmitDevice`, the actor
//!   authorises the device and reports the grant, and only then is the guest answered
//!   `DeviceAdmitted`. Everything else (codes, attempts, uses, timeouts) is the same. A
//!   space invitation refuses `AdmitDevice`, and a device invitation `Admit`.
//! - Each session has the handshake timeout (default 3 min); the invitation its lifetime
//!   (default 1 day), after which it is `EXPIRED`. `Cancel` ends it `CANCELLED`.

use std::collections::BTreeMap;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::messages::{
    challenge_message, AuthMethod, AuthOutcome, AuthProof, DeviceGrant, EndReason, GuestFrame,
    HostFrame, InvitationState,
};
use crate::credentials::{Credential, Role};
use crate::types::PublicKey;

/// The actor's name for one guest's connection to this invitation.
pub type SessionId = u64;

/// Wrong codes an invitation takes, in all.
pub const MAX_ATTEMPTS: u8 = 3;

/// Everything the host keeps of an invitation (persisted on every change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    pub id: [u8; 16],
    pub space_key: PublicKey,
    pub role: Role,
    pub auth: AuthMethod,
    /// The 6-digit code, for `pin`.
    pub pin: Option<String>,
    /// The identity that must sign the challenge, for `key`.
    pub guest_key: Option<PublicKey>,
    pub multi_use: bool,
    pub created_ms: u64,
    pub lifetime_ms: u64,
    pub handshake_timeout_ms: u64,
    pub attempts_left: u8,
    pub uses: u32,
    pub state: InvitationState,
    /// Why it ended, for a terminal state other than success.
    pub reason: Option<String>,
}

impl InvitationRecord {
    pub fn expires_at_ms(&self) -> u64 {
        self.created_ms.saturating_add(self.lifetime_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostTimer {
    Expiry,
    Handshake(SessionId),
}

#[derive(Debug, Clone)]
pub enum HostInput {
    /// A guest connected to this invitation.
    GuestConnected(SessionId),
    Frame(SessionId, GuestFrame),
    /// The guest's connection ended.
    GuestGone(SessionId),
    /// The actor wrote (or failed to write) the admission asked for with `Admit`.
    Admitted {
        session: SessionId,
        result: Result<(), String>,
    },
    /// The actor authorised (or failed to authorise) the device asked for with
    /// `AdmitDevice`.
    DeviceAdmitted {
        session: SessionId,
        result: Result<Box<DeviceGrant>, String>,
    },
    Cancel,
    Timer(HostTimer),
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostOutput {
    /// Write this record durably before carrying out the outputs after it.
    Persist(InvitationRecord),
    Send(SessionId, HostFrame),
    /// Close the guest's connection (after the frames before it were sent).
    CloseSession(SessionId),
    /// Write SpaceMember(role) and AdmittedFeed for these feeds in one durable batch, then
    /// answer with `Admitted`.
    Admit {
        session: SessionId,
        identity_key: PublicKey,
        role: Role,
        device_auth: Box<Credential>,
        feeds: Vec<PublicKey>,
    },
    /// Authorise `device` (as the guest introduced itself) into this node's identity, then
    /// answer with `DeviceAdmitted`.
    AdmitDevice {
        session: SessionId,
        device: PublicKey,
    },
    SetTimer {
        at_ms: u64,
        timer: HostTimer,
    },
    /// A session changed state (for progress reports).
    SessionState(SessionId, InvitationState),
}

#[derive(Debug, Clone)]
enum Session {
    /// Connected, not introduced yet.
    Connected,
    /// Introduced; waiting for the proof of this challenge.
    Challenged {
        identity_key: PublicKey,
        challenge: [u8; 32],
    },
    /// Authenticated; waiting for the guest's Admit.
    Authenticated { identity_key: PublicKey },
    /// The admission is being written.
    Admitting,
}

/// See the module docs.
#[derive(Debug)]
pub struct HostCore {
    record: InvitationRecord,
    sessions: BTreeMap<SessionId, Session>,
    /// Sessions whose guest went while its admission was being written: the admission
    /// still counts as a use when it is done (the guest may learn of it from the space).
    orphaned: std::collections::BTreeSet<SessionId>,
    /// A device invitation (`AdmitDevice`), not a space invitation (`Admit`).
    device: bool,
}

impl HostCore {
    /// A space invitation.
    pub fn new(record: InvitationRecord) -> Self {
        HostCore {
            record,
            sessions: BTreeMap::new(),
            orphaned: std::collections::BTreeSet::new(),
            device: false,
        }
    }

    /// A device invitation (its record names the identity space).
    pub fn for_device(record: InvitationRecord) -> Self {
        HostCore {
            device: true,
            ..Self::new(record)
        }
    }

    pub fn is_device(&self) -> bool {
        self.device
    }

    pub fn record(&self) -> &InvitationRecord {
        &self.record
    }

    pub fn state(&self) -> InvitationState {
        self.record.state
    }

    /// Asks for the expiry timer, or ends an invitation whose lifetime passed meanwhile.
    pub fn start(&mut self, now_ms: u64) -> Vec<HostOutput> {
        let mut out = vec![];
        if self.record.state.is_terminal() {
            return out;
        }
        if now_ms >= self.record.expires_at_ms() {
            self.end(InvitationState::Expired, EndReason::Expired, &mut out);
        } else {
            out.push(HostOutput::SetTimer {
                at_ms: self.record.expires_at_ms(),
                timer: HostTimer::Expiry,
            });
        }
        out
    }

    pub fn handle(
        &mut self,
        now_ms: u64,
        input: HostInput,
        rng: &mut impl RngCore,
    ) -> Vec<HostOutput> {
        let mut out = vec![];
        // Expiry is checked on every input as well as by its timer: a timer may be late.
        if !self.record.state.is_terminal() && now_ms >= self.record.expires_at_ms() {
            self.end(InvitationState::Expired, EndReason::Expired, &mut out);
        }
        match input {
            HostInput::GuestConnected(session) => {
                if let Some(reason) = self.ended_reason() {
                    self.refuse(session, reason, &mut out);
                    return out;
                }
                self.sessions.insert(session, Session::Connected);
                out.push(HostOutput::SessionState(
                    session,
                    InvitationState::Connected,
                ));
                out.push(HostOutput::SetTimer {
                    at_ms: now_ms.saturating_add(self.record.handshake_timeout_ms),
                    timer: HostTimer::Handshake(session),
                });
            }
            HostInput::Frame(session, frame) => self.frame(session, frame, rng, &mut out),
            HostInput::GuestGone(session) => {
                if let Some(Session::Admitting) = self.sessions.remove(&session) {
                    self.orphaned.insert(session);
                }
            }
            HostInput::Admitted { session, result } => {
                let frame = HostFrame::Admitted {
                    space_key: self.record.space_key,
                    role: self.record.role,
                };
                self.admitted(session, result.map(|()| frame), &mut out);
            }
            HostInput::DeviceAdmitted { session, result } => {
                self.admitted(session, result.map(HostFrame::DeviceAdmitted), &mut out);
            }
            HostInput::Cancel => {
                if !self.record.state.is_terminal() {
                    self.end(InvitationState::Cancelled, EndReason::Cancelled, &mut out);
                }
            }
            HostInput::Timer(HostTimer::Expiry) => {}
            HostInput::Timer(HostTimer::Handshake(session)) => {
                // An admission being written completes (it will be durable either way).
                let admitting = matches!(self.sessions.get(&session), Some(Session::Admitting));
                if !admitting && self.sessions.remove(&session).is_some() {
                    out.push(HostOutput::Send(
                        session,
                        HostFrame::Ended(EndReason::Timeout),
                    ));
                    out.push(HostOutput::SessionState(session, InvitationState::Timeout));
                    out.push(HostOutput::CloseSession(session));
                }
            }
        }
        out
    }

    /// An admission the actor finished writing: on success a use (answered with `answer`
    /// if its guest is still there), else the guest is refused with the error.
    fn admitted(
        &mut self,
        session: SessionId,
        result: Result<HostFrame, String>,
        out: &mut Vec<HostOutput>,
    ) {
        let orphaned = self.orphaned.remove(&session);
        if !orphaned && !matches!(self.sessions.get(&session), Some(Session::Admitting)) {
            return;
        }
        self.sessions.remove(&session);
        let answer = match result {
            Ok(answer) => answer,
            // Nobody to tell if orphaned; nothing was admitted either way.
            Err(_) if orphaned => return,
            Err(e) => return self.refuse(session, EndReason::Error(e), out),
        };
        self.record.uses = self.record.uses.saturating_add(1);
        // An admission that was being written when the invitation was cancelled or expired
        // completes; the state stays as it ended.
        if !self.record.multi_use && !self.record.state.is_terminal() {
            self.record.state = InvitationState::Success;
        }
        out.push(HostOutput::Persist(self.record.clone()));
        if !orphaned {
            out.push(HostOutput::Send(session, answer));
            out.push(HostOutput::SessionState(session, InvitationState::Success));
            out.push(HostOutput::CloseSession(session));
        }
        if !self.record.multi_use {
            // Anyone else on it is too late.
            self.end_sessions(EndReason::NoLongerValid, out);
        }
    }

    /// Why a new guest is turned away, if the invitation is over.
    fn ended_reason(&self) -> Option<EndReason> {
        match self.record.state {
            InvitationState::Cancelled => Some(EndReason::Cancelled),
            InvitationState::Expired => Some(EndReason::Expired),
            InvitationState::Success | InvitationState::Error => Some(EndReason::NoLongerValid),
            _ => None,
        }
    }

    fn frame(
        &mut self,
        session: SessionId,
        frame: GuestFrame,
        rng: &mut impl RngCore,
        out: &mut Vec<HostOutput>,
    ) {
        if let Some(reason) = self.ended_reason() {
            self.refuse(session, reason, out);
            return;
        }
        let Some(state) = self.sessions.get(&session).cloned() else {
            return;
        };
        match (state, frame) {
            (
                Session::Connected,
                GuestFrame::Introduce {
                    invitation_id,
                    identity_key,
                },
            ) => {
                if invitation_id != self.record.id {
                    return self.refuse(
                        session,
                        EndReason::Error("no such invitation".into()),
                        out,
                    );
                }
                if self.record.auth == AuthMethod::Key
                    && Some(identity_key) != self.record.guest_key
                {
                    return self.refuse(
                        session,
                        EndReason::Error("this invitation is for another identity".into()),
                        out,
                    );
                }
                let mut challenge = [0u8; 32];
                rng.fill_bytes(&mut challenge);
                self.sessions.insert(
                    session,
                    Session::Challenged {
                        identity_key,
                        challenge,
                    },
                );
                out.push(HostOutput::Send(
                    session,
                    HostFrame::AuthRequired {
                        method: self.record.auth,
                        challenge,
                    },
                ));
                out.push(HostOutput::SessionState(
                    session,
                    InvitationState::ReadyForAuthentication,
                ));
            }
            (
                Session::Challenged {
                    identity_key,
                    challenge,
                },
                GuestFrame::Authenticate(proof),
            ) => {
                out.push(HostOutput::SessionState(
                    session,
                    InvitationState::Authenticating,
                ));
                if self.proof_holds(&identity_key, &challenge, &proof) {
                    self.sessions
                        .insert(session, Session::Authenticated { identity_key });
                    out.push(HostOutput::Send(
                        session,
                        HostFrame::AuthResult(AuthOutcome::Accepted),
                    ));
                    return;
                }
                self.sessions.remove(&session);
                self.record.attempts_left = self.record.attempts_left.saturating_sub(1);
                if self.record.attempts_left == 0 {
                    self.record.state = InvitationState::Error;
                    self.record.reason = Some("too many attempts".into());
                    out.push(HostOutput::Persist(self.record.clone()));
                    out.push(HostOutput::Send(
                        session,
                        HostFrame::AuthResult(AuthOutcome::TooManyAttempts),
                    ));
                    out.push(HostOutput::SessionState(session, InvitationState::Error));
                    out.push(HostOutput::CloseSession(session));
                    self.end_sessions(EndReason::NoLongerValid, out);
                } else {
                    out.push(HostOutput::Persist(self.record.clone()));
                    out.push(HostOutput::Send(
                        session,
                        HostFrame::AuthResult(AuthOutcome::Invalid {
                            attempts_left: self.record.attempts_left,
                        }),
                    ));
                    out.push(HostOutput::SessionState(session, InvitationState::Error));
                    out.push(HostOutput::CloseSession(session));
                }
            }
            (Session::Authenticated { identity_key }, GuestFrame::Admit { device_auth, feeds })
                if !self.device =>
            {
                if self.start_admitting(session, out) {
                    out.push(HostOutput::Admit {
                        session,
                        identity_key,
                        role: self.record.role,
                        device_auth,
                        feeds,
                    });
                }
            }
            (Session::Authenticated { identity_key }, GuestFrame::AdmitDevice) if self.device => {
                if self.start_admitting(session, out) {
                    out.push(HostOutput::AdmitDevice {
                        session,
                        device: identity_key,
                    });
                }
            }
            // Anything out of order ends the session.
            _ => self.refuse(
                session,
                EndReason::Error("unexpected frame in the handshake".into()),
                out,
            ),
        }
    }

    /// Marks the session's admission in flight, unless a single-use invitation has one in
    /// flight already (then another guest is too late: it would be admitted too).
    fn start_admitting(&mut self, session: SessionId, out: &mut Vec<HostOutput>) -> bool {
        let in_flight = !self.orphaned.is_empty()
            || self
                .sessions
                .values()
                .any(|s| matches!(s, Session::Admitting));
        if !self.record.multi_use && in_flight {
            self.refuse(session, EndReason::NoLongerValid, out);
            return false;
        }
        self.sessions.insert(session, Session::Admitting);
        true
    }

    fn proof_holds(
        &self,
        identity_key: &PublicKey,
        challenge: &[u8; 32],
        proof: &AuthProof,
    ) -> bool {
        match (self.record.auth, proof) {
            (AuthMethod::None, AuthProof::None) => true,
            (AuthMethod::Pin, AuthProof::Pin(code)) => match &self.record.pin {
                // Constant time in the code's content; the length of a 6-digit code is
                // no secret.
                Some(pin) => pin.as_bytes().ct_eq(code.as_bytes()).into(),
                None => false,
            },
            (
                AuthMethod::Key,
                AuthProof::Signed {
                    signature,
                    device_auth,
                },
            ) => {
                // A device of the named identity signed: its authorisation chain leads to
                // that identity, and the signature is the authorised device's.
                let device = device_auth.subject.id;
                device_auth
                    .verify_device_authorization(Some(*identity_key), device)
                    .is_ok()
                    && device
                        .verify(&challenge_message(&self.record.id, challenge), signature)
                        .is_ok()
            }
            _ => false,
        }
    }

    /// Ends one session with a reason.
    fn refuse(&mut self, session: SessionId, reason: EndReason, out: &mut Vec<HostOutput>) {
        self.sessions.remove(&session);
        let state = terminal_of(&reason);
        out.push(HostOutput::Send(session, HostFrame::Ended(reason)));
        out.push(HostOutput::SessionState(session, state));
        out.push(HostOutput::CloseSession(session));
    }

    /// Ends every session but those whose admission is being written: that admission will
    /// be durable, so its guest is answered `Admitted` when it is.
    fn end_sessions(&mut self, reason: EndReason, out: &mut Vec<HostOutput>) {
        let sessions: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| !matches!(s, Session::Admitting))
            .map(|(id, _)| *id)
            .collect();
        for s in sessions {
            self.refuse(s, reason.clone(), out);
        }
    }

    /// Ends the invitation in `state`, persisted, and every session with it.
    fn end(&mut self, state: InvitationState, reason: EndReason, out: &mut Vec<HostOutput>) {
        self.record.state = state;
        out.push(HostOutput::Persist(self.record.clone()));
        self.end_sessions(reason, out);
    }
}

/// The terminal state a guest's handshake ends in for a reason.
pub fn terminal_of(reason: &EndReason) -> InvitationState {
    match reason {
        EndReason::Cancelled => InvitationState::Cancelled,
        EndReason::Expired => InvitationState::Expired,
        EndReason::Timeout => InvitationState::Timeout,
        EndReason::NoLongerValid | EndReason::Error(_) => InvitationState::Error,
    }
}
