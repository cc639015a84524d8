//! The invitation handshake on the wire, and its states.
//!
//! ```text
//! guest                                    host
//!   Introduce { invitation_id, identity } ─►  (invitation live? guest key as named?)
//!                                       ◄─   AuthRequired { method, challenge }
//!   Authenticate(proof)                  ─►  (constant-time PIN check / signature check)
//!                                       ◄─   AuthResult(Accepted | Invalid{left} | TooManyAttempts)
//!   Admit { device_auth, feeds }         ─►  (SpaceMember + AdmittedFeed, one durable batch)
//!                                       ◄─   Admitted { space_key, role }
//! ```
//! Either side may end the handshake with `Ended(reason)` from the host (cancelled, expired,
//! timeout, error). The auth code never travels anywhere but in `Authenticate`.
//!
//! A device invitation (`device invite`) has the same states and frames up to the verdict;
//! the guest, a fresh device with no identity, introduces itself with its device key and
//! then asks `AdmitDevice`; the host's device authorises it into the identity and answers
//! `DeviceAdmitted` with what the new device needs to take the identity on.

use serde::{Deserialize, Serialize};

use crate::credentials::{Credential, Role};
use crate::types::{PublicKey, Signature};

/// How a guest proves it may use an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthMethod {
    /// Anyone with the invitation code.
    None,
    /// A 6-digit code, told over a side channel (DXOS's SHARED_SECRET).
    Pin,
    /// A device of the identity named at creation signs the host's challenge, and shows
    /// its `AuthorizedDevice` chain to that identity (DXOS's KNOWN_PUBLIC_KEY; the identity
    /// key itself is never stored on a device, so it cannot sign).
    Key,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Pin => "pin",
            AuthMethod::Key => "key",
        }
    }
}

/// The guest's proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthProof {
    None,
    Pin(String),
    /// The challenge message signed by the device `device_auth` authorises for the
    /// identity.
    Signed {
        signature: Signature,
        device_auth: Box<Credential>,
    },
}

/// Frames from the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestFrame {
    Introduce {
        invitation_id: [u8; 16],
        identity_key: PublicKey,
    },
    Authenticate(AuthProof),
    Admit {
        /// The guest's `AuthorizedDevice` credential (identity -> device).
        device_auth: Box<Credential>,
        /// The guest's feeds for the space (control, data).
        feeds: Vec<PublicKey>,
    },
    /// For a device invitation: authorise this device (the one at the other end of the
    /// connection) into the host's identity.
    AdmitDevice,
    /// Not an invitation: a device whose identity space is still joining (recovered from
    /// the seed phrase) asks which spaces of the peer its identity is a member of, proving
    /// with its `AuthorizedDevice` chain that it is a device of that identity. The first and
    /// only frame of its stream; answered `Spaces`.
    SpacesOf {
        device_auth: Box<Credential>,
    },
}

/// What a device invitation's host gives the new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub identity_key: PublicKey,
    /// The identity's display name.
    pub name: Option<String>,
    /// `AuthorizedDevice { identity -> the guest's device }`, signed by the host's device
    /// with its own chain.
    pub device_credential: Credential,
    /// The identity space, which the new device joins by key.
    pub halo_space_key: PublicKey,
    /// The spaces the identity's list names (the new device joins each; the list also
    /// replicates in the identity space).
    pub spaces: Vec<PublicKey>,
}

/// The host's verdict on a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    Accepted,
    /// Wrong code; this many attempts are left for every guest together.
    Invalid {
        attempts_left: u8,
    },
    /// The third wrong code: the invitation is over.
    TooManyAttempts,
}

/// Why the host ended a handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    Cancelled,
    Expired,
    Timeout,
    /// Used up (single use), or ended by too many wrong codes.
    NoLongerValid,
    Error(String),
}

/// Frames from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostFrame {
    AuthRequired {
        method: AuthMethod,
        challenge: [u8; 32],
    },
    AuthResult(AuthOutcome),
    Admitted {
        space_key: PublicKey,
        role: Role,
    },
    Ended(EndReason),
    /// The answer to `AdmitDevice`.
    DeviceAdmitted(Box<DeviceGrant>),
    /// The answer to `SpacesOf`: the spaces of this node whose member (not REMOVED) the
    /// asking device's identity is and where that device is not revoked, by key (empty
    /// for a device of anyone else).
    Spaces(Vec<PublicKey>),
}

/// The states of one handshake (DXOS's), the last five terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InvitationState {
    Init,
    Connecting,
    Connected,
    ReadyForAuthentication,
    Authenticating,
    Success,
    Cancelled,
    Timeout,
    Error,
    Expired,
}

impl InvitationState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InvitationState::Success
                | InvitationState::Cancelled
                | InvitationState::Timeout
                | InvitationState::Error
                | InvitationState::Expired
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            InvitationState::Init => "INIT",
            InvitationState::Connecting => "CONNECTING",
            InvitationState::Connected => "CONNECTED",
            InvitationState::ReadyForAuthentication => "READY_FOR_AUTHENTICATION",
            InvitationState::Authenticating => "AUTHENTICATING",
            InvitationState::Success => "SUCCESS",
            InvitationState::Cancelled => "CANCELLED",
            InvitationState::Timeout => "TIMEOUT",
            InvitationState::Error => "ERROR",
            InvitationState::Expired => "EXPIRED",
        }
    }
}

/// What the guest signs for `key` auth: a domain tag, the invitation id and the challenge,
/// so that a signature made for one invitation cannot serve another.
pub fn challenge_message(invitation_id: &[u8; 16], challenge: &[u8; 32]) -> Vec<u8> {
    let mut m = b"echo-rs invitation challenge v1".to_vec();
    m.extend_from_slice(invitation_id);
    m.extend_from_slice(challenge);
    m
}
