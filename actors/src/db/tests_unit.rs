//! Unit tests of the object model: ids, validation, JSON round-trips, merge patch (RFC 7386
//! appendix examples), text edits with multibyte chars, deletion, change detection, queries,
//! snapshots and determinism of update bytes.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::*;

pub(crate) fn oid(n: u128) -> ObjectId {
    ObjectId::from_parts(1_700_000_000_000, n)
}

/// The user fields of a rendered object (reserved `@` keys removed).
pub(crate) fn user_fields(object: &Value) -> Value {
    let mut map = object.as_object().cloned().unwrap();
    map.retain(|k, _| !k.starts_with('@'));
    Value::Object(map)
}

pub(crate) fn doc_with(id: ObjectId, object: Value) -> SpaceDoc {
    let mut doc = SpaceDoc::new(7);
    doc.add(id, &object).unwrap();
    doc
}

pub(crate) fn invalid(r: Result<Mutation, DbError>) -> String {
    match r {
        Err(DbError::Invalid(msg)) => msg,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn object_id_text_forms() {
    let id = oid(42);
    let text = id.to_string();
    assert_eq!(text.len(), 26);
    assert_eq!(text.parse::<ObjectId>().unwrap(), id);
    assert_eq!(text.to_lowercase().parse::<ObjectId>().unwrap(), id);
    assert!(matches!(
        "nope".parse::<ObjectId>(),
        Err(DbError::Invalid(_))
    ));
    assert!(matches!(
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<ObjectId>(),
        Err(DbError::Invalid(_))
    ));
    let ser = serde_json::to_string(&id).unwrap();
    assert_eq!(ser, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<ObjectId>(&ser).unwrap(), id);
    assert!(serde_json::from_str::<ObjectId>("\"bad\"").is_err());
    assert_eq!(id.as_ulid(), ulid::Ulid::from_parts(1_700_000_000_000, 42));
    // Ordering of ids is the ordering of their strings.
    let (a, b) = (
        ObjectId::from_parts(1, u128::MAX),
        ObjectId::from_parts(2, 0),
    );
    assert!(a < b && a.to_string() < b.to_string());
}

#[test]
fn new_masks_client_id_and_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SpaceDoc>();
    assert_eq!(SpaceDoc::new(u64::MAX).client_id(), (1 << 53) - 1);
    assert_eq!(SpaceDoc::new(5).client_id(), 5);
}

#[test]
fn update_bytes_are_deterministic() {
    let object = json!({
        "@type": "T", "@meta": {"k1": 1, "k2": [1, {"x": 2, "y": 3}]},
        "a": 1, "b": 2, "c": 3, "d": {"e": 1, "f": 2, "g": {"h": 1, "i": 2, "j": 3}},
        "k": [{"l": 1, "m": 2, "n": 3}, [1, 2, {"o": 1, "p": 2}]], "q": "r", "s": true,
        "t": null, "u": 1.5, "ref": {"@ref": oid(9).to_string()}
    });
    let run = || {
        let mut doc = SpaceDoc::new(99);
        let add = doc.add(oid(1), &object).unwrap().update;
        let patch = json!({"d": {"z": 1, "y": 2, "x": {"w": 1, "v": 2}}, "a": null});
        (
            add,
            doc.update(&oid(1), &patch).unwrap().update,
            doc.snapshot(),
        )
    };
    let first = run();
    for _ in 0..8 {
        assert_eq!(run(), first);
    }
}

#[test]
fn json_round_trips() {
    let object = json!({
        "@type": "Contact",
        "@meta": {"keys": [{"source": "x", "id": "1"}]},
        "name": "Zoë 👋 名前",
        "nested": {"a": {"b": {"c": [1, 2, {"d": null}]}}},
        "empty": {}, "list": [], "mixed": [1, "two", 3.5, false, null, [[]], {"x": 1}],
        "ints": [0, -1, 2147483647, 2147483648_i64, -2147483649_i64, 1099511627776_i64,
                 9007199254740993_i64, i64::MAX, i64::MIN],
        "floats": [1.5, -0.25, 2.0, 1e-7, 3.0e100],
        "ref": {"@ref": oid(77).to_string()},
        "refs": [{"@ref": oid(78).to_string()}],
    });
    let doc = doc_with(oid(1), object.clone());
    let got = doc.get(&oid(1)).unwrap();
    assert_eq!(got["@id"], json!(oid(1).to_string()));
    assert_eq!(got["@deleted"], json!(false));
    assert_eq!(got["@type"], json!("Contact"));
    assert_eq!(got["@meta"], object["@meta"]);
    assert_eq!(user_fields(&got), user_fields(&object));
    assert!(got["floats"][2].is_f64() && got["ints"][0].is_i64());
    // A peer that only saw the bytes renders exactly the same JSON (large integers too).
    let mut remote = SpaceDoc::new(8);
    remote.apply_update(&doc.snapshot()).unwrap();
    assert_eq!(remote.get(&oid(1)).unwrap(), got);
    // Defaults of an object added bare; an integer beyond i64 is refused (tests_numbers).
    let doc = doc_with(oid(2), json!({"big": i64::MAX}));
    let got = doc.get(&oid(2)).unwrap();
    assert_eq!(got["@type"], Value::Null);
    assert_eq!(got["@meta"], json!({}));
    assert!(got["big"].is_i64());
    // Lower-case refs are stored canonically; dangling refs are fine.
    let doc = doc_with(
        oid(3),
        json!({"r": {"@ref": oid(5).to_string().to_lowercase()}}),
    );
    assert_eq!(
        doc.get(&oid(3)).unwrap()["r"],
        json!({"@ref": oid(5).to_string()})
    );
    assert!(doc.get(&oid(5)).is_none());
}

#[test]
fn add_validation() {
    let mut doc = SpaceDoc::new(1);
    let id = oid(1);
    let r = doc.add(id, &json!([1]));
    assert!(invalid(r).contains("JSON object"));
    assert!(invalid(doc.add(id, &json!({"@id": id.to_string()}))).contains("@id"));
    assert!(invalid(doc.add(id, &json!({"@deleted": false}))).contains("@deleted"));
    assert!(invalid(doc.add(id, &json!({"@x": 1}))).contains("unknown reserved field `@x`"));
    assert!(invalid(doc.add(id, &json!({"@type": 5}))).contains("@type"));
    assert!(invalid(doc.add(id, &json!({"@meta": [1]}))).contains("@meta"));
    assert!(invalid(doc.add(id, &json!({"@meta": {"@x": 1}}))).contains("@meta.@x"));
    assert!(invalid(doc.add(id, &json!({"a": {"@x": 1}}))).contains("a.@x"));
    assert!(invalid(doc.add(id, &json!({"a": [{"@x": 1}]}))).contains("a.0.@x"));
    assert!(invalid(doc.add(id, &json!({"": 1}))).contains("empty"));
    assert!(invalid(doc.add(id, &json!({"a": {"": 1}}))).contains("empty"));
    assert!(invalid(doc.add(id, &json!({"a.b": 1}))).contains("`.`"));
    assert!(invalid(doc.add(id, &json!({"a": [{"b.c": 1}]}))).contains("`.`"));
    for bad_ref in [
        json!({"@ref": "nope"}),
        json!({"@ref": 5}),
        json!({"@ref": id.to_string(), "x": 1}),
    ] {
        assert!(invalid(doc.add(id, &json!({ "r": bad_ref }))).contains("reference"));
    }
    // Top-level `{"@ref": ..}` is an unknown reserved field, not a reference.
    assert!(invalid(doc.add(id, &json!({"@ref": id.to_string()}))).contains("@ref"));
    // Depth: the top-level object is level 1.
    let mut deep = json!(1);
    for _ in 0..MAX_DEPTH - 1 {
        deep = json!([deep]);
    }
    doc.add(oid(2), &json!({ "d": deep.clone() })).unwrap();
    let r = doc.add(oid(3), &json!({ "d": [deep] }));
    assert!(matches!(r, Err(DbError::TooLarge(m)) if m.contains("32")));
    let big = "x".repeat(MAX_VALUE_BYTES);
    assert!(matches!(
        doc.add(oid(3), &json!({ "s": big })),
        Err(DbError::TooLarge(_))
    ));
    assert!(invalid(doc.add(oid(2), &json!({}))).contains("already exists"));
    // Nothing above wrote anything.
    assert!(!doc.contains(&id) && !doc.contains(&oid(3)));
    assert_eq!(doc.canonical_state().as_object().unwrap().len(), 1);
}

#[test]
fn update_validation_and_errors() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"a": 1}));
    let before = doc.snapshot();
    assert_eq!(
        doc.update(&oid(2), &json!({"a": 2})),
        Err(DbError::NotFound(oid(2)))
    );
    assert!(invalid(doc.update(&id, &json!(3))).contains("merge patch"));
    assert!(invalid(doc.update(&id, &json!({"@id": oid(2).to_string()}))).contains("match"));
    assert!(invalid(doc.update(&id, &json!({"@deleted": "yes"}))).contains("@deleted"));
    assert!(invalid(doc.update(&id, &json!({"@y": 1}))).contains("unknown reserved field `@y`"));
    assert!(invalid(doc.update(&id, &json!({"b": 1, "c.d": 1}))).contains("`.`"));
    assert_eq!(doc.snapshot(), before, "a refused patch must not write");
    // A matching @id is accepted and ignored.
    doc.update(&id, &json!({"@id": id.to_string(), "a": 2}))
        .unwrap();
    assert_eq!(doc.get(&id).unwrap()["a"], json!(2));
    // An identical patch changes nothing and yields an empty mutation.
    assert_eq!(
        doc.update(&id, &json!({"a": 2})).unwrap(),
        Mutation::default()
    );
    assert_eq!(
        doc.update(&id, &json!({"zz": null})).unwrap(),
        Mutation::default()
    );
}

