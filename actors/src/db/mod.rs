//! The object database of a space: a sans-IO object model over one `yrs::Doc`.
//!
//! Contract:
//! * Data model: root map `objects` maps each object id (canonical ULID string) to a Y map
//!   with `@type` (string, or absent), `@meta` (nested Y map, present, empty by default),
//!   `@deleted` (bool) and the user's fields. Nested objects and arrays are nested Y maps and
//!   Y arrays, so concurrent edits to different nested fields merge; references
//!   `{"@ref": "<ULID>"}` are atomic values and may dangle; text fields are Y.Text.
//! * Rendering: objects read back (`get`, `query`, `canonical_state`) as JSON objects with
//!   `@id`, `@type` (string or null), `@meta`, `@deleted` and the fields, every map in sorted
//!   key order, text as strings. Never derived from hash-map iteration order.
//! * Writes: `add`, `update` (RFC 7386 merge patch), `delete` (soft), `text_insert`,
//!   `text_delete`. Each validates its input completely before writing, runs as one yrs
//!   transaction, and returns a [`Mutation`]: that transaction's v1 update plus the
//!   [`Changes`] it made (both empty when nothing changed).
//! * Remote data: `apply_update` integrates a v1 update and reports the objects it changed;
//!   malformed bytes are a [`DbError::BadUpdate`], never a panic.
//! * Determinism: the yrs client id comes from the caller; no clock, no OS randomness, no
//!   threads. Text indices count chars (Unicode scalar values).

mod changes;
mod convert;
mod doc;
mod error;
mod id;
mod numbers;
mod patch;
mod query;
mod retracted;
mod text;
mod updates;
mod validate;
mod yjs;
mod yjs_validate;

#[cfg(test)]
mod tests_numbers;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_text;
#[cfg(test)]
mod tests_unit;
#[cfg(test)]
mod tests_yjs;

pub use changes::{ChangeKind, Changes, Mutation};
pub(crate) use convert::canonical_json;
pub use doc::SpaceDoc;
pub use error::DbError;
pub use id::ObjectId;
pub use numbers::{check_json_numbers, check_numbers};
pub use query::Query;
pub use retracted::Retracted;
pub use yjs::UpdateSink;

/// Deepest nesting of objects/arrays accepted in an add or patch (the top level counts 1).
pub const MAX_DEPTH: usize = 32;
/// Largest serialized JSON size (bytes) of an add, a patch or a text insert.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
