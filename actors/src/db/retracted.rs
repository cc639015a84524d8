//! [`Retracted`]: the Yrs items of updates a space denied, which no Yjs client may bring
//! back.
//!
//! Why: before a revocation reaches a node, the revoked device's late blocks may have been
//! applied and sent to the node's Yjs clients. The rebuild takes them out of the document,
//! but a client keeps them in its own copy, and on its next sync it offers them back as its
//! own change, which this node would sign as a local write: the revoked device's work,
//! laundered. So every denied mutation's insertions (client id, clock range) are recorded
//! here, and a client update that inserts any of them is refused.
//!
//! Contract: [`Retracted::record`] adds the insertions of a v1 update (bytes that do not
//! decode add nothing: nothing of them was ever applied either); [`Retracted::carried_by`]
//! says whether a v1 update inserts any recorded item. Yrs items are never re-issued under
//! the same id, so an honest client's own edits are never caught.

use std::collections::BTreeMap;
use std::ops::Range;

use yrs::ClientID;

use super::updates::decode;

/// The insertions of denied updates (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retracted {
    ids: BTreeMap<ClientID, Vec<Range<u32>>>,
}

impl Retracted {
    /// Whether nothing was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Records what the v1 update `update_v1` inserts.
    pub fn record(&mut self, update_v1: &[u8]) {
        let Ok(update) = decode(update_v1) else {
            return;
        };
        for (client, ranges) in update.insertions(true).iter() {
            let held = self.ids.entry(*client).or_default();
            for range in ranges.iter() {
                if !held
                    .iter()
                    .any(|r| r.start <= range.start && range.end <= r.end)
                {
                    held.push(range.clone());
                }
            }
        }
    }

    /// Whether the v1 update `update_v1` inserts any recorded item. Bytes that do not
    /// decode insert nothing (the caller's own check refuses them).
    pub fn carried_by(&self, update_v1: &[u8]) -> bool {
        if self.ids.is_empty() {
            return false;
        }
        let Ok(update) = decode(update_v1) else {
            return false;
        };
        let inserted = update.insertions(true);
        inserted.iter().any(|(client, ranges)| {
            self.ids.get(client).is_some_and(|held| {
                ranges
                    .iter()
                    .any(|r| held.iter().any(|h| h.start < r.end && r.start < h.end))
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact, Update};

    fn doc(client: u64) -> Doc {
        Doc::with_client_id(client)
    }

    fn full(d: &Doc) -> Vec<u8> {
        d.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn a_client_update_carrying_a_denied_insertion_is_caught_and_honest_ones_are_not() {
        // The revoked device (client 7) writes `early` (accepted), then `late` (denied).
        let revoked = doc(7);
        let objects = revoked.get_or_insert_map("objects");
        objects.insert(&mut revoked.transact_mut(), "early", "before its cut");
        let early_state = full(&revoked);
        let sv = revoked.transact().state_vector();
        objects.insert(&mut revoked.transact_mut(), "late", "after its cut");
        let late = revoked.transact().encode_diff_v1(&sv);

        let mut retracted = Retracted::default();
        assert!(retracted.is_empty());
        assert!(!retracted.carried_by(&late), "nothing recorded yet");
        retracted.record(&late);
        assert!(!retracted.is_empty());
        assert!(retracted.carried_by(&late));

        // A Yjs client that got both and syncs its whole state offers `late` back.
        let client = doc(42);
        let apply = |d: &Doc, u: &[u8]| {
            d.transact_mut()
                .apply_update(Update::decode_v1(u).unwrap())
                .unwrap()
        };
        apply(&client, &early_state);
        let before_late = full(&client);
        apply(&client, &late);
        assert!(retracted.carried_by(&full(&client)));
        // The device's earlier item (same client id, lower clock) is not caught, nor is the
        // client's own edit made on top.
        assert!(!retracted.carried_by(&before_late));
        let sv = client.transact().state_vector();
        client
            .get_or_insert_text("t")
            .insert(&mut client.transact_mut(), 0, "mine");
        assert!(!retracted.carried_by(&client.transact().encode_diff_v1(&sv)));
        // Recording twice changes nothing; garbage records nothing and carries nothing.
        let once = retracted.clone();
        retracted.record(&late);
        assert_eq!(retracted, once);
        retracted.record(b"\xff\xff\xff");
        assert_eq!(retracted, once);
        assert!(!retracted.carried_by(b"\x05\x01"));
    }
}
