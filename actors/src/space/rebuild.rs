//! What a rebuild after a revocation does, and whom it tells.
//!
//! A revocation that reaches this node after blocks it denies were applied (a relayer saw
//! the revoked device's late blocks first) makes the space rebuild its document from the
//! store, which judges every block by every stored revocation. What those blocks did is
//! taken out, and the node says so:
//!
//! - **Watch streams** get one event per object the rebuild changed ([`retraction_events`]):
//!   `updated` with the object as it is now, `deleted` for one that is now deleted, and
//!   `deleted` for one that is gone entirely (its last rendering, marked `@deleted: true`,
//!   since there is nothing left to render).
//! - **Yjs clients** are closed with 4409 (`Bridge::retract`): their documents hold what
//!   was taken out, and no CRDT update can take it back out of them. A client that syncs
//!   again with the same document offers it back; `db/retracted.rs` refuses that (4409
//!   again), so the app must load the space into a new document.
//!
//! Nothing is told when the rebuild changed nothing (the revocation denied no block that
//! had been applied).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{ChangeKind, SpaceActor};
use crate::db::ObjectId;

impl SpaceActor {
    /// A revocation took effect that may deny blocks already applied: the document is
    /// rebuilt from the store. Not while a local write is applied in memory but not stored
    /// yet (a rebuild would drop it from memory): then once the commit queue is idle.
    /// Revocations are rare, and a rebuild is one replay of the space.
    pub(super) fn rebuild_after_revocation(&mut self) {
        if !self.commits.is_idle() {
            self.revocation_rebuild = true;
            return;
        }
        self.revocation_rebuild = false;
        let denied_before: BTreeSet<(crate::types::PublicKey, u64)> =
            self.core.denied().keys().copied().collect();
        // Rendering every object costs a pass over the space: only for someone to tell.
        let rendered_before = (!self.subscribers.is_empty()).then(|| self.core.doc().rendered());
        self.bridge.flush();
        self.rebuild();
        let newly_denied = self
            .core
            .denied()
            .keys()
            .filter(|k| !denied_before.contains(k))
            .count();
        tracing::info!(space = %self.core.record().space_key.short(),
            revoked = self.core.revocations().revoked().len(),
            denied_before = denied_before.len(), newly_denied,
            "a device revocation took effect; rebuilt the space from the store");
        if newly_denied == 0 {
            return;
        }
        self.bridge.retract();
        if let Some(before) = rendered_before {
            let events = retraction_events(&before, &self.core.doc().rendered());
            self.broadcast(events);
        }
    }
}

/// The watch events that take a document from `before` to `after` (see the module docs),
/// in id order.
pub fn retraction_events(
    before: &BTreeMap<ObjectId, Value>,
    after: &BTreeMap<ObjectId, Value>,
) -> Vec<(ObjectId, ChangeKind, Value)> {
    let deleted = |o: &Value| o.get("@deleted") == Some(&Value::Bool(true));
    let ids: BTreeSet<&ObjectId> = before.keys().chain(after.keys()).collect();
    ids.into_iter()
        .filter_map(|id| match (before.get(id), after.get(id)) {
            (Some(b), Some(a)) if a == b => None,
            (Some(b), Some(a)) if deleted(a) && !deleted(b) => {
                Some((*id, ChangeKind::Deleted, a.clone()))
            }
            (Some(_), Some(a)) => Some((*id, ChangeKind::Updated, a.clone())),
            (Some(b), None) => {
                let mut gone = b.clone();
                if let Some(map) = gone.as_object_mut() {
                    map.insert("@deleted".into(), Value::Bool(true));
                }
                Some((*id, ChangeKind::Deleted, gone))
            }
            (None, Some(a)) => Some((*id, ChangeKind::Added, a.clone())),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(n: u64) -> ObjectId {
        ObjectId::from_parts(1_700_000_000_000 + n, u128::from(n))
    }

    fn object(n: u64, fields: Value) -> (ObjectId, Value) {
        let mut o = json!({"@id": id(n).to_string(), "@deleted": false});
        for (k, v) in fields.as_object().unwrap() {
            o[k] = v.clone();
        }
        (id(n), o)
    }

    #[test]
    fn a_rebuild_reports_each_changed_object_once_and_nothing_else() {
        let before: BTreeMap<ObjectId, Value> = [
            object(1, json!({"title": "same"})),
            object(2, json!({"title": "edited by the revoked device"})),
            object(3, json!({"title": "added by the revoked device"})),
            object(4, json!({"title": "deleted by nobody", "@deleted": false})),
            object(5, json!({"title": "restored by the revoked device"})),
        ]
        .into();
        let after: BTreeMap<ObjectId, Value> = [
            object(1, json!({"title": "same"})),
            object(2, json!({"title": "as before"})),
            object(4, json!({"title": "deleted by nobody", "@deleted": false})),
            object(
                5,
                json!({"title": "restored by the revoked device", "@deleted": true}),
            ),
        ]
        .into();
        let events = retraction_events(&before, &after);
        let kinds: Vec<(ObjectId, ChangeKind)> = events.iter().map(|(i, k, _)| (*i, *k)).collect();
        assert_eq!(
            kinds,
            vec![
                (id(2), ChangeKind::Updated),
                (id(3), ChangeKind::Deleted),
                (id(5), ChangeKind::Deleted),
            ]
        );
        assert_eq!(events[0].2["title"], "as before", "the object as it is now");
        assert_eq!(
            events[1].2["@deleted"], true,
            "gone: its last rendering, deleted"
        );
        assert_eq!(events[1].2["title"], "added by the revoked device");
        assert_eq!(events[2].2, after[&id(5)]);
        assert!(retraction_events(&after, &after).is_empty());
        // An object only the rebuilt document has (never from a revocation, but total).
        let back = retraction_events(&after, &before);
        assert!(back.contains(&(id(3), ChangeKind::Added, before[&id(3)].clone())));
    }
}
