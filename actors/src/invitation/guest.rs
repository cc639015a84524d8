//! [`GuestCore`]: one `invite accept` on the guest (sans-IO).
//!
//! Call order: [`GuestCore::start`] once (it reports `CONNECTING`, asks to find the host
//! and sets the handshake timer, or ends at once if the invitation already expired), then
//! [`GuestCore::handle`] with every input. Exactly one `Done` output ever comes out, with
//! the terminal state; after it the core ignores every input.
//!
//! Rules:
//! - Connected to the host: `Introduce`. Asked for the auth method the code names: answer
//!   with the PIN, nothing, or a signature of the challenge (asked of the actor). Another
//!   method than the code named is an error (a host that downgrades auth is not trusted).
//! - Accepted: ask the actor for the device credential and feeds, send `Admit`; `Admitted`
//!   is `SUCCESS`. A wrong code, too many attempts, cancel, expiry or any error from the
//!   host end in the matching terminal state with its reason.
//! - A connection lost before the host's verdict on the code goes back to `CONNECTING`
//!   (the host may be restarting); after it, the handshake fails (`ERROR`), because the
//!   code may have been counted; except once `Admit` was sent: then the host may have
//!   admitted us before the connection went, so the core asks the actor whether the
//!   admission shows up (`CheckAdmitted`) and ends `SUCCESS` if it does, `ERROR` if not.
//!   No success is ever reported that the space does not show.
//! - The handshake timer ends the handshake `TIMEOUT`, as "host unreachable" if the host
//!   was never reached.
//! - A device invitation (`kind` [`InvitationKind::Device`]): the guest introduces itself
//!   with its device key, and once accepted asks `AdmitDevice`. The host's grant is handed
//!   to the actor to take on (`Adopt`; the identity record and the identity space, one
//!   durable batch); `Adopted` is `SUCCESS`, with the identity space as the space admitted
//!   to. A connection lost after `AdmitDevice` and before the grant is `ERROR` (the grant is
//!   gone with it; nothing was stored on either side), after the grant it changes nothing.

use super::code::InvitationKind;
use super::messages::{
    AuthMethod, AuthOutcome, AuthProof, DeviceGrant, EndReason, GuestFrame, HostFrame,
    InvitationState,
};
use crate::credentials::{Credential, Role};
use crate::types::{PublicKey, Signature};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestTimer {
    Handshake,
}

/// What the guest knows of the invitation (from its code) and of itself.
#[derive(Debug, Clone)]
pub struct GuestParams {
    pub invitation_id: [u8; 16],
    /// The space the code names.
    pub space_key: PublicKey,
    pub auth: AuthMethod,
    pub expires_at_ms: u64,
    pub kind: InvitationKind,
    /// Who the guest introduces itself as: its identity for a space invitation, its
    /// device for a device invitation.
    pub identity_key: PublicKey,
    /// The code the user gave, for `pin`.
    pub pin: Option<String>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone)]
pub enum GuestInput {
    /// A connection to the host is up.
    Connected,
    Frame(HostFrame),
    /// The connection to the host ended.
    Disconnected,
    /// The answer to `SignChallenge`: this device's signature and its `AuthorizedDevice`.
    Signed {
        signature: Signature,
        device_auth: Box<Credential>,
    },
    /// The answer to `PrepareAdmission`.
    Prepared {
        device_auth: Box<Credential>,
        feeds: Vec<PublicKey>,
    },
    /// Preparing the admission failed.
    PrepareFailed(String),
    /// The answer to `CheckAdmitted`: the role our identity has in the space, if the
    /// admission showed up.
    AdmissionChecked(Option<Role>),
    /// The answer to `Adopt`.
    Adopted(Result<(), String>),
    Timer(GuestTimer),
}

/// How a handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: InvitationState,
    /// The space and role on success.
    pub admitted: Option<(PublicKey, Role)>,
    /// What went wrong, for any other state, in words for the user.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GuestOutput {
    /// Find and connect to the host (address hints, the invitation's swarm topic); answer
    /// with `Connected`, and `Disconnected` when the connection ends.
    FindHost,
    Send(GuestFrame),
    /// Sign `message` with this device's key; answer with `Signed` and the device's
    /// authorisation.
    SignChallenge(Vec<u8>),
    /// Create the guest's feeds for the space and get the device credential; answer with
    /// `Prepared`.
    PrepareAdmission,
    /// Close the connection to the host.
    Close,
    /// The connection went after we asked to be admitted: see whether our admission
    /// reaches us anyway (from any peer) within the handshake's time; answer with
    /// `AdmissionChecked`.
    CheckAdmitted,
    /// Take on the identity the host granted (device invitations); answer with `Adopted`.
    Adopt(Box<DeviceGrant>),
    SetTimer {
        at_ms: u64,
        timer: GuestTimer,
    },
    State(InvitationState),
    /// The one terminal output.
    Done(Outcome),
}

