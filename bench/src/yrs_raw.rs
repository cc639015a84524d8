//! Raw Yrs baselines: the same edits the node makes, on bare `yrs::Doc`s, with nothing
//! around them (no validation, no signing, no store).
//!
//! - [`field_updates`]: single-field updates (`objects[id].v = k`, an integer, as the node
//!   stores `PATCH {"v": k}`) spread round-robin over `objects` objects, each encoded as a v1
//!   update on one doc and applied to another: the ops/s a node's write path could approach,
//!   and the update bytes per op that the wire and the disk are compared with.
//! - [`text_appends`]: the B1.1 workload of dmonad/crdt-benchmarks (single-character
//!   appends to one text, one transaction each): the sum of the updates' v1 lengths and the
//!   final document's size.
//!
//! Client ids are 53-bit, as the node draws them (`space/directory.rs`): an update names its
//! client id (a varint, 8 bytes at that size), so small ids would make the baseline's updates
//! smaller than the very same edits in a node (with client id 1, a B1.1 append's update is
//! 10 B instead of 26 B).

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use yrs::updates::decoder::Decode;
use yrs::{Any, GetString, Map, MapPrelim, MapRef, ReadTxn, StateVector, Text, Transact, Update};

/// What a raw Yrs run did.
#[derive(Debug, Clone, Copy)]
pub struct RawRun {
    pub ops: usize,
    pub elapsed: Duration,
    /// Sum of the v1 update lengths of every edit.
    pub update_bytes: usize,
}

impl RawRun {
    pub fn bytes_per_op(&self) -> f64 {
        self.update_bytes as f64 / self.ops.max(1) as f64
    }
}

/// Client ids of the writing doc and of the replica (53 bits, top bit set, like most of
/// the node's random ones).
const WRITER: u64 = 0x1A_2B3C_4D5E_6F70;
const REPLICA: u64 = 0x15_5555_5555_5555;

/// The value the k-th edit writes (an integer, as the node stores JSON integers).
fn int(k: usize) -> Any {
    Any::Number(yrs::any::Number::Int(k as i64))
}

/// `ops` single-field updates over `objects` objects (created first, not timed), each
/// encoded on the writer's doc and decoded + applied on a replica. Timed: edit, encode,
/// decode, apply.
pub fn field_updates(objects: usize, ops: usize) -> Result<RawRun> {
    let objects = objects.max(1);
    let writer = yrs::Doc::with_client_id(WRITER);
    let replica = yrs::Doc::with_client_id(REPLICA);
    let root = writer.get_or_insert_map("objects");
    let maps: Vec<MapRef> = {
        let mut txn = writer.transact_mut();
        let maps = (0..objects)
            .map(|i| {
                let fields = MapPrelim::from([
                    ("@type".to_string(), Any::from("bench")),
                    ("v".to_string(), int(0)),
                ]);
                root.insert(&mut txn, format!("{i:026}"), fields)
            })
            .collect();
        let setup = txn.encode_update_v1();
        drop(txn);
        apply(&replica, &setup)?;
        maps
    };
    let start = Instant::now();
    let mut update_bytes = 0;
    for k in 0..ops {
        let update = {
            let mut txn = writer.transact_mut();
            maps[k % objects].insert(&mut txn, "v", int(k / objects + 1));
            txn.encode_update_v1()
        };
        update_bytes += update.len();
        apply(&replica, &update)?;
    }
    let elapsed = start.elapsed();
    let check = replica
        .get_or_insert_map("objects")
        .len(&replica.transact());
    ensure!(
        check as usize == objects,
        "raw yrs replica holds {check} objects, not {objects}"
    );
    Ok(RawRun {
        ops,
        elapsed,
        update_bytes,
    })
}

fn apply(doc: &yrs::Doc, update: &[u8]) -> Result<()> {
    let update = Update::decode_v1(update).map_err(|e| anyhow!("raw yrs: bad update: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| anyhow!("raw yrs: update not applied: {e}"))
}

/// The result of [`text_appends`].
#[derive(Debug, Clone, Copy)]
pub struct TextRun {
    pub run: RawRun,
    /// The whole document encoded as one v1 update (`encodeStateAsUpdate` in Yjs).
    pub doc_bytes: usize,
}

/// The k-th character B1.1 appends (any one-byte character; the sizes do not depend on it).
pub fn b1_char(k: usize) -> char {
    char::from(b'a' + (k * 7 % 26) as u8)
}

/// B1.1: `ops` single-character appends at the end of one root text, one transaction each.
pub fn text_appends(ops: usize) -> Result<TextRun> {
    let doc = yrs::Doc::with_client_id(WRITER);
    let text = doc.get_or_insert_text("text");
    let mut update_bytes = 0;
    let mut buf = [0u8; 4];
    let start = Instant::now();
    for k in 0..ops {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, k as u32, b1_char(k).encode_utf8(&mut buf));
        update_bytes += txn.encode_update_v1().len();
    }
    let elapsed = start.elapsed();
    let txn = doc.transact();
    let len = text.get_string(&txn).chars().count();
    ensure!(len == ops, "raw yrs text has {len} characters, not {ops}");
    let doc_bytes = txn.encode_state_as_update_v1(&StateVector::default()).len();
    Ok(TextRun {
        run: RawRun {
            ops,
            elapsed,
            update_bytes,
        },
        doc_bytes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn field_updates_are_small_and_all_applied() {
        let run = field_updates(4, 100).unwrap();
        assert_eq!(run.ops, 100);
        // One map entry per update: a few dozen bytes, never a whole document.
        assert!(
            run.bytes_per_op() > 5.0 && run.bytes_per_op() < 100.0,
            "{run:?}"
        );
    }

    #[test]
    fn b1_1_document_is_about_one_byte_per_character_plus_headers() {
        let run = text_appends(500).unwrap();
        assert_eq!(run.run.ops, 500);
        assert!(run.doc_bytes > 500 && run.doc_bytes < 1100, "{run:?}");
    }
}
