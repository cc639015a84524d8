//! What a transaction did to the space, in terms of objects.
//!
//! Contract: [`Changes`] maps each object id a transaction touched to how it changed, ordered by
//! id. [`ChangeKind::Added`] means the object was not known before and is now;
//! [`ChangeKind::Deleted`] means its `@deleted` flag went from false to true (or it vanished);
//! everything else is [`ChangeKind::Updated`]. An empty [`Changes`] means nothing changed.
//! A [`Mutation`] pairs the changes of one local transaction with the v1 update encoding
//! exactly that transaction; when the changes are empty the update is empty too and the
//! caller writes nothing.

use std::collections::BTreeMap;

use super::ObjectId;

/// How one object changed in a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// The object newly appeared.
    Added,
    /// Anything other than appearing or being deleted (including a restore).
    Updated,
    /// `@deleted` went from false to true.
    Deleted,
}

/// The objects one transaction touched, ordered by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes(BTreeMap<ObjectId, ChangeKind>);

impl Changes {
    /// True when the transaction changed no object.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of objects touched.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The touched objects in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectId, ChangeKind)> + '_ {
        self.0.iter().map(|(id, kind)| (*id, *kind))
    }

    /// How `id` changed, if it was touched.
    pub fn get(&self, id: &ObjectId) -> Option<ChangeKind> {
        self.0.get(id).copied()
    }

    /// Folds the changes of a later transaction into these: an object added and then
    /// updated stays `Added`; a deletion wins; otherwise the later kind counts.
    pub fn extend(&mut self, later: Changes) {
        for (id, kind) in later.0 {
            let merged = match (self.0.get(&id), kind) {
                (Some(ChangeKind::Added), ChangeKind::Updated) => ChangeKind::Added,
                (_, k) => k,
            };
            self.0.insert(id, merged);
        }
    }

    pub(crate) fn insert(&mut self, id: ObjectId, kind: ChangeKind) {
        self.0.insert(id, kind);
    }
}

/// The result of one local write: the update to publish and what it changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mutation {
    /// The yrs v1 update of exactly this transaction; empty when nothing changed.
    pub update: Vec<u8>,
    /// The objects the transaction touched.
    pub changes: Changes,
}

impl Mutation {
    /// True when the write changed nothing (and there is nothing to publish).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}