#[test]
fn rfc7386_examples() {
    let cases = [
        (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
        (json!({"a":"b"}), json!({"a":null}), json!({})),
        (
            json!({"a":"b","b":"c"}),
            json!({"a":null}),
            json!({"b":"c"}),
        ),
        (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
        (
            json!({"a":{"b":"c"}}),
            json!({"a":{"b":"d","c":null}}),
            json!({"a":{"b":"d"}}),
        ),
        (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
        (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
        (
            json!({}),
            json!({"a":{"bb":{"ccc":null}}}),
            json!({"a":{"bb":{}}}),
        ),
        // Non-object originals/patches, wrapped in a field.
        (
            json!({"v":["a","b"]}),
            json!({"v":["c","d"]}),
            json!({"v":["c","d"]}),
        ),
        (
            json!({"v":{"a":"b"}}),
            json!({"v":["c"]}),
            json!({"v":["c"]}),
        ),
        (
            json!({"v":{"a":"foo"}}),
            json!({"v":"bar"}),
            json!({"v":"bar"}),
        ),
        (
            json!({"v":[1,2]}),
            json!({"v":{"a":"b","c":null}}),
            json!({"v":{"a":"b"}}),
        ),
        (json!({"v":{"a":"foo"}}), json!({"v":null}), json!({})),
    ];
    for (original, patch, expected) in cases {
        let mut doc = doc_with(oid(1), original.clone());
        doc.update(&oid(1), &patch).unwrap();
        let got = user_fields(&doc.get(&oid(1)).unwrap());
        assert_eq!(got, expected, "{original} + {patch}");
    }
}

#[test]
fn reserved_fields_in_patches() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"@type": "A", "@meta": {"k": 1, "n": {"a": 1}}}));
    doc.update(
        &id,
        &json!({"@type": "B", "@meta": {"k": null, "n": {"b": 2}}}),
    )
    .unwrap();
    let got = doc.get(&id).unwrap();
    assert_eq!(
        (got["@type"].clone(), got["@meta"].clone()),
        (json!("B"), json!({"n": {"a": 1, "b": 2}}))
    );
    doc.update(&id, &json!({"@type": null, "@meta": null}))
        .unwrap();
    let got = doc.get(&id).unwrap();
    assert_eq!(
        (got["@type"].clone(), got["@meta"].clone()),
        (Value::Null, json!({}))
    );
}

