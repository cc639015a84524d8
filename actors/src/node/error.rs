//! The one error type a caller of [`super::NodeHandle`] sees, with a coarse [`ErrorKind`]
//! that front ends map to exit codes and HTTP statuses.

use thiserror::Error;

/// Coarse class of a [`NodeError`]: what a front end needs to pick a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (bad JSON, bad path, bad id): HTTP 400.
    BadRequest,
    /// The thing named does not exist: HTTP 404.
    NotFound,
    /// This identity's role does not allow it: HTTP 403.
    Forbidden,
    /// The request conflicts with current state (identity exists, object deleted): HTTP 409.
    Conflict,
    /// A value is larger than the node accepts: HTTP 413.
    TooLarge,
    /// The node is shutting down or an actor is gone: HTTP 503.
    Unavailable,
    /// Storage failed or state is corrupt: HTTP 500. Nothing was acknowledged.
    Internal,
}

/// Everything that can go wrong in a [`super::NodeHandle`] call. Messages say what
/// happened, to what, and what to do about it.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("no identity on this node yet (create one with `echo-node identity create`)")]
    NoIdentity,
    #[error("this node already has an identity ({0})")]
    IdentityExists(String),
    #[error("space `{0}` not found (see `echo-node space list`)")]
    SpaceNotFound(String),
    #[error("space name `{0}` is ambiguous: {1} spaces have it; use the space key")]
    AmbiguousSpace(String, usize),
    /// A new space's name is already another space's name on this node (name, its key).
    #[error("space name `{0}` is already taken by space {1} on this node; choose another name")]
    NameTaken(String, String),
    #[error("object {0} not found in this space")]
    ObjectNotFound(String),
    #[error("object {0} is deleted")]
    ObjectDeleted(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("networking failed: {0}")]
    Network(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("the node is shutting down")]
    Unavailable,
}

impl NodeError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::NoIdentity
            | NodeError::IdentityExists(_)
            | NodeError::ObjectDeleted(_)
            | NodeError::NameTaken(..) => ErrorKind::Conflict,
            NodeError::SpaceNotFound(_) | NodeError::ObjectNotFound(_) => ErrorKind::NotFound,
            NodeError::AmbiguousSpace(..) | NodeError::Invalid(_) => ErrorKind::BadRequest,
            NodeError::TooLarge(_) => ErrorKind::TooLarge,
            NodeError::Forbidden(_) => ErrorKind::Forbidden,
            NodeError::Network(_) => ErrorKind::Internal,
            NodeError::Storage(_) | NodeError::Corrupt(_) => ErrorKind::Internal,
            NodeError::Unavailable => ErrorKind::Unavailable,
        }
    }

    /// A stable machine-readable code, e.g. `space_not_found`.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NoIdentity => "no_identity",
            NodeError::IdentityExists(_) => "identity_exists",
            NodeError::SpaceNotFound(_) => "space_not_found",
            NodeError::AmbiguousSpace(..) => "ambiguous_space",
            NodeError::NameTaken(..) => "name_taken",
            NodeError::ObjectNotFound(_) => "object_not_found",
            NodeError::ObjectDeleted(_) => "object_deleted",
            NodeError::Invalid(_) => "invalid",
            NodeError::TooLarge(_) => "too_large",
            NodeError::Forbidden(_) => "forbidden",
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
