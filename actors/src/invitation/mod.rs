//! Invitations: how a guest joins a space (or, later, an identity) through a host that is
//! already a member, with an out-of-band auth code.
//!
//! - [`messages`]: the frames of the handshake and the auth methods.
//! - [`host`]: [`HostCore`], one per invitation on the host: checks guests' codes (at most
//!   3 wrong codes in all, counted and persisted), asks its actor to admit a guest, ends in
//!   exactly one terminal state.
//! - [`guest`]: [`GuestCore`], one per `invite accept`: finds the host, authenticates, asks
//!   to be admitted, ends in exactly one terminal state within its timeout.
//! - [`code`]: the invitation code (compact, base58, checksummed).
//! - `host_actor`, `guest_actor`: the actors that carry out the cores' outputs (side streams
//!   of the mesh, the store, the space); [`directory`]: `InvitationDirectory`, which creates,
//!   loads, lists, cancels and routes invitations and starts one guest actor per accept.
//!
//! The cores take the wall clock in milliseconds (`now_ms`) as an input, because an invitation's
//! lifetime outlives restarts, and ask for timers with `SetTimer { at_ms }` outputs. The RNG
//! is passed in. The states are DXOS's (docs/protocol.md, Invitations).

pub mod code;
pub mod directory;
pub mod guest;
mod guest_actor;
pub mod host;
mod host_actor;
pub mod info;
pub mod messages;
mod request_error;
mod spaces_of;
mod stream_io;

pub use code::{CodeError, InvitationCode, InvitationKind};
pub use directory::{
    draw_pin, invitation_topic, AcceptInvitation, CancelById, CreateDeviceInvitation,
    CreateInvitation, InvitationDirectory, ListInvitations,
};
pub use guest::{GuestCore, GuestInput, GuestOutput, GuestParams, GuestTimer, Outcome};
pub use guest_actor::AcceptResult;
pub use host::{
    terminal_of, HostCore, HostInput, HostOutput, HostTimer, InvitationRecord, SessionId,
    MAX_ATTEMPTS,
};
pub use info::{
    AcceptedInvitation, CreatedInvitation, InvitationInfo, InvitationProgress, InviteOptions,
    DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_LIFETIME_MS,
};
pub use messages::{
    challenge_message, AuthMethod, AuthOutcome, AuthProof, DeviceGrant, EndReason, GuestFrame,
    HostFrame, InvitationState,
};
pub use request_error::InvitationRequestError;

#[cfg(test)]
mod device_flow_tests;
#[cfg(test)]
mod device_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod tests;