#[test]
fn nested_edits_merge_concurrently() {
    let id = oid(1);
    let mut a = doc_with(id, json!({"addr": {"city": "X", "zip": "1"}, "n": 0}));
    let mut b = SpaceDoc::new(8);
    b.apply_update(&a.snapshot()).unwrap();
    let ua = a.update(&id, &json!({"addr": {"city": "Y"}})).unwrap();
    let ub = b
        .update(&id, &json!({"addr": {"zip": "2"}, "m": 1}))
        .unwrap();
    a.apply_update(&ub.update).unwrap();
    b.apply_update(&ua.update).unwrap();
    assert_eq!(a.canonical_state(), b.canonical_state());
    assert_eq!(
        a.get(&id).unwrap()["addr"],
        json!({"city": "Y", "zip": "2"})
    );
}

#[test]
fn soft_delete_and_restore() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"@type": "T", "a": 1}));
    assert_eq!(doc.delete(&oid(2)), Err(DbError::NotFound(oid(2))));
    let m = doc.delete(&id).unwrap();
    assert_eq!(
        m.changes.iter().collect::<Vec<_>>(),
        vec![(id, ChangeKind::Deleted)]
    );
    assert!(!m.update.is_empty());
    assert_eq!(doc.delete(&id).unwrap(), Mutation::default());
    assert_eq!(doc.get(&id).unwrap()["@deleted"], json!(true));
    assert!(doc.contains(&id));
    assert!(doc.query(&Query::of_type("T")).is_empty());
    assert_eq!(doc.query(&Query::of_type("T").including_deleted()).len(), 1);
    assert_eq!(doc.update(&id, &json!({"a": 2})), Err(DbError::Deleted(id)));
    assert_eq!(
        doc.update(&id, &json!({"@deleted": true})),
        Err(DbError::Deleted(id))
    );
    assert_eq!(doc.text_insert(&id, "t", 0, "x"), Err(DbError::Deleted(id)));
    assert_eq!(doc.text_delete(&id, "t", 0, 0), Err(DbError::Deleted(id)));
    let m = doc
        .update(&id, &json!({"@deleted": false, "a": 3}))
        .unwrap();
    assert_eq!(m.changes.get(&id), Some(ChangeKind::Updated));
    assert_eq!(doc.get(&id).unwrap()["a"], json!(3));
    assert_eq!(doc.get(&id).unwrap()["@deleted"], json!(false));
    let m = doc.update(&id, &json!({"@deleted": true})).unwrap();
    assert_eq!(m.changes.get(&id), Some(ChangeKind::Deleted));
}

