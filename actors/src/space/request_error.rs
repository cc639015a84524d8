//! [`SpaceRequestError`]: what a request to a space actor or the space directory can fail
//! with. `NodeHandle` maps it to its own `NodeError`; space/ never sees the front end's
//! types.

use thiserror::Error;

use crate::identity::IdentityRequestError;

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
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Identity(#[from] IdentityRequestError),
    #[error("the node is shutting down")]
    Unavailable,
}

impl From<actix::MailboxError> for SpaceRequestError {
    fn from(_: actix::MailboxError) -> Self {
        SpaceRequestError::Unavailable
    }
}
