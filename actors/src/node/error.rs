//! The one error type a caller of [`super::NodeHandle`] sees, with a coarse [`ErrorKind`]
//! that front ends map to exit codes and HTTP statuses; space and identity errors are
//! wrapped as they are.

use thiserror::Error;

use crate::identity::IdentityRequestError;
use crate::invitation::InvitationRequestError;
use crate::space::SpaceRequestError;
pub use crate::types::ErrorKind;

/// Everything that can go wrong in a [`super::NodeHandle`] call: a space's or the
/// identity's own error, or one of the node's. Messages say what happened, to what, and
/// what to do about it.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Space(#[from] SpaceRequestError),
    #[error(transparent)]
    Identity(#[from] IdentityRequestError),
    #[error(transparent)]
    Invitation(#[from] InvitationRequestError),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("networking failed: {0}")]
    Network(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("the node is shutting down")]
    Unavailable,
}

impl NodeError {
    /// No identity on this node yet.
    pub fn no_identity() -> Self {
        NodeError::Identity(IdentityRequestError::NoIdentity)
    }

    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Space(e) => e.kind(),
            NodeError::Identity(e) => e.kind(),
            NodeError::Invitation(e) => e.kind(),
            NodeError::Invalid(_) => ErrorKind::BadRequest,
            NodeError::Network(_) | NodeError::Storage(_) | NodeError::Corrupt(_) => {
                ErrorKind::Internal
            }
            NodeError::Unavailable => ErrorKind::Unavailable,
        }
    }

    /// A stable machine-readable code, e.g. `space_not_found`.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Space(e) => e.code(),
            NodeError::Identity(e) => e.code(),
            NodeError::Invitation(e) => e.code(),
            NodeError::Invalid(_) => "invalid",
            NodeError::Network(_) => "network",
            NodeError::Storage(_) => "storage",
            NodeError::Corrupt(_) => "corrupt",
            NodeError::Unavailable => "unavailable",
        }
    }
}

impl From<actix::MailboxError> for NodeError {
    fn from(_: actix::MailboxError) -> Self {
        NodeError::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_and_identity_errors_keep_their_kind_and_code() {
        let cases: Vec<(NodeError, ErrorKind, &str)> = vec![
            (
                SpaceRequestError::TooLarge("x".into()).into(),
                ErrorKind::TooLarge,
                "too_large",
            ),
            (
                SpaceRequestError::Storage("x".into()).into(),
                ErrorKind::Internal,
                "storage",
            ),
            (
                SpaceRequestError::NameTaken("n".into(), "k".into()).into(),
                ErrorKind::Conflict,
                "name_taken",
            ),
            (
                SpaceRequestError::Forbidden("x".into()).into(),
                ErrorKind::Forbidden,
                "forbidden",
            ),
            (
                SpaceRequestError::SpaceNotFound("s".into()).into(),
                ErrorKind::NotFound,
                "space_not_found",
            ),
            (
                SpaceRequestError::Identity(IdentityRequestError::NoIdentity).into(),
                ErrorKind::Conflict,
                "no_identity",
            ),
            (
                IdentityRequestError::IdentityExists("k".into()).into(),
                ErrorKind::Conflict,
                "identity_exists",
            ),
            (
                IdentityRequestError::Unavailable.into(),
                ErrorKind::Unavailable,
                "unavailable",
            ),
        ];
        for (e, kind, code) in cases {
            assert_eq!((e.kind(), e.code()), (kind, code), "{e}");
        }
        // Messages pass through unchanged.
        let e: NodeError = SpaceRequestError::ObjectNotFound("01AB".into()).into();
        assert_eq!(e.to_string(), "object 01AB not found in this space");
    }
}
