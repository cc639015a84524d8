//! Invitations: how a guest joins a space (or, later, an identity) through a host that is
//! already a member, with an out-of-band auth code. Sans-IO cores only, so far:
//!
//! - [`messages`]: the frames of the handshake and the auth methods.
//! - [`host`]: [`HostCore`], one per invitation on the host: checks guests' codes (at most
//!   3 wrong codes in all, counted and persisted), asks its actor to admit a guest, ends in
//!   exactly one terminal state.
//! - [`guest`]: [`GuestCore`], one per `invite accept`: finds the host, authenticates, asks
//!   to be admitted, ends in exactly one terminal state within its timeout.
//!
//! Both take the wall clock in milliseconds (`now_ms`) as an input, because an invitation's
//! lifetime outlives restarts, and ask for timers with `SetTimer { at_ms }` outputs. The RNG
//! is passed in. The states are DXOS's (docs/protocol.md, Invitations).

pub mod code;
pub mod guest;
pub mod host;
pub mod info;
pub mod messages;
mod request_error;

pub use code::{CodeError, InvitationCode, InvitationKind};
pub use guest::{GuestCore, GuestInput, GuestOutput, GuestParams, GuestTimer, Outcome};
pub use host::{
    terminal_of, HostCore, HostInput, HostOutput, HostTimer, InvitationRecord, SessionId,
    MAX_ATTEMPTS,
};
pub use info::{
    AcceptedInvitation, CreatedInvitation, InvitationInfo, InvitationProgress, InviteOptions,
    DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_LIFETIME_MS,
};
pub use request_error::InvitationRequestError;
pub use messages::{
    challenge_message, AuthMethod, AuthOutcome, AuthProof, EndReason, GuestFrame, HostFrame,
    InvitationState,
};

#[cfg(test)]
mod tests;
