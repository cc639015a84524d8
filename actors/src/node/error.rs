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

impl From<crate::space::SpaceRequestError> for NodeError {
    fn from(e: crate::space::SpaceRequestError) -> Self {
        use crate::space::SpaceRequestError as E;
        match e {
            E::SpaceNotFound(s) => NodeError::SpaceNotFound(s),
            E::AmbiguousSpace(s, n) => NodeError::AmbiguousSpace(s, n),
            E::NameTaken(name, key) => NodeError::NameTaken(name, key),
            E::ObjectNotFound(id) => NodeError::ObjectNotFound(id),
            E::ObjectDeleted(id) => NodeError::ObjectDeleted(id),
            E::Invalid(m) => NodeError::Invalid(m),
            E::Forbidden(m) => NodeError::Forbidden(m),
            E::TooLarge(m) => NodeError::TooLarge(m),
            E::Storage(m) => NodeError::Storage(m),
            E::Corrupt(m) => NodeError::Corrupt(m),
            E::Identity(e) => e.into(),
            E::Unavailable => NodeError::Unavailable,
        }
    }
}

impl From<crate::identity::IdentityRequestError> for NodeError {
    fn from(e: crate::identity::IdentityRequestError) -> Self {
        use crate::identity::IdentityRequestError as E;
        match e {
            E::NoIdentity => NodeError::NoIdentity,
            E::IdentityExists(k) => NodeError::IdentityExists(k),
            E::Invalid(m) => NodeError::Invalid(m),
            E::Storage(m) => NodeError::Storage(m),
            E::Unavailable => NodeError::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityRequestError;
    use crate::space::SpaceRequestError;

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
