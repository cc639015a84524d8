//! The device routes: list our identity's devices (`GET /v1/devices`) and revoke one
//! (`POST /v1/devices/{device}/revoke`, body `{}`). Each checks its body, then makes one
//! [`NodeHandle`] call.

use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::node::NodeHandle;

use super::body::{read_json, typed};
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
