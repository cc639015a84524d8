//! Validation of an object written by a Yjs client, read from the yrs structure itself.
//!
//! Contract: [`check_object`] accepts an entry of `objects` exactly when it is what the
//! object model can hold and render:
//! * the key is a canonical object id (26-character ULID) and the value a Y.Map;
//! * reserved fields: `@type` a string (or null), `@meta` a map, `@deleted` a boolean; any
//!   other key starting with `@` is refused (so is `@id`: the key is the id);
//! * field names are not empty and contain no `.` (the rule of `validate.rs`);
//! * values are JSON scalars (finite numbers), Y.Text, nested Y.Map / Y.Array, or plain JSON
//!   objects and arrays (stored atomically); below the top level only the reference form
//!   `{"@ref": "<ULID>"}` may use `@`; `undefined`, binary data, XML types and
//!   sub-documents are refused;
//! * nesting at most [`MAX_DEPTH`] containers, the object counting as one.
//!
//! Size is bounded by the bridge's message limit and the block limit, not per object: a
//! collaborative text may grow past the 1 MiB a single write may carry.

use std::collections::BTreeMap;

use yrs::{Any, Array, Map, Out, ReadTxn};

use super::convert::{ref_target, render_any, REF_KEY};
use super::id::shorten;
use super::validate::check_key;
use super::{DbError, ObjectId, MAX_DEPTH};

/// Checks the entry `key` of `objects` (`None`: it is absent, which the caller refused).
pub(crate) fn check_object<T: ReadTxn>(
    txn: &T,
    key: &str,
    value: Option<Out>,
) -> Result<(), DbError> {
    if ObjectId::parse_canonical(key).is_none() {
        return Err(DbError::Invalid(format!(
            "`objects` key `{}` is not an object id (a canonical 26-character ULID)",
            shorten(key)
        )));
    }
    let Some(Out::YMap(map)) = value else {
        return Err(DbError::Invalid(format!(
            "object {key} must be a Y.Map (of @type, @meta, @deleted and its fields)"
        )));
    };
    let fields: BTreeMap<String, Out> = map.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
    for (name, field) in &fields {
        match name.as_str() {
            "@type" => match field {
                Out::Any(Any::String(_) | Any::Null) => {}
                _ => return Err(invalid(key, "`@type` must be a string")),
            },
            "@meta" => match field {
                Out::YMap(meta) => {
                    let meta: BTreeMap<String, Out> =
                        meta.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
                    for (k, v) in &meta {
                        check_field(txn, k, v, "@meta.", 2)?;
                    }
                }
                _ => return Err(invalid(key, "`@meta` must be a Y.Map")),
            },
            "@deleted" => match field {
                Out::Any(Any::Bool(_)) => {}
                _ => return Err(invalid(key, "`@deleted` must be true or false")),
            },
            _ if name.starts_with('@') => {
                return Err(invalid(
                    key,
                    &format!(
                        "unknown reserved field `{}`: only @type, @meta and @deleted may \
                         start with `@`",
                        shorten(name)
                    ),
                ))
            }
            _ => check_field(txn, name, field, "", 2)?,
        }
    }
    Ok(())
}

fn invalid(id: &str, why: &str) -> DbError {
    DbError::Invalid(format!("object {id}: {why}"))
}

fn too_deep() -> DbError {
    DbError::TooLarge(format!(
        "value nests more than {MAX_DEPTH} levels of objects/arrays; flatten it"
    ))
}

/// One named field (of an object, `@meta` or a nested map) at nesting `level`.
fn check_field<T: ReadTxn>(
    txn: &T,
    name: &str,
    value: &Out,
    prefix: &str,
    level: usize,
) -> Result<(), DbError> {
    check_key(name, prefix)?;
    if name.starts_with('@') {
        return Err(DbError::Invalid(format!(
            "nested field `{prefix}{}` is reserved: below the top level only a reference \
             {{\"@ref\": \"<object id>\"}} may use `@`",
            shorten(name)
        )));
    }
    check_out(txn, value, &format!("{prefix}{name}."), level)
}

fn check_out<T: ReadTxn>(txn: &T, value: &Out, path: &str, level: usize) -> Result<(), DbError> {
    let container = matches!(value, Out::YMap(_) | Out::YArray(_));
    if container && level > MAX_DEPTH {
        return Err(too_deep());
    }
    match value {
        Out::Any(any) => check_any(any, path, level),
        Out::YText(_) => Ok(()),
        Out::YMap(map) => {
            let fields: BTreeMap<String, Out> =
                map.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
            fields
                .iter()
                .try_for_each(|(k, v)| check_field(txn, k, v, path, level + 1))
        }
        Out::YArray(array) => array
            .iter(txn)
            .enumerate()
            .try_for_each(|(i, v)| check_out(txn, &v, &format!("{path}{i}."), level + 1)),
        _ => Err(unsupported(path, "an XML type or sub-document")),
    }
}

fn unsupported(path: &str, what: &str) -> DbError {
    DbError::Invalid(format!(
        "`{}` holds {what}, which the object model cannot store (JSON values, Y.Map, \
         Y.Array and Y.Text only)",
        path.trim_end_matches('.')
    ))
}

fn check_any(any: &Any, path: &str, level: usize) -> Result<(), DbError> {
    let container = matches!(any, Any::Map(_) | Any::Array(_));
    if container && level > MAX_DEPTH {
        return Err(too_deep());
    }
    match any {
        Any::Null | Any::Bool(_) | Any::String(_) => Ok(()),
        Any::Number(yrs::any::Number::Int(_)) => Ok(()),
        Any::Number(yrs::any::Number::Float(f)) if f.is_finite() => Ok(()),
        Any::Number(_) => Err(unsupported(path, "NaN or an infinite number")),
        Any::Undefined => Err(unsupported(path, "`undefined`")),
        Any::Buffer(_) => Err(unsupported(path, "binary data")),
        Any::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_any(v, &format!("{path}{i}."), level + 1)),
        Any::Map(map) => {
            if map.contains_key(REF_KEY) {
                return if ref_target(&render_any(any, 0)).is_some() {
                    Ok(())
                } else {
                    Err(DbError::Invalid(format!(
                        "bad reference at `{}`: a reference is exactly {{\"@ref\": \"<26-char \
                         ULID>\"}} with no other keys",
                        path.trim_end_matches('.')
                    )))
                };
            }
            let sorted: BTreeMap<&String, &Any> = map.iter().collect();
            for (k, v) in sorted {
                check_key(k, path)?;
                if k.starts_with('@') {
                    return Err(DbError::Invalid(format!(
                        "nested field `{path}{}` is reserved: below the top level only a \
                         reference {{\"@ref\": \"<object id>\"}} may use `@`",
                        shorten(k)
                    )));
                }
                check_any(v, &format!("{path}{k}."), level + 1)?;
            }
            Ok(())
        }
    }
}
