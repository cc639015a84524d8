//! Input validation for adds, patches and text edits.
//!
//! Contract: these functions are pure and run before any write transaction opens, so a
//! rejected input never leaves a partial write. They enforce:
//! * the top level is a JSON object;
//! * reserved top-level fields: `@type` (string; `null` removes it), `@meta` (object; `null`
//!   in a patch clears it), `@deleted` (bool, patches only), `@id` (patches only; the caller
//!   checks it equals the target id); any other `@` key is refused;
//! * below the top level, keys may not start with `@` except in the exact reference form
//!   `{"@ref": "<ULID>"}`;
//! * no key is empty or contains `.` (dotted query paths must be able to address every field);
//! * every number is stored exactly (see `numbers`);
//! * no collaborative text `{"@text": ...}` inside an array, at any depth: text routes address
//!   top-level fields only, and a patch replaces an array whole, so such a text could be
//!   neither edited nor merged; it is refused rather than stored as something else;
//! * nesting at most [`MAX_DEPTH`] containers (the top-level object counts as one) and a
//!   serialized size of at most [`MAX_VALUE_BYTES`] ([`DbError::TooLarge`] otherwise).

use std::io;

use serde_json::Value;

use super::convert::{ref_target, text_content, REF_KEY, TEXT_KEY};
use super::id::shorten;
use super::numbers::check_number;
use super::{DbError, MAX_DEPTH, MAX_VALUE_BYTES};

/// Which operation a top-level object is validated for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Add,
    Patch,
}

/// Validates a whole object given to `add` or a merge patch given to `update`.
pub(crate) fn validate_top(value: &Value, mode: Mode) -> Result<(), DbError> {
    let Value::Object(fields) = value else {
        return Err(DbError::Invalid(format!(
            "{} must be a JSON object, got {}",
            match mode {
                Mode::Add => "an object to add",
                Mode::Patch => "a merge patch",
            },
            kind(value)
        )));
    };
    check_size(value)?;
    for (key, field) in fields {
        match key.as_str() {
            "@id" => match (mode, field) {
                (Mode::Add, _) => {
                    return Err(DbError::Invalid(
                        "`@id` is assigned by the node; remove it from the object to add".into(),
                    ))
                }
                (Mode::Patch, Value::String(_)) => {}
                (Mode::Patch, other) => {
                    return Err(DbError::Invalid(format!(
                        "`@id` in a patch must be the object's id string, got {}",
                        kind(other)
                    )))
                }
            },
            "@type" => match field {
                Value::String(_) | Value::Null => {}
                other => {
                    return Err(DbError::Invalid(format!(
                        "`@type` must be a string (or null to remove it), got {}",
                        kind(other)
                    )))
                }
            },
            "@meta" => match (mode, field) {
                (_, Value::Object(meta)) => {
                    for (k, v) in meta {
                        check_field(k, v, "@meta.")?;
                    }
                }
                (Mode::Patch, Value::Null) => {}
                (_, other) => {
                    return Err(DbError::Invalid(format!(
                        "`@meta` must be an object, got {}",
                        kind(other)
                    )))
                }
            },
            "@deleted" => match (mode, field) {
                (Mode::Add, _) => {
                    return Err(DbError::Invalid(
                        "`@deleted` cannot be set when adding; add the object, then delete it"
                            .into(),
                    ))
                }
                (Mode::Patch, Value::Bool(_)) => {}
                (Mode::Patch, other) => {
                    return Err(DbError::Invalid(format!(
                        "`@deleted` must be true or false, got {}",
                        kind(other)
                    )))
                }
            },
            _ if key.starts_with('@') => {
                return Err(DbError::Invalid(format!(
                    "unknown reserved field `{}`: only @type, @meta, @deleted (patches) and \
                     @id (patches) may start with `@`",
                    shorten(key)
                )))
            }
            _ => check_field(key, field, "")?,
        }
    }
    Ok(())
}

/// Validates the name of a user field addressed directly (text operations).
pub(crate) fn validate_field_name(field: &str) -> Result<(), DbError> {
    check_key(field, "")?;
    if field.starts_with('@') {
        return Err(DbError::Invalid(format!(
            "field `{}` is reserved; text operations address user fields only",
            shorten(field)
        )));
    }
    Ok(())
}

