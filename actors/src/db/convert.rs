//! Mapping between JSON values and yrs values.
//!
//! Contract:
//! * Writing ([`insert_value`], [`push_value`]): objects become nested Y maps and arrays Y
//!   arrays, filled one entry at a time in sorted key / index order, so the bytes of an update
//!   never depend on hash-map iteration order (yrs' `MapPrelim` is a `HashMap` and is only
//!   ever inserted empty). References `{"@ref": id}` are stored atomically as a one-key
//!   `Any::Map` holding the canonical id; `{"@text": s}` becomes a Y.Text holding `s`. Scalars become `Any`: integers that fit `i64` as
//!   `Number::Int`, other numbers as `Number::Float`.
//! * Rendering ([`render_out`], [`render_map`], [`render_object`]): every map is collected
//!   through a `BTreeMap`, so output order is independent of yrs' hash maps. Numbers render
//!   exactly as [`canonical_json`] predicts for the written value: yrs encodes large integers
//!   as floats on the wire, so an integral float beyond ±(2^31-1) within the `i64` range
//!   renders as an integer on every peer (2^63 as `i64::MAX`). Integral floats below that
//!   magnitude (`2.0`) stay floats; integers beyond `i64` (large `u64`) are stored as floats. Y.Text renders as a string; anything the data model never
//!   writes (XML, sub-documents, buffers, NaN) renders as `null`. Nesting below
//!   [`RENDER_DEPTH`] renders as `null`, bounding recursion on hostile remote data.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, GetString, In, Map, MapPrelim, MapRef, ReadTxn,
    TransactionMut,
};

use super::{ObjectId, MAX_DEPTH};

/// Deepest nesting rendered; below this, values render as `null`.
pub(crate) const RENDER_DEPTH: usize = 2 * MAX_DEPTH;

/// The key of a weak reference.
pub(crate) const REF_KEY: &str = "@ref";

/// The key of a collaborative text value given in JSON: `{"@text": "initial content"}`.
pub(crate) const TEXT_KEY: &str = "@text";

/// If `value` is exactly `{"@text": "<string>"}`, the initial content of a Y.Text.
pub(crate) fn text_content(value: &Value) -> Option<&str> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.len() != 1 {
        return None;
    }
    map.get(TEXT_KEY)?.as_str()
}

/// True for JSON objects that are values rather than nested maps (references and texts).
pub(crate) fn is_atomic_object(value: &Value) -> bool {
    ref_target(value).is_some() || text_content(value).is_some()
}

/// If `value` is exactly `{"@ref": "<valid ULID>"}`, the referenced id.
pub(crate) fn ref_target(value: &Value) -> Option<ObjectId> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.len() != 1 {
        return None;
    }
    map.get(REF_KEY)?.as_str()?.parse().ok()
}

fn ref_any(id: ObjectId) -> Any {
    // yrs' Any::Map is a HashMap; with exactly one entry its iteration order cannot vary.
    let mut map = std::collections::HashMap::with_capacity(1);
    map.insert(REF_KEY.to_owned(), Any::String(Arc::from(id.to_string())));
    Any::Map(Arc::new(map))
}

fn number_any(n: &serde_json::Number) -> Any {
    match n.as_i64() {
        Some(i) => Any::Number(yrs::any::Number::Int(i)),
        None => Any::Number(yrs::any::Number::Float(n.as_f64().unwrap_or_default())),
    }
}

/// The `Any` stored for a scalar or a reference; containers map to `Null` (never used so).
fn scalar_any(value: &Value) -> Any {
    match value {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Number(n) => number_any(n),
        Value::String(s) => Any::String(Arc::from(s.as_str())),
        Value::Object(_) => ref_target(value).map_or(Any::Null, ref_any),
        Value::Array(_) => Any::Null,
    }
}

/// Sets `map[key]` to `value`, creating nested Y types for objects and arrays.
pub(crate) fn insert_value(txn: &mut TransactionMut, map: &MapRef, key: &str, value: &Value) {
    if let Some(text) = text_content(value) {
        map.insert(txn, key, yrs::TextPrelim::new(text));
        return;
    }
    match value {
        Value::Object(fields) if ref_target(value).is_none() => {
            let child = map.insert(txn, key, MapPrelim::default());
            fill_map(txn, &child, fields);
        }
        Value::Array(items) => {
            let child = map.insert(txn, key, ArrayPrelim::default());
            fill_array(txn, &child, items);
        }
        _ => {
            map.insert(txn, key, In::Any(scalar_any(value)));
        }
    }
}

/// Inserts every field of `fields` into `map` (serde_json maps iterate sorted).
pub(crate) fn fill_map(
    txn: &mut TransactionMut,
    map: &MapRef,
    fields: &serde_json::Map<String, Value>,
) {
    for (key, value) in fields {
        insert_value(txn, map, key, value);
    }
}

fn fill_array(txn: &mut TransactionMut, array: &ArrayRef, items: &[Value]) {
    for item in items {
        push_value(txn, array, item);
    }
}

