//! Text edits answer with the change and the new length, not the text: through the API
//! (`POST .../text/{field}/insert|delete`) and the CLI (`text insert|delete`, plain and
//! `--json`); `text get` / `GET .../text/{field}` is how the whole text is read.

#![allow(clippy::unwrap_used)]

use echo_tests::{http, Node};
use serde_json::{json, Value};

fn post(node: &Node, path: &str, body: &Value) -> Value {
    let r = http(
        &node.api_url(),
        "POST",
        path,
        Some(&node.api_token()),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "POST {path} {body}: {}", r.body);
    r.json().unwrap()
}

#[test]
fn edits_answer_with_the_change_and_the_length_not_the_text() {
    let (node, space) = Node::with_space("main");
    let id = node.add(&space, r#"{"@type":"Doc","body":"héllo"}"#);
    let text = format!("/v1/spaces/{space}/objects/{id}/text/body");

    // Lengths and counts are in characters (é and 🦀 are one each).
    let answer = post(
        &node,
        &format!("{text}/insert"),
        &json!({"index": 5, "text": " 🦀!"}),
    );
    assert_eq!(answer, json!({"length": 8, "index": 5, "inserted": 3}));
    let answer = post(
        &node,
        &format!("{text}/delete"),
        &json!({"index": 0, "len": 2}),
    );
    assert_eq!(answer, json!({"length": 6, "index": 0, "deleted": 2}));
    let r = http(&node.api_url(), "GET", &text, Some(&node.api_token()), None);
    assert_eq!(r.json().unwrap(), json!({"text": "llo 🦀!"}));

    // The CLI: --json prints the API's answer, plain text says what changed.
    let answer = node.ok(&["text", "insert", &space, &id, "body", "0", "he"]);
    assert_eq!(answer, json!({"length": 8, "index": 0, "inserted": 2}));
    let out = node.cli_plain(&["text", "delete", &space, &id, "body", "7", "1"]);
    assert!(out.status.success(), "{out}");
    assert_eq!(out.stdout, "deleted 1 character at 7; length 7\n");
    let out = node.cli_plain(&["text", "insert", &space, &id, "body", "7", "?!"]);
    assert_eq!(out.stdout, "inserted 2 characters at 7; length 9\n");
    let out = node.cli_plain(&["text", "get", &space, &id, "body"]);
    assert_eq!(out.stdout, "hello 🦀?!\n");
}
