//! The few local-API calls a soak makes (docs/api.md), over `ureq` with short timeouts.
//!
//! Nothing here panics on what a node answers: a node being killed mid-request is the
//! normal case in a soak, so every call returns what happened and the caller decides.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

/// Where a running daemon's API is and its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub token: String,
}

/// An HTTP client for the soak. Timeouts are long enough for a loaded debug node on two
/// shared cores, short enough that a hung node shows as errors rather than a hung soak.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
}

/// What one call got: an HTTP status with its JSON body (`Null` if it had none), or a
/// transport error (refused, reset, timed out: usually a node that was just killed).
pub enum Answer {
    Http(u16, Value),
    Transport(String),
}

pub fn call(
    agent: &ureq::Agent,
    ep: &Endpoint,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let req = agent
        .request(method, &format!("{}{path}", ep.url))
        .set("Authorization", &format!("Bearer {}", ep.token));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(resp) => {
            let status = resp.status();
            Answer::Http(status, resp.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Status(status, resp)) => {
            Answer::Http(status, resp.into_json().unwrap_or(Value::Null))
        }
        Err(ureq::Error::Transport(t)) => Answer::Transport(t.to_string()),
    }
}

/// A call that must succeed with one of `ok` statuses; its body.
pub fn expect(
    agent: &ureq::Agent,
    ep: &Endpoint,
    method: &str,
    path: &str,
    body: Option<&Value>,
    ok: &[u16],
) -> Result<Value> {
    match call(agent, ep, method, path, body) {
        Answer::Http(s, v) if ok.contains(&s) => Ok(v),
        Answer::Http(s, v) => bail!("{method} {path} at {}: {s} {v}", ep.url),
        Answer::Transport(e) => bail!("{method} {path} at {}: {e}", ep.url),
    }
}

/// Creates the node's identity; returns its identity key.
pub fn create_identity(agent: &ureq::Agent, ep: &Endpoint, name: &str) -> Result<String> {
    let v = expect(
        agent,
        ep,
        "POST",
        "/v1/identity",
        Some(&json!({ "name": name })),
        &[201],
    )?;
    str_member(&v, "identity_key")
}

/// Creates a space; returns its key.
pub fn create_space(agent: &ureq::Agent, ep: &Endpoint, name: &str) -> Result<String> {
    let v = expect(
        agent,
        ep,
        "POST",
        "/v1/spaces",
        Some(&json!({ "name": name })),
        &[201],
    )?;
    str_member(&v, "space_key")
}

/// Makes `identity` an editor of `space` (on a node of its owner).
pub fn add_member(agent: &ureq::Agent, ep: &Endpoint, space: &str, identity: &str) -> Result<()> {
    let body = json!({ "identity_key": identity, "role": "editor" });
    let path = format!("/v1/spaces/{space}/members");
    expect(agent, ep, "POST", &path, Some(&body), &[200, 201]).map(drop)
}

/// Joins `space` (after the owner added this node's identity).
pub fn join(agent: &ureq::Agent, ep: &Endpoint, space: &str) -> Result<()> {
    let body = json!({ "space_key": space });
    expect(agent, ep, "POST", "/v1/spaces/join", Some(&body), &[201]).map(drop)
}

/// The outcome of one object add.
pub enum Write {
    /// 201: durable, with the new id.
    Acked(String),
    /// Any other HTTP status (403 while not admitted yet, 503 while shutting down...).
    Refused(u16, String),
    /// No answer: the node is down or went down during the request.
    NoAnswer(String),
}

pub fn add_object(agent: &ureq::Agent, ep: &Endpoint, space: &str, object: &Value) -> Write {
    match call(
        agent,
        ep,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        Some(object),
    ) {
        Answer::Http(201, v) => match v["id"].as_str() {
            Some(id) => Write::Acked(id.to_owned()),
            None => Write::Refused(201, format!("201 without an id: {v}")),
        },
        Answer::Http(s, v) => Write::Refused(s, v.to_string()),
        Answer::Transport(e) => Write::NoAnswer(e),
    }
}

/// The first write of a node that just joined: retried (bounded) while the node has not
/// admitted its own feeds yet (it learns its membership from a peer, a moment after
/// `join`; until then writes are refused with 403).
pub fn add_when_admitted(
    agent: &ureq::Agent,
    ep: &Endpoint,
    space: &str,
    object: &Value,
    timeout: Duration,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let last = match add_object(agent, ep, space, object) {
            Write::Acked(id) => return Ok(id),
            Write::Refused(s, body) => format!("{s} {body}"),
            Write::NoAnswer(e) => e,
        };
        if start.elapsed() > timeout {
            bail!(
                "no write admitted on {} within {timeout:?}; last answer: {last}",
                ep.url
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The outcome of one object update or delete (no id to learn: the caller has it).
pub enum Change {
    /// 200 (for a delete also `409 object_deleted`: an earlier, unanswered delete did it).
    Acked,
    Refused(u16, String),
    /// No answer: applied or not, nobody knows.
    NoAnswer,
}

/// `PATCH .../objects/{id}` with a JSON merge patch.
pub fn patch_object(
    agent: &ureq::Agent,
    ep: &Endpoint,
    space: &str,
    id: &str,
    patch: &Value,
) -> Change {
    let path = format!("/v1/spaces/{space}/objects/{id}");
    match call(agent, ep, "PATCH", &path, Some(patch)) {
        Answer::Http(200, _) => Change::Acked,
        Answer::Http(s, v) => Change::Refused(s, v.to_string()),
        Answer::Transport(_) => Change::NoAnswer,
    }
}

/// `DELETE .../objects/{id}` (a soft delete). `409 object_deleted` counts as done: the
/// object is deleted (a retry after an unanswered delete that had been applied).
pub fn delete_object(agent: &ureq::Agent, ep: &Endpoint, space: &str, id: &str) -> Change {
    let path = format!("/v1/spaces/{space}/objects/{id}");
    match call(agent, ep, "DELETE", &path, None) {
        Answer::Http(200, _) => Change::Acked,
        Answer::Http(409, v) if v["code"] == "object_deleted" => Change::Acked,
        Answer::Http(s, v) => Change::Refused(s, v.to_string()),
        Answer::Transport(_) => Change::NoAnswer,
    }
}

/// Every object of `space` on the node (soft-deleted ones too), by id.
pub fn objects(agent: &ureq::Agent, ep: &Endpoint, space: &str) -> Result<BTreeMap<String, Value>> {
    let path = format!("/v1/spaces/{space}/query");
    let v = expect(
        agent,
        ep,
        "POST",
        &path,
        Some(&json!({ "include_deleted": true })),
        &[200],
    )?;
    let Value::Array(items) = v else {
        bail!("{path}: not an array");
    };
    items
        .into_iter()
        .map(|o| {
            let id = o["@id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{path}: an object without @id"))?;
            Ok((id, o))
        })
        .collect()
}

fn str_member(v: &Value, name: &str) -> Result<String> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no `{name}` in {v}"))
}
