//! Bearer-token check for every request of the local API. The token is compared in
//! constant time; a missing or wrong token is a 401 JSON error before any handler runs.
//! Browsers cannot set headers on a WebSocket, so the Yjs bridge (`/v1/yjs/...`) also
//! accepts the token as the `token` query parameter. Nothing here logs the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The daemon's bearer token (app data).
#[derive(Clone)]
pub struct ApiToken(pub String);

/// True when `authorization` is `Bearer <token>` (scheme case-insensitive) with exactly
/// this token.
pub fn bearer_matches(authorization: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    if value.len() < 7 || !value[..7].eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    let presented = value[7..].trim_ascii();
    !token.is_empty() && bool::from(presented.ct_eq(token.as_bytes()))
}

/// The `token` query parameter (of a WebSocket URL), compared in constant time.
pub fn query_token_matches(query: &str, token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Params {
        token: Option<String>,
    }
    let presented = web::Query::<Params>::from_query(query)
        .ok()
        .and_then(|q| q.into_inner().token);
    presented.is_some_and(|p| !token.is_empty() && bool::from(p.as_bytes().ct_eq(token.as_bytes())))
}

/// Middleware: rejects requests without the right bearer token.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let authorized = req.app_data::<web::Data<ApiToken>>().is_some_and(|token| {
        bearer_matches(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            &token.0,
        ) || (req.path().starts_with("/v1/yjs/")
            && query_token_matches(req.query_string(), &token.0))
    });
    if !authorized {
        return Err(ApiError::unauthorized().into());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_token() {
        assert!(bearer_matches(Some(b"Bearer abc123"), "abc123"));
        assert!(bearer_matches(Some(b"bearer abc123"), "abc123"));
        assert!(!bearer_matches(Some(b"Bearer abc124"), "abc123"));
        assert!(!bearer_matches(Some(b"Bearer abc12"), "abc123"));
        assert!(!bearer_matches(Some(b"Bearer abc1234"), "abc123"));
        assert!(!bearer_matches(Some(b"Basic abc123"), "abc123"));
        assert!(!bearer_matches(Some(b"abc123"), "abc123"));
        assert!(!bearer_matches(None, "abc123"));
        assert!(!bearer_matches(Some(b"Bearer "), ""));
    }

    #[test]
    fn query_token() {
        assert!(query_token_matches("token=abc123", "abc123"));
        assert!(query_token_matches("x=1&token=abc123", "abc123"));
        assert!(!query_token_matches("token=abc12", "abc123"));
        assert!(!query_token_matches("", "abc123"));
        assert!(!query_token_matches("token=", ""));
    }
}
