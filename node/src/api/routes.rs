//! The `/v1` routes: one small handler per route, each a thin translation between HTTP/JSON
//! and one [`NodeHandle`] call. The watch stream lives in `watch.rs`.

use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::node::{NodeHandle, QueryRequest};
use serde::Deserialize;
use serde_json::json;

use super::body::{read_json, require_object, typed, typed_required};
use super::error::ApiError;
use super::watch::watch;

type Node = web::Data<NodeHandle>;
type Result = std::result::Result<HttpResponse, ApiError>;

/// Registers every route under `/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/identity", web::get().to(identity_show))
            .route("/identity", web::post().to(identity_create))
            .route("/spaces", web::get().to(space_list))
            .route("/spaces", web::post().to(space_create))
            .route("/spaces/{space}/objects", web::post().to(object_add))
            .route("/spaces/{space}/objects/{id}", web::get().to(object_get))
            .route(
                "/spaces/{space}/objects/{id}",
                web::patch().to(object_update),
            )
            .route(
                "/spaces/{space}/objects/{id}",
                web::delete().to(object_delete),
            )
            .route("/spaces/{space}/query", web::post().to(query))
            .route(
                "/spaces/{space}/objects/{id}/text/{field}",
                web::get().to(text_get),
            )
            .route(
                "/spaces/{space}/objects/{id}/text/{field}/insert",
                web::post().to(text_insert),
            )
            .route(
                "/spaces/{space}/objects/{id}/text/{field}/delete",
                web::post().to(text_delete),
            )
            .route("/spaces/{space}/watch", web::get().to(watch))
            .route("/status", web::get().to(status)),
    );
}

/// Body of `POST /v1/identity` and `POST /v1/spaces`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InsertBody {
    index: u32,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    index: u32,
    len: u32,
}

async fn identity_show(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.identity_show().await?))
}

async fn identity_create(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: NameBody = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Created().json(node.identity_create(body.name).await?))
}

async fn space_list(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.space_list().await?))
}

async fn space_create(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: NameBody = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Created().json(node.space_create(body.name).await?))
}

async fn object_add(
    node: Node,
    space: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let object = require_object(read_json(&req, payload).await?, "the object")?;
    let id = node.object_add(&space, object).await?;
    Ok(HttpResponse::Created().json(json!({ "id": id })))
}

async fn object_get(node: Node, path: web::Path<(String, String)>) -> Result {
    let (space, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(node.object_get(&space, &id).await?))
}

async fn object_update(
    node: Node,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let (space, id) = path.into_inner();
    let patch = require_object(read_json(&req, payload).await?, "the merge patch")?;
    Ok(HttpResponse::Ok().json(node.object_update(&space, &id, patch).await?))
}

async fn object_delete(node: Node, path: web::Path<(String, String)>) -> Result {
    let (space, id) = path.into_inner();
    node.object_delete(&space, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "deleted": true })))
}

async fn query(
    node: Node,
    space: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let request: QueryRequest = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Ok().json(node.query(&space, request).await?))
}

async fn text_get(node: Node, path: web::Path<(String, String, String)>) -> Result {
    let (space, id, field) = path.into_inner();
    let text = node.text_get(&space, &id, &field).await?;
    Ok(HttpResponse::Ok().json(json!({ "text": text })))
}

async fn text_insert(
    node: Node,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let (space, id, field) = path.into_inner();
    let body: InsertBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"index": N, "text": "..."}"#,
    )?;
    let text = node
        .text_insert(&space, &id, &field, body.index, body.text)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "text": text })))
}

async fn text_delete(
    node: Node,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let (space, id, field) = path.into_inner();
    let body: DeleteBody =
        typed_required(read_json(&req, payload).await?, r#"{"index": N, "len": N}"#)?;
    let text = node
        .text_delete(&space, &id, &field, body.index, body.len)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "text": text })))
}

async fn status(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.status().await?))
}

/// Default service: unknown routes are 404 JSON.
pub async fn not_found(req: HttpRequest) -> Result {
    Err(ApiError::not_found_route(req.path()))
}
