//! Request bodies: read with a size limit (2 MiB, checked against `Content-Length` first and
//! again while reading), accepted when untyped or JSON, parsed into a `serde_json::Value`.
//! Every failure is an [`ApiError`] (400 bad_json, 400 invalid for a number that would not
//! be stored exactly, 413 too_large, 415).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// Largest request body the API accepts.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Reads the body as JSON; `Ok(None)` when it is empty.
pub async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Option<Value>, ApiError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("content type `{essence}` is not accepted; send application/json"),
            ));
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Err(ApiError::too_large(BODY_LIMIT));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::too_large(BODY_LIMIT));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value = serde_json::from_slice(&body).map_err(ApiError::bad_json)?;
    // Parsing rounds long numbers silently; the raw tokens tell whether one changed.
    echo_actors::db::check_json_numbers(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
    Ok(Some(value))
}

/// A body that must be a JSON object (objects, merge patches).
pub fn require_object(body: Option<Value>, what: &str) -> Result<Value, ApiError> {
    match body {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        ))),
        None => Err(ApiError::bad_request(format!(
            "request body is empty; send {what} as a JSON object"
        ))),
    }
}

/// A typed request body; an empty body is the type's default.
pub fn typed<T: DeserializeOwned + Default>(body: Option<Value>) -> Result<T, ApiError> {
    match body {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("bad request body: {e}"))),
    }
}

/// A typed request body that must be present.
pub fn typed_required<T: DeserializeOwned>(
    body: Option<Value>,
    example: &str,
) -> Result<T, ApiError> {
    let body = body
        .ok_or_else(|| ApiError::bad_request(format!("request body is empty; send {example}")))?;
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("bad request body: {e} (expected {example})")))
}

/// A duration member in milliseconds: `default` when absent, else 1 to `max`.
pub fn duration_ms(
    member: &str,
    value: Option<u64>,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match value {
        None => Ok(default),
        Some(ms) if (1..=max).contains(&ms) => Ok(ms),
        Some(ms) => Err(ApiError::bad_request(format!(
            "{member} {ms} is out of range: give 1 to {max} milliseconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_required_where_needed() {
        assert!(require_object(Some(json!({"a": 1})), "the object").is_ok());
        assert_eq!(
            require_object(Some(json!([1])), "the object").map_err(|e| e.code),
            Err("bad_request")
        );
        assert!(require_object(None, "the object").is_err());
    }

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    struct Named {
        name: Option<String>,
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(duration_ms("t", None, 7, 10), Ok(7));
        assert_eq!(duration_ms("t", Some(1), 7, 10), Ok(1));
        assert_eq!(duration_ms("t", Some(10), 7, 10), Ok(10));
        for bad in [0, 11] {
            let e = duration_ms("timeout_ms", Some(bad), 7, 10).expect_err("out of range");
            assert_eq!(e.code, "bad_request");
            assert!(e.message.starts_with("timeout_ms "), "{}", e.message);
        }
    }

    #[test]
    fn empty_bodies_default() {
        assert_eq!(typed::<Named>(None), Ok(Named::default()));
        assert_eq!(
            typed::<Named>(Some(json!({"name": "x"}))),
            Ok(Named {
                name: Some("x".into())
            })
        );
        assert!(typed::<Named>(Some(json!({"name": 3}))).is_err());
    }
}
