//! [`SpaceDoc`]: the objects of one space on one `yrs::Doc`.
//!
//! Contract:
//! * Sans-IO and deterministic: the yrs client id and document guid come from the caller's
//!   `client_id` (drawn from its seeded RNG); nothing here reads clocks or OS randomness.
//! * Every local write is one yrs transaction. Inputs are validated before the write
//!   transaction opens and state preconditions (exists, not deleted, text-typed) are checked
//!   before its first write, so an error never leaves a partial write. The resulting
//!   [`Mutation`] carries the v1 update of exactly that transaction (encoded after commit, as
//!   yrs' own update event does) and the objects it changed; if nothing changed both are
//!   empty.
//! * Changes are detected by a deep observer on the `objects` root map that records the id of
//!   every object an event touches, for local and remote transactions alike. A cache of each
//!   object's (present, deleted) status classifies them as added / updated / deleted. If
//!   applying a remote update fails half-way (yrs cannot roll back), the ids it touched are
//!   kept and reported with the next successful call, so no change goes unnoticed.
//! * Causal buffering: yrs 0.28 integrates an update even when it starts past the end of its
//!   author's known history (leaving a hole), and then sometimes never integrates updates
//!   that depend on the hole once it is filled (found by the convergence property test: two
//!   replicas given the same updates in different orders diverged). So an update whose first
//!   block for some client does not follow directly on the document's clock for that client
//!   is held back (deduplicated, in arrival order) and applied as soon as it does; its
//!   changes are reported by the call that releases it. Dependencies across clients are left
//!   to yrs' own pending mechanism, which handles them correctly without holes.
//! * Malformed remote updates give [`DbError::BadUpdate`]. Decoding and integration run
//!   under `catch_unwind`, so even an internal yrs assertion cannot escape (fuzzing found
//!   none); if integration ever did panic, the error says the document must be rebuilt.
//!   Decoding and the memory-bomb guard live in `updates`.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use yrs::types::{DeepObservable, Event, PathSegment};
use yrs::{
    Any, ClientID, Doc, Map, MapPrelim, MapRef, Options, Out, ReadTxn, StateVector, TextPrelim,
    Transact, TransactionMut, Update,
};

use super::convert::{fill_map, insert_value, is_deleted, render_object};
use super::patch::{merge_members, strip_nulls};
use super::updates::{canonical_snapshot, decode};
use super::validate::{validate_field_name, validate_text, validate_top, Mode};
use super::{text, ChangeKind, Changes, DbError, Mutation, ObjectId, Query};

/// Name of the root map holding all objects.
pub(super) const OBJECTS: &str = "objects";
/// Origin key of the change observer.
const OBSERVER: &str = "echo-db-changes";

/// The origin of the transactions of local writes and Yjs client updates: the Yjs bridge's
/// sink leaves them out, because the space actor sends them to the bridge itself once their
/// block is durable (remote blocks reach the document only once stored).
pub const LOCAL_ORIGIN: &str = "echo-local";
/// yrs client ids are 53-bit (JavaScript-safe) integers.
const CLIENT_ID_MASK: u64 = (1 << 53) - 1;

type Touched = Arc<Mutex<BTreeSet<String>>>;

/// The object database of one space: one yrs document with a root map `objects`.
pub struct SpaceDoc {
    doc: Doc,
    objects: MapRef,
    /// Keys of `objects` touched by transactions whose changes were not yet reported.
    touched: Touched,
    /// Last reported status of every known object: `true` if soft-deleted.
    status: BTreeMap<ObjectId, bool>,
    /// Remote updates (bytes, lowest clock per client) that would leave a hole in some
    /// client's history, in arrival order.
    held: Vec<(Vec<u8>, StateVector)>,
}

impl std::fmt::Debug for SpaceDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpaceDoc")
            .field("client_id", &self.doc.client_id().get())
            .field("objects", &self.status.len())
            .finish()
    }
}

fn internal(e: impl std::fmt::Display) -> DbError {
    DbError::Invalid(format!(
        "document busy (internal error, please report): {e}"
    ))
}

