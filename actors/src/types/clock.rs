//! The wall clock is injected: actors never read the system time themselves, so the
//! simulator can run them on simulated time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch, from whatever the host says time is.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// A clock that stands still unless advanced: for tests.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    pub fn new(ms: u64) -> Self {
        FixedClock(AtomicU64::new(ms))
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
