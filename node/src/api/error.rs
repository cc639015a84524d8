//! Every error of the local API is one JSON shape, `{"error": "<message>", "code": "<code>"}`,
//! with an HTTP status from the error's kind. This module builds it from [`NodeError`]s,
//! from actix-web's extractor errors, and (as a last resort) from any other error response
//! so that no plain-text error leaves the server.

use std::fmt;

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use echo_actors::node::{ErrorKind, NodeError};
use serde::Serialize;

/// The JSON error body.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
}

/// An API error: status, stable code, human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_json(message: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("request body is not valid JSON: {message}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (send `Authorization: Bearer <DATA_DIR/api-token>`)",
        )
    }

    pub fn not_found_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such route: {path} (see docs/api.md)"),
        )
    }

    /// A generic error for a status some part of actix-web produced on its own.
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNAUTHORIZED => "unauthorized",
            s if s.is_client_error() => "bad_request",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        };
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        Self::new(status, code, reason)
    }
}

/// The HTTP status for a node error's kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        ApiError::new(status_of(e.kind()), e.code(), e.to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: &self.message,
            code: self.code,
        })
    }
}

/// Path-extractor errors.
pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad path: {err}")).into()
}

/// Query-string-extractor errors.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("bad query string: {err}")).into()
}

/// Last resort (an `ErrorHandlers` default handler): turns any error response that is not
/// already JSON, e.g. a 405 from a resource without that method, into the JSON error shape.
pub fn json_error_fallback<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let error = ApiError::from_status(res.status());
    let (req, _) = res.into_parts();
    let res = ServiceResponse::new(req, error.error_response()).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_actors::identity::IdentityRequestError;
    use echo_actors::space::SpaceRequestError;

    #[test]
    fn node_errors_map_to_statuses_and_codes() {
        let e = ApiError::from(NodeError::Space(SpaceRequestError::SpaceNotFound(
            "x".into(),
        )));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::NOT_FOUND, "space_not_found")
        );
        let e = ApiError::from(NodeError::Identity(IdentityRequestError::IdentityExists(
            "k".into(),
        )));
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e = ApiError::from(NodeError::Space(SpaceRequestError::TooLarge("big".into())));
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = ApiError::from(NodeError::Unavailable);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn generic_statuses_get_codes() {
        assert_eq!(
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).code,
            "method_not_allowed"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::IM_A_TEAPOT).code,
            "bad_request"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::BAD_GATEWAY).code,
            "internal"
        );
    }
}
