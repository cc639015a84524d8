//! [`IdentityRequestError`]: what a request to the identity actor can fail with. `NodeHandle`
//! maps it to its own `NodeError`; identity/ never sees the front end's types.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum IdentityRequestError {
    #[error("no identity on this node yet (create one with `echo-node identity create`)")]
    NoIdentity,
    #[error("this node already has an identity ({0})")]
    IdentityExists(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    Unavailable,
}

impl From<actix::MailboxError> for IdentityRequestError {
    fn from(_: actix::MailboxError) -> Self {
        IdentityRequestError::Unavailable
    }
}
