//! Tests of the Yjs bridge's admission of client updates (`yjs.rs`, `yjs_validate.rs`).

use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayPrelim, Doc, Map, MapPrelim, ReadTxn, StateVector, Text, TextPrelim, Transact,
    Update,
};

use super::{DbError, ObjectId, SpaceDoc};

const ID: &str = "01M80HVMX483891KEP5DSVDRB3";

/// A Yjs client holding the node's state.
fn client(node: &SpaceDoc) -> Doc {
    let doc = Doc::with_client_id(777);
    doc.get_or_insert_map("objects");
    let update = Update::decode_v1(&node.snapshot()).expect("decodes");
    doc.transact_mut().apply_update(update).expect("applies");
    doc
}

/// Runs `edit` on the client and returns the update it made.
fn edit(doc: &Doc, edit: impl FnOnce(&mut yrs::TransactionMut, &yrs::MapRef)) -> Vec<u8> {
    let objects = doc.get_or_insert_map("objects");
    let before = doc.transact().state_vector();
    {
        let mut txn = doc.transact_mut();
        edit(&mut txn, &objects);
    }
    doc.transact().encode_diff_v1(&before)
}

fn new_object(txn: &mut yrs::TransactionMut, objects: &yrs::MapRef) -> yrs::MapRef {
    let map = objects.insert(txn, ID, MapPrelim::default());
    map.insert(txn, "@type", "Note");
    map.insert(txn, "@deleted", false);
    map.insert(txn, "@meta", MapPrelim::default());
    map
}

#[test]
fn a_valid_object_from_a_client_renders_like_a_written_one() {
    let mut node = SpaceDoc::new(1);
    let yjs = client(&node);
    let update = edit(&yjs, |txn, objects| {
        let map = new_object(txn, objects);
        map.insert(txn, "title", TextPrelim::new("hello"));
        map.insert(txn, "count", 7_i64);
        let tags = map.insert(txn, "tags", ArrayPrelim::default());
        tags.push_back(txn, "a");
        let mut owner = std::collections::HashMap::new();
        owner.insert("@ref".to_string(), Any::from(ID));
        map.insert(txn, "owner", Any::from(owner));
    });
    let mutation = node.apply_client_update(&update).expect("valid");
    assert!(!mutation.update.is_empty());
    let id: ObjectId = ID.parse().expect("id");
    let object = node.get(&id).expect("stored");
    assert_eq!(object["title"], "hello");
    assert_eq!(object["count"], 7);
    assert_eq!(object["owner"]["@ref"], ID);
    assert_eq!(object["@type"], "Note");
    // The same update again brings nothing.
    assert!(node
        .apply_client_update(&update)
        .expect("no-op")
        .update
        .is_empty());
    // Text edits go through.
    let update = edit(&yjs, |txn, objects| {
        let Some(yrs::Out::YMap(map)) = objects.get(txn, ID) else {
            panic!("object")
        };
        let Some(yrs::Out::YText(text)) = map.get(txn, "title") else {
            panic!("text")
        };
        text.insert(txn, 5, ", world");
    });
    node.apply_client_update(&update).expect("text edit");
    assert_eq!(node.text_get(&id, "title").expect("text"), "hello, world");
}

fn refused(edit_fn: impl FnOnce(&mut yrs::TransactionMut, &yrs::MapRef)) -> DbError {
    let mut node = SpaceDoc::new(1);
    let seed = edit(&client(&node), |txn, objects| {
        new_object(txn, objects);
    });
    node.apply_client_update(&seed).expect("seed");
    let before = node.snapshot();
    let yjs = client(&node);
    let update = edit(&yjs, edit_fn);
    let err = node.apply_client_update(&update).expect_err("refused");
    assert_eq!(node.snapshot(), before, "a refused update changes nothing");
    err
}

fn object(txn: &yrs::TransactionMut, objects: &yrs::MapRef) -> yrs::MapRef {
    match objects.get(txn, ID) {
        Some(yrs::Out::YMap(map)) => map,
        _ => panic!("no object"),
    }
}

#[test]
fn updates_that_break_the_object_model_are_refused_and_change_nothing() {
    let e = refused(|txn, objects| {
        object(txn, objects).insert(txn, "@bogus", 1_i64);
    });
    assert!(e.to_string().contains("@bogus"), "{e}");
    let e = refused(|txn, objects| {
        object(txn, objects).insert(txn, "@deleted", "yes");
    });
    assert!(e.to_string().contains("@deleted"), "{e}");
    let e = refused(|txn, objects| {
        object(txn, objects).insert(txn, "a.b", 1_i64);
    });
    assert!(e.to_string().contains("a.b"), "{e}");
    let e = refused(|txn, objects| {
        objects.insert(txn, "not-an-id", MapPrelim::default());
    });
    assert!(e.to_string().contains("not-an-id"), "{e}");
    let e = refused(|txn, objects| {
        objects.remove(txn, ID);
    });
    assert!(e.to_string().contains("@deleted"), "{e}");
    let e = refused(|txn, objects| {
        object(txn, objects).insert(txn, "blob", Any::from(vec![1u8, 2, 3]));
    });
    assert!(e.to_string().contains("binary"), "{e}");
    let e = refused(|txn, objects| {
        let nested = object(txn, objects).insert(txn, "n", MapPrelim::default());
        nested.insert(txn, "@ref", ID);
    });
    assert!(e.to_string().contains("reserved"), "{e}");
    let e = refused(|txn, objects| {
        let mut map = object(txn, objects).insert(txn, "deep", MapPrelim::default());
        for _ in 0..40 {
            map = map.insert(txn, "d", MapPrelim::default());
        }
    });
    assert!(matches!(e, DbError::TooLarge(_)), "{e}");
}

#[test]
fn other_roots_and_gaps_are_refused() {
    let mut node = SpaceDoc::new(1);
    let yjs = client(&node);
    let other = yjs.get_or_insert_text("other");
    let before = yjs.transact().state_vector();
    other.insert(&mut yjs.transact_mut(), 0, "x");
    let update = yjs.transact().encode_diff_v1(&before);
    let e = node.apply_client_update(&update).expect_err("other root");
    assert!(e.to_string().contains("other"), "{e}");

    // An update that skips part of its client's history.
    let yjs = client(&node);
    edit(&yjs, |txn, objects| {
        new_object(txn, objects);
    });
    let after_first = yjs.transact().state_vector();
    let second = edit(&yjs, |txn, objects| {
        object(txn, objects).insert(txn, "x", 1_i64);
    });
    let _ = after_first;
    let e = node.apply_client_update(&second).expect_err("gap");
    assert!(e.to_string().contains("does not have"), "{e}");
    assert!(node.query(&super::Query::default()).is_empty());
    let _ = StateVector::default();
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut node = SpaceDoc::new(1);
    for bytes in [&[0xff_u8, 0xff, 0xff][..], &[1, 2, 3, 4, 5], &[0, 0]] {
        let _ = node.apply_client_update(bytes);
    }
    assert!(node.diff_v1(&[0xff, 0xff]).is_err());
    assert!(!node.state_vector_v1().is_empty());
}