impl SpaceDoc {
    /// A new, empty document whose yrs client id is `client_id` masked to 53 bits. The caller
    /// draws `client_id` from its seeded RNG, and a fresh one after losing local state.
    pub fn new(client_id: u64) -> Self {
        let client_id = client_id & CLIENT_ID_MASK;
        let guid = yrs::uuid_v4_from(u128::from(client_id) | (0x6563_686f_2d72_7300_u128 << 64));
        let options = Options::with_guid_and_client_id(guid, ClientID::new(client_id));
        let doc = Doc::with_options(options);
        // Root types must be taken before any transaction exists.
        let objects = doc.get_or_insert_map(OBJECTS);
        let touched: Touched = Arc::default();
        let sink = Arc::clone(&touched);
        objects.observe_deep(OBSERVER, move |txn, events| {
            let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
            for event in events.iter() {
                let path = event.path();
                match path.front() {
                    Some(PathSegment::Key(key)) => {
                        sink.insert(key.to_string());
                    }
                    Some(PathSegment::Index(_)) => {}
                    None => {
                        if let Event::Map(map_event) = event {
                            sink.extend(map_event.keys(txn).keys().map(|k| k.to_string()));
                        }
                    }
                }
            }
        });
        SpaceDoc {
            doc,
            objects,
            touched,
            status: BTreeMap::new(),
            held: Vec::new(),
        }
    }

    /// The yrs client id in use (already masked to 53 bits).
    pub fn client_id(&self) -> u64 {
        self.doc.client_id().get()
    }

    /// The underlying yrs document (for the Yjs bridge in `yjs.rs`).
    pub(super) fn ydoc(&self) -> &Doc {
        &self.doc
    }

    /// The underlying yrs document, mutably (to attach the bridge's update observer).
    pub(super) fn ydoc_mut(&mut self) -> &mut Doc {
        &mut self.doc
    }

    /// Applies a remote or replayed v1 update. Returns the objects it changed (including
    /// those changed by held updates it released); data already known changes nothing, and an
    /// update that must wait for earlier ones is held and changes nothing yet. An empty slice
    /// is accepted as "no update".
    pub fn apply_update(&mut self, update_v1: &[u8]) -> Result<Changes, DbError> {
        if update_v1.is_empty() {
            return Ok(Changes::default());
        }
        let update = decode(update_v1)?;
        let lower = update.state_vector_lower();
        if !self.is_contiguous(&lower) {
            if !self.held.iter().any(|(bytes, _)| bytes == update_v1) {
                self.held.push((update_v1.to_vec(), lower));
            }
            return Ok(self.take_changes());
        }
        let result = self.integrate(update, false);
        if result.is_ok() {
            self.release_held();
        }
        result.map(|()| self.take_changes())
    }

    /// Applies an update this node is about to commit as its own (a Yjs client's, checked
    /// already): like [`Self::apply_update`] but in a local transaction (see
    /// [`LOCAL_ORIGIN`]). Such an update never waits for others: the check refused any that
    /// skips history.
    pub(crate) fn apply_local_update(&mut self, update_v1: &[u8]) -> Result<Changes, DbError> {
        if update_v1.is_empty() {
            return Ok(Changes::default());
        }
        let update = decode(update_v1)?;
        let result = self.integrate(update, true);
        if result.is_ok() {
            self.release_held();
        }
        result.map(|()| self.take_changes())
    }

    /// Number of remote updates held back until earlier updates of their authors arrive.
    pub fn held_updates(&self) -> usize {
        self.held.len()
    }

    /// Whether every client's first new block in an update follows directly on what the
    /// document already has (no hole would be left in that client's history).
    fn is_contiguous(&self, lower: &StateVector) -> bool {
        let Ok(txn) = self.doc.try_transact() else {
            return false;
        };
        let state = txn.state_vector();
        lower
            .iter()
            .all(|(client, clock)| *clock <= state.get(client))
    }

    /// Applies held updates that have become contiguous, in arrival order, until none is.
    /// One that fails to integrate is dropped (it was already reported as held, not failed).
    fn release_held(&mut self) {
        while let Some(i) = self
            .held
            .iter()
            .position(|(_, lower)| self.is_contiguous(lower))
        {
            let (bytes, _) = self.held.remove(i);
            if let Ok(update) = decode(&bytes) {
                let _ = self.integrate(update, false);
            }
        }
    }

