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
//! Coalescing (typing): a *streamed* write, one whose writer goes on without waiting for
//! the answer (a Yjs client's update), that finds the queue idle less than the coalescing
//! window after the last commit started is held until the window is over, gathering the
//! edits that follow it into the same block ([`Next::Hold`]). The window is short and
//! bounded ([`MAX_COALESCE`]; [`DEFAULT_COALESCE`]; zero turns it off), so it bounds the
//! latency added to such a write; a write that arrives after a quiet window, any awaited
//! write (the API's, which would otherwise be slowed to one per window), and a full batch
//! commit at once. The queue reads no clock: the caller passes `now`.
//!
//! Failure: a commit that fails has been applied in memory but not stored, and so have the
//! batches queued behind it (they may build on it); the space rebuilds itself from the store
//! and every one of those writers is answered with the error ([`CommitQueue::fail_all`]).
//! Memory therefore never runs ahead of the feeds for longer than a commit, and never
//! across a failure.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::SpaceRequestError;
use crate::db::Changes;

/// Most writes in one batch.
pub const MAX_BATCH_OPS: usize = 1024;
/// Most bytes of Yrs updates in one batch (a lone larger write is a batch of its own).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// The coalescing window of a node that is not told otherwise.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(20);
/// The longest coalescing window allowed (what it may add to a streamed write's latency).
pub const MAX_COALESCE: Duration = Duration::from_millis(200);

/// Whether the writer waits for the answer before its next write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// The API's writes: the caller waits; never held.
    Awaited,
    /// A Yjs client's updates: the client goes on; may be held for the window.
    Streamed,
}

/// What the caller does after [`CommitQueue::push`] or [`CommitQueue::timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Start a commit now ([`CommitQueue::start`]).
    Start,
    /// Call [`CommitQueue::timer`] at this instant.
    Hold(Instant),
    /// Nothing: a commit is in flight (its end starts the next) or a timer is set.
    Wait,
}

/// How a writer hears that its batch is durable (or failed).
pub(crate) type Waiter = oneshot::Sender<Result<(), SpaceRequestError>>;

/// Writes that become one block.
#[derive(Default)]
pub(crate) struct Batch {
    pub updates: Vec<Vec<u8>>,
    pub changes: Changes,
    pub waiters: Vec<Waiter>,
    bytes: usize,
    /// Holds a write whose writer waits for it (never held for the window).
    awaited: bool,
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
pub(crate) struct CommitQueue {
    queued: VecDeque<Batch>,
    in_flight: bool,
    window: Duration,
    /// When the last commit started.
    last_start: Option<Instant>,
    /// A `Hold` is outstanding (its timer is set).
    held: bool,
}

impl Default for CommitQueue {
    fn default() -> Self {
        CommitQueue::new(DEFAULT_COALESCE)
    }
}

impl CommitQueue {
    /// A queue with this coalescing window (capped at [`MAX_COALESCE`]).
    pub fn new(window: Duration) -> Self {
        CommitQueue {
            queued: VecDeque::new(),
            in_flight: false,
            window: window.min(MAX_COALESCE),
            last_start: None,
            held: false,
        }
    }

    /// Adds a write (already applied in memory) and says what to do next.
    pub fn push(
        &mut self,
        now: Instant,
        kind: WriteKind,
        update: Vec<u8>,
        changes: Changes,
        waiter: Waiter,
    ) -> Next {
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
            batch.awaited |= kind == WriteKind::Awaited;
        }
        self.next(now)
    }

    /// A `Hold` came due.
    pub fn timer(&mut self, now: Instant) -> Next {
        self.held = false;
        self.next(now)
    }

    /// What to do now: nothing while a commit is in flight or nothing waits; start at once
    /// for a waiting writer or a full batch; else start, or hold until the window after the
    /// last start is over.
    fn next(&mut self, now: Instant) -> Next {
        let Some(front) = self.queued.front() else {
            return Next::Wait;
        };
        if self.in_flight {
            return Next::Wait;
        }
        if front.awaited || self.queued.len() > 1 {
            return Next::Start;
        }
        match self.last_start.map(|t| t + self.window) {
            Some(end) if now < end => {
                if self.held {
                    Next::Wait
                } else {
                    self.held = true;
                    Next::Hold(end)
                }
            }
            _ => Next::Start,
        }
    }

