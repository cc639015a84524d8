//! The Yjs bridge's side of the object model: raw state vectors and diffs, a raw-update
//! sink, and the admission of a Yjs client's update.
//!
//! Contract:
//! * [`SpaceDoc::state_vector_v1`] and [`SpaceDoc::diff_v1`] are y-protocols sync step 1 and
//!   step 2 material: the document's v1 state vector, and everything a peer with a given
//!   state vector lacks.
//! * [`SpaceDoc::set_update_sink`] makes every committed transaction of remote origin (a
//!   peer's block, a released held update) append its v1 update to the sink, so that bridge
//!   clients hear every change without polling. Local writes and client updates run with
//!   origin `LOCAL_ORIGIN` and are left out: the space actor sends them to the bridge itself,
//!   once their block is durable. Detach it with `None`.
//! * [`SpaceDoc::apply_client_update`] integrates a client's v1 update only if the result
//!   still satisfies the object model; otherwise it returns an error and the document is
//!   untouched. The update is first applied to a trial copy of the document, and only the
//!   objects it touched are checked (see `yjs_validate.rs`), together with rules on the
//!   document's shape: writes only under the root map `objects`, no entry removed or
//!   replaced (objects are soft-deleted with `@deleted`), no dependency on changes this
//!   document does not have. An update that changes nothing is accepted as a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use yrs::types::ToJson;
use yrs::types::{DeepObservable, EntryChange, Event, PathSegment};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, Options, ReadTxn, StateVector, Transact};

use super::updates::decode;
use super::{DbError, Mutation, SpaceDoc};

/// Where committed v1 updates go while a bridge listens (drained by the space actor).
pub type UpdateSink = Arc<Mutex<Vec<Vec<u8>>>>;

/// Observer key of the update sink.
const SINK: &str = "echo-yjs-bridge";
/// Observer key of the trial copy's change observer.
const TRIAL: &str = "echo-yjs-trial";

/// What a client update did to the `objects` map of a trial copy.
#[derive(Default)]
struct Touched {
    /// Object ids (keys of `objects`) whose entry or content changed.
    keys: BTreeSet<String>,
    /// Keys whose entry was removed or replaced by another value.
    replaced: BTreeSet<String>,
}

impl SpaceDoc {
    /// The document's state vector, v1-encoded (sync step 1).
    pub fn state_vector_v1(&self) -> Vec<u8> {
        self.ydoc()
            .try_transact()
            .map(|txn| txn.state_vector().encode_v1())
            .unwrap_or_default()
    }

    /// What a peer whose v1 state vector is `remote_sv` lacks, as one v1 update (sync step 2).
    pub fn diff_v1(&self, remote_sv: &[u8]) -> Result<Vec<u8>, DbError> {
        let sv = StateVector::decode_v1(remote_sv).map_err(|e| {
            DbError::BadUpdate(format!("the state vector could not be decoded: {e}"))
        })?;
        let txn = self
            .ydoc()
            .try_transact()
            .map_err(|e| DbError::Invalid(format!("document busy: {e}")))?;
        Ok(txn.encode_diff_v1(&sv))
    }

