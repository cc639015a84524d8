//! Issue 10 items 3 and 7 through the real daemon: numbers are stored exactly or refused;
//! space and identity names and user-supplied keys are validated; collaborative text inside
//! arrays is refused; the text routes treat reserved fields alike. Each refusal is checked
//! as the API's status and JSON error body and as the CLI's non-zero exit and message, and
//! nothing refused is written.

#![allow(clippy::unwrap_used)]

use echo_tests::{http, HttpResponse, Node};
use serde_json::{json, Value};

/// Asserts `status` and the error body `{"error": ..., "code": code}`; returns the message.
fn error(r: &HttpResponse, status: u16, code: &str, what: &str) -> String {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let body: Value = r
        .json()
        .unwrap_or_else(|| panic!("{what}: not JSON: {}", r.body));
    assert_eq!(body["code"], code, "{what}: {body}");
    let message = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{what}: {body}");
    message
}

fn call(node: &Node, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
    let api = node.api();
    http(
        &api.url,
        method,
        path,
        Some(&api.token),
        body.map(str::as_bytes),
    )
}

/// The range statement every number refusal carries.
const RANGE: &str = "-9223372036854775808 and 9223372036854775807";

#[test]
fn inexact_numbers_are_refused_by_api_and_cli_and_i64_limits_round_trip() {
    let (node, space) = Node::with_space("nums");
    let id = node.add(&space, r#"{"n": 1}"#);
    let data_before = node.feed_length(&space, "data");
    let hundred = format!("1{}", "0".repeat(99));
    for number in [
        "18446744073709551615",
        hundred.as_str(),
        "-9223372036854775809",
        "0.10000000000000000001",
        "1e-400",
    ] {
        let object = format!(r#"{{"a": {{"list": [1, {number}]}}}}"#);
        let add = call(
            &node,
            "POST",
            &format!("/v1/spaces/{space}/objects"),
            Some(&object),
        );
        let msg = error(&add, 400, "invalid", number);
        assert!(
            msg.contains("at `a.list.1`") && msg.contains(RANGE),
            "{msg}"
        );
        let patch = call(
            &node,
            "PATCH",
            &format!("/v1/spaces/{space}/objects/{id}"),
            Some(&object),
        );
        error(&patch, 400, "invalid", number);
        let query = format!(r#"{{"where": [{{"path": "n", "value": {number}}}]}}"#);
        let q = call(
            &node,
            "POST",
            &format!("/v1/spaces/{space}/query"),
            Some(&query),
        );
        error(&q, 400, "invalid", number);
        // The CLI refuses before sending (it could not tell afterwards): usage exit 2.
        let out = node.fails(&["object", "add", &space, &object]);
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(out.stderr.contains("cannot be stored exactly"), "{out}");
        let out = node.fails(&["query", &space, "--where", &format!("n={number}")]);
        assert!(out.stderr.contains("cannot be stored exactly"), "{out}");
    }
    assert_eq!(
        node.feed_length(&space, "data"),
        data_before,
        "a refusal wrote"
    );
    assert_eq!(node.ok(&["object", "get", &space, &id])["n"], 1);

    // The limits themselves are exact, read back and found by query (API and CLI).
    let limits = r#"{"max": 9223372036854775807, "min": -9223372036854775808, "f": 0.1}"#;
    let added = call(
        &node,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        Some(limits),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    let got = node.ok(&[
        "object",
        "get",
        &space,
        added.json().unwrap()["id"].as_str().unwrap(),
    ]);
    assert_eq!(
        (got["max"].as_i64(), got["min"].as_i64()),
        (Some(i64::MAX), Some(i64::MIN))
    );
    assert_eq!(got["f"], json!(0.1));
    let found = node.query(&space, &["--where", "max=9223372036854775807"]);
    assert_eq!(found.len(), 1, "{found:?}");
    let body = r#"{"where": [{"path": "min", "value": -9223372036854775808}]}"#;
    let q = call(
        &node,
        "POST",
        &format!("/v1/spaces/{space}/query"),
        Some(body),
    );
    assert_eq!(
        q.json().unwrap().as_array().map(Vec::len),
        Some(1),
        "{}",
        q.body
    );
}

#[test]
fn duplicate_key_like_and_disguised_space_names_are_refused() {
    let (node, first) = Node::with_space("notes");
    // Duplicate: 409 name_taken from the API, a non-zero exit naming the name from the CLI.
    let r = call(&node, "POST", "/v1/spaces", Some(r#"{"name": "notes"}"#));
    let msg = error(&r, 409, "name_taken", "duplicate");
    assert!(msg.contains("notes") && msg.contains(&first), "{msg}");
    let out = node.fails(&["space", "create", "--name", "notes"]);
    assert!(out.stderr.contains("already taken"), "{out}");
    // A join may not take the name either.
    let other = node.identity_key();
    let r = call(
        &node,
        "POST",
        "/v1/spaces/join",
        Some(&json!({"space_key": other, "name": "notes"}).to_string()),
    );
    error(&r, 409, "name_taken", "join with a taken name");

    let key_like = "ab".repeat(32);
    for (name, why) in [
        ("", "empty"),
        ("   ", "empty"),
        (" notes2", "whitespace"),
        ("evil\u{202E}txt", "U+202E"),
        ("a\u{2066}b", "U+2066"),
        ("nul\0byte", "U+0000"),
        ("tab\there", "U+0009"),
        (key_like.as_str(), "64 hex"),
    ] {
        let body = json!({ "name": name }).to_string();
        let r = call(&node, "POST", "/v1/spaces", Some(&body));
        let msg = error(&r, 400, "invalid", &format!("{name:?}"));
        assert!(msg.contains(why), "{name:?}: {msg}");
    }
    let out = node.fails(&["space", "create", "--name", "evil\u{202E}txt"]);
    assert!(out.stderr.contains("U+202E"), "{out}");
    let long = "x".repeat(257);
    let r = call(
        &node,
        "POST",
        "/v1/spaces",
        Some(&json!({ "name": long }).to_string()),
    );
    assert!(error(&r, 400, "invalid", "257 chars").contains("256"));
    let spaces = node.ok(&["space", "list"]);
    assert_eq!(spaces.as_array().map(Vec::len), Some(1), "{spaces}");
}

#[test]
fn identity_display_names_follow_the_same_rule() {
    let node = Node::started();
    for name in ["", "a\u{202E}b", &"0".repeat(64)] {
        let body = json!({ "name": name }).to_string();
        let r = call(&node, "POST", "/v1/identity", Some(&body));
        let msg = error(&r, 400, "invalid", &format!("{name:?}"));
        assert!(msg.contains("identity display name"), "{msg}");
    }
    let out = node.fails(&["identity", "create", "--name", "x\u{7}y"]);
    assert!(out.stderr.contains("U+0007"), "{out}");
    node.ok(&["identity", "create", "--name", "Ada"]);
}

#[test]
fn device_names_follow_the_same_rule_and_are_refused_before_anything_changes() {
    let node = Node::started();
    // A bad device_name refuses the whole create: no identity is made.
    for name in ["", "a\u{202E}b", &"x".repeat(257)] {
        let body = json!({ "name": "Ada", "device_name": name }).to_string();
        let r = call(&node, "POST", "/v1/identity", Some(&body));
        let msg = error(&r, 400, "invalid", &format!("{name:?}"));
        assert!(msg.starts_with("device_name: "), "{msg}");
    }
    assert!(!node.cli(&["identity", "show"]).success());
    let out = node.fails(&["identity", "create", "--device-name", "x\u{7}y"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(!node.cli(&["identity", "show"]).success());

    let body = json!({ "device_name": "desk" }).to_string();
    let r = call(&node, "POST", "/v1/identity", Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(node.ok(&["identity", "show"])["device_name"], "desk");

    // Rename: the same rule, a body that must name the device, and the new name listed.
    for body in [r#"{"name": ""}"#, r#"{"name": "\u0007"}"#] {
        let r = call(&node, "POST", "/v1/devices/rename", Some(body));
        error(&r, 400, "invalid", body);
    }
    for body in [r#"{}"#, r#"{"name": "a", "x": 1}"#, r#"{"name": 7}"#] {
        let r = call(&node, "POST", "/v1/devices/rename", Some(body));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = call(
        &node,
        "POST",
        "/v1/devices/rename",
        Some(r#"{"name": "desk 2"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let renamed: Value = r.json().unwrap();
    assert_eq!(renamed["name"], "desk 2", "{renamed}");
    let devices = node.ok(&["device", "list"]);
    assert_eq!(devices[0]["name"], "desk 2", "{devices}");
    assert_eq!(node.ok(&["identity", "show"])["device_name"], "desk 2");
    // `device_name` is for device join only, not for a space invitation.
    let body = json!({ "invitation_code": "echo1x", "device_name": "p" }).to_string();
    let r = call(&node, "POST", "/v1/invitations/accept", Some(&body));
    let msg = error(&r, 400, "bad_request", "accept with device_name");
    assert!(msg.contains("/v1/devices/join"), "{msg}");
}

#[test]
fn weak_and_malformed_keys_are_refused_by_add_member_and_join() {
    let (node, space) = Node::with_space("team");
    let zero = "0".repeat(64);
    let small_order = format!("01{}", "0".repeat(62));
    for key in [zero.as_str(), small_order.as_str()] {
        let body = json!({ "identity_key": key, "role": "editor" }).to_string();
        let r = call(
            &node,
            "POST",
            &format!("/v1/spaces/{space}/members"),
            Some(&body),
        );
        let msg = error(&r, 400, "invalid", key);
        assert!(msg.contains("small-order"), "{msg}");
        let out = node.fails(&["space", "add-member", &space, key, "--role", "reader"]);
        assert!(out.stderr.contains("small-order"), "{out}");
    }
    let r = call(
        &node,
        "POST",
        &format!("/v1/spaces/{space}/members"),
        Some(&json!({ "identity_key": "zz".repeat(32) }).to_string()),
    );
    assert!(error(&r, 400, "invalid", "not hex").contains("64 hex"));
    let r = call(
        &node,
        "POST",
        "/v1/spaces/join",
        Some(&json!({ "space_key": zero }).to_string()),
    );
    assert!(error(&r, 400, "invalid", "join zero").contains("small-order"));
    let members = node.ok(&["space", "members", &space]);
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    assert_eq!(
        node.ok(&["space", "list"]).as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn text_in_arrays_and_reserved_text_fields_are_refused_alike() {
    let (node, space) = Node::with_space("texts");
    let id = node.add(&space, r#"{"@type": "Note", "title": {"@text": "hi"}}"#);
    let data_before = node.feed_length(&space, "data");
    let objects = format!("/v1/spaces/{space}/objects");
    for object in [
        r#"{"l": [{"@text": "x"}]}"#,
        r#"{"l": [{"m": {"@text": "x"}}]}"#,
    ] {
        let r = call(&node, "POST", &objects, Some(object));
        assert!(error(&r, 400, "invalid", object).contains("inside an array"));
        let r = call(&node, "PATCH", &format!("{objects}/{id}"), Some(object));
        error(&r, 400, "invalid", object);
    }
    let out = node.fails(&["object", "add", &space, r#"{"l": [{"@text": "x"}]}"#]);
    assert!(out.stderr.contains("inside an array"), "{out}");
    for field in ["@type", "@id", "@meta", "@deleted"] {
        let text = format!("{objects}/{id}/text/{}", field.replace('@', "%40"));
        let read = error(&call(&node, "GET", &text, None), 400, "invalid", field);
        let insert = call(
            &node,
            "POST",
            &format!("{text}/insert"),
            Some(r#"{"index": 0, "text": "x"}"#),
        );
        let insert = error(&insert, 400, "invalid", field);
        assert!(
            read.contains("reserved") && insert.contains("reserved"),
            "{read} / {insert}"
        );
    }
    let out = node.fails(&["text", "get", &space, &id, "@type"]);
    assert!(out.stderr.contains("reserved"), "{out}");
    assert_eq!(
        node.feed_length(&space, "data"),
        data_before,
        "a refusal wrote"
    );
    let title = call(&node, "GET", &format!("{objects}/{id}/text/title"), None);
    assert_eq!(title.json().unwrap()["text"], "hi", "{}", title.body);
}
