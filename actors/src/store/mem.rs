//! In-memory store for the simulator, with a crash model: what was written since the last
//! flush is lost by [`MemStore::crash`], exactly as an unflushed disk write may be.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Store, StoreError, WriteBatch, WriteOp};

#[derive(Default)]
struct Inner {
    /// What survives a crash.
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What reads see now.
    current: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Batches written since the last flush, in order.
    pending: Vec<WriteBatch>,
}

/// In-memory [`Store`]; share it through an `Arc` across a simulated restart.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every write since the last flush, as a power cut would.
    pub fn crash(&self) {
        let mut inner = self.lock();
        inner.pending.clear();
        inner.current = inner.durable.clone();
    }

    /// Number of batches written but not yet flushed.
    pub fn unflushed(&self) -> usize {
        self.lock().pending.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-call; the maps are
        // always left consistent (every mutation is a single insert/remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        inner.pending.push(batch);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let pending = std::mem::take(&mut inner.pending);
        for batch in &pending {
            apply(&mut inner.durable, batch);
        }
        Ok(())
    }
}