    /// Attaches (or with `None` detaches) the sink that receives every committed update.
    /// Fails only if a transaction is open (never between the space actor's messages).
    pub fn set_update_sink(&mut self, sink: Option<UpdateSink>) -> Result<(), DbError> {
        let busy = |e: yrs::TransactionAcqError| DbError::Invalid(format!("document busy: {e}"));
        let doc = self.ydoc_mut();
        doc.unobserve_update_v1(SINK).map_err(busy)?;
        if let Some(sink) = sink {
            let local = yrs::Origin::from(super::doc::LOCAL_ORIGIN);
            doc.observe_update_v1(SINK, move |txn, event| {
                // Local writes reach the bridge from the space actor, once durable.
                if txn.origin() == Some(&local) {
                    return;
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(event.update.clone());
            })
            .map_err(busy)?;
        }
        Ok(())
    }

    /// Integrates a Yjs client's v1 update if the objects it touches still satisfy the object
    /// model (see the module docs); the document is unchanged on error. The returned
    /// [`Mutation`] carries the update (empty when the update brought nothing new) and the
    /// objects it changed; unlike a local write, it may carry an update with no changes (an
    /// insertion deleted in the same update), which must still be stored so that later
    /// updates of that client apply.
    pub fn apply_client_update(&mut self, update_v1: &[u8]) -> Result<Mutation, DbError> {
        if !self.check_client_update(update_v1)? {
            return Ok(Mutation::default());
        }
        let changes = self.apply_local_update(update_v1)?;
        Ok(Mutation {
            update: update_v1.to_vec(),
            changes,
        })
    }

    /// Runs a client update on a trial copy and validates the result, changing nothing.
    /// `Ok(false)`: it brings nothing new; `Ok(true)`: [`SpaceDoc::apply_update`] may apply it.
    pub fn check_client_update(&self, update_v1: &[u8]) -> Result<bool, DbError> {
        let update = decode(update_v1)?;
        let busy = |e: yrs::TransactionAcqError| DbError::Invalid(format!("document busy: {e}"));
        let (state, current) = {
            let txn = self.ydoc().try_transact().map_err(busy)?;
            (
                txn.state_vector(),
                txn.encode_state_as_update_v1(&StateVector::default()),
            )
        };
        let lower = update.state_vector_lower();
        if let Some((client, clock)) = lower.iter().find(|(c, k)| **k > state.get(c)) {
            return Err(DbError::Invalid(format!(
                "the update continues the history of client {client} at clock {clock}, but \
                 the space has that client only up to {}: it depends on changes the node does \
                 not have",
                state.get(client)
            )));
        }

        let guid = yrs::uuid_v4_from(u128::from(self.client_id()));
        let trial = Doc::with_options(Options::with_guid_and_client_id(
            guid,
            self.ydoc().client_id(),
        ));
        let objects = trial.get_or_insert_map(super::doc::OBJECTS);
        {
            let mut txn = trial.try_transact_mut().map_err(busy)?;
            txn.apply_update(decode(&current)?)
                .map_err(|e| DbError::BadUpdate(format!("trial copy: {e}")))?;
        }
        let (pending_before, roots_before) = {
            let txn = trial.try_transact().map_err(busy)?;
            (txn.has_missing_updates(), other_roots(&txn))
        };
        let touched: Arc<Mutex<Touched>> = Arc::default();
        let sink = Arc::clone(&touched);
        objects.observe_deep(TRIAL, move |txn, events| {
            let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
            for event in events.iter() {
                match event.path().front() {
                    Some(PathSegment::Key(key)) => {
                        sink.keys.insert(key.to_string());
                    }
                    Some(PathSegment::Index(_)) => {}
                    None => {
                        if let Event::Map(map_event) = event {
                            for (key, change) in map_event.keys(txn) {
                                sink.keys.insert(key.to_string());
                                if !matches!(change, EntryChange::Inserted(_)) {
                                    sink.replaced.insert(key.to_string());
                                }
                            }
                        }
                    }
                }
            }
        });
        let (changed, foreign_root, list_entries) = {
            let mut txn = trial.try_transact_mut().map_err(busy)?;
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let result = txn.apply_update(update);
                txn.commit();
                result
            }));
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(DbError::BadUpdate(format!(
                        "the update could not be integrated: {e}"
                    )))
                }
                Err(_) => {
                    return Err(DbError::BadUpdate(
                        "the update could not be integrated".into(),
                    ))
                }
            }
            let foreign_root = other_roots(&txn)
                .into_iter()
                .find(|(name, state)| roots_before.get(name) != Some(state))
                .map(|(name, _)| name);
            let list_entries = AsRef::<yrs::branch::Branch>::as_ref(&objects).len();
            (txn.has_changes(), foreign_root, list_entries)
        };
        if let Some(name) = foreign_root {
            return Err(DbError::Invalid(format!(
                "the update writes to the root type `{}`; a space's document has one root, \
                 the map `objects`",
                super::id::shorten(&name)
            )));
        }
        if list_entries > 0 {
            return Err(DbError::Invalid(
                "the update uses the root `objects` as an array; it is a map of object id -> \
                 Y.Map (doc.getMap('objects'))"
                    .into(),
            ));
        }
        let txn = trial.try_transact().map_err(busy)?;
        if !pending_before && txn.has_missing_updates() {
            return Err(DbError::Invalid(
                "the update depends on changes the node does not have".into(),
            ));
        }
        let touched = std::mem::take(&mut *touched.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(key) = touched.replaced.iter().next() {
            return Err(DbError::Invalid(format!(
                "the update removes or replaces the entry `{}` of `objects`: delete an object \
                 by setting its `@deleted` to true, and edit its fields rather than replacing it",
                super::id::shorten(key)
            )));
        }
        for key in &touched.keys {
            super::yjs_validate::check_object(&txn, key, objects.get(&txn, key))?;
        }
        if changed && !pending_before && !rebuilds_the_same(&current, update_v1, self.client_id()) {
            // Malformed updates (overlapping garbage-collected ranges of a client the space
            // never saw, forged origins) can leave a document whose own state, sent to a
            // replica or a Yjs client, rebuilds into something else, or into nothing: peers
            // would never agree. Found by the yjs fuzzer.
            return Err(DbError::Invalid(
                "the update leaves the document in a state that other replicas cannot rebuild \
                 the same way (malformed history)"
                    .into(),
            ));
        }
        Ok(changed)
    }
}

/// Whether the document `current` + `update` renders the same as a replica rebuilt from
/// that document's whole state (as a peer catching up from a snapshot, or a Yjs client
/// syncing from scratch, sees it), with nothing held back.
fn rebuilds_the_same(current: &[u8], update_v1: &[u8], client_id: u64) -> bool {
    std::panic::catch_unwind(|| {
        let mut node = SpaceDoc::new(client_id);
        node.apply_update(current).ok()?;
        node.apply_update(update_v1).ok()?;
        let mut replica = SpaceDoc::new(client_id.wrapping_add(1));
        replica.apply_update(&node.snapshot()).ok()?;
        Some(replica.held_updates() == 0 && replica.canonical_state() == node.canonical_state())
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The content of every root type but `objects`, for comparison before and after an update.
fn other_roots<T: ReadTxn>(txn: &T) -> BTreeMap<String, String> {
    txn.root_refs()
        .filter(|(name, _)| *name != super::doc::OBJECTS)
        .map(|(name, out)| (name.to_owned(), format!("{:?}", out.to_json(txn))))
        .collect()
}
