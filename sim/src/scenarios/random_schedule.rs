//! Random schedule: a schedule of writes, partitions, one-way partitions, heals, crashes,
//! restarts and waits drawn from the seed (the same generator the proptest shrinks), run as
//! the safety phase before the usual liveness phase.

use super::{Outcome, RunOptions};
use crate::schedule::{run_schedule, Schedule};

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let nodes = opts.nodes.unwrap_or(3).clamp(2, 8) as u8;
    let schedule = Schedule::generate(seed, nodes, 30);
    run_schedule("random-schedule", seed, &schedule, opts)
}
