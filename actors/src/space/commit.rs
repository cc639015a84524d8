//! Group commit of a space's local writes.
//!
//! A local write is applied to the document at once (one Yrs transaction) and joins the
//! batch being gathered; at most one batch is being committed at a time. A batch is one
//! signed block (the Yrs updates merged with `merge_updates_v1`), one store write and one
//! flush; every writer in it is answered once it is durable. Writes that arrive while a
//! commit is in flight wait in the next batch, so a lone write on an idle space commits at
//! once and a busy space commits as fast as the disk syncs, many writes per sync.
//!
//! Limits: a batch closes at [`MAX_BATCH_OPS`] writes or [`MAX_BATCH_BYTES`] bytes of
//! updates (the block must stay far below `MAX_BLOCK_BYTES`); further writes start the next.
//!
//! Failure: a commit that fails has been applied in memory but not stored, and so have the
//! batches queued behind it (they may build on it); the space rebuilds itself from the store
//! and every one of those writers is answered with the error ([`CommitQueue::fail_all`]).
//! Memory therefore never runs ahead of the feeds for longer than a commit, and never
//! across a failure.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use super::SpaceRequestError;
use crate::db::Changes;

/// Most writes in one batch.
pub const MAX_BATCH_OPS: usize = 1024;
/// Most bytes of Yrs updates in one batch (a lone larger write is a batch of its own).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// How a writer hears that its batch is durable (or failed).
pub(crate) type Waiter = oneshot::Sender<Result<(), SpaceRequestError>>;

/// Writes that become one block.
#[derive(Default)]
pub(crate) struct Batch {
    pub updates: Vec<Vec<u8>>,
    pub changes: Changes,
    pub waiters: Vec<Waiter>,
    bytes: usize,
}

impl Batch {
    fn has_room_for(&self, bytes: usize) -> bool {
        self.updates.is_empty()
            || (self.updates.len() < MAX_BATCH_OPS
                && self.bytes.saturating_add(bytes) <= MAX_BATCH_BYTES)
    }

    /// The one update of the block: the writes' updates merged.
    pub fn merged_update(&self) -> Result<Vec<u8>, String> {
        match self.updates.as_slice() {
            [one] => Ok(one.clone()),
            many => yrs::merge_updates_v1(many).map_err(|e| e.to_string()),
        }
    }

    pub fn len(&self) -> usize {
        self.updates.len()
    }

    /// Answers every writer.
    pub fn answer(self, result: &Result<(), SpaceRequestError>) {
        for w in self.waiters {
            let _ = w.send(match result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.clone_for_waiters()),
            });
        }
    }
}

/// The batches of one space: the queue and whether one is in flight.
#[derive(Default)]
pub(crate) struct CommitQueue {
    queued: VecDeque<Batch>,
    in_flight: bool,
}

impl CommitQueue {
    /// Adds a write (already applied in memory); returns true if a commit should start now
    /// (none is in flight).
    pub fn push(&mut self, update: Vec<u8>, changes: Changes, waiter: Waiter) -> bool {
        let bytes = update.len();
        let fits = self.queued.back().is_some_and(|b| b.has_room_for(bytes));
        if !fits {
            self.queued.push_back(Batch::default());
        }
        // Just made sure there is a last batch.
        if let Some(batch) = self.queued.back_mut() {
            batch.updates.push(update);
            batch.changes.extend(changes);
            batch.waiters.push(waiter);
            batch.bytes = batch.bytes.saturating_add(bytes);
        }
        !self.in_flight
    }

    /// The next batch to commit, if none is in flight; it is in flight from now.
    pub fn start(&mut self) -> Option<Batch> {
        if self.in_flight {
            return None;
        }
        let batch = self.queued.pop_front()?;
        self.in_flight = true;
        Some(batch)
    }

    /// The batch in flight was committed (or failed and was answered).
    pub fn finished(&mut self) {
        self.in_flight = false;
    }

