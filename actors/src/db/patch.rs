//! JSON merge patch (RFC 7386) applied to Y maps.
//!
//! Contract: [`merge_entry`] applies one patch member to `map[key]` inside a write
//! transaction, writing only what changes so that concurrent edits to other fields merge:
//! * `null` removes the key (no-op if absent);
//! * an object (other than a reference) recurses into an existing nested Y map, and otherwise
//!   replaces the value with the object minus its `null` members (RFC 7386 applies a patch to
//!   a non-object as if to `{}`);
//! * a string or `{"@text": s}` patched onto a Y.Text edits the text minimally instead of
//!   replacing it; `{"@text": s}` onto anything else creates a Y.Text;
//! * anything else (scalars, arrays, references) replaces the value whole, unless the value
//!   already renders equal, in which case nothing is written.
//!
//! The patch must have been validated (see `validate`) before the transaction opened.

use serde_json::Value;
use yrs::{Map, MapRef, Out, TransactionMut};

use super::convert::{canonical_json, insert_value, is_atomic_object, render_out, text_content};
use super::text;

/// Applies patch member `key: patch` to `map`.
pub(crate) fn merge_entry(txn: &mut TransactionMut, map: &MapRef, key: &str, patch: &Value) {
    let current = map.get(txn, key);
    match patch {
        Value::Null => {
            if current.is_some() {
                map.remove(txn, key);
            }
        }
        Value::Object(_) if text_content(patch).is_some() => {
            let new = text_content(patch).unwrap_or_default();
            match current {
                Some(Out::YText(text)) => text::replace_minimal(txn, &text, new),
                _ => insert_value(txn, map, key, patch),
            }
        }
        Value::Object(members) if !is_atomic_object(patch) => match current {
            Some(Out::YMap(child)) => {
                for (k, v) in members {
                    merge_entry(txn, &child, k, v);
                }
            }
            _ => insert_value(txn, map, key, &strip_nulls(patch)),
        },
        Value::String(new) => match current {
            Some(Out::YText(text)) => text::replace_minimal(txn, &text, new),
            other => replace_if_changed(txn, map, key, other, patch),
        },
        _ => replace_if_changed(txn, map, key, current, patch),
    }
}

/// Merges an object patch into `map` member by member.
pub(crate) fn merge_members(
    txn: &mut TransactionMut,
    map: &MapRef,
    members: &serde_json::Map<String, Value>,
) {
    for (key, value) in members {
        merge_entry(txn, map, key, value);
    }
}

fn replace_if_changed(
    txn: &mut TransactionMut,
    map: &MapRef,
    key: &str,
    current: Option<Out>,
    value: &Value,
) {
    let unchanged = match &current {
        // A Y.Text is never "equal" to a scalar: replacing it changes its kind.
        Some(Out::YText(_)) | None => false,
        Some(out) => render_out(txn, out, 0) == canonical_json(value),
    };
    if !unchanged {
        insert_value(txn, map, key, value);
    }
}

/// The value an object patch produces when applied to a non-object: its `null` members
/// removed, recursively through nested objects (arrays and references are values).
pub(crate) fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(members) if !is_atomic_object(value) => Value::Object(
            members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
