//! [`SpaceRequestError`]: what a request to a space actor or the space directory can fail
//! with. `NodeHandle` maps it to its own `NodeError`; space/ never sees the front end's
//! types.

use thiserror::Error;

use crate::identity::IdentityRequestError;
use crate::types::ErrorKind;

/// Everything a space request can fail with. Messages say what happened, to what, and what
/// to do about it.
#[derive(Debug, Error)]
pub enum SpaceRequestError {
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
    /// The node waited for its admission to the space in vain.
    #[error("{0}")]
    NotAdmitted(String),
    #[error("too large: {0}")]
    TooLarge(String),
    /// A Yjs client offered back what the space denied (`db/retracted.rs`).
    #[error("{0}")]
    Retracted(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Identity(#[from] IdentityRequestError),
    #[error("the node is shutting down")]
    Unavailable,
}

impl SpaceRequestError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        use SpaceRequestError as E;
        match self {
            E::ObjectDeleted(_) | E::NameTaken(..) | E::NotAdmitted(_) | E::Retracted(_) => {
                ErrorKind::Conflict
            }
            E::SpaceNotFound(_) | E::ObjectNotFound(_) => ErrorKind::NotFound,
            E::AmbiguousSpace(..) | E::Invalid(_) => ErrorKind::BadRequest,
            E::TooLarge(_) => ErrorKind::TooLarge,
            E::Forbidden(_) => ErrorKind::Forbidden,
            E::Storage(_) | E::Corrupt(_) => ErrorKind::Internal,
            E::Identity(e) => e.kind(),
            E::Unavailable => ErrorKind::Unavailable,
        }
    }

    /// A stable machine-readable code, e.g. `space_not_found`.
    pub fn code(&self) -> &'static str {
        use SpaceRequestError as E;
        match self {
            E::SpaceNotFound(_) => "space_not_found",
            E::AmbiguousSpace(..) => "ambiguous_space",
            E::NameTaken(..) => "name_taken",
            E::ObjectNotFound(_) => "object_not_found",
            E::ObjectDeleted(_) => "object_deleted",
            E::Invalid(_) => "invalid",
            E::TooLarge(_) => "too_large",
            E::Forbidden(_) => "forbidden",
            E::NotAdmitted(_) => "not_admitted",
            E::Retracted(_) => "retracted",
            E::Storage(_) => "storage",
            E::Corrupt(_) => "corrupt",
            E::Identity(e) => e.code(),
            E::Unavailable => "unavailable",
        }
    }
}

impl SpaceRequestError {
    /// The same error for every writer of a failed batch (the error types are not `Clone`:
    /// identity errors become their message).
    pub fn clone_for_waiters(&self) -> Self {
        use SpaceRequestError as E;
        match self {
            E::SpaceNotFound(m) => E::SpaceNotFound(m.clone()),
            E::AmbiguousSpace(m, n) => E::AmbiguousSpace(m.clone(), *n),
            E::NameTaken(a, b) => E::NameTaken(a.clone(), b.clone()),
            E::ObjectNotFound(m) => E::ObjectNotFound(m.clone()),
            E::ObjectDeleted(m) => E::ObjectDeleted(m.clone()),
            E::Invalid(m) => E::Invalid(m.clone()),
            E::Forbidden(m) => E::Forbidden(m.clone()),
            E::NotAdmitted(m) => E::NotAdmitted(m.clone()),
            E::TooLarge(m) => E::TooLarge(m.clone()),
            E::Retracted(m) => E::Retracted(m.clone()),
            E::Storage(m) => E::Storage(m.clone()),
            E::Corrupt(m) => E::Corrupt(m.clone()),
            E::Identity(e) => E::Invalid(e.to_string()),
            E::Unavailable => E::Unavailable,
        }
    }
}

impl From<actix::MailboxError> for SpaceRequestError {
    fn from(_: actix::MailboxError) -> Self {
        SpaceRequestError::Unavailable
    }
}