    /// Nothing is being committed or waiting to be.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        !self.in_flight && self.queued.is_empty()
    }

    /// Answers every queued writer with `error` (their writes were rolled back).
    pub fn fail_all(&mut self, error: &SpaceRequestError) {
        for batch in std::mem::take(&mut self.queued) {
            batch.answer(&Err(error.clone_for_waiters()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue with a commit in flight.
    fn busy() -> CommitQueue {
        CommitQueue {
            in_flight: true,
            ..CommitQueue::default()
        }
    }

    fn waiter() -> (Waiter, oneshot::Receiver<Result<(), SpaceRequestError>>) {
        oneshot::channel()
    }

    #[test]
    fn a_lone_write_starts_a_commit_at_once_and_later_ones_wait_for_the_next() {
        let mut q = CommitQueue::default();
        let (w, _r) = waiter();
        assert!(q.push(vec![1], Changes::default(), w));
        let first = q.start().unwrap();
        assert_eq!(first.len(), 1);
        // While it is in flight, writes gather in one batch and start nothing.
        let mut receivers = vec![];
        for i in 0..5u8 {
            let (w, r) = waiter();
            receivers.push(r);
            assert!(!q.push(vec![i], Changes::default(), w));
        }
        assert!(q.start().is_none(), "one commit at a time");
        q.finished();
        let second = q.start().unwrap();
        assert_eq!(second.len(), 5);
        assert!(!q.is_idle());
        second.answer(&Ok(()));
        q.finished();
        assert!(q.is_idle());
        for mut r in receivers {
            assert!(matches!(r.try_recv(), Ok(Ok(()))));
        }
    }

    #[test]
    fn batches_close_at_their_op_and_byte_limits() {
        let mut q = busy();
        for _ in 0..MAX_BATCH_OPS + 1 {
            let (w, _) = waiter();
            q.push(vec![0; 10], Changes::default(), w);
        }
        assert_eq!(q.queued.len(), 2);
        assert_eq!(q.queued[0].len(), MAX_BATCH_OPS);
        let mut q = busy();
        for _ in 0..3 {
            let (w, _) = waiter();
            q.push(vec![0; MAX_BATCH_BYTES / 2], Changes::default(), w);
        }
        assert_eq!(
            q.queued.len(),
            2,
            "two halves fill a batch; the third starts the next"
        );
        // A write larger than the limit is a batch of its own.
        let (w, _) = waiter();
        q.push(vec![0; MAX_BATCH_BYTES + 1], Changes::default(), w);
        assert_eq!(q.queued.len(), 3);
        assert_eq!(q.queued[2].len(), 1);
    }

    #[test]
    fn a_failure_answers_every_queued_writer_with_the_error() {
        let mut q = busy();
        let mut receivers = vec![];
        for _ in 0..3 {
            let (w, r) = waiter();
            receivers.push(r);
            q.push(vec![1], Changes::default(), w);
        }
        q.fail_all(&SpaceRequestError::Storage("disk full".into()));
        for mut r in receivers {
            match r.try_recv() {
                Ok(Err(SpaceRequestError::Storage(m))) => assert_eq!(m, "disk full"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn merged_updates_apply_as_the_writes_did() {
        use yrs::updates::decoder::Decode;
        use yrs::{Doc, GetString, Text, Transact, Update};
        let doc = Doc::with_client_id(1);
        let text = doc.get_or_insert_text("t");
        let mut batch = Batch::default();
        for piece in ["a", "b", "c"] {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, piece);
            batch.updates.push(txn.encode_update_v1());
        }
        let merged = batch.merged_update().unwrap();
        let replica = Doc::with_client_id(2);
        let t2 = replica.get_or_insert_text("t");
        replica
            .transact_mut()
            .apply_update(Update::decode_v1(&merged).unwrap())
            .unwrap();
        assert_eq!(t2.get_string(&replica.transact()), "abc");
    }
}