    /// The next batch to commit, if none is in flight; it is in flight from `now`.
    pub fn start(&mut self, now: Instant) -> Option<Batch> {
        if self.in_flight {
            return None;
        }
        let batch = self.queued.pop_front()?;
        self.in_flight = true;
        self.last_start = Some(now);
        Some(batch)
    }

    /// The batch in flight was committed (or failed and was answered); says what to do
    /// about the writes that arrived meanwhile.
    pub fn finished(&mut self, now: Instant) -> Next {
        self.in_flight = false;
        self.next(now)
    }

    /// Nothing is being committed or waiting to be.
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

    fn now() -> Instant {
        Instant::now()
    }

    fn waiter() -> (Waiter, oneshot::Receiver<Result<(), SpaceRequestError>>) {
        oneshot::channel()
    }

    #[test]
    fn a_lone_write_starts_a_commit_at_once_and_later_ones_wait_for_the_next() {
        let mut q = CommitQueue::default();
        let (w, _r) = waiter();
        assert_eq!(
            q.push(now(), WriteKind::Awaited, vec![1], Changes::default(), w),
            Next::Start
        );
        let first = q.start(now()).unwrap();
        assert_eq!(first.len(), 1);
        // While it is in flight, writes gather in one batch and start nothing.
        let mut receivers = vec![];
        for i in 0..5u8 {
            let (w, r) = waiter();
            receivers.push(r);
            assert_eq!(
                q.push(now(), WriteKind::Awaited, vec![i], Changes::default(), w),
                Next::Wait
            );
        }
        assert!(q.start(now()).is_none(), "one commit at a time");
        q.finished(now());
        let second = q.start(now()).unwrap();
        assert_eq!(second.len(), 5);
        assert!(!q.is_idle());
        second.answer(&Ok(()));
        q.finished(now());
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
            q.push(
                now(),
                WriteKind::Awaited,
                vec![0; 10],
                Changes::default(),
                w,
            );
        }
        assert_eq!(q.queued.len(), 2);
        assert_eq!(q.queued[0].len(), MAX_BATCH_OPS);
        let mut q = busy();
        for _ in 0..3 {
            let (w, _) = waiter();
            q.push(
                now(),
                WriteKind::Awaited,
                vec![0; MAX_BATCH_BYTES / 2],
                Changes::default(),
                w,
            );
        }
        assert_eq!(
            q.queued.len(),
            2,
            "two halves fill a batch; the third starts the next"
        );
        // A write larger than the limit is a batch of its own.
        let (w, _) = waiter();
        q.push(
            now(),
            WriteKind::Awaited,
            vec![0; MAX_BATCH_BYTES + 1],
            Changes::default(),
            w,
        );
        assert_eq!(q.queued.len(), 3);
        assert_eq!(q.queued[2].len(), 1);
    }

    /// A queue whose last commit started at `t0` and is done.
    fn after_a_commit_at(t0: Instant, window: Duration) -> CommitQueue {
        let mut q = CommitQueue::new(window);
        let (w, _) = waiter();
        assert_eq!(
            q.push(t0, WriteKind::Streamed, vec![0], Changes::default(), w),
            Next::Start
        );
        q.start(t0).unwrap().answer(&Ok(()));
        assert_eq!(q.finished(t0 + MS), Next::Wait);
        q
    }

    fn push_streamed(q: &mut CommitQueue, at: Instant) -> Next {
        let (w, _) = waiter();
        q.push(at, WriteKind::Streamed, vec![1], Changes::default(), w)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_streamed_edit_soon_after_a_commit_is_held_to_the_window_end_and_gathers_the_next() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, 20 * MS);
        assert_eq!(push_streamed(&mut q, t0 + 2 * MS), Next::Hold(t0 + 20 * MS));
        // One timer for the window: later edits just join.
        assert_eq!(push_streamed(&mut q, t0 + 5 * MS), Next::Wait);
        assert_eq!(push_streamed(&mut q, t0 + 19 * MS), Next::Wait);
        assert_eq!(q.timer(t0 + 20 * MS), Next::Start);
        assert_eq!(
            q.start(t0 + 20 * MS).unwrap().len(),
            3,
            "one block for the three"
        );
    }

    #[test]
    fn a_streamed_edit_after_a_quiet_window_commits_at_once() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, 20 * MS);
        assert_eq!(push_streamed(&mut q, t0 + 20 * MS), Next::Start);
        let mut fresh = CommitQueue::new(20 * MS);
        assert_eq!(
            push_streamed(&mut fresh, t0),
            Next::Start,
            "the first write ever"
        );
    }

    #[test]
    fn an_awaited_write_is_never_held_and_takes_the_held_edits_along() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, 20 * MS);
        let (w, _) = waiter();
        assert_eq!(
            q.push(t0 + MS, WriteKind::Awaited, vec![1], Changes::default(), w),
            Next::Start
        );
        q.start(t0 + MS).unwrap();
        q.finished(t0 + MS);
        assert_eq!(push_streamed(&mut q, t0 + 2 * MS), Next::Hold(t0 + 21 * MS));
        let (w, _) = waiter();
        assert_eq!(
            q.push(
                t0 + 3 * MS,
                WriteKind::Awaited,
                vec![1],
                Changes::default(),
                w
            ),
            Next::Start
        );
        assert_eq!(q.start(t0 + 3 * MS).unwrap().len(), 2);
        // The held edit's timer finds the commit in flight (its end starts what follows).
        assert_eq!(q.timer(t0 + 21 * MS), Next::Wait);
    }

    #[test]
    fn a_timer_that_comes_before_the_window_of_a_later_commit_holds_again() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, 20 * MS);
        assert_eq!(push_streamed(&mut q, t0 + MS), Next::Hold(t0 + 20 * MS));
        // An awaited write commits meanwhile, at t0 + 10 ms, with the held edit.
        let (w, _) = waiter();
        q.push(
            t0 + 10 * MS,
            WriteKind::Awaited,
            vec![1],
            Changes::default(),
            w,
        );
        q.start(t0 + 10 * MS).unwrap();
        q.finished(t0 + 10 * MS);
        // The first hold's timer is still set: the edit waits for it.
        assert_eq!(push_streamed(&mut q, t0 + 15 * MS), Next::Wait);
        // It comes due: the window now ends 20 ms after the later commit.
        assert_eq!(q.timer(t0 + 20 * MS), Next::Hold(t0 + 30 * MS));
        assert_eq!(q.timer(t0 + 30 * MS), Next::Start);
    }

    #[test]
    fn streamed_edits_gathered_during_a_commit_wait_for_the_window_and_awaited_ones_do_not() {
        let t0 = now();
        let mut q = CommitQueue::new(20 * MS);
        assert_eq!(push_streamed(&mut q, t0), Next::Start);
        q.start(t0).unwrap();
        assert_eq!(push_streamed(&mut q, t0 + MS), Next::Wait, "in flight");
        // The commit ends 5 ms in: the edits behind it wait for the window's end.
        assert_eq!(q.finished(t0 + 5 * MS), Next::Hold(t0 + 20 * MS));
        assert_eq!(q.timer(t0 + 20 * MS), Next::Start);
        q.start(t0 + 20 * MS).unwrap();
        // An awaited write behind a commit starts as soon as the commit ends.
        let (w, _) = waiter();
        q.push(
            t0 + 21 * MS,
            WriteKind::Awaited,
            vec![1],
            Changes::default(),
            w,
        );
        assert_eq!(q.finished(t0 + 22 * MS), Next::Start);
    }

    #[test]
    fn no_window_never_holds_and_a_full_batch_starts_at_once() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, Duration::ZERO);
        assert_eq!(push_streamed(&mut q, t0), Next::Start);
        let mut q = after_a_commit_at(t0, 20 * MS);
        assert_eq!(push_streamed(&mut q, t0 + MS), Next::Hold(t0 + 20 * MS));
        for _ in 1..MAX_BATCH_OPS {
            assert_eq!(push_streamed(&mut q, t0 + MS), Next::Wait);
        }
        assert_eq!(
            push_streamed(&mut q, t0 + MS),
            Next::Start,
            "the batch is full"
        );
        assert_eq!(q.start(t0 + MS).unwrap().len(), MAX_BATCH_OPS);
    }

    #[test]
    fn the_window_is_capped() {
        let t0 = now();
        let mut q = after_a_commit_at(t0, Duration::from_secs(10));
        assert_eq!(
            push_streamed(&mut q, t0 + MS),
            Next::Hold(t0 + MAX_COALESCE)
        );
    }

    #[test]
    fn a_failure_answers_every_queued_writer_with_the_error() {
        let mut q = busy();
        let mut receivers = vec![];
        for _ in 0..3 {
            let (w, r) = waiter();
            receivers.push(r);
            q.push(now(), WriteKind::Awaited, vec![1], Changes::default(), w);
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
