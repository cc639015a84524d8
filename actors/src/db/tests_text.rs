//! Unit tests of collaborative text: char (not byte) indices with multibyte text, range
//! errors naming the actual length, conversion of plain strings, `NotText`, and minimal
//! diffs that let a whole-string patch merge with a concurrent insert.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::tests_unit::{doc_with, invalid, oid};
use super::*;

#[test]
fn text_operations() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"plain": "héllo", "n": 5}));
    // Missing field: created by insert, refused by delete.
    doc.text_insert(&id, "body", 0, "héllo 👋").unwrap();
    assert_eq!(doc.text_get(&id, "body").unwrap(), "héllo 👋");
    doc.text_insert(&id, "body", 6, "🌍 ").unwrap();
    doc.text_insert(&id, "body", 2, "ß").unwrap();
    assert_eq!(doc.text_get(&id, "body").unwrap(), "héßllo 🌍 👋");
    doc.text_delete(&id, "body", 1, 2).unwrap();
    assert_eq!(doc.text_get(&id, "body").unwrap(), "hllo 🌍 👋");
    doc.text_delete(&id, "body", 5, 2).unwrap();
    assert_eq!(doc.text_get(&id, "body").unwrap(), "hllo 👋");
    let len_err = |r: Result<Mutation, DbError>| invalid(r).contains("has 6 characters");
    assert!(len_err(doc.text_insert(&id, "body", 7, "x")));
    assert!(len_err(doc.text_delete(&id, "body", 5, 2)));
    assert!(len_err(doc.text_delete(&id, "body", u32::MAX, u32::MAX)));
    assert_eq!(
        doc.text_delete(&id, "body", 6, 0).unwrap(),
        Mutation::default()
    );
    // Plain strings convert on first edit; other values are not text.
    doc.text_insert(&id, "plain", 5, "!").unwrap();
    assert_eq!(doc.get(&id).unwrap()["plain"], json!("héllo!"));
    assert!(invalid(doc.text_insert(&id, "new", 1, "x")).contains("has 0 characters"));
    let not_text = DbError::NotText { field: "n".into() };
    assert_eq!(doc.text_insert(&id, "n", 0, "x"), Err(not_text.clone()));
    assert_eq!(doc.text_get(&id, "n"), Err(not_text));
    assert!(matches!(
        doc.text_delete(&id, "none", 0, 0),
        Err(DbError::NotText { .. })
    ));
    assert!(matches!(
        doc.text_get(&id, "none"),
        Err(DbError::NotText { .. })
    ));
    assert!(invalid(doc.text_insert(&id, "@type", 0, "x")).contains("reserved"));
    assert!(invalid(doc.text_insert(&id, "a.b", 0, "x")).contains("`.`"));
    assert_eq!(
        doc.text_insert(&oid(2), "t", 0, "x"),
        Err(DbError::NotFound(oid(2)))
    );
    let big = "y".repeat(MAX_VALUE_BYTES + 1);
    assert!(matches!(
        doc.text_insert(&id, "body", 0, &big),
        Err(DbError::TooLarge(_))
    ));
    // Text survives a whole-string patch made concurrently with an insert elsewhere.
    let mut other = SpaceDoc::new(9);
    other.apply_update(&doc.snapshot()).unwrap();
    let mine = doc.update(&id, &json!({"body": "hello 👋"})).unwrap();
    let theirs = other.text_insert(&id, "body", 5, "🌍").unwrap();
    doc.apply_update(&theirs.update).unwrap();
    other.apply_update(&mine.update).unwrap();
    assert_eq!(doc.text_get(&id, "body").unwrap(), "hello 🌍👋");
    assert_eq!(doc.canonical_state(), other.canonical_state());
    // A non-string patch replaces the text.
    doc.update(&id, &json!({"body": 3})).unwrap();
    assert!(matches!(
        doc.text_get(&id, "body"),
        Err(DbError::NotText { .. })
    ));
}

#[test]
fn text_diff_is_minimal() {
    assert_eq!(text::diff("héllo 👋", "héllo 👋"), (11, 0, ""));
    assert_eq!(text::diff("abc", "aXc"), (1, 1, "X"));
    assert_eq!(text::diff("a👋c", "a👍c"), (1, 4, "👍"));
    assert_eq!(text::diff("aaa", "aa"), (2, 1, ""));
    assert_eq!(text::diff("", "xy"), (0, 0, "xy"));
}

#[test]
fn text_fields_can_be_created_with_the_object_so_concurrent_edits_merge() {
    use serde_json::json;
    let id = ObjectId::from_parts(1, 77);
    let mut a = SpaceDoc::new(1);
    let created = a
        .add(id, &json!({"body": {"@text": "ac"}, "list": ["x"]}))
        .unwrap();
    assert_eq!(a.get(&id).unwrap()["body"], json!("ac"));
    let mut b = SpaceDoc::new(2);
    b.apply_update(&created.update).unwrap();
    // Both edit the same text concurrently; neither edit is lost.
    let ua = a.text_insert(&id, "body", 1, "b").unwrap().update;
    let ub = b.text_insert(&id, "body", 2, "d").unwrap().update;
    a.apply_update(&ub).unwrap();
    b.apply_update(&ua).unwrap();
    assert_eq!(a.text_get(&id, "body").unwrap(), "abcd");
    assert_eq!(b.text_get(&id, "body").unwrap(), "abcd");
    // A patch with {"@text": ...} edits the text minimally; onto a plain field it makes a text.
    a.update(
        &id,
        &json!({"body": {"@text": "abXcd"}, "title": {"@text": "t"}}),
    )
    .unwrap();
    assert_eq!(a.text_get(&id, "body").unwrap(), "abXcd");
    a.text_insert(&id, "title", 1, "!").unwrap();
    assert_eq!(a.get(&id).unwrap()["title"], json!("t!"));
    // Malformed text values are rejected.
    for bad in [
        json!({"t": {"@text": 1}}),
        json!({"t": {"@text": "x", "y": 1}}),
    ] {
        assert!(
            matches!(
                a.add(ObjectId::from_parts(2, 1), &bad),
                Err(DbError::Invalid(_))
            ),
            "{bad}"
        );
    }
}
