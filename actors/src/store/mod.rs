//! Storage behind one small trait: an ordered byte keyspace with atomic batches and an
//! explicit durability point.
//!
//! Contract: [`Store::write`] applies a whole batch or nothing; it is visible to reads at
//! once but durable only after [`Store::flush`] returns. Callers acknowledge nothing to a
//! user before that flush. [`SledStore`] is the production store; [`MemStore`] is the
//! simulator's, whose [`MemStore::crash`] drops everything written since the last flush.
//! Both pass the same conformance suite (`conformance.rs`).

mod keys;
mod mem;
mod sled_store;

#[cfg(test)]
mod conformance;

pub use keys::Key;
pub use mem::MemStore;
pub use sled_store::SledStore;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("store at {path} is in use by another process (is a daemon already running on this data dir?)")]
    Locked { path: String },
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("stored value under {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Key-value pairs in key order, as a prefix scan returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
}

/// Operations applied atomically by [`Store::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Put(key.into(), value.into()));
        self
    }
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Remove(key.into()));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The answer of [`Store::flush_async`].
pub type FlushFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// An ordered byte keyspace with atomic batches and explicit flush.
pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All entries whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError>;
    /// Applies the whole batch or nothing.
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Makes every earlier write durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Makes every write made before this call durable, without blocking the caller's
    /// thread: the future resolves once they are. The default flushes at once (an in-memory
    /// store, whose crash model and determinism must not depend on another thread).
    fn flush_async(&self) -> FlushFuture {
        let result = self.flush();
        Box::pin(async move { result })
    }

    /// Convenience: a one-op batch.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(batch)
    }
}
