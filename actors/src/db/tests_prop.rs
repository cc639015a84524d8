//! Property tests of the object model: convergence of three replicas exchanging updates in
//! random orders with duplicates (and the accuracy of reported changes along the way),
//! snapshot determinism under reordering, robustness of `apply_update` against arbitrary and
//! corrupted bytes, and merge patches against a plain-JSON RFC 7386 reference.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map as JsonMap, Value};

use super::tests_unit::{oid, user_fields};
use super::*;

const DOCS: usize = 3;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        (-8i32..8).prop_map(|q| Value::from(f64::from(q) / 4.0)),
        prop::sample::select(vec!["", "a", "héllo", "👋x", "名"]).prop_map(Value::from),
        Just(Value::from(1_i64 << 40)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned)
}

/// Random JSON (objects with keys a..d, arrays, scalars); `refs` adds references.
fn value(refs: bool) -> impl Strategy<Value = Value> {
    let leaf = if refs {
        prop_oneof![4 => leaf(), 1 => (0u8..4).prop_map(|n| serde_json::json!({"@ref": oid(n.into()).to_string()}))].boxed()
    } else {
        leaf().boxed()
    };
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object(refs: bool) -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), value(refs), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<JsonMap<_, _>>()))
}

#[derive(Clone, Debug)]
enum Op {
    Add(usize, u8, Value),
    Patch(usize, u8, Value),
    Delete(usize, u8),
    Restore(usize, u8),
    TextInsert(usize, u8, &'static str, u32, String),
    TextDelete(usize, u8, &'static str, u32, u32),
    /// Doc receives these entries of the update log (indices taken modulo its length).
    Sync(usize, Vec<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    let doc = 0..DOCS;
    let id = 0u8..4;
    let field = prop::sample::select(vec!["t", "u", "a"]);
    prop_oneof![
        2 => (doc.clone(), id.clone(), object(true)).prop_map(|(d, i, o)| Op::Add(d, i, o)),
        3 => (doc.clone(), id.clone(), object(true)).prop_map(|(d, i, p)| Op::Patch(d, i, p)),
        1 => (doc.clone(), id.clone()).prop_map(|(d, i)| Op::Delete(d, i)),
        1 => (doc.clone(), id.clone()).prop_map(|(d, i)| Op::Restore(d, i)),
        3 => (doc.clone(), id.clone(), field.clone(), 0u32..8, "[aé👋 ]{0,3}")
            .prop_map(|(d, i, f, x, t)| Op::TextInsert(d, i, f, x, t)),
        2 => (doc.clone(), id, field, 0u32..8, 0u32..4)
            .prop_map(|(d, i, f, x, n)| Op::TextDelete(d, i, f, x, n)),
        3 => (doc, prop::collection::vec(any::<usize>(), 0..6)).prop_map(|(d, p)| Op::Sync(d, p)),
    ]
}

/// Deterministic Fisher-Yates shuffle driven by xorshift.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut items = items.to_vec();
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

/// Checks that `changes` covers every object whose rendering changed and classifies
/// additions and deletions correctly.
fn check_changes(before: &Value, after: &Value, changes: &Changes) {
    let deleted = |state: &Value, id: &str| state.get(id).map(|o| o["@deleted"] == true);
    let ids: BTreeSet<&String> = before
        .as_object()
        .unwrap()
        .keys()
        .chain(after.as_object().unwrap().keys())
        .collect();
    for id in ids {
        let kind = changes.get(&id.parse().unwrap());
        if before.get(id) != after.get(id) {
            assert!(kind.is_some(), "change of {id} not reported");
        }
        let (was, now) = (deleted(before, id), deleted(after, id));
        match kind {
            Some(ChangeKind::Added) => assert_eq!(was, None, "{id}"),
            Some(ChangeKind::Deleted) => assert_eq!((was, now), (Some(false), Some(true)), "{id}"),
            Some(ChangeKind::Updated) => assert!(was.is_some() && now.is_some(), "{id}"),
            None => {}
        }
        if was.is_none() && now.is_some() {
            assert_eq!(kind, Some(ChangeKind::Added), "{id}");
        }
        if was == Some(false) && now == Some(true) {
            assert_eq!(kind, Some(ChangeKind::Deleted), "{id}");
        }
    }
}

fn apply_checked(doc: &mut SpaceDoc, update: &[u8]) {
    let before = doc.canonical_state();
    let changes = doc.apply_update(update).unwrap();
    check_changes(&before, &doc.canonical_state(), &changes);
}

/// Runs `ops` on `DOCS` replicas that share three objects (ids 0..3; id 3 starts absent);
/// returns them and the log of every published update.
fn run(ops: &[Op]) -> (Vec<SpaceDoc>, Vec<Vec<u8>>) {
    let mut docs: Vec<SpaceDoc> = (0..DOCS as u64)
        .map(|i| SpaceDoc::new(11 + i * 1000))
        .collect();
    let mut log: Vec<Vec<u8>> = Vec::new();
    // A shared starting point, so that most operations find their object everywhere.
    for n in 0..3 {
        let base = serde_json::json!({"a": {"b": n}, "t": "héllo 👋"});
        log.push(docs[0].add(oid(n), &base).unwrap().update);
    }
    for doc in &mut docs[1..] {
        for update in &log {
            apply_checked(doc, update);
        }
    }
    for op in ops {
        if let Op::Sync(d, picks) = op {
            for pick in picks.iter().filter(|_| !log.is_empty()) {
                let update = log[pick % log.len()].clone();
                apply_checked(&mut docs[*d], &update);
            }
            continue;
        }
        let (d, id) = match op {
            Op::Add(d, i, _) | Op::Patch(d, i, _) | Op::Delete(d, i) | Op::Restore(d, i) => {
                (*d, *i)
            }
            Op::TextInsert(d, i, ..) | Op::TextDelete(d, i, ..) => (*d, *i),
            Op::Sync(..) => unreachable!(),
        };
        let doc = &mut docs[d];
        let id = oid(id.into());
        let before = doc.canonical_state();
        let result = match op {
            Op::Add(_, _, o) => doc.add(id, o),
            Op::Patch(_, _, p) => doc.update(&id, p),
            Op::Delete(..) => doc.delete(&id),
            Op::Restore(..) => doc.update(&id, &serde_json::json!({"@deleted": false})),
            Op::TextInsert(_, _, f, x, t) => doc.text_insert(&id, f, *x, t),
            Op::TextDelete(_, _, f, x, n) => doc.text_delete(&id, f, *x, *n),
            Op::Sync(..) => unreachable!(),
        };
        let after = doc.canonical_state();
        match result {
            Ok(m) => {
                check_changes(&before, &after, &m.changes);
                assert_eq!(m.changes.is_empty(), m.update.is_empty());
                assert!(m.changes.iter().all(|(c, _)| c == id));
                if !m.update.is_empty() {
                    log.push(m.update);
                }
            }
            Err(_) => assert_eq!(before, after, "a failed operation wrote: {op:?}"),
        }
    }
    (docs, log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(ops in prop::collection::vec(op(), 1..40), seeds in any::<[u64; DOCS]>()) {
        let (mut docs, log) = run(&ops);
        for (doc, seed) in docs.iter_mut().zip(seeds) {
            let mut order = shuffled(&log, seed);
            order.extend(shuffled(&log, seed.rotate_left(17)).into_iter().take(3));
            for update in order {
                apply_checked(doc, &update);
            }
        }
        let state = docs[0].canonical_state();
        for doc in &docs[1..] {
            prop_assert_eq!(&doc.canonical_state(), &state);
        }
        let mut copy = SpaceDoc::new(5);
        copy.apply_update(&docs[1].snapshot()).unwrap();
        prop_assert_eq!(copy.canonical_state(), state);
    }

    #[test]
    fn snapshots_are_order_independent(ops in prop::collection::vec(op(), 1..30), s1: u64, s2: u64) {
        let (_, log) = run(&ops);
        let mut a = SpaceDoc::new(100);
        let mut b = SpaceDoc::new(200);
        for update in shuffled(&log, s1) {
            a.apply_update(&update).unwrap();
        }
        for update in shuffled(&log, s2) {
            b.apply_update(&update).unwrap();
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
        prop_assert_eq!(a.canonical_state(), b.canonical_state());
        let mut c = SpaceDoc::new(300);
        c.apply_update(&a.snapshot()).unwrap();
        prop_assert_eq!(c.canonical_state(), a.canonical_state());
        prop_assert_eq!(c.snapshot(), a.snapshot());
    }

    #[test]
    fn merge_patch_matches_reference(
        original in object(false),
        patch in object(false),
        as_text in any::<bool>(),
    ) {
        let id = oid(1);
        let mut doc = SpaceDoc::new(1);
        let mut published = vec![doc.add(id, &original).unwrap().update];
        if as_text {
            for (k, v) in original.as_object().unwrap() {
                if v.is_string() {
                    published.push(doc.text_insert(&id, k, 0, "").unwrap().update);
                }
            }
        }
        published.push(doc.update(&id, &patch).unwrap().update);
        let got = user_fields(&doc.get(&id).unwrap());
        prop_assert_eq!(&got, &reference_merge(&original, &patch));
        let mut remote = SpaceDoc::new(2);
        for update in &published {
            remote.apply_update(update).unwrap();
        }
        prop_assert_eq!(remote.get(&id), doc.get(&id));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn apply_update_never_panics(
        garbage in prop::collection::vec(any::<u8>(), 0..48),
        ops in prop::collection::vec(op(), 1..8),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
        pick: usize,
    ) {
        let (docs, log) = run(&ops);
        let mut target = SpaceDoc::new(77);
        target.add(oid(1), &serde_json::json!({"x": {"y": [1]}})).unwrap();
        let _ = target.apply_update(&garbage);
        let mut corrupted = match (pick % (log.len() + 1), log.is_empty()) {
            (_, true) => docs[0].snapshot(),
            (i, false) if i == log.len() => docs[0].snapshot(),
            (i, false) => log[i].clone(),
        };
        for (at, byte, how) in edits {
            if corrupted.is_empty() {
                break;
            }
            let at = at % corrupted.len();
            match how {
                0 => corrupted[at] = byte,
                1 => corrupted.truncate(at),
                _ => corrupted.insert(at, byte),
            }
        }
        for update in log.iter().chain(std::iter::once(&corrupted)) {
            let _ = target.apply_update(update);
        }
        let _ = target.canonical_state();
        let _ = target.update(&oid(1), &serde_json::json!({"x": {"z": 2}}));
        let _ = target.text_insert(&oid(1), "t", 0, "ok");
    }
}

/// RFC 7386 on plain JSON.
fn reference_merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(members) = patch else {
        return patch.clone();
    };
    let mut out = target.as_object().cloned().unwrap_or_default();
    for (k, v) in members {
        if v.is_null() {
            out.remove(k);
        } else {
            let current = out.get(k).cloned().unwrap_or(Value::Null);
            out.insert(k.clone(), reference_merge(&current, v));
        }
    }
    Value::Object(out)
}
