//! [`IdentityRequestError`]: what a request to the identity actor can fail with. `NodeHandle`
//! maps it to its own `NodeError`; identity/ never sees the front end's types.

use thiserror::Error;

use super::PhraseError;
use crate::types::ErrorKind;

#[derive(Debug, Error)]
pub enum IdentityRequestError {
    #[error("no identity on this node yet (create one with `echo-node identity create`)")]
    NoIdentity,
    #[error("this node already has an identity ({0})")]
    IdentityExists(String),
    #[error(
        "this node already has an identity ({0}); recover on a fresh data dir \
         (`echo-node --data-dir NEW_DIR run`, then `identity recover` there)"
    )]
    RecoverOnExisting(String),
    #[error(transparent)]
    BadSeedPhrase(#[from] PhraseError),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    Unavailable,
}

impl IdentityRequestError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdentityRequestError::NoIdentity
            | IdentityRequestError::IdentityExists(_)
            | IdentityRequestError::RecoverOnExisting(_) => ErrorKind::Conflict,
            IdentityRequestError::Invalid(_) | IdentityRequestError::BadSeedPhrase(_) => {
                ErrorKind::BadRequest
            }
            IdentityRequestError::Storage(_) => ErrorKind::Internal,
            IdentityRequestError::Unavailable => ErrorKind::Unavailable,
        }
    }

    /// A stable machine-readable code, e.g. `no_identity`.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityRequestError::NoIdentity => "no_identity",
            IdentityRequestError::IdentityExists(_)
            | IdentityRequestError::RecoverOnExisting(_) => "identity_exists",
            IdentityRequestError::BadSeedPhrase(e) => e.code(),
            IdentityRequestError::Invalid(_) => "invalid",
            IdentityRequestError::Storage(_) => "storage",
            IdentityRequestError::Unavailable => "unavailable",
        }
    }
}

impl From<actix::MailboxError> for IdentityRequestError {
    fn from(_: actix::MailboxError) -> Self {
        IdentityRequestError::Unavailable
    }
}
