//! Tests of the value rules of issue 10: numbers are stored exactly or refused (every entry
//! path: add, patch, `@meta`, query values, raw JSON text), collaborative text inside arrays
//! is refused, and the text read refuses reserved fields like the text edits do.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests_unit::{doc_with, invalid, oid};
use super::*;

/// Parses `text` the way a front end does: serde_json, then the token check.
fn parse_checked(text: &str) -> Result<Value, DbError> {
    let value: Value = serde_json::from_str(text).unwrap();
    check_json_numbers(text.as_bytes())?;
    Ok(value)
}

fn invalid_msg(r: Result<Value, DbError>) -> String {
    match r {
        Err(DbError::Invalid(msg)) => msg,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Adds `{"n": value}`, then reads `n` back locally, on a replica, and by query.
fn round_trip(value: Value) -> (Value, Value, usize) {
    let id = oid(1);
    let doc = doc_with(id, json!({ "n": value.clone() }));
    let local = doc.get(&id).unwrap()["n"].clone();
    let mut replica = SpaceDoc::new(8);
    replica.apply_update(&doc.snapshot()).unwrap();
    let remote = replica.get(&id).unwrap()["n"].clone();
    let found = replica.query(&Query::all().with_eq("n", value)).len();
    (local, remote, found)
}

#[test]
fn numbers_from_the_issue_are_refused_with_path_and_range() {
    for (text, reads_back) in [
        ("18446744073709551615", "1.8446744073709552e+19"),
        ("-9223372036854775809", "-9223372036854775808"),
        (&format!("1{}", "0".repeat(99)), "1e+99"),
        ("1e-400", "0.0"),
        ("0.10000000000000000001", "0.1"),
    ] {
        let msg = invalid_msg(parse_checked(&format!(r#"{{"a": {{"b": [0, {text}]}}}}"#)));
        assert!(msg.contains("at `a.b.1`"), "{msg}");
        assert!(
            msg.contains(&format!("read back as {reads_back})")),
            "{msg}"
        );
        assert!(
            msg.contains("-9223372036854775808 and 9223372036854775807"),
            "{msg}"
        );
    }
}

#[test]
fn i64_limits_round_trip_exactly() {
    for n in [i64::MAX, i64::MIN, i64::MAX - 1, (1 << 53) + 1, -(1 << 31)] {
        assert!(parse_checked(&n.to_string()).is_ok());
        let (local, remote, found) = round_trip(Value::from(n));
        assert_eq!(
            (local.as_i64(), remote.as_i64(), found),
            (Some(n), Some(n), 1)
        );
    }
}

#[test]
fn integers_beyond_i64_are_refused_by_add_patch_meta_and_query() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"n": 1}));
    let big = Value::from(u64::MAX);
    assert!(invalid(doc.add(oid(2), &json!({ "x": big }))).contains("at `x`"));
    assert!(invalid(doc.update(&id, &json!({ "n": { "deep": [big] } }))).contains("n.deep.0"));
    assert!(invalid(doc.update(&id, &json!({ "@meta": { "v": big } }))).contains("@meta.v"));
    assert!(matches!(check_numbers(&big, "n"), Err(DbError::Invalid(_))));
    // The double 2^63 would read back as i64::MAX (2^63 - 1).
    let two_63 = json!(9_223_372_036_854_775_808.0_f64);
    assert!(invalid(doc.update(&id, &json!({ "n": two_63 }))).contains("9223372036854775807"));
    assert_eq!(doc.get(&id).unwrap()["n"], json!(1));
}

#[test]
fn decimals_that_read_back_as_written_are_accepted() {
    for text in [
        "0.1",
        "1.5e300",
        "-2.5",
        "1.8446744073709552e19",
        "1e15",
        "2.0",
        "-0.0",
    ] {
        let value = parse_checked(text).unwrap();
        let (local, remote, found) = round_trip(value.clone());
        assert_eq!(local, remote);
        assert_eq!(found, 1, "{text}");
        assert!(
            super::numbers::same_decimal(&local.to_string(), text),
            "{text} -> {local}"
        );
    }
}

#[test]
fn whole_doubles_that_would_read_back_as_another_integer_are_refused() {
    // 4.611686018427388e18 parses to 2^62, which renders as the integer 4611686018427387904.
    let msg = invalid_msg(parse_checked("4.611686018427388e18"));
    assert!(msg.contains("4611686018427387904"), "{msg}");
    assert!(parse_checked("4611686018427387904.0").is_ok());
}

#[test]
fn text_inside_an_array_is_refused() {
    let mut doc = SpaceDoc::new(1);
    let msg = invalid(doc.add(oid(1), &json!({"list": [{"@text": "x"}]})));
    assert!(
        msg.contains("`list.0`") && msg.contains("inside an array"),
        "{msg}"
    );
    let msg = invalid(doc.add(oid(1), &json!({"list": [[{"note": {"@text": "x"}}]]})));
    assert!(msg.contains("`list.0.0.note`"), "{msg}");
    let id = oid(2);
    let mut doc = doc_with(id, json!({"m": {"t": {"@text": "nested maps are fine"}}}));
    assert!(invalid(doc.update(&id, &json!({"l": [{"@text": "x"}]}))).contains("array"));
}

#[test]
fn text_read_refuses_reserved_fields_like_text_insert() {
    let id = oid(1);
    let mut doc = doc_with(id, json!({"@type": "Task", "title": "x"}));
    for field in ["@type", "@id", "@meta", "@deleted"] {
        let read = doc.text_get(&id, field);
        assert!(
            matches!(&read, Err(DbError::Invalid(m)) if m.contains("reserved")),
            "{field}: {read:?}"
        );
        assert!(invalid(doc.text_insert(&id, field, 0, "x")).contains("reserved"));
    }
    assert_eq!(doc.text_get(&id, "title").unwrap(), "x");
}

proptest! {
    #[test]
    fn every_i64_round_trips_exactly_through_add_replica_and_query(n in any::<i64>()) {
        prop_assert!(parse_checked(&n.to_string()).is_ok());
        let (local, remote, found) = round_trip(Value::from(n));
        prop_assert_eq!(local.as_i64(), Some(n));
        prop_assert_eq!(remote.as_i64(), Some(n));
        prop_assert_eq!(found, 1);
    }

    #[test]
    fn every_integer_beyond_i64_is_refused(n in (i64::MAX as u64 + 1)..=u64::MAX, neg in any::<bool>()) {
        let text = if neg { format!("-{n}") } else { n.to_string() };
        prop_assert!(matches!(parse_checked(&text), Err(DbError::Invalid(_))));
        if !neg {
            let mut doc = SpaceDoc::new(1);
            let refused = matches!(doc.add(oid(1), &json!({ "n": n })), Err(DbError::Invalid(_)));
            prop_assert!(refused);
        }
    }

    /// Any double written in its shortest form is either refused or reads back (locally and
    /// on a replica) as the same double, and then a query for it finds it.
    #[test]
    fn accepted_doubles_read_back_as_written(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let text = Value::from(f).to_string();
        if let Ok(value) = parse_checked(&text) {
            let (local, remote, found) = round_trip(value);
            prop_assert_eq!(local.as_f64(), Some(f));
            prop_assert_eq!(&local, &remote);
            prop_assert_eq!(found, 1);
        } else {
            // Only whole numbers that render as integers may be refused.
            prop_assert!(f.fract() == 0.0 && f.abs() > 9_007_199_254_740_992.0);
        }
    }

    /// Long decimal strings: accepted only when they read back as the same decimal.
    #[test]
    fn long_decimals_are_exact_or_refused(int in "[1-9][0-9]{0,24}", frac in "[0-9]{1,24}", exp in -40i32..40) {
        let text = format!("{int}.{frac}e{exp}");
        if let Ok(value) = parse_checked(&text) {
            let (local, _, _) = round_trip(value);
            prop_assert!(super::numbers::same_decimal(&local.to_string(), &text), "{} -> {}", text, local);
            let digits = format!("{int}{frac}");
            prop_assert!(digits.trim_end_matches('0').len() <= 17, "{} accepted", text);
        }
    }
}