/// See the module docs.
#[derive(Debug)]
pub struct GuestCore {
    params: GuestParams,
    state: InvitationState,
    /// The host answered the code (accepted or not): no going back to connecting.
    verdict_seen: bool,
    ever_connected: bool,
    /// `Admit` (or `AdmitDevice`) was sent.
    admit_sent: bool,
    /// The host's grant is being taken on (device invitations).
    adopting: Option<PublicKey>,
}

impl GuestCore {
    pub fn new(params: GuestParams) -> Self {
        GuestCore {
            params,
            state: InvitationState::Init,
            verdict_seen: false,
            ever_connected: false,
            admit_sent: false,
            adopting: None,
        }
    }

    fn is_device(&self) -> bool {
        self.params.kind == InvitationKind::Device
    }

    pub fn state(&self) -> InvitationState {
        self.state
    }

    pub fn start(&mut self, now_ms: u64) -> Vec<GuestOutput> {
        let mut out = vec![];
        if self.state != InvitationState::Init {
            return out;
        }
        if now_ms >= self.params.expires_at_ms {
            self.finish(
                InvitationState::Expired,
                None,
                Some("expired".into()),
                &mut out,
            );
            return out;
        }
        if self.params.auth == AuthMethod::Pin && self.params.pin.is_none() {
            self.finish(
                InvitationState::Error,
                None,
                Some("this invitation needs the 6-digit auth code".into()),
                &mut out,
            );
            return out;
        }
        self.set(InvitationState::Connecting, &mut out);
        out.push(GuestOutput::FindHost);
        out.push(GuestOutput::SetTimer {
            at_ms: now_ms.saturating_add(self.params.timeout_ms),
            timer: GuestTimer::Handshake,
        });
        out
    }

    pub fn handle(&mut self, _now_ms: u64, input: GuestInput) -> Vec<GuestOutput> {
        let mut out = vec![];
        if self.state.is_terminal() || self.state == InvitationState::Init {
            return out;
        }
        match input {
            GuestInput::Connected => {
                if self.state == InvitationState::Connecting {
                    self.ever_connected = true;
                    self.set(InvitationState::Connected, &mut out);
                    out.push(GuestOutput::Send(GuestFrame::Introduce {
                        invitation_id: self.params.invitation_id,
                        identity_key: self.params.identity_key,
                    }));
                }
            }
            GuestInput::Disconnected => {
                if self.adopting.is_some() {
                    // The grant arrived; the host closes its side after it.
                } else if self.admit_sent && self.is_device() {
                    self.finish(
                        InvitationState::Error,
                        None,
                        Some(
                            "the host went away before it authorised this device; ask for a \
                             new device invitation"
                                .into(),
                        ),
                        &mut out,
                    );
                } else if self.admit_sent {
                    out.push(GuestOutput::CheckAdmitted);
                } else if self.verdict_seen {
                    self.finish(
                        InvitationState::Error,
                        None,
                        Some("the host went away during the handshake".into()),
                        &mut out,
                    );
                } else if self.state != InvitationState::Connecting {
                    self.set(InvitationState::Connecting, &mut out);
                    out.push(GuestOutput::FindHost);
                }
            }
            GuestInput::Frame(frame) => self.frame(frame, &mut out),
            GuestInput::Signed {
                signature,
                device_auth,
            } => {
                if self.state == InvitationState::ReadyForAuthentication
                    && self.params.auth == AuthMethod::Key
                {
                    self.authenticate(
                        AuthProof::Signed {
                            signature,
                            device_auth,
                        },
                        &mut out,
                    );
                }
            }
            GuestInput::Prepared { device_auth, feeds } => {
                if self.state == InvitationState::Authenticating && self.verdict_seen {
                    self.admit_sent = true;
                    out.push(GuestOutput::Send(GuestFrame::Admit { device_auth, feeds }));
                }
            }
            GuestInput::AdmissionChecked(role) => {
                if !self.admit_sent {
                    return out;
                }
                match role {
                    Some(role) => self.finish(
                        InvitationState::Success,
                        Some((self.params.space_key, role)),
                        None,
                        &mut out,
                    ),
                    None => self.finish(
                        InvitationState::Error,
                        None,
                        Some("the host went away during the handshake".into()),
                        &mut out,
                    ),
                }
            }
            GuestInput::Adopted(result) => {
                let Some(halo) = self.adopting else {
                    return out;
                };
                match result {
                    Ok(()) => self.finish(
                        InvitationState::Success,
                        Some((halo, Role::Owner)),
                        None,
                        &mut out,
                    ),
                    Err(reason) => {
                        self.finish(InvitationState::Error, None, Some(reason), &mut out)
                    }
                }
            }
            GuestInput::PrepareFailed(reason) => {
                self.finish(InvitationState::Error, None, Some(reason), &mut out);
            }
            GuestInput::Timer(GuestTimer::Handshake) => {
                let reason = if self.ever_connected {
                    "timeout"
                } else {
                    "host unreachable"
                };
                self.finish(
                    InvitationState::Timeout,
                    None,
                    Some(reason.into()),
                    &mut out,
                );
            }
        }
        out
    }

