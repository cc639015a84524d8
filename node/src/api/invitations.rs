//! The invitation routes: create (`POST /v1/spaces/{space}/invitations`), list
//! (`GET /v1/invitations`), cancel (`POST /v1/invitations/{id}/cancel`) and accept
//! (`POST /v1/invitations/accept`), and their device counterparts: create a device
//! invitation (`POST /v1/devices/invitations`) and join an identity with one
//! (`POST /v1/devices/join`, answered like accept). Each handler checks its body, then makes
//! one [`NodeHandle`] call.
//!
//! Accept answers once, with the outcome, or with `?progress=true` as an
//! `application/x-ndjson` stream: one `{"state": ...}` line per state change as it happens,
//! then one last line, `{"state":"SUCCESS", ..the answer's members..}` (for accept
//! `space_key` and `role`; for a device join `identity_key`, `device_key`, `spaces`,
//! `pending`) or
//! `{"state":"ERROR","error":{"code":..,"message":..}}`. Errors found before the handshake
//! starts (a bad body) are ordinary JSON errors either way.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use echo_actors::invitation::{
    AuthMethod, InvitationProgress, InviteOptions, DEFAULT_HANDSHAKE_TIMEOUT_MS,
    DEFAULT_LIFETIME_MS,
};
use echo_actors::node::{NodeError, NodeHandle};
use echo_actors::types::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::body::{duration_ms, read_json, typed, typed_required};
use super::devices::{checked_device_name, name_new_device};
use super::error::ApiError;
use super::routes::member_role;

type Node = web::Data<NodeHandle>;
type Result = std::result::Result<HttpResponse, ApiError>;

/// The longest handshake (or join) timeout a request may ask for: one day.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// The longest lifetime of an invitation: 365 days.
pub const MAX_LIFETIME_MS: u64 = 365 * MAX_TIMEOUT_MS;

/// Body of `POST /v1/spaces/{space}/invitations`; every member optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    role: Option<String>,
    auth: Option<String>,
    guest_key: Option<String>,
    multi_use: Option<bool>,
    timeout_ms: Option<u64>,
    lifetime_ms: Option<u64>,
}

impl CreateBody {
    /// The options, every value checked.
    fn options(self) -> std::result::Result<InviteOptions, ApiError> {
        let auth = auth_method(self.auth.as_deref())?;
        let guest_key = match (auth, self.guest_key) {
            (AuthMethod::Key, Some(key)) => Some(identity_key(&key, "guest_key")?),
            (AuthMethod::Key, None) => {
                return Err(ApiError::bad_request(
                    "auth `key` needs guest_key: the identity key (64 hex characters) of the \
                     only guest that may use the invitation",
                ))
            }
            (other, Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "guest_key is only for auth `key`, not `{}`",
                    other.name()
                )))
            }
            (_, None) => None,
        };
        Ok(InviteOptions {
            role: member_role(self.role.as_deref())?,
            auth,
            guest_key,
            multi_use: self.multi_use.unwrap_or(false),
            handshake_timeout_ms: duration_ms(
                "timeout_ms",
                self.timeout_ms,
                DEFAULT_HANDSHAKE_TIMEOUT_MS,
                MAX_TIMEOUT_MS,
            )?,
            lifetime_ms: duration_ms(
                "lifetime_ms",
                self.lifetime_ms,
                DEFAULT_LIFETIME_MS,
                MAX_LIFETIME_MS,
            )?,
        })
    }
}

/// Body of `POST /v1/devices/invitations`; every member optional. No role (a device has its
/// identity's) and no guest key (a new device has no identity to prove).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceInviteBody {
    auth: Option<String>,
    multi_use: Option<bool>,
    timeout_ms: Option<u64>,
    lifetime_ms: Option<u64>,
}

