//! Scenarios: each a short story in its own file, run from a seed.

mod crash_restart;

use crate::checkers::Violation;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: &'static str,
    pub seed: u64,
    /// Simulated time the run covered.
    pub simulated_ms: u64,
    pub trace_hash: String,
    pub trace_events: usize,
    /// Trace lines, when asked for.
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A named scenario.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(seed: u64, keep_trace: bool) -> Outcome,
}

/// Every scenario, in the order `list` shows them.
pub const SCENARIOS: &[Scenario] = &[Scenario {
    name: "crash-restart",
    about: "one node writes objects and text; it crashes at random moments (unflushed writes lost) and restarts; every acknowledged write must survive",
    run: crash_restart::run,
}];

/// Runs `name` with `seed`; `None` if there is no such scenario.
pub fn run(name: &str, seed: u64, keep_trace: bool) -> Option<Outcome> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .map(|s| (s.run)(seed, keep_trace))
}