/// Validates text to insert.
pub(crate) fn validate_text(text: &str) -> Result<(), DbError> {
    if text.len() > MAX_VALUE_BYTES {
        return Err(DbError::TooLarge(format!(
            "text insert of {} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes; split it",
            text.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_key(key: &str, prefix: &str) -> Result<(), DbError> {
    if key.is_empty() {
        return Err(DbError::Invalid(format!(
            "empty field name under `{prefix}`: every field needs a name"
        )));
    }
    if key.contains('.') {
        return Err(DbError::Invalid(format!(
            "field name `{prefix}{}` contains `.`, which query paths use as a separator; \
             rename it",
            shorten(key)
        )));
    }
    Ok(())
}

/// Validates one (non-reserved) field and everything below it.
fn check_field(key: &str, value: &Value, prefix: &str) -> Result<(), DbError> {
    check_field_in(key, value, prefix, false)
}

fn check_field_in(key: &str, value: &Value, prefix: &str, in_array: bool) -> Result<(), DbError> {
    check_key(key, prefix)?;
    if key.starts_with('@') {
        return Err(DbError::Invalid(format!(
            "nested field `{prefix}{}` is reserved: below the top level only a reference \
             {{\"@ref\": \"<object id>\"}} or a text {{\"@text\": \"...\"}} may use `@`",
            shorten(key)
        )));
    }
    check_nested(value, &format!("{prefix}{key}."), in_array)
}

/// `in_array`: whether `value` is (inside) an item of an array.
fn check_nested(value: &Value, prefix: &str, in_array: bool) -> Result<(), DbError> {
    match value {
        Value::Object(fields) => {
            if fields.contains_key(TEXT_KEY) && in_array {
                return Err(DbError::Invalid(format!(
                    "collaborative text at `{}` is inside an array, which is not supported: \
                     text routes edit top-level fields only and patches replace arrays whole; \
                     use a plain string, or make it a field of the object",
                    shorten(prefix.trim_end_matches('.'))
                )));
            }
            if fields.contains_key(TEXT_KEY) {
                return if text_content(value).is_some() {
                    Ok(())
                } else {
                    Err(DbError::Invalid(format!(
                        "bad text at `{}`: a collaborative text is exactly {{\"@text\": \"<content>\"}} \
                         with no other keys",
                        prefix.trim_end_matches('.')
                    )))
                };
            }
            if fields.contains_key(REF_KEY) {
                return if ref_target(value).is_some() {
                    Ok(())
                } else {
                    Err(DbError::Invalid(format!(
                        "bad reference at `{}`: a reference is exactly {{\"@ref\": \"<26-char \
                         ULID>\"}} with no other keys",
                        prefix.trim_end_matches('.')
                    )))
                };
            }
            fields
                .iter()
                .try_for_each(|(k, v)| check_field_in(k, v, prefix, in_array))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_nested(v, &format!("{prefix}{i}."), true)),
        Value::Number(n) => check_number(n, prefix.trim_end_matches('.')),
        _ => Ok(()),
    }
}

/// Depth first (so the size check cannot recurse without bound), then serialized size.
fn check_size(value: &Value) -> Result<(), DbError> {
    if too_deep(value, 1) {
        return Err(DbError::TooLarge(format!(
            "value nests more than {MAX_DEPTH} levels of objects/arrays; flatten it"
        )));
    }
    let mut counter = ByteCounter(0);
    if serde_json::to_writer(&mut counter, value).is_err() {
        return Err(DbError::TooLarge(format!(
            "value serializes to more than {MAX_VALUE_BYTES} bytes of JSON; store large \
             content in several objects or as text edits"
        )));
    }
    Ok(())
}

fn too_deep(value: &Value, level: usize) -> bool {
    match value {
        _ if level > MAX_DEPTH => matches!(value, Value::Object(_) | Value::Array(_)),
        Value::Object(fields) => fields.values().any(|v| too_deep(v, level + 1)),
        Value::Array(items) => items.iter().any(|v| too_deep(v, level + 1)),
        _ => false,
    }
}

/// An `io::Write` that only counts, failing once the limit is passed.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_VALUE_BYTES {
            Err(io::Error::other("size limit exceeded"))
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A short name for a JSON value's kind, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