impl DeviceInviteBody {
    fn options(self) -> std::result::Result<InviteOptions, ApiError> {
        let auth = auth_method(self.auth.as_deref())?;
        if auth == AuthMethod::Key {
            return Err(ApiError::bad_request(
                "a device invitation takes auth `pin` or `none`: a new device has no identity \
                 to sign with",
            ));
        }
        CreateBody {
            role: None,
            auth: self.auth,
            guest_key: None,
            multi_use: self.multi_use,
            timeout_ms: self.timeout_ms,
            lifetime_ms: self.lifetime_ms,
        }
        .options()
    }
}

/// The auth methods an invitation can ask for (default `pin`).
fn auth_method(auth: Option<&str>) -> std::result::Result<AuthMethod, ApiError> {
    match auth {
        None | Some("pin") => Ok(AuthMethod::Pin),
        Some("none") => Ok(AuthMethod::None),
        Some("key") => Ok(AuthMethod::Key),
        Some(other) => Err(ApiError::bad_request(format!(
            "auth `{}` is not known; use pin, none or key",
            shown(other)
        ))),
    }
}

/// An identity key in a body: 64 hex characters, a point that is not of small order.
/// Answered as lower-case hex.
fn identity_key(text: &str, member: &str) -> std::result::Result<String, ApiError> {
    let invalid = |why: String| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid",
            format!("{member} `{}` is not an identity key: {why}", shown(text)),
        )
    };
    let key: PublicKey = text
        .trim()
        .parse()
        .map_err(|_| invalid("expected 64 hex characters".into()))?;
    key.check_point().map_err(|e| invalid(e.to_string()))?;
    Ok(key.to_hex())
}

/// A value as an error message shows it: at most 40 characters.
fn shown(value: &str) -> String {
    value.chars().take(40).collect()
}

/// Body of `POST /v1/invitations/accept`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    invitation_code: String,
    auth_code: Option<String>,
    timeout_ms: Option<u64>,
    /// The joining device's name: for `POST /v1/devices/join` only.
    device_name: Option<String>,
}

/// A checked accept request.
#[derive(Debug, PartialEq)]
struct Accept {
    code: String,
    auth_code: Option<String>,
    timeout_ms: u64,
    device_name: Option<String>,
}

