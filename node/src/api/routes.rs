//! The `/v1` routes: one small handler per route, each a thin translation between HTTP/JSON
//! and one [`NodeHandle`] call. The watch stream lives in `watch.rs`.

use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::credentials::Role;
use echo_actors::node::{NodeHandle, QueryRequest, WhereEq};
use serde::Deserialize;
use serde_json::json;

use super::body::{read_json, require_object, typed, typed_required};
use super::error::ApiError;
use super::watch::watch;

type Node = web::Data<NodeHandle>;
type Result = std::result::Result<HttpResponse, ApiError>;

/// Registers every route under `/v1`. A known path with the wrong method is a 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let space = "/spaces/{space}";
    let object = "/spaces/{space}/objects/{id}";
    let text = "/spaces/{space}/objects/{id}/text/{field}";
    cfg.service(
        web::scope("/v1")
            .service(
                resource("/identity")
                    .route(web::get().to(identity_show))
                    .route(web::post().to(identity_create)),
            )
            .service(
                resource("/spaces")
                    .route(web::get().to(space_list))
                    .route(web::post().to(space_create)),
            )
            .service(resource("/spaces/join").route(web::post().to(space_join)))
            .service(
                resource(&format!("{space}/members"))
                    .route(web::get().to(member_list))
                    .route(web::post().to(member_add)),
            )
            .service(resource(&format!("{space}/verdicts")).route(web::get().to(verdicts)))
            .service(resource(&format!("{space}/objects")).route(web::post().to(object_add)))
            .service(
                resource(object)
                    .route(web::get().to(object_get))
                    .route(web::patch().to(object_update))
                    .route(web::delete().to(object_delete)),
            )
            .service(resource(&format!("{space}/query")).route(web::post().to(query)))
            .service(resource(text).route(web::get().to(text_get)))
            .service(resource(&format!("{text}/insert")).route(web::post().to(text_insert)))
            .service(resource(&format!("{text}/delete")).route(web::post().to(text_delete)))
            .service(resource(&format!("{space}/watch")).route(web::get().to(watch)))
            .service(resource("/yjs/{space}").route(web::get().to(super::yjs::yjs)))
            .service(resource("/status").route(web::get().to(status))),
    );
}

/// A resource whose unmatched methods answer 405 with a JSON error.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {} (see docs/api.md)",
            req.method(),
            req.path()
        ),
    ))
}

/// Body of `POST /v1/identity` and `POST /v1/spaces`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: Option<String>,
}

/// Body of `POST /v1/spaces/join`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    space_key: String,
    name: Option<String>,
}

/// Body of `POST /v1/spaces/{space}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    identity_key: String,
    role: Option<String>,
}

/// The roles a member can be given through the API (OWNER exists only from genesis).
fn member_role(role: Option<&str>) -> std::result::Result<Role, ApiError> {
    match role {
        None | Some("editor") => Ok(Role::Editor),
        Some("admin") => Ok(Role::Admin),
        Some("reader") => Ok(Role::Reader),
        Some(other) => Err(ApiError::bad_request(format!(
            "role `{other}` cannot be given; use admin, editor or reader"
        ))),
    }
}

/// Body of `POST /v1/spaces/{space}/query`: like [`QueryRequest`], but a misspelt member
/// is an error rather than a filter silently left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    #[serde(default, rename = "type")]
    type_name: Option<String>,
    #[serde(default, rename = "where")]
    where_eq: Vec<WhereEq>,
    #[serde(default)]
    include_deleted: bool,
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

async fn space_join(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: JoinBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"space_key": "<64 hex>", "name": "..."}"#,
    )?;
    Ok(HttpResponse::Created().json(node.space_join(&body.space_key, body.name).await?))
}

async fn verdicts(node: Node, space: web::Path<String>) -> Result {
    Ok(HttpResponse::Ok().json(node.space_verdicts(&space).await?))
}

async fn member_list(node: Node, space: web::Path<String>) -> Result {
    Ok(HttpResponse::Ok().json(node.space_members(&space).await?))
}

/// Adds a member (201) or changes an existing member's role (200); answers with the member.
async fn member_add(
    node: Node,
    space: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let body: MemberBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"identity_key": "<64 hex>", "role": "editor"}"#,
    )?;
    let role = member_role(body.role.as_deref())?;
    let key = body.identity_key.trim().to_ascii_lowercase();
    let existed = node
        .space_members(&space)
        .await?
        .iter()
        .any(|m| m.identity_key == key);
    node.space_add_member(&space, &key, role).await?;
    let member = node
        .space_members(&space)
        .await?
        .into_iter()
        .find(|m| m.identity_key == key)
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("member {key} was added but is not listed"),
            )
        })?;
    let mut response = if existed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(member))
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
    let QueryBody {
        type_name,
        where_eq,
        include_deleted,
    } = typed(read_json(&req, payload).await?)?;
    let request = QueryRequest {
        type_name,
        where_eq,
        include_deleted,
    };
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
    let inserted = body.text.chars().count();
    let text = node
        .text_insert(&space, &id, &field, body.index, body.text)
        .await?;
    // The change and the new length, never the whole text: a client typing one character at
    // a time would otherwise receive O(length) bytes per keystroke.
    Ok(HttpResponse::Ok().json(json!({
        "length": text.chars().count(),
        "index": body.index,
        "inserted": inserted,
    })))
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
    Ok(HttpResponse::Ok().json(json!({
        "length": text.chars().count(),
        "index": body.index,
        "deleted": body.len,
    })))
}

async fn status(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.status().await?))
}

/// Default service: unknown routes are 404 JSON.
pub async fn not_found(req: HttpRequest) -> Result {
    Err(ApiError::not_found_route(req.path()))
}
