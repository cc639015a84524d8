//! The `/v1` routes: one small handler per route, each a thin translation between HTTP/JSON
//! and one [`NodeHandle`] call (`space join` makes two: join, then wait until writable). The
//! watch stream lives in `watch.rs`, the invitation routes in `invitations.rs`, the device
//! routes in `devices.rs`.

use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::credentials::Role;
use echo_actors::node::{MemberInfo, NodeError, NodeHandle, QueryRequest, SpaceInfo, WhereEq};
use serde::Deserialize;
use serde_json::json;

use super::body::{duration_ms, read_json, require_object, typed, typed_required};
use super::devices::{checked_device_name, name_new_device};
use super::error::ApiError;
use super::invitations::{
    invite_accept, invite_cancel, invite_create, invite_list, MAX_TIMEOUT_MS,
};
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
            .service(resource("/identity/recover").route(web::post().to(identity_recover)))
            .service(resource("/devices").route(web::get().to(super::devices::device_list)))
            .service(
                resource("/devices/invitations")
                    .route(web::post().to(super::invitations::device_invite)),
            )
            .service(
                resource("/devices/join").route(web::post().to(super::invitations::device_join)),
            )
            .service(
                resource("/devices/rename").route(web::post().to(super::devices::device_rename)),
            )
            .service(
                resource("/devices/{device}/revoke")
                    .route(web::post().to(super::devices::device_revoke)),
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
            .service(
                resource(&format!("{space}/members/{{identity}}"))
                    .route(web::put().to(member_set_role))
                    .route(web::delete().to(member_remove)),
            )
            .service(resource(&format!("{space}/invitations")).route(web::post().to(invite_create)))
            .service(resource("/invitations").route(web::get().to(invite_list)))
            .service(resource("/invitations/accept").route(web::post().to(invite_accept)))
            .service(resource("/invitations/{id}/cancel").route(web::post().to(invite_cancel)))
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

/// Body of `POST /v1/spaces`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: Option<String>,
}

/// Body of `POST /v1/identity`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIdentityBody {
    name: Option<String>,
    /// This device's name (`device rename`).
    device_name: Option<String>,
}

/// Body of `POST /v1/identity/recover`. No `Debug`: it holds the seed phrase.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverBody {
    seed_phrase: String,
    name: Option<String>,
    device_name: Option<String>,
}

/// How long `POST /v1/spaces/join` waits for the node to become writable by default.
const DEFAULT_JOIN_WAIT_MS: u64 = 30_000;

/// Body of `POST /v1/spaces/join`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    space_key: String,
    name: Option<String>,
    /// Wait until this node may write (default true).
    wait: Option<bool>,
    /// How long to wait (default 30 s); only with `wait`.
    timeout_ms: Option<u64>,
}

impl JoinBody {
    /// How long to wait until writable, or `None` for no wait.
    fn wait_ms(&self) -> std::result::Result<Option<u64>, ApiError> {
        match (self.wait.unwrap_or(true), self.timeout_ms) {
            (false, Some(_)) => Err(ApiError::bad_request(
                "timeout_ms is for a join that waits; leave it out with \"wait\": false",
            )),
            (false, None) => Ok(None),
            (true, ms) => {
                duration_ms("timeout_ms", ms, DEFAULT_JOIN_WAIT_MS, MAX_TIMEOUT_MS).map(Some)
            }
        }
    }
}

/// Body of `POST /v1/spaces/{space}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    identity_key: String,
    role: Option<String>,
}

/// Body of `PUT /v1/spaces/{space}/members/{identity}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

/// The roles a member can be given through the API (OWNER exists only from genesis).
pub(super) fn member_role(role: Option<&str>) -> std::result::Result<Role, ApiError> {
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
    let body: CreateIdentityBody = typed(read_json(&req, payload).await?)?;
    let device_name = checked_device_name(body.device_name)?;
    let created = node.identity_create(body.name).await?;
    name_new_device(&node, device_name).await;
    Ok(HttpResponse::Created().json(created))
}

