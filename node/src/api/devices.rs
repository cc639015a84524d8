//! The device routes: list our identity's devices (`GET /v1/devices`), name this one
//! (`POST /v1/devices/rename`, body `{"name": ...}`) and revoke one
//! (`POST /v1/devices/{device}/revoke`, body `{}`). Each checks its body, then makes one
//! [`NodeHandle`] call. Also the `device_name` that the routes where a device takes on an
//! identity (create, recover, device join) accept: checked before they change anything, and
//! given to the device once they have succeeded.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::node::NodeHandle;
use echo_actors::types::check_name;
use serde::Deserialize;

use super::body::{read_json, typed, typed_required};
use super::error::ApiError;
use super::invitations::NoBody;

type Node = web::Data<NodeHandle>;
type Result = std::result::Result<HttpResponse, ApiError>;

pub async fn device_list(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.device_list().await?))
}

pub async fn device_revoke(
    node: Node,
    device: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let NoBody {} = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Ok().json(node.device_revoke(&device).await?))
}

/// Body of `POST /v1/devices/rename`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

pub async fn device_rename(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: RenameBody =
        typed_required(read_json(&req, payload).await?, r#"{"name": "laptop"}"#)?;
    checked_device_name(Some(body.name.clone()))?;
    Ok(HttpResponse::Ok().json(node.device_rename(body.name).await?))
}

/// A request's `device_name`, checked before the request changes anything: `400` with code
/// `invalid` (as for every display name) naming what is wrong with it.
pub fn checked_device_name(name: Option<String>) -> std::result::Result<Option<String>, ApiError> {
    if let Some(n) = &name {
        check_name(n).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("device_name: {e}"),
            )
        })?;
    }
    Ok(name)
}

/// Names this device `name` (if given), once the request that gave this node its identity
/// has succeeded. A failure is logged, never the request's answer: that answer may be the
/// only time the seed phrase is shown, and the name can be given again with `device
/// rename`.
pub async fn name_new_device(node: &NodeHandle, name: Option<String>) {
    if let Some(name) = name {
        if let Err(e) = node.device_rename(name).await {
            tracing::warn!(error = %e, "cannot name this device; `device rename` can do it later");
        }
    }
}