#[test]
fn change_detection_local_and_remote() {
    let mut a = SpaceDoc::new(1);
    let mut b = SpaceDoc::new(2);
    let (x, y) = (oid(1), oid(2));
    let add_x = a.add(x, &json!({"v": 1})).unwrap();
    assert_eq!(
        add_x.changes.iter().collect::<Vec<_>>(),
        vec![(x, ChangeKind::Added)]
    );
    let add_y = a.add(y, &json!({"v": {"w": 1}})).unwrap();
    let upd_y = a.update(&y, &json!({"v": {"w": 2}})).unwrap();
    let txt_x = a.text_insert(&x, "t", 0, "hi").unwrap();
    let del_x = a.delete(&x).unwrap();
    for (m, kind) in [(&upd_y, ChangeKind::Updated), (&txt_x, ChangeKind::Updated)] {
        assert_eq!(m.changes.len(), 1);
        assert_eq!(m.changes.iter().next().unwrap().1, kind);
    }
    let expect = |c: Changes| c.iter().collect::<Vec<_>>();
    assert_eq!(
        expect(b.apply_update(&add_x.update).unwrap()),
        vec![(x, ChangeKind::Added)]
    );
    assert_eq!(expect(b.apply_update(&add_x.update).unwrap()), vec![]);
    // Out of order: the nested update waits for the add it depends on.
    assert_eq!(expect(b.apply_update(&upd_y.update).unwrap()), vec![]);
    assert_eq!(expect(b.apply_update(&upd_y.update).unwrap()), vec![]);
    assert_eq!(b.held_updates(), 1);
    assert_eq!(
        expect(b.apply_update(&add_y.update).unwrap()),
        vec![(y, ChangeKind::Added)]
    );
    assert_eq!(b.held_updates(), 0);
    assert_eq!(b.get(&y).unwrap()["v"], json!({"w": 2}));
    assert_eq!(
        expect(b.apply_update(&txt_x.update).unwrap()),
        vec![(x, ChangeKind::Updated)]
    );
    assert_eq!(
        expect(b.apply_update(&del_x.update).unwrap()),
        vec![(x, ChangeKind::Deleted)]
    );
    assert_eq!(expect(b.apply_update(&a.snapshot()).unwrap()), vec![]);
    assert_eq!(a.canonical_state(), b.canonical_state());
    // A fresh peer loading a snapshot sees everything as added.
    let mut c = SpaceDoc::new(3);
    let all = c.apply_update(&a.snapshot()).unwrap();
    assert_eq!(
        expect(all),
        vec![(x, ChangeKind::Added), (y, ChangeKind::Added)]
    );
}

