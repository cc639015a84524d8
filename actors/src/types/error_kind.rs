//! [`ErrorKind`]: the coarse class of an error that front ends map to exit codes and HTTP
//! statuses. Each layer's error (space, identity, node) says which class it is in.

/// Coarse class of an error: what a front end needs to pick a status code.
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
