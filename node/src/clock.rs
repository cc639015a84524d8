//! The production wall clock handed to the node: `SystemTime`, in Unix milliseconds. Only
//! the binary reads the system time; the actors get it through `echo_actors::types::Clock`.

use std::time::{SystemTime, UNIX_EPOCH};

use echo_actors::types::Clock;

/// [`Clock`] on the operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as 0 rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plausible_time() {
        // 2020-01-01 in Unix milliseconds.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