/// Recovers the identity of a seed phrase (201); 400 with a code naming what is wrong with
/// the phrase (`wrong_word_count`, `unknown_word`, `bad_checksum`), 409 if the node has an
/// identity.
async fn identity_recover(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: RecoverBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"seed_phrase": "<24 words>"}"#,
    )?;
    let device_name = checked_device_name(body.device_name)?;
    let recovered = node.identity_recover(body.seed_phrase, body.name).await?;
    name_new_device(&node, device_name).await;
    Ok(HttpResponse::Created().json(recovered))
}

async fn space_list(node: Node) -> Result {
    Ok(HttpResponse::Ok().json(node.space_list().await?))
}

async fn space_create(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: NameBody = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Created().json(node.space_create(body.name).await?))
}

/// Joins a space (201), or finds it already joined (200: a join that timed out waiting, run
/// again), then waits until this node may write in it unless `wait` is false.
async fn space_join(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: JoinBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"space_key": "<64 hex>", "name": "...", "timeout_ms": 30000}"#,
    )?;
    let wait_ms = body.wait_ms()?;
    let key = body.space_key.trim().to_ascii_lowercase();
    let (space, created) = match node.space_join(&key, body.name).await {
        Ok(space) => (space, true),
        Err(e) => (existing_space(&node, &key, e).await?, false),
    };
    if let Some(ms) = wait_ms {
        node.space_wait_writable(&space.space_key, ms)
            .await
            .map_err(|e| not_writable(&space.space_key, e))?;
    }
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(space))
}

/// After a join failed with `err`: the space, if the node has it already (the node refuses
/// to join a space twice, and a join that timed out waiting is run again); else `err`.
async fn existing_space(
    node: &NodeHandle,
    key: &str,
    err: NodeError,
) -> std::result::Result<SpaceInfo, ApiError> {
    if err.code() != "invalid" {
        return Err(err.into());
    }
    node.space_list()
        .await?
        .into_iter()
        .find(|s| s.space_key == key)
        .ok_or_else(|| err.into())
}

/// A join whose wait failed: the node keeps the space; say how to wait again.
fn not_writable(space_key: &str, err: NodeError) -> ApiError {
    let mut e = ApiError::from(err);
    e.message = format!(
        "joined space {space_key}, but this node may not write in it yet: {}; run `echo-node \
         space join {space_key}` again to wait again",
        e.message
    );
    e
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
    let existed = listed_member(&node, &space, &key).await?.is_some();
    node.space_add_member(&space, &key, role).await?;
    let member = listed_member(&node, &space, &key)
        .await?
        .ok_or_else(|| unlisted(&key, "added"))?;
    let mut response = if existed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(member))
}

