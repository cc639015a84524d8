//! In-memory store for the simulator, with a crash model: what was written since the last
//! flush is lost by [`MemStore::crash`], exactly as an unflushed disk write may be.
//!
//! A flush is instantaneous by default. [`MemStore::with_flush_delay`] gives
//! [`Store::flush_async`] a duration, slept on tokio's clock (simulated, hence
//! deterministic, on a turmoil host): a crash during that window loses the writes the
//! flush was about to make durable, which is the window between a write and its
//! acknowledgement that a real disk's sync opens.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{FlushFuture, Store, StoreError, WriteBatch, WriteOp};

#[derive(Default)]
struct Inner {
    /// What survives a crash.
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What reads see now.
    current: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Batches written since the last flush, in order, each with its write number (1, 2,
    /// ... over the store's life): always the newest written batches.
    pending: Vec<(u64, WriteBatch)>,
    /// Number of batches ever written.
    written: u64,
    /// Number of crashes so far.
    crashes: u64,
    /// Write numbers lost by each crash that lost any (first, last).
    lost: Vec<(u64, u64)>,
}

impl Inner {
    /// Makes durable every pending batch numbered `through` or lower.
    fn flush_through(&mut self, through: u64) {
        let n = self
            .pending
            .iter()
            .take_while(|(seq, _)| *seq <= through)
            .count();
        let flushed: Vec<(u64, WriteBatch)> = self.pending.drain(..n).collect();
        for (_, batch) in &flushed {
            apply(&mut self.durable, batch);
        }
    }
}

/// In-memory [`Store`]; share it through an `Arc` across a simulated restart.
#[derive(Default)]
pub struct MemStore {
    inner: Arc<Mutex<Inner>>,
    /// How long [`Store::flush_async`] takes (zero: it flushes at once).
    flush_delay: Duration,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A poisoned lock only means another thread panicked mid-call; the maps are always
    // left consistent (every mutation is a single insert/remove).
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose [`Store::flush_async`] sleeps `delay` on tokio's clock before it makes
    /// the writes made before the call durable (and must therefore be awaited inside a
    /// tokio runtime with time enabled). [`Store::flush`] stays instantaneous.
    pub fn with_flush_delay(delay: Duration) -> Self {
        MemStore {
            inner: Arc::default(),
            flush_delay: delay,
        }
    }

    /// How long an asynchronous flush takes.
    pub fn flush_delay(&self) -> Duration {
        self.flush_delay
    }

    /// Forgets every write since the last flush, as a power cut would. An asynchronous
    /// flush under way when the store crashes fails if any write it covered was lost.
    pub fn crash(&self) {
        let mut inner = self.lock();
        if let (Some((first, _)), Some((last, _))) = (inner.pending.first(), inner.pending.last()) {
            let lost = (*first, *last);
            inner.lost.push(lost);
        }
        inner.pending.clear();
        inner.current = inner.durable.clone();
        inner.crashes += 1;
    }

    /// Number of batches written but not yet flushed.
    pub fn unflushed(&self) -> usize {
        self.lock().pending.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &WriteBatch) {
    for op in &batch.ops {
        match op {
            WriteOp::Put(k, v) => {
                map.insert(k.clone(), v.clone());
            }
            WriteOp::Remove(k) => {
                map.remove(k);
            }
        }
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().current.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .current
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        apply(&mut inner.current, &batch);
        inner.written += 1;
        let seq = inner.written;
        inner.pending.push((seq, batch));
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let through = inner.written;
        inner.flush_through(through);
        Ok(())
    }

    /// Without a delay, flushes at once. With one, sleeps it on tokio's clock, then makes
    /// durable the batches written before this call (not later ones); if the store crashed
    /// meanwhile and lost any of them, fails instead.
    fn flush_async(&self) -> FlushFuture {
        if self.flush_delay.is_zero() {
            let result = self.flush();
            return Box::pin(async move { result });
        }
        let (first, through, crashes) = {
            let inner = self.lock();
            let first = inner
                .pending
                .first()
                .map_or(inner.written + 1, |(seq, _)| *seq);
            (first, inner.written, inner.crashes)
        };
        let inner = self.inner.clone();
        let delay = self.flush_delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let mut inner = lock(&inner);
            if inner.crashes != crashes
                && inner.lost.iter().any(|&(a, b)| a <= through && b >= first)
            {
                return Err(StoreError::Io(
                    "the store crashed before the flush completed; unflushed writes are lost"
                        .into(),
                ));
            }
            inner.flush_through(through);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures_util::FutureExt;

    const DELAY: Duration = Duration::from_millis(20);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn without_a_delay_an_async_flush_is_done_at_once() {
        let store = MemStore::new();
        store.put(b"k", b"v").unwrap();
        let flushed = store.flush_async().now_or_never();
        assert!(matches!(flushed, Some(Ok(()))));
        assert_eq!(store.unflushed(), 0);
        store.crash();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_crash_before_a_delayed_flush_resolves_loses_the_write() {
        runtime().block_on(async {
            let store = MemStore::with_flush_delay(DELAY);
            store.put(b"k", b"v").unwrap();
            let mut flush = store.flush_async();
            assert!((&mut flush).now_or_never().is_none(), "still sleeping");
            assert_eq!(store.unflushed(), 1);
            store.crash();
            assert_eq!(store.get(b"k").unwrap(), None);
            assert!(flush.await.is_err(), "a flush whose writes were lost fails");
            assert_eq!(store.get(b"k").unwrap(), None);
        });
    }

    #[test]
    fn a_resolved_delayed_flush_survives_a_crash() {
        runtime().block_on(async {
            let store = MemStore::with_flush_delay(DELAY);
            store.put(b"k", b"v").unwrap();
            store.flush_async().await.unwrap();
            assert_eq!(store.unflushed(), 0);
            store.crash();
            assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        });
    }

    #[test]
    fn a_delayed_flush_covers_only_the_writes_made_before_it() {
        runtime().block_on(async {
            let store = MemStore::with_flush_delay(DELAY);
            store.put(b"a", b"1").unwrap();
            let flush = store.flush_async();
            store.put(b"b", b"2").unwrap();
            flush.await.unwrap();
            assert_eq!(store.unflushed(), 1);
            store.crash();
            assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
            assert_eq!(store.get(b"b").unwrap(), None);
        });
    }

    #[test]
    fn a_delayed_flush_of_writes_already_durable_survives_a_crash() {
        runtime().block_on(async {
            let store = MemStore::with_flush_delay(DELAY);
            store.put(b"a", b"1").unwrap();
            let flush = store.flush_async();
            store.flush().unwrap();
            store.put(b"b", b"2").unwrap();
            store.crash();
            flush.await.unwrap();
            assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
            assert_eq!(store.get(b"b").unwrap(), None);
            // Writes after the crash are numbered past the lost one and flush normally.
            store.put(b"c", b"3").unwrap();
            store.flush_async().await.unwrap();
            store.crash();
            assert_eq!(store.get(b"c").unwrap(), Some(b"3".to_vec()));
        });
    }
}
