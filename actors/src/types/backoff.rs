//! [`Backoff`]: the one exponential backoff of the node (dials, static peers, the signaling
//! client, strangers' addresses). It is plain data: the caller adds the returned wait to its
//! own `now` (tokio time), so it stays deterministic under the simulator.

use std::time::Duration;

/// A wait that starts at `start`, doubles on every failure up to `max`, and resets on
/// success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff whose first wait is `start` (clamped to at most `max`).
    pub const fn new(start: Duration, max: Duration) -> Self {
        let start = if start.as_nanos() > max.as_nanos() {
            max
        } else {
            start
        };
        Backoff {
            start,
            max,
            next: start,
        }
    }

    /// The wait the next failure gets.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// A failure: returns the wait before the next try, and doubles the one after.
    pub fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// A success: the next failure waits `start` again.
    pub fn reset(&mut self) {
        self.next = self.start;
    }

    /// Whether no failure has been counted since the last reset.
    pub fn is_reset(&self) -> bool {
        self.next == self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(250 * MS, 1000 * MS);
        let waits: Vec<_> = (0..5).map(|_| b.fail()).collect();
        assert_eq!(waits, [250 * MS, 500 * MS, 1000 * MS, 1000 * MS, 1000 * MS]);
        assert!(!b.is_reset());
        b.reset();
        assert!(b.is_reset());
        assert_eq!(b.fail(), 250 * MS);
    }

    #[test]
    fn a_start_above_the_cap_is_the_cap() {
        let mut b = Backoff::new(5000 * MS, 1000 * MS);
        assert_eq!(b.fail(), 1000 * MS);
    }

    proptest! {
        #[test]
        fn waits_never_shrink_and_stay_within_bounds(start in 1u64..10_000, max in 1u64..100_000, n in 0usize..80) {
            let (start, max) = (start * MS.as_nanos() as u64, max * MS.as_nanos() as u64);
            let mut b = Backoff::new(Duration::from_nanos(start), Duration::from_nanos(max));
            let mut last = Duration::ZERO;
            for _ in 0..n {
                let w = b.fail();
                prop_assert!(w >= last);
                prop_assert!(w <= Duration::from_nanos(max));
                prop_assert!(w >= Duration::from_nanos(start.min(max)));
                last = w;
            }
        }
    }
}