/// Appends `value` to `array`, creating nested Y types for objects and arrays.
pub(crate) fn push_value(txn: &mut TransactionMut, array: &ArrayRef, value: &Value) {
    if let Some(text) = text_content(value) {
        array.push_back(txn, yrs::TextPrelim::new(text));
        return;
    }
    match value {
        Value::Object(fields) if ref_target(value).is_none() => {
            let child = array.push_back(txn, MapPrelim::default());
            fill_map(txn, &child, fields);
        }
        Value::Array(items) => {
            let child = array.push_back(txn, ArrayPrelim::default());
            fill_array(txn, &child, items);
        }
        _ => {
            array.push_back(txn, In::Any(scalar_any(value)));
        }
    }
}

/// What `value` renders as after being written: numbers normalised as stored, references
/// with their canonical id.
pub(crate) fn canonical_json(value: &Value) -> Value {
    if let Some(text) = text_content(value) {
        return Value::String(text.to_owned());
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(canonical_json).collect()),
        Value::Object(fields) if ref_target(value).is_none() => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), canonical_json(v)))
                .collect(),
        ),
        other => render_any(&scalar_any(other), 0),
    }
}

fn render_number(n: yrs::any::Number) -> Value {
    // Limits of yrs' 31-bit varint encoding and of i64 (2^63 as f64).
    const VARINT_MAX: f64 = 2147483647.0;
    const I64_BOUND: f64 = 9_223_372_036_854_775_808_u64 as f64;
    match n {
        yrs::any::Number::Int(i) => Value::from(i),
        yrs::any::Number::Float(f) => {
            // `i64::MAX` itself travels as the float 2^63, hence the inclusive bound and
            // the saturating cast.
            if f.fract() == 0.0 && f.abs() > VARINT_MAX && (-I64_BOUND..=I64_BOUND).contains(&f) {
                Value::from(f as i64)
            } else {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        }
    }
}

/// Renders a scalar (or a nested `Any` container) as JSON.
pub(crate) fn render_any(any: &Any, depth: usize) -> Value {
    if depth > RENDER_DEPTH {
        return Value::Null;
    }
    match any {
        Any::Null | Any::Undefined | Any::Buffer(_) => Value::Null,
        Any::Bool(b) => Value::Bool(*b),
        Any::Number(n) => render_number(*n),
        Any::String(s) => Value::String(s.to_string()),
        Any::Array(items) => Value::Array(items.iter().map(|a| render_any(a, depth + 1)).collect()),
        Any::Map(map) => {
            let sorted: BTreeMap<&String, Value> = map
                .iter()
                .map(|(k, v)| (k, render_any(v, depth + 1)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
    }
}

/// Renders any value read from the document.
pub(crate) fn render_out<T: ReadTxn>(txn: &T, out: &yrs::Out, depth: usize) -> Value {
    if depth > RENDER_DEPTH {
        return Value::Null;
    }
    match out {
        yrs::Out::Any(any) => render_any(any, depth),
        yrs::Out::YText(text) => Value::String(text.get_string(txn)),
        yrs::Out::YArray(array) => Value::Array(
            array
                .iter(txn)
                .map(|item| render_out(txn, &item, depth + 1))
                .collect(),
        ),
        yrs::Out::YMap(map) => render_map(txn, map, depth + 1),
        _ => Value::Null,
    }
}

/// Renders a Y map as a JSON object with sorted keys.
pub(crate) fn render_map<T: ReadTxn>(txn: &T, map: &MapRef, depth: usize) -> Value {
    if depth > RENDER_DEPTH {
        return Value::Null;
    }
    let sorted: BTreeMap<String, Value> = map
        .iter(txn)
        .map(|(k, v)| (k.to_owned(), render_out(txn, &v, depth)))
        .collect();
    Value::Object(sorted.into_iter().collect())
}

/// Renders a top-level object: `@id`, `@type` (string or null), `@meta` (object),
/// `@deleted` (bool) and every user field. Unknown `@` keys written by a foreign peer are
/// not rendered.
pub(crate) fn render_object<T: ReadTxn>(txn: &T, id: &ObjectId, map: &MapRef) -> Value {
    let mut out = BTreeMap::new();
    out.insert("@id".to_owned(), Value::String(id.to_string()));
    let type_name = match map.get(txn, "@type") {
        Some(yrs::Out::Any(Any::String(s))) => Value::String(s.to_string()),
        _ => Value::Null,
    };
    out.insert("@type".to_owned(), type_name);
    let meta = match map.get(txn, "@meta") {
        Some(meta @ (yrs::Out::YMap(_) | yrs::Out::Any(Any::Map(_)))) => render_out(txn, &meta, 1),
        _ => Value::Object(serde_json::Map::new()),
    };
    out.insert("@meta".to_owned(), meta);
    out.insert("@deleted".to_owned(), Value::Bool(is_deleted(txn, map)));
    for (key, value) in map.iter(txn) {
        if !key.starts_with('@') {
            out.insert(key.to_owned(), render_out(txn, &value, 1));
        }
    }
    Value::Object(out.into_iter().collect())
}

/// Whether an object map carries `@deleted: true`.
pub(crate) fn is_deleted<T: ReadTxn>(txn: &T, map: &MapRef) -> bool {
    matches!(
        map.get(txn, "@deleted"),
        Some(yrs::Out::Any(Any::Bool(true)))
    )
}
