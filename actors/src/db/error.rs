//! Errors of the object model.
//!
//! Contract: every failure of a [`super::SpaceDoc`] operation is one of these variants, never a
//! panic. Each message says what was wrong, which object or field it concerns and, where there
//! is one, what the caller can do about it. An operation that returns an error has written
//! nothing (see the module docs for the single exception, a half-applied remote update).

use super::ObjectId;

/// Why an object-model operation was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum DbError {
    /// No object with this id exists in the space (it may not have replicated yet).
    #[error("object {0} not found: check the id, or wait until the space has replicated it")]
    NotFound(ObjectId),
    /// The object is soft-deleted; only a patch with `"@deleted": false` may touch it.
    #[error("object {0} is deleted: restore it first with a patch that sets \"@deleted\": false")]
    Deleted(ObjectId),
    /// The input breaks a rule of the data model; the message names the rule.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The input exceeds [`super::MAX_DEPTH`] or [`super::MAX_VALUE_BYTES`].
    #[error("too large: {0}")]
    TooLarge(String),
    /// A text operation addressed a field that holds neither text nor a plain string.
    #[error(
        "field `{field}` does not hold text: text operations work on text fields, plain \
         strings (converted on first edit) and, for inserts, missing fields"
    )]
    NotText {
        /// The field that was addressed.
        field: String,
    },
    /// Bytes given to `apply_update` are not a valid yrs v1 update for this document.
    #[error("bad update: {0}; the block carrying it should be treated as corrupt")]
    BadUpdate(String),
}