impl AcceptBody {
    fn check(self) -> std::result::Result<Accept, ApiError> {
        let code = self.invitation_code.trim().to_string();
        if code.is_empty() {
            return Err(ApiError::bad_request(
                "invitation_code is empty; send the code `echo-node invite create` printed",
            ));
        }
        if let Some(auth) = &self.auth_code {
            if auth.len() != 6 || !auth.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::bad_request(format!(
                    "auth_code `{}` is not an auth code: expected exactly 6 digits",
                    shown(auth)
                )));
            }
        }
        Ok(Accept {
            code,
            device_name: checked_device_name(self.device_name)?,
            auth_code: self.auth_code,
            timeout_ms: duration_ms(
                "timeout_ms",
                self.timeout_ms,
                DEFAULT_HANDSHAKE_TIMEOUT_MS,
                MAX_TIMEOUT_MS,
            )?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptParams {
    #[serde(default)]
    progress: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    space: Option<String>,
}

/// A body that must be empty or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

pub async fn invite_create(
    node: Node,
    space: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let body: CreateBody = typed(read_json(&req, payload).await?)?;
    let created = node.invite_create(&space, body.options()?).await?;
    Ok(HttpResponse::Created().json(created))
}

pub async fn invite_list(node: Node, params: web::Query<ListParams>) -> Result {
    Ok(HttpResponse::Ok().json(node.invite_list(params.space.as_deref()).await?))
}

pub async fn invite_cancel(
    node: Node,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let NoBody {} = typed(read_json(&req, payload).await?)?;
    Ok(HttpResponse::Ok().json(node.invite_cancel(&id).await?))
}

pub async fn invite_accept(
    node: Node,
    params: web::Query<AcceptParams>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let joins = JoinsAs::Member;
    accept_with(
        node,
        params,
        req,
        payload,
        joins,
        |node, a, progress| async move {
            node.invite_accept(&a.code, a.auth_code, a.timeout_ms, progress)
                .await
        },
    )
    .await
}

pub async fn device_invite(node: Node, req: HttpRequest, payload: web::Payload) -> Result {
    let body: DeviceInviteBody = typed(read_json(&req, payload).await?)?;
    let created = node.device_invite(body.options()?).await?;
    Ok(HttpResponse::Created().json(created))
}

pub async fn device_join(
    node: Node,
    params: web::Query<AcceptParams>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result {
    let joins = JoinsAs::Device;
    accept_with(
        node,
        params,
        req,
        payload,
        joins,
        |node, a, progress| async move {
            let joined = node
                .device_join(&a.code, a.auth_code, a.timeout_ms, progress)
                .await?;
            name_new_device(&node, a.device_name).await;
            Ok(joined)
        },
    )
    .await
}

/// What an accept-like request joins as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum JoinsAs {
    /// A space, as a member (`invite accept`).
    Member,
    /// An identity, as a new device (`device join`): the only one that takes a
    /// `device_name`.
    Device,
}

/// An accept-like request (`invite accept`, `device join`): the body checked, then `run`
/// answered once or as a progress stream.
async fn accept_with<T, F, Fut>(
    node: Node,
    params: web::Query<AcceptParams>,
    req: HttpRequest,
    payload: web::Payload,
    joins: JoinsAs,
    run: F,
) -> Result
where
    T: Serialize + 'static,
    F: FnOnce(std::sync::Arc<NodeHandle>, Accept, Option<Progresses>) -> Fut,
    Fut: Future<Output = Outcome<T>> + 'static,
{
    let body: AcceptBody = typed_required(
        read_json(&req, payload).await?,
        r#"{"invitation_code": "...", "auth_code": "123456"}"#,
    )?;
    let accept = body.check()?;
    if joins == JoinsAs::Member && accept.device_name.is_some() {
        return Err(ApiError::bad_request(
            "device_name names a device joining an identity: send it to POST /v1/devices/join",
        ));
    }
    let node = node.into_inner();
    if !params.progress {
        return Ok(HttpResponse::Ok().json(run(node, accept, None).await?));
    }
    let (progress, states) = mpsc::unbounded_channel();
    let outcome = run(node, accept, Some(progress));
    let lines = futures_util::stream::unfold(Progress::new(states, outcome), |mut p| async move {
        let line = p.next_line().await?;
        Some((Ok::<_, actix_web::Error>(line), p))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(lines))
}

type Progresses = mpsc::UnboundedSender<InvitationProgress>;
type Outcome<T> = std::result::Result<T, NodeError>;

/// The progress stream of one accept: the states as they come, then the outcome. The
/// handshake runs as this stream is polled; dropping the stream (the client went away)
/// drops it.
struct Progress<F, T> {
    states: mpsc::UnboundedReceiver<InvitationProgress>,
    /// `None` once the outcome is known.
    outcome: Option<Pin<Box<F>>>,
    /// Lines to send before anything else.
    queued: VecDeque<web::Bytes>,
    answer: std::marker::PhantomData<T>,
}

impl<T: Serialize, F: Future<Output = Outcome<T>>> Progress<F, T> {
    fn new(states: mpsc::UnboundedReceiver<InvitationProgress>, outcome: F) -> Self {
        Progress {
            states,
            outcome: Some(Box::pin(outcome)),
            queued: VecDeque::new(),
            answer: std::marker::PhantomData,
        }
    }

    /// The next line; `None` after the outcome's.
    async fn next_line(&mut self) -> Option<web::Bytes> {
        loop {
            if let Some(line) = self.queued.pop_front() {
                return Some(line);
            }
            let outcome = self.outcome.as_mut()?;
            tokio::select! {
                biased;
                Some(progress) = self.states.recv() => {
                    if let Some(line) = state_line(progress) {
                        return Some(line);
                    }
                }
                result = outcome.as_mut() => {
                    self.outcome = None;
                    // States reported just before the end come first.
                    while let Ok(progress) = self.states.try_recv() {
                        self.queued.extend(state_line(progress));
                    }
                    self.queued.push_back(outcome_line(result));
                }
            }
        }
    }
}

/// A state on the way as a line; terminal states are left to the outcome's line.
fn state_line(progress: InvitationProgress) -> Option<web::Bytes> {
    (!progress.state.is_terminal()).then(|| line(&json!({ "state": progress.state.name() })))
}

fn outcome_line<T: Serialize>(result: Outcome<T>) -> web::Bytes {
    match result {
        Ok(answer) => {
            let mut doc = match serde_json::to_value(answer) {
                Ok(Value::Object(members)) => members,
                _ => serde_json::Map::new(),
            };
            doc.insert("state".into(), json!("SUCCESS"));
            line(&Value::Object(doc))
        }
        Err(e) => {
            let e = ApiError::from(e);
            line(&json!({
                "state": "ERROR",
                "error": { "code": e.code, "message": e.message },
            }))
        }
    }
}

fn line(value: &Value) -> web::Bytes {
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    web::Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_actors::invitation::{AcceptedInvitation, InvitationRequestError, InvitationState};

    fn create(body: Value) -> std::result::Result<InviteOptions, ApiError> {
        typed::<CreateBody>(Some(body))?.options()
    }

    fn guest() -> String {
        // The base point's encoding: a valid key of no one in particular.
        "5866666666666666666666666666666666666666666666666666666666666666".into()
    }

    #[test]
    fn invitation_bodies_default_and_are_checked() {
        assert_eq!(create(json!({})), Ok(InviteOptions::default()));
        let options = create(json!({
            "role": "reader", "auth": "key", "guest_key": guest().to_uppercase(),
            "multi_use": true, "timeout_ms": 1, "lifetime_ms": MAX_LIFETIME_MS
        }))
        .expect("valid");
        assert_eq!(options.role, echo_actors::credentials::Role::Reader);
        assert_eq!(options.auth, AuthMethod::Key);
        assert_eq!(options.guest_key, Some(guest()));
        assert!(options.multi_use);
        assert_eq!(
            (options.handshake_timeout_ms, options.lifetime_ms),
            (1, MAX_LIFETIME_MS)
        );
        let bad = |body: Value, code: &str, says: &str| {
            let e = create(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.code, code, "{body}: {}", e.message);
            assert!(e.message.contains(says), "{body}: {}", e.message);
        };
        bad(json!({"role": "owner"}), "bad_request", "`owner`");
        bad(json!({"auth": "password"}), "bad_request", "`password`");
        bad(json!({"auth": "key"}), "bad_request", "needs guest_key");
        bad(json!({"guest_key": guest()}), "bad_request", "not `pin`");
        bad(
            json!({"auth": "key", "guest_key": "0".repeat(64)}),
            "invalid",
            "small-order",
        );
        bad(
            json!({"auth": "key", "guest_key": "ab"}),
            "invalid",
            "64 hex",
        );
        bad(json!({"timeout_ms": 0}), "bad_request", "timeout_ms");
        bad(
            json!({"timeout_ms": MAX_TIMEOUT_MS + 1}),
            "bad_request",
            "timeout_ms",
        );
        bad(
            json!({"lifetime_ms": MAX_LIFETIME_MS + 1}),
            "bad_request",
            "lifetime_ms",
        );
        bad(
            json!({"multi_use": "yes"}),
            "bad_request",
            "bad request body",
        );
        bad(json!({"uses": 3}), "bad_request", "unknown field");
    }

    #[test]
    fn accept_bodies_are_checked() {
        let accept = |body: Value| typed_required::<AcceptBody>(Some(body), "x")?.check();
        assert_eq!(
            accept(json!({"invitation_code": " C1 "})),
            Ok(Accept {
                code: "C1".into(),
                auth_code: None,
                timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
                device_name: None,
            })
        );
        assert_eq!(
            accept(json!({"invitation_code": "C1", "auth_code": "000123", "timeout_ms": 5}))
                .map(|a| (a.auth_code, a.timeout_ms)),
            Ok((Some("000123".into()), 5))
        );
        for bad in [
            json!({"invitation_code": ""}),
            json!({"invitation_code": "C1", "auth_code": "12345"}),
            json!({"invitation_code": "C1", "auth_code": "12345x"}),
            json!({"invitation_code": "C1", "timeout_ms": 0}),
            json!({"invitation_code": "C1", "pin": "123456"}),
            json!({"auth_code": "123456"}),
        ] {
            let e = accept(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(e.code, "bad_request", "{bad}: {}", e.message);
        }
        for bad in [
            json!({"invitation_code": "C1", "device_name": ""}),
            json!({"invitation_code": "C1", "device_name": "a\u{0}b"}),
        ] {
            let e = accept(bad.clone()).expect_err(&bad.to_string());
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid"), "{bad}");
            assert!(e.message.starts_with("device_name: "), "{}", e.message);
        }
        assert_eq!(
            accept(json!({"invitation_code": "C1", "device_name": "phone"})).map(|a| a.device_name),
            Ok(Some("phone".into()))
        );
    }

    async fn lines_of<T: Serialize, F: Future<Output = Outcome<T>>>(
        mut p: Progress<F, T>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(line) = p.next_line().await {
            assert!(line.ends_with(b"\n") && line.iter().filter(|b| **b == b'\n').count() == 1);
            out.push(serde_json::from_slice(&line).expect("json"));
        }
        out
    }

    fn report(tx: &mpsc::UnboundedSender<InvitationProgress>, state: InvitationState) {
        tx.send(InvitationProgress { state }).expect("send");
    }

    #[tokio::test]
    async fn progress_streams_states_then_the_outcome() {
        let (tx, rx) = mpsc::unbounded_channel();
        let outcome = async move {
            report(&tx, InvitationState::Connecting);
            tokio::task::yield_now().await;
            report(&tx, InvitationState::Connected);
            report(&tx, InvitationState::Authenticating);
            // The terminal state is reported and the outcome comes at once: it is the
            // last line, once.
            report(&tx, InvitationState::Success);
            Ok(AcceptedInvitation {
                space_key: "ab".into(),
                role: "editor".into(),
            })
        };
        let lines = lines_of(Progress::new(rx, outcome)).await;
        assert_eq!(
            lines,
            vec![
                json!({"state": "CONNECTING"}),
                json!({"state": "CONNECTED"}),
                json!({"state": "AUTHENTICATING"}),
                json!({"state": "SUCCESS", "space_key": "ab", "role": "editor"}),
            ]
        );
    }

    #[tokio::test]
    async fn a_device_join_ends_with_its_answer_as_the_success_line() {
        let (tx, rx) = mpsc::unbounded_channel();
        let outcome = async move {
            report(&tx, InvitationState::Connecting);
            Ok(echo_actors::node::DeviceJoined {
                identity_key: "19".into(),
                device_key: "a0".into(),
                spaces: vec!["c7".into()],
                pending: vec![],
            })
        };
        let lines = lines_of(Progress::new(rx, outcome)).await;
        assert_eq!(
            lines,
            vec![
                json!({"state": "CONNECTING"}),
                json!({"state": "SUCCESS", "identity_key": "19", "device_key": "a0",
                       "spaces": ["c7"], "pending": []}),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_handshake_ends_with_its_error() {
        let (tx, rx) = mpsc::unbounded_channel();
        // The node may keep a sender: the outcome still ends the stream.
        let _kept = tx.clone();
        let outcome = async move {
            report(&tx, InvitationState::Connecting);
            report(&tx, InvitationState::Timeout);
            Err::<AcceptedInvitation, _>(NodeError::Invitation(InvitationRequestError::Failed {
                state: InvitationState::Timeout,
                reason: "timeout".into(),
            }))
        };
        let lines = lines_of(Progress::new(rx, outcome)).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], json!({"state": "CONNECTING"}));
        assert_eq!(lines[1]["state"], "ERROR");
        assert_eq!(lines[1]["error"]["code"], "invitation_timeout");
        assert_eq!(lines[1]["error"]["message"], "invitation TIMEOUT: timeout");
    }
}