    fn frame(&mut self, frame: HostFrame, out: &mut Vec<GuestOutput>) {
        match frame {
            HostFrame::AuthRequired { method, challenge } => {
                if self.state != InvitationState::Connected {
                    return self.protocol_error(out);
                }
                if method != self.params.auth {
                    return self.finish(
                        InvitationState::Error,
                        None,
                        Some(format!(
                            "the host asked for '{}' auth, the invitation says '{}'",
                            method.name(),
                            self.params.auth.name()
                        )),
                        out,
                    );
                }
                self.set(InvitationState::ReadyForAuthentication, out);
                match method {
                    AuthMethod::None => self.authenticate(AuthProof::None, out),
                    AuthMethod::Pin => {
                        let pin = self.params.pin.clone().unwrap_or_default();
                        self.authenticate(AuthProof::Pin(pin), out);
                    }
                    AuthMethod::Key => out.push(GuestOutput::SignChallenge(
                        super::messages::challenge_message(&self.params.invitation_id, &challenge),
                    )),
                }
            }
            HostFrame::AuthResult(outcome) => {
                if self.state != InvitationState::Authenticating || self.verdict_seen {
                    return self.protocol_error(out);
                }
                self.verdict_seen = true;
                match outcome {
                    AuthOutcome::Accepted if self.is_device() => {
                        self.admit_sent = true;
                        out.push(GuestOutput::Send(GuestFrame::AdmitDevice));
                    }
                    AuthOutcome::Accepted => out.push(GuestOutput::PrepareAdmission),
                    AuthOutcome::Invalid { attempts_left } => self.finish(
                        InvitationState::Error,
                        None,
                        Some(format!(
                            "invalid auth code, {attempts_left} attempt{} left",
                            if attempts_left == 1 { "" } else { "s" }
                        )),
                        out,
                    ),
                    AuthOutcome::TooManyAttempts => self.finish(
                        InvitationState::Error,
                        None,
                        Some("too many attempts".into()),
                        out,
                    ),
                }
            }
            HostFrame::Admitted { space_key, role } => {
                if self.state != InvitationState::Authenticating
                    || !self.verdict_seen
                    || self.is_device()
                {
                    return self.protocol_error(out);
                }
                self.finish(InvitationState::Success, Some((space_key, role)), None, out);
            }
            HostFrame::DeviceAdmitted(grant) => {
                if self.state != InvitationState::Authenticating
                    || !self.admit_sent
                    || !self.is_device()
                    || self.adopting.is_some()
                {
                    return self.protocol_error(out);
                }
                if grant.halo_space_key != self.params.space_key {
                    return self.finish(
                        InvitationState::Error,
                        None,
                        Some("the host granted another identity space than the code names".into()),
                        out,
                    );
                }
                self.adopting = Some(grant.halo_space_key);
                out.push(GuestOutput::Adopt(grant));
            }
            // The answer to another kind of side stream's question: not in a handshake.
            HostFrame::Spaces(_) => self.protocol_error(out),
            HostFrame::Ended(reason) => {
                let (state, words) = match reason {
                    EndReason::Cancelled => (InvitationState::Cancelled, "cancelled".to_string()),
                    EndReason::Expired => (InvitationState::Expired, "expired".to_string()),
                    EndReason::Timeout => (InvitationState::Timeout, "timeout".to_string()),
                    EndReason::NoLongerValid => (
                        InvitationState::Error,
                        "the invitation is no longer valid".to_string(),
                    ),
                    EndReason::Error(e) => (InvitationState::Error, e),
                };
                self.finish(state, None, Some(words), out);
            }
        }
    }

    fn authenticate(&mut self, proof: AuthProof, out: &mut Vec<GuestOutput>) {
        self.set(InvitationState::Authenticating, out);
        out.push(GuestOutput::Send(GuestFrame::Authenticate(proof)));
    }

    fn protocol_error(&mut self, out: &mut Vec<GuestOutput>) {
        self.finish(
            InvitationState::Error,
            None,
            Some("the host broke the invitation protocol".into()),
            out,
        );
    }

    fn set(&mut self, state: InvitationState, out: &mut Vec<GuestOutput>) {
        self.state = state;
        out.push(GuestOutput::State(state));
    }

    fn finish(
        &mut self,
        state: InvitationState,
        admitted: Option<(PublicKey, Role)>,
        reason: Option<String>,
        out: &mut Vec<GuestOutput>,
    ) {
        self.set(state, out);
        out.push(GuestOutput::Close);
        out.push(GuestOutput::Done(Outcome {
            state,
            admitted,
            reason,
        }));
    }
}
