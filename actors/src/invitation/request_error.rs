//! [`InvitationRequestError`]: what creating, accepting, listing or cancelling an
//! invitation can fail with. `NodeError` wraps it as it is.

use thiserror::Error;

use super::messages::InvitationState;
use crate::space::SpaceRequestError;
use crate::types::ErrorKind;

/// Everything an invitation request can fail with. Messages say what happened and what to
/// do about it.
#[derive(Debug, Error)]
pub enum InvitationRequestError {
    #[error("invitation {0} not found (see `echo-node invite list`)")]
    NotFound(String),
    /// The invitation code could not be read: says which way it is broken.
    #[error("bad invitation code: {0}")]
    BadCode(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The handshake ended in a terminal state other than SUCCESS.
    #[error("invitation {}: {reason}", state.name())]
    Failed {
        state: InvitationState,
        reason: String,
    },
    #[error(transparent)]
    Space(#[from] SpaceRequestError),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    Unavailable,
}

impl InvitationRequestError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        use InvitationRequestError as E;
        match self {
            E::NotFound(_) => ErrorKind::NotFound,
            E::BadCode(_) | E::Invalid(_) => ErrorKind::BadRequest,
            E::Forbidden(_) => ErrorKind::Forbidden,
            E::Failed { .. } => ErrorKind::Conflict,
            E::Space(e) => e.kind(),
            E::Storage(_) => ErrorKind::Internal,
            E::Unavailable => ErrorKind::Unavailable,
        }
    }

    /// A stable machine-readable code, e.g. `invitation_timeout`.
    pub fn code(&self) -> &'static str {
        use InvitationRequestError as E;
        match self {
            E::NotFound(_) => "invitation_not_found",
            E::BadCode(_) => "bad_invitation_code",
            E::Invalid(_) => "invalid",
            E::Forbidden(_) => "forbidden",
            E::Failed { state, .. } => match state {
                InvitationState::Cancelled => "invitation_cancelled",
                InvitationState::Timeout => "invitation_timeout",
                InvitationState::Expired => "invitation_expired",
                _ => "invitation_error",
            },
            E::Space(e) => e.code(),
            E::Storage(_) => "storage",
            E::Unavailable => "unavailable",
        }
    }
}

impl From<actix::MailboxError> for InvitationRequestError {
    fn from(_: actix::MailboxError) -> Self {
        InvitationRequestError::Unavailable
    }
}