#[test]
fn bad_updates() {
    let mut doc = doc_with(oid(1), json!({"a": 1}));
    let before = doc.canonical_state();
    let real = SpaceDoc::new(3)
        .add(oid(2), &json!({"b": 1}))
        .unwrap()
        .update;
    for bytes in [
        &[0xff_u8, 0xff, 0xff][..],
        &[1, 2, 3],
        &real[..real.len() / 2],
    ] {
        assert!(
            matches!(doc.apply_update(bytes), Err(DbError::BadUpdate(_))),
            "{bytes:?}"
        );
    }
    assert_eq!(doc.apply_update(&[]).unwrap(), Changes::default());
    assert_eq!(doc.canonical_state(), before);
}

#[test]
fn queries() {
    let mut doc = SpaceDoc::new(1);
    doc.add(
        oid(3),
        &json!({"@type": "P", "n": 1, "addr": {"city": "Oslo"}}),
    )
    .unwrap();
    doc.add(oid(1), &json!({"@type": "P", "n": 1.0, "tags": ["a"]}))
        .unwrap();
    doc.add(oid(2), &json!({"@type": "Q", "n": 2})).unwrap();
    doc.text_insert(&oid(2), "title", 0, "héllo").unwrap();
    let ids = |doc: &SpaceDoc, q: Query| -> Vec<Value> {
        doc.query(&q).iter().map(|o| o["@id"].clone()).collect()
    };
    let s = |n: u128| json!(oid(n).to_string());
    assert_eq!(ids(&doc, Query::all()), vec![s(1), s(2), s(3)]);
    assert_eq!(ids(&doc, Query::of_type("P")), vec![s(1), s(3)]);
    assert_eq!(
        ids(&doc, Query::all().with_eq("n", json!(1))),
        vec![s(1), s(3)]
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("n", json!(1.0))),
        vec![s(1), s(3)]
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("addr.city", json!("Oslo"))),
        vec![s(3)]
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("addr.town", Value::Null)),
        Vec::<Value>::new()
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("title", json!("héllo"))),
        vec![s(2)]
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("tags", json!(["a"]))),
        vec![s(1)]
    );
    assert_eq!(
        ids(&doc, Query::of_type("Q").with_eq("n", json!(1))),
        Vec::<Value>::new()
    );
    assert_eq!(
        ids(&doc, Query::all().with_eq("@type", json!("Q"))),
        vec![s(2)]
    );
    doc.delete(&oid(1)).unwrap();
    assert_eq!(ids(&doc, Query::of_type("P")), vec![s(3)]);
    assert_eq!(
        ids(&doc, Query::of_type("P").including_deleted()),
        vec![s(1), s(3)]
    );
    assert!(!Query::all().matches(&json!(5)));
    assert!(query::json_eq(
        &json!({"a": [1, 2.5]}),
        &json!({"a": [1.0, 2.5]})
    ));
    assert!(!query::json_eq(
        &json!(9007199254740993_i64),
        &json!(9007199254740992.0)
    ));
    assert!(!query::json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
}

#[test]
fn snapshot_reload() {
    let mut doc = doc_with(oid(1), json!({"a": [1, {"b": 2}], "@type": "T"}));
    doc.text_insert(&oid(1), "t", 0, "héllo 👋").unwrap();
    doc.add(oid(2), &json!({"r": {"@ref": oid(1).to_string()}}))
        .unwrap();
    doc.delete(&oid(2)).unwrap();
    let mut copy = SpaceDoc::new(4);
    copy.apply_update(&doc.snapshot()).unwrap();
    assert_eq!(copy.canonical_state(), doc.canonical_state());
    assert_eq!(copy.snapshot(), doc.snapshot());
    // The copy keeps editing the same text.
    copy.text_insert(&oid(1), "t", 6, "!").unwrap();
    assert_eq!(copy.text_get(&oid(1), "t").unwrap(), "héllo !👋");
}