    /// Integrates a decoded update in one transaction, never letting a yrs panic escape.
    fn integrate(&mut self, update: Update, local: bool) -> Result<(), DbError> {
        let mut txn = if local {
            self.doc.try_transact_mut_with(LOCAL_ORIGIN)
        } else {
            self.doc.try_transact_mut()
        }
        .map_err(internal)?;
        // yrs has internal assertions on integration; never let one escape (see module docs).
        let result = catch_unwind(AssertUnwindSafe(|| {
            let result = txn.apply_update(update);
            txn.commit();
            result
        }));
        drop(txn);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DbError::BadUpdate(format!(
                "the update could not be integrated: {e}"
            ))),
            Err(_) => Err(DbError::BadUpdate(
                "yrs failed while integrating the update; the document may be inconsistent \
                 and should be rebuilt from its feeds"
                    .into(),
            )),
        }
    }

    /// Adds a new object. `object` must be a JSON object; see the module docs for the rules.
    pub fn add(&mut self, id: ObjectId, object: &Value) -> Result<Mutation, DbError> {
        validate_top(object, Mode::Add)?;
        let fields = object.as_object().cloned().unwrap_or_default();
        let key = id.to_string();
        self.write(|txn, objects| {
            if objects.contains_key(txn, &key) {
                return Err(DbError::Invalid(format!(
                    "object {id} already exists; use update to change it"
                )));
            }
            let map = objects.insert(txn, key.as_str(), MapPrelim::default());
            map.insert(txn, "@deleted", false);
            let meta = map.insert(txn, "@meta", MapPrelim::default());
            if let Some(Value::Object(members)) = fields.get("@meta") {
                fill_map(txn, &meta, members);
            }
            if let Some(Value::String(type_name)) = fields.get("@type") {
                map.insert(txn, "@type", type_name.as_str());
            }
            for (name, value) in fields.iter().filter(|(k, _)| !k.starts_with('@')) {
                insert_value(txn, &map, name, value);
            }
            Ok(())
        })
    }

    /// Applies an RFC 7386 merge patch to an existing object. A patch on a deleted object is
    /// refused unless it sets `"@deleted": false` (restore).
    pub fn update(&mut self, id: &ObjectId, merge_patch: &Value) -> Result<Mutation, DbError> {
        validate_top(merge_patch, Mode::Patch)?;
        let members = merge_patch.as_object().cloned().unwrap_or_default();
        if let Some(Value::String(given)) = members.get("@id") {
            if *given != id.to_string() {
                return Err(DbError::Invalid(format!(
                    "patch `@id` {} does not match the object being updated, {id}",
                    super::id::shorten(given)
                )));
            }
        }
        let restoring = matches!(members.get("@deleted"), Some(Value::Bool(false)));
        let id = *id;
        self.write(|txn, objects| {
            let map = live_object(txn, objects, &id, restoring)?;
            for (name, value) in &members {
                match name.as_str() {
                    "@id" => {}
                    "@type" => match value {
                        Value::String(t) => {
                            let current = map.get(txn, "@type");
                            if !matches!(&current, Some(Out::Any(Any::String(s))) if **s == **t) {
                                map.insert(txn, "@type", t.as_str());
                            }
                        }
                        _ => {
                            if map.get(txn, "@type").is_some() {
                                map.remove(txn, "@type");
                            }
                        }
                    },
                    "@meta" => match (map.get(txn, "@meta"), value) {
                        (Some(Out::YMap(meta)), Value::Object(patch)) => {
                            merge_members(txn, &meta, patch);
                        }
                        (Some(Out::YMap(meta)), _) => {
                            let keys: BTreeSet<String> =
                                meta.keys(txn).map(str::to_owned).collect();
                            for key in keys {
                                meta.remove(txn, &key);
                            }
                        }
                        (_, patch) => {
                            let meta = map.insert(txn, "@meta", MapPrelim::default());
                            if let Value::Object(members) = strip_nulls(patch) {
                                fill_map(txn, &meta, &members);
                            }
                        }
                    },
                    "@deleted" => {
                        let wanted = value.as_bool().unwrap_or(false);
                        if is_deleted(txn, &map) != wanted {
                            map.insert(txn, "@deleted", wanted);
                        }
                    }
                    _ => super::patch::merge_entry(txn, &map, name, value),
                }
            }
            Ok(())
        })
    }

    /// Soft-deletes an object (sets `@deleted`). Deleting a deleted object changes nothing.
    pub fn delete(&mut self, id: &ObjectId) -> Result<Mutation, DbError> {
        let id = *id;
        self.write(|txn, objects| {
            let map = object_map(txn, objects, &id)?;
            if !is_deleted(txn, &map) {
                map.insert(txn, "@deleted", true);
            }
            Ok(())
        })
    }

    /// Inserts `text` at char `index` of text field `field`, creating the text if the field
    /// is missing and converting a plain string field to text first.
    pub fn text_insert(
        &mut self,
        id: &ObjectId,
        field: &str,
        index: u32,
        text: &str,
    ) -> Result<Mutation, DbError> {
        validate_field_name(field)?;
        validate_text(text)?;
        let id = *id;
        self.write(|txn, objects| {
            let map = live_object(txn, objects, &id, false)?;
            match map.get(txn, field) {
                None => {
                    text::check_insert("", index)?;
                    map.insert(txn, field, TextPrelim::new(text));
                    Ok(())
                }
                Some(Out::YText(target)) => text::insert(txn, &target, field, index, text),
                Some(Out::Any(Any::String(current))) => {
                    text::check_insert(&current, index)?;
                    let target = map.insert(txn, field, TextPrelim::new(current.as_ref()));
                    text::insert(txn, &target, field, index, text)
                }
                Some(_) => Err(DbError::NotText {
                    field: field.to_owned(),
                }),
            }
        })
    }

    /// Deletes `len` chars at char `index` of text field `field` (a plain string field is
    /// converted to text first).
    pub fn text_delete(
        &mut self,
        id: &ObjectId,
        field: &str,
        index: u32,
        len: u32,
    ) -> Result<Mutation, DbError> {
        validate_field_name(field)?;
        let id = *id;
        self.write(|txn, objects| {
            let map = live_object(txn, objects, &id, false)?;
            match map.get(txn, field) {
                Some(Out::YText(target)) => text::delete(txn, &target, field, index, len),
                Some(Out::Any(Any::String(current))) => {
                    text::check_delete(&current, index, len)?;
                    let target = map.insert(txn, field, TextPrelim::new(current.as_ref()));
                    text::delete(txn, &target, field, index, len)
                }
                _ => Err(DbError::NotText {
                    field: field.to_owned(),
                }),
            }
        })
    }

    /// The current content of a text (or plain string) field. Works on deleted objects.
    /// Reserved fields (`@type`, ...) are refused like the text edits refuse them.
    pub fn text_get(&self, id: &ObjectId, field: &str) -> Result<String, DbError> {
        validate_field_name(field)?;
        let txn = self.doc.try_transact().map_err(internal)?;
        let map = object_map(&txn, &self.objects, id)?;
        match map.get(&txn, field) {
            Some(Out::YText(text)) => Ok(yrs::GetString::get_string(&text, &txn)),
            Some(Out::Any(Any::String(s))) => Ok(s.to_string()),
            _ => Err(DbError::NotText {
                field: field.to_owned(),
            }),
        }
    }

    /// The rendered object, deleted ones included (with `"@deleted": true`).
    pub fn get(&self, id: &ObjectId) -> Option<Value> {
        let txn = self.doc.try_transact().ok()?;
        let map = object_map(&txn, &self.objects, id).ok()?;
        Some(render_object(&txn, id, &map))
    }

    /// Whether an object with this id exists (deleted or not).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.doc
            .try_transact()
            .is_ok_and(|txn| object_map(&txn, &self.objects, id).is_ok())
    }

    /// The rendered objects matching `q`, ordered by id.
    pub fn query(&self, q: &Query) -> Vec<Value> {
        self.rendered()
            .into_values()
            .filter(|object| q.matches(object))
            .collect()
    }

    /// The whole document as one v1 update (against an empty state vector), in canonical
    /// form: peers holding the same updates produce the same bytes whatever order the updates
    /// arrived in.
    ///
    /// yrs squashes adjacent blocks and collects garbage per transaction, so two documents
    /// with equal content can encode it in differently split blocks. Loading the state into a
    /// scratch document in one transaction squashes and collects everything it can, which
    /// makes the encoding independent of history.
    pub fn snapshot(&self) -> Vec<u8> {
        let Ok(raw) = self
            .doc
            .try_transact()
            .map(|txn| txn.encode_state_as_update_v1(&StateVector::default()))
        else {
            return Vec::new();
        };
        canonical_snapshot(&raw, self.doc.client_id()).unwrap_or(raw)
    }

    /// Every object, deleted ones included, as `{id: rendered object}` with sorted keys: equal
    /// on two peers exactly when they show the same data.
    pub fn canonical_state(&self) -> Value {
        Value::Object(
            self.rendered()
                .into_iter()
                .map(|(id, object)| (id.to_string(), object))
                .collect(),
        )
    }

    /// All objects rendered (deleted ones included), keyed by id. Keys that are not canonical
    /// ids, or values that are not maps (possible only from a foreign peer), are skipped.
    pub fn rendered(&self) -> BTreeMap<ObjectId, Value> {
        let Ok(txn) = self.doc.try_transact() else {
            return BTreeMap::new();
        };
        self.objects
            .iter(&txn)
            .filter_map(
                |(key, value)| match (ObjectId::parse_canonical(key), value) {
                    (Some(id), Out::YMap(map)) => Some((id, render_object(&txn, &id, &map))),
                    _ => None,
                },
            )
            .collect()
    }

    /// Runs one local write transaction and packages its update and changes.
    fn write<F>(&mut self, body: F) -> Result<Mutation, DbError>
    where
        F: FnOnce(&mut TransactionMut, &MapRef) -> Result<(), DbError>,
    {
        let objects = self.objects.clone();
        let update = {
            let mut txn = self
                .doc
                .try_transact_mut_with(LOCAL_ORIGIN)
                .map_err(internal)?;
            body(&mut txn, &objects)?;
            txn.commit();
            txn.encode_update_v1()
        };
        let changes = self.take_changes();
        Ok(if changes.is_empty() {
            Mutation::default()
        } else {
            Mutation { update, changes }
        })
    }

    /// Drains the touched keys and classifies them against the status cache.
    fn take_changes(&mut self) -> Changes {
        let touched =
            std::mem::take(&mut *self.touched.lock().unwrap_or_else(PoisonError::into_inner));
        let mut changes = Changes::default();
        let Ok(txn) = self.doc.try_transact() else {
            return changes;
        };
        for key in touched {
            let Some(id) = ObjectId::parse_canonical(&key) else {
                continue;
            };
            let after = match self.objects.get(&txn, &key) {
                Some(Out::YMap(map)) => Some(is_deleted(&txn, &map)),
                _ => None,
            };
            let before = match after {
                Some(deleted) => self.status.insert(id, deleted),
                None => self.status.remove(&id),
            };
            let kind = match (before, after) {
                (None, None) => continue,
                (None, Some(_)) => ChangeKind::Added,
                (Some(false), Some(true) | None) => ChangeKind::Deleted,
                _ => ChangeKind::Updated,
            };
            changes.insert(id, kind);
        }
        changes
    }
}

/// The map of object `id`, deleted or not.
fn object_map<T: ReadTxn>(txn: &T, objects: &MapRef, id: &ObjectId) -> Result<MapRef, DbError> {
    match objects.get(txn, &id.to_string()) {
        Some(Out::YMap(map)) => Ok(map),
        _ => Err(DbError::NotFound(*id)),
    }
}

/// The map of object `id`, refusing deleted objects unless `restoring`.
fn live_object(
    txn: &TransactionMut,
    objects: &MapRef,
    id: &ObjectId,
    restoring: bool,
) -> Result<MapRef, DbError> {
    let map = object_map(txn, objects, id)?;
    if is_deleted(txn, &map) && !restoring {
        return Err(DbError::Deleted(*id));
    }
    Ok(map)
}