/// Changes a member's role; answers with the member.
async fn member_set_role(
    node: Node,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let (space, identity) = path.into_inner();
    let body: RoleBody = typed_required(read_json(&req, payload).await?, r#"{"role": "reader"}"#)?;
    let role = member_role(Some(&body.role))?;
    node.space_set_role(&space, &identity, role).await?;
    let key = identity.trim().to_ascii_lowercase();
    let member = listed_member(&node, &space, &key)
        .await?
        .ok_or_else(|| unlisted(&key, "given a role"))?;
    Ok(HttpResponse::Ok().json(member))
}

/// Removes a member; answers with the member, now `removed`.
async fn member_remove(node: Node, path: web::Path<(String, String)>) -> Result {
    let (space, identity) = path.into_inner();
    node.space_remove_member(&space, &identity).await?;
    let key = identity.trim().to_ascii_lowercase();
    let member = listed_member(&node, &space, &key)
        .await?
        .unwrap_or(MemberInfo {
            identity_key: key,
            role: Role::Removed.as_str().to_string(),
            online: false,
        });
    Ok(HttpResponse::Ok().json(member))
}

/// The member with identity `key` (lower-case hex), if the space lists it.
async fn listed_member(
    node: &NodeHandle,
    space: &str,
    key: &str,
) -> std::result::Result<Option<MemberInfo>, ApiError> {
    Ok(node
        .space_members(space)
        .await?
        .into_iter()
        .find(|m| m.identity_key == key))
}

fn unlisted(key: &str, what: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("member {key} was {what} but is not listed"),
    )
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

#[cfg(test)]
mod tests {
    //! The routes in process, on a node without network: each route answers its method, and
    //! bodies are checked before the node is asked anything.

    use std::sync::Arc;

    use actix_web::dev::{Service, ServiceResponse};
    use actix_web::http::StatusCode;
    use actix_web::middleware::ErrorHandlers;
    use actix_web::{test, App};
    use echo_actors::node::{Node, NodeConfig};
    use echo_actors::store::MemStore;
    use echo_actors::types::FixedClock;
    use serde_json::Value;

    use super::*;

    type Response = ServiceResponse<actix_web::body::EitherBody<actix_web::body::BoxBody>>;

    async fn node() -> NodeHandle {
        Node::open(NodeConfig::local(
            Arc::new(MemStore::new()),
            [7; 32],
            Arc::new(FixedClock::new(1_700_000_000_000)),
        ))
        .await
        .expect("node opens")
    }

    async fn app(
        node: NodeHandle,
    ) -> impl Service<actix_http::Request, Response = Response, Error = actix_web::Error> {
        test::init_service(
            App::new()
                .app_data(web::Data::new(node))
                .app_data(web::PathConfig::default().error_handler(super::super::error::path_error))
                .app_data(
                    web::QueryConfig::default().error_handler(super::super::error::query_error),
                )
                .configure(configure)
                .default_service(web::to(not_found))
                .wrap(
                    ErrorHandlers::new().default_handler(super::super::error::json_error_fallback),
                ),
        )
        .await
    }

    /// Status, `code` (of an error) and the body.
    async fn call(
        app: &impl Service<actix_http::Request, Response = Response, Error = actix_web::Error>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Vec<u8>) {
        let mut req = test::TestRequest::default()
            .method(method.parse().expect("method"))
            .uri(path);
        if let Some(body) = body {
            req = req.set_json(body);
        }
        let res = test::call_service(app, req.to_request()).await;
        let status = res.status();
        let bytes = test::read_body(res).await.to_vec();
        let code = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        (status, code, bytes)
    }

    #[actix::test]
    async fn membership_and_invitation_routes_check_their_bodies() {
        let app = app(node().await).await;
        let key = "58".to_string() + &"66".repeat(31);
        let member = format!("/v1/spaces/s/members/{key}");
        for (method, path, body, says) in [
            ("PUT", member.as_str(), json!({"role": "owner"}), "`owner`"),
            ("PUT", member.as_str(), json!({}), "missing field `role`"),
            (
                "POST",
                "/v1/spaces/s/invitations",
                json!({"auth": "sms"}),
                "`sms`",
            ),
            (
                "POST",
                "/v1/spaces/s/invitations",
                json!({"lifetime_ms": 0}),
                "lifetime_ms",
            ),
            (
                "POST",
                "/v1/invitations/accept",
                json!({"invitation_code": "c", "auth_code": "1"}),
                "6 digits",
            ),
            (
                "POST",
                "/v1/invitations/accept",
                json!({}),
                "invitation_code",
            ),
            (
                "POST",
                "/v1/invitations/i1/cancel",
                json!({"now": true}),
                "unknown field",
            ),
            (
                "POST",
                "/v1/spaces/join",
                json!({"space_key": key, "wait": false, "timeout_ms": 5}),
                "wait",
            ),
            (
                "POST",
                "/v1/spaces/join",
                json!({"space_key": key, "timeout_ms": 0}),
                "timeout_ms",
            ),
            (
                "POST",
                "/v1/devices/invitations",
                json!({"auth": "key"}),
                "`pin` or `none`",
            ),
            (
                "POST",
                "/v1/devices/invitations",
                json!({"role": "editor"}),
                "unknown field",
            ),
            (
                "POST",
                "/v1/devices/join",
                json!({"invitation_code": " ", "auth_code": "123456"}),
                "invitation_code is empty",
            ),
            (
                "POST",
                "/v1/devices/join",
                json!({"invitation_code": "c", "auth_code": "12345x"}),
                "6 digits",
            ),
        ] {
            let (status, code, bytes) = call(&app, method, path, Some(body.clone())).await;
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{method} {path} {body}: {text}"
            );
            assert!(text.contains(says), "{method} {path} {body}: {text}");
        }
        for (method, path) in [
            ("GET", member.as_str()),
            ("GET", "/v1/spaces/s/invitations"),
            ("POST", "/v1/invitations"),
            ("GET", "/v1/invitations/accept"),
            ("DELETE", "/v1/invitations/i1/cancel"),
            ("GET", "/v1/devices/join"),
            ("GET", "/v1/devices/invitations"),
        ] {
            let (status, code, _) = call(&app, method, path, None).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
                "{method} {path}"
            );
        }
        let (status, code, _) = call(&app, "GET", "/v1/invitations?spaces=x", None).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request")
        );
    }

    #[actix::test]
    async fn identity_recover_is_201_then_409_and_a_bad_phrase_is_a_400_naming_what_is_wrong() {
        let phrase = node()
            .await
            .identity_create(None)
            .await
            .expect("identity")
            .seed_phrase;
        let app = app(node().await).await;
        let words: Vec<&str> = phrase.split(' ').collect();
        let unknown = format!("zzzz {}", words[1..].join(" "));
        for (body, code) in [
            (
                json!({"seed_phrase": words[..12].join(" ")}),
                "wrong_word_count",
            ),
            (json!({"seed_phrase": unknown}), "unknown_word"),
            (json!({"phrase": phrase}), "bad_request"),
            (json!({}), "bad_request"),
        ] {
            let (status, got, bytes) = call(&app, "POST", "/v1/identity/recover", Some(body)).await;
            assert_eq!((status, got.as_str()), (StatusCode::BAD_REQUEST, code));
            assert!(
                !String::from_utf8_lossy(&bytes).contains(words[1]),
                "an error repeats the phrase"
            );
        }
        let body = json!({"seed_phrase": phrase, "name": "Ada"});
        let (status, _, bytes) = call(&app, "POST", "/v1/identity/recover", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        let answer: Value = serde_json::from_slice(&bytes).expect("json");
        assert!(answer["identity_key"].is_string() && answer["device_key"].is_string());
        assert_eq!(answer["name"], "Ada");
        assert!(answer.get("seed_phrase").is_none());
        let body = json!({"seed_phrase": phrase});
        let (status, code, _) = call(&app, "POST", "/v1/identity/recover", Some(body)).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::CONFLICT, "identity_exists")
        );
    }

    #[actix::test]
    async fn joining_a_space_the_node_has_is_not_an_error() {
        let node = node().await;
        node.identity_create(None).await.expect("identity");
        let space = node.space_create(Some("team".into())).await.expect("space");
        let app = app(node).await;
        let body = json!({"space_key": space.space_key.to_uppercase(), "wait": false});
        let (status, _, bytes) = call(&app, "POST", "/v1/spaces/join", Some(body)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let answer: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            answer,
            json!({"space_key": space.space_key, "name": "team"})
        );
        // Other refusals stay refusals.
        let body = json!({"space_key": "0".repeat(64), "wait": false});
        let (status, code, _) = call(&app, "POST", "/v1/spaces/join", Some(body)).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid")
        );
    }

    #[actix::test]
    async fn accept_with_progress_streams_its_failure_as_the_last_line() {
        let app = app(node().await).await;
        let body = json!({"invitation_code": "not-a-code", "timeout_ms": 1000});
        let req = test::TestRequest::post()
            .uri("/v1/invitations/accept?progress=true")
            .set_json(body)
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/x-ndjson"[..])
        );
        let bytes = test::read_body(res).await;
        let text = String::from_utf8_lossy(&bytes);
        let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
        assert_eq!(last["state"], "ERROR", "{text}");
        assert!(last["error"]["code"].is_string(), "{text}");
        assert!(last["error"]["message"].is_string(), "{text}");
    }
}
