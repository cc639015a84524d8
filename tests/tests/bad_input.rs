//! Bad input is refused with a non-zero exit and a message, writes nothing, and leaves the
//! node serving. The local API answers errors with JSON bodies and 4xx statuses, also the
//! protocol errors no route sees (long URLs, too many headers, malformed or slow heads,
//! slow bodies).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use echo_tests::{http, json, HttpResponse, Node};
use serde_json::Value;

/// Everything observable about a space's content and feeds.
fn snapshot(node: &Node, space: &str) -> (Value, u64, u64) {
    let all = node.ok(&["query", space, "--include-deleted"]);
    (
        all,
        node.feed_length(space, "data"),
        node.feed_length(space, "control"),
    )
}

#[test]
fn bad_cli_input_is_refused_without_partial_writes() {
    let (node, space) = Node::with_space("main");
    let id = node.add(&space, r#"{"@type":"Doc","body":"héllo","n":1}"#);
    let before = snapshot(&node, &space);
    assert_eq!(before.1, 1);

    let ghost = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let cases: Vec<Vec<&str>> = vec![
        // malformed JSON
        vec!["object", "add", &space, "{not json"],
        vec!["object", "add", &space, ""],
        vec!["object", "add", &space, r#"{"a":1} trailing"#],
        // top level not an object
        vec!["object", "add", &space, "[1,2]"],
        vec!["object", "add", &space, r#""str""#],
        vec!["object", "add", &space, "42"],
        vec!["object", "add", &space, "null"],
        // reserved fields
        vec!["object", "add", &space, r#"{"@foo":1}"#],
        vec![
            "object",
            "add",
            &space,
            r#"{"@id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#,
        ],
        vec!["object", "add", &space, r#"{"@deleted":true}"#],
        vec!["object", "add", &space, r#"{"@type":5}"#],
        vec!["object", "add", &space, r#"{"@meta":"x"}"#],
        vec!["object", "add", &space, r#"{"a":{"@foo":1}}"#],
        vec!["object", "add", &space, r#"{"a":{"@ref":"not-a-ulid"}}"#],
        vec!["object", "add", &space, r#"{"a.b":1}"#],
        vec!["object", "add", &space, r#"{"":1}"#],
        // bad updates
        vec!["object", "update", &space, &id, "{bad"],
        vec!["object", "update", &space, &id, "[1]"],
        vec!["object", "update", &space, &id, r#"{"@foo":1}"#],
        vec![
            "object",
            "update",
            &space,
            &id,
            r#"{"@id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#,
        ],
        vec!["object", "update", &space, &id, r#"{"@deleted":"yes"}"#],
        // bad object ids
        vec!["object", "get", &space, "not-an-id"],
        vec!["object", "get", &space, "01ARZ3NDEKTSV4RRFFQ69G5FA"],
        vec!["object", "get", &space, "01ARZ3NDEKTSV4RRFFQ69G5FAV0"],
        vec!["object", "update", &space, "xyz", r#"{"a":1}"#],
        vec!["object", "delete", &space, "xyz"],
        vec!["object", "delete", &space, ghost],
        vec!["text", "insert", &space, "xyz", "body", "0", "a"],
        // bad --where
        vec!["query", &space, "--where", "nonsense"],
        // text ranges
        vec!["text", "insert", &space, &id, "body", "6", "x"],
        vec!["text", "insert", &space, &id, "body", "999", "x"],
        vec!["text", "delete", &space, &id, "body", "0", "6"],
        vec!["text", "delete", &space, &id, "body", "5", "1"],
        vec!["text", "delete", &space, &id, "body", "99", "1"],
        vec!["text", "insert", &space, &id, "body", "-1", "x"],
        vec!["text", "insert", &space, &id, "body", "abc", "x"],
        vec!["text", "delete", &space, &id, "body", "0", "-1"],
        vec!["text", "insert", &space, &id, "n", "0", "x"],
        vec!["text", "delete", &space, &id, "missing", "0", "1"],
        // missing arguments / unknown subcommands
        vec!["object", "add", &space],
        vec!["object", "frobnicate"],
        vec!["text", "insert", &space, &id, "body", "0"],
    ];
    for args in &cases {
        node.fails(args);
    }

    // Nothing was written, and the node still serves.
    let after = snapshot(&node, &space);
    assert_eq!(before, after, "a refused command changed the space");
    let obj = node.ok(&["object", "get", &space, &id]);
    assert_eq!(obj["body"], "héllo");
    assert_eq!(obj["n"], 1);
    assert!(obj.get("@foo").is_none());
    let id2 = node.add(&space, r#"{"ok":true}"#);
    assert_ne!(id2, id);
    assert_eq!(node.feed_length(&space, "data"), 2);
}

#[test]
fn oversized_and_deep_values_are_refused() {
    let (node, space) = Node::with_space("main");
    let id = node.add(&space, r#"{"@type":"Doc","body":"x"}"#);
    let before = snapshot(&node, &space);

    // Too deep: more than 32 nested containers.
    let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    node.fails(&["object", "add", &space, &deep]);

    // A single argv string is limited to 128 KiB on Linux, so values over 1 MiB go
    // through the local API directly.
    let url = node.api_url();
    let token = node.api_token();
    let big = "x".repeat((1 << 20) + 10);
    let body = serde_json::to_vec(&serde_json::json!({ "big": big })).unwrap();
    let r = api_add(&url, &token, &space, &body);
    assert_error(&r, &[400, 413], "object add > 1 MiB");

    let patch = serde_json::to_vec(&serde_json::json!({ "big": big })).unwrap();
    let r = http(
        &url,
        "PATCH",
        &format!("/v1/spaces/{space}/objects/{id}"),
        Some(&token),
        Some(&patch),
    );
    assert_error(&r, &[400, 413], "object update > 1 MiB");

    let after = snapshot(&node, &space);
    assert_eq!(before, after, "an oversized write changed the space");
    node.ok(&["object", "update", &space, &id, r#"{"small":1}"#]);
}

fn api_add(url: &str, token: &str, space: &str, body: &[u8]) -> HttpResponse {
    http(
        url,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        Some(token),
        Some(body),
    )
}

/// POST with an explicit content type (the `http` helper always sends JSON).
fn http_ct(url: &str, token: &str, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    use std::io::{Read, Write};
    let authority = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    echo_tests::parse_response(&raw).expect("HTTP response")
}

/// Asserts an error status from `allowed` and a JSON body `{"error": "...", "code": "..."}`.
fn assert_error(r: &HttpResponse, allowed: &[u16], what: &str) -> Value {
    assert!(
        allowed.contains(&r.status),
        "{what}: status {} not in {allowed:?}; body: {}",
        r.status,
        r.body
    );
    let body = r
        .json()
        .unwrap_or_else(|| panic!("{what}: error body is not JSON: {:?}", r.body));
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: error body lacks a message: {body}"
    );
    assert!(
        body["code"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: error body lacks a code: {body}"
    );
    body
}

#[test]
fn api_requires_the_bearer_token() {
    let (node, space) = Node::with_space("main");
    let url = node.api_url();
    let token = node.api_token();
    let before = snapshot(&node, &space);

    // The token works.
    let r = http(&url, "GET", "/v1/status", Some(&token), None);
    assert_eq!(r.status, 200, "status with token: {}", r.body);
    assert!(r.json().is_some(), "status body not JSON: {}", r.body);

    // Missing token.
    let r = http(&url, "GET", "/v1/status", None, None);
    let body = assert_error(&r, &[401], "no token");
    assert!(
        !body.to_string().contains(&token),
        "the 401 body leaks the token"
    );
    // Wrong token, including a prefix of the right one and the wrong scheme.
    let wrong = format!("{}0", &token[..token.len() - 1]);
    let wrong = if wrong == token {
        format!("{}1", &token[..token.len() - 1])
    } else {
        wrong
    };
    assert_error(
        &http(&url, "GET", "/v1/status", Some(&wrong), None),
        &[401],
        "wrong token",
    );
    assert_error(
        &http(
            &url,
            "GET",
            "/v1/status",
            Some(&token[..token.len() / 2]),
            None,
        ),
        &[401],
        "token prefix",
    );
    assert_error(
        &http(&url, "GET", "/v1/status", Some(""), None),
        &[401],
        "empty token",
    );
    // A write without a token writes nothing.
    assert_error(
        &api_add(&url, "", &space, br#"{"a":1}"#),
        &[401],
        "add with empty token",
    );
    let r = http(
        &url,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        None,
        Some(br#"{"a":1}"#),
    );
    assert_error(&r, &[401], "add without token");
    assert_eq!(before, snapshot(&node, &space), "unauthorized write landed");
}

#[test]
fn api_errors_are_json() {
    let (node, space) = Node::with_space("main");
    let url = node.api_url();
    let token = node.api_token();
    let before = snapshot(&node, &space);

    // Malformed body.
    let r = api_add(&url, &token, &space, b"{not json");
    assert_error(&r, &[400], "malformed body");
    let r = api_add(&url, &token, &space, b"[1,2]");
    assert_error(&r, &[400, 422], "non-object body");
    let r = api_add(&url, &token, &space, br#"{"@foo":1}"#);
    assert_error(&r, &[400, 422], "reserved field");
    // Unknown route.
    let r = http(&url, "GET", "/v1/no/such/route", Some(&token), None);
    assert_error(&r, &[404], "unknown route");
    let r = http(&url, "GET", "/nothing-here", Some(&token), None);
    assert_error(&r, &[404], "unknown route");
    // Wrong method on a known path.
    let r = http(&url, "PUT", "/v1/status", Some(&token), None);
    assert_error(&r, &[404, 405], "wrong method");
    // Wrong content type, empty body.
    let r = http_ct(
        &url,
        &token,
        &format!("/v1/spaces/{space}/objects"),
        "text/plain",
        b"{}",
    );
    assert_error(&r, &[400, 415], "wrong content type");
    let r = http(
        &url,
        "POST",
        &format!("/v1/spaces/{space}/objects"),
        Some(&token),
        None,
    );
    assert_error(&r, &[400], "empty body");
    // Unknown space / object.
    let r = http(
        &url,
        "POST",
        "/v1/spaces/nosuch/query",
        Some(&token),
        Some(b"{}"),
    );
    assert_error(&r, &[404], "unknown space");
    let r = api_add(&url, &token, "nosuch", br#"{"a":1}"#);
    assert_error(&r, &[404], "add to unknown space");
    let r = http(
        &url,
        "GET",
        &format!("/v1/spaces/{space}/objects/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        Some(&token),
        None,
    );
    assert_error(&r, &[404], "unknown object");
    let r = http(
        &url,
        "GET",
        &format!("/v1/spaces/{space}/objects/not-an-id"),
        Some(&token),
        None,
    );
    assert_error(&r, &[400, 404], "bad object id");

    assert_eq!(before, snapshot(&node, &space));
    // A good request through the same API works.
    let r = api_add(&url, &token, &space, br#"{"@type":"T","a":1}"#);
    assert!(
        (200..300).contains(&r.status),
        "good add via API: {} {}",
        r.status,
        r.body
    );
    let id = r.json().unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(node.ok(&["object", "get", &space, &id])["a"], json("1"));
}

/// Sends `bytes` on a new connection to the node's API and reads until the server closes
/// (bounded by `within`); the response and how long the server took to close.
fn raw_exchange(node: &Node, bytes: &[u8], within: Duration) -> (HttpResponse, Duration) {
    let url = node.api_url();
    let authority = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let start = Instant::now();
    // The server may answer and close before it has read everything (e.g. a head over
    // the limit): a failed write is fine as long as an answer can be read.
    let _ = s.write_all(bytes);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let took = start.elapsed();
    let r = echo_tests::parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP response within {within:?}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    });
    (r, took)
}

/// Asserts `status`, the JSON error shape with `code`, and a closed connection (the
/// response was read to its end).
fn assert_refused(r: &HttpResponse, status: u16, code: &str, what: &str) {
    let body = assert_error(r, &[status], what);
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: {:?}",
        r.headers
    );
}

#[test]
fn protocol_errors_before_any_route_have_json_bodies() {
    let (node, space) = Node::with_space("main");
    let token = node.api_token();
    let host = "Host: 127.0.0.1\r\n";
    let within = Duration::from_secs(10);

    // A URL longer than the head limit (32 KiB).
    let long = format!(
        "GET /v1/spaces/{space}/objects/{} HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let (r, _) = raw_exchange(&node, long.as_bytes(), within);
    assert_refused(&r, 431, "headers_too_large", "a 40 KiB URL");

    // Too many header fields (over 64).
    let mut many = format!("GET /v1/status HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let (r, _) = raw_exchange(&node, many.as_bytes(), within);
    assert_refused(&r, 431, "headers_too_large", "100 header fields");

    // Headers larger in all than the limit, each of them small.
    let mut big = format!("GET /v1/status HTTP/1.1\r\n{host}");
    for i in 0..40 {
        big.push_str(&format!("X-Big-{i}: {}\r\n", "b".repeat(1000)));
    }
    big.push_str("\r\n");
    let (r, _) = raw_exchange(&node, big.as_bytes(), within);
    assert_refused(&r, 431, "headers_too_large", "40 KB of headers");

    // A Content-Type with control bytes.
    let body = br#"{"a":1}"#;
    let mut ctl = format!(
        "POST /v1/spaces/{space}/objects HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n\
         Content-Length: {}\r\nContent-Type: application/\x01json\x7f\r\n\r\n",
        body.len()
    )
    .into_bytes();
    ctl.extend_from_slice(body);
    let (r, _) = raw_exchange(&node, &ctl, within);
    assert_refused(&r, 400, "bad_request", "a Content-Type with control bytes");

    // Other heads actix-http would refuse on its own.
    for (what, head) in [
        ("no Host header", "GET /v1/status HTTP/1.1\r\n\r\n".to_string()),
        ("a request line that is not HTTP", "HELLO\r\n\r\n".to_string()),
        (
            "two Content-Length headers",
            format!("POST /v1/spaces/{space}/objects HTTP/1.1\r\n{host}Content-Length: 1\r\nContent-Length: 2\r\n\r\n{{"),
        ),
        (
            "an unsupported Transfer-Encoding",
            format!("POST /v1/spaces/{space}/objects HTTP/1.1\r\n{host}Transfer-Encoding: gzip\r\n\r\n"),
        ),
    ] {
        let (r, _) = raw_exchange(&node, head.as_bytes(), within);
        assert_refused(&r, 400, "bad_request", what);
    }

    // Nothing was written, and the API still serves.
    let r = http(&node.api_url(), "GET", "/v1/status", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(node.feed_length(&space, "data"), 0);
}

#[test]
fn a_slow_request_head_gets_408_json() {
    let (node, _space) = Node::with_space("main");
    // Half a head, then nothing: the 5 s head deadline answers.
    let (r, took) = raw_exchange(
        &node,
        b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait",
        Duration::from_secs(15),
    );
    assert_refused(&r, 408, "timeout", "a head cut off half way");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "the head deadline answered after {took:?}, not after about 5 s"
    );
    eprintln!("slow head: 408 after {took:?}");
    // A connection that sends nothing at all is answered the same way.
    let (r, _) = raw_exchange(&node, b"", Duration::from_secs(15));
    assert_refused(&r, 408, "timeout", "a connection that sends nothing");
}

#[test]
fn a_body_sent_one_byte_per_second_is_cut_off_with_408_json() {
    let (node, space) = Node::with_space("main");
    let url = node.api_url();
    let authority = url.strip_prefix("http://").unwrap();
    let token = node.api_token();
    let body = format!(r#"{{"title":"{}"}}"#, "x".repeat(100));
    let head = format!(
        "POST /v1/spaces/{space}/objects HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(authority).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    // One byte per second, reading in between: the answer ends the loop.
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    let closed = loop {
        if sent < body.len() && s.write_all(&body.as_bytes()[sent..=sent]).is_ok() {
            sent += 1;
        }
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => {} // a second without an answer
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "a body sent at one byte per second was held for 25 s ({sent} bytes sent)"
        );
    };
    let took = start.elapsed();
    assert!(closed, "the server closed the connection");
    eprintln!("slow body: cut off after {took:?} and {sent} bytes");
    let r = echo_tests::parse_response(&raw)
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&raw)));
    assert_refused(&r, 408, "timeout", "a body at one byte per second");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "cut off after {took:?}, not after about 10 s"
    );
    assert!(sent < body.len(), "the whole body went through");
    // Nothing was written; the API still serves.
    assert_eq!(node.feed_length(&space, "data"), 0);
    let r = http(&url, "GET", "/v1/status", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
}
