//! Explicit schedules of writes and faults, for property tests that shrink a failing run to
//! a minimal schedule, and for the `random-schedule` scenario (a schedule drawn from the
//! seed). A schedule runs as a safety phase (its steps, in order) followed by the usual
//! liveness phase and checkers.

use rand_core::RngCore;

use crate::harness::{Cluster, ClusterConfig, Topology};
use crate::scenarios::{Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS, TICK_MS};

/// One step of a schedule. Node numbers are taken modulo the cluster size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A random write (patch, text insert, add or delete) by a node.
    Write { node: u8 },
    /// Two-way partition: nodes whose bit is set in `mask` on one side.
    Partition { mask: u8 },
    /// Packets from one node to another are dropped.
    OneWay { from: u8, to: u8 },
    /// Every network fault undone.
    Heal,
    /// A node crashes (unflushed writes lost).
    Crash { node: u8 },
    /// A crashed node restarts.
    Restart { node: u8 },
    /// Let the simulation run.
    Wait { ms: u16 },
}

/// A cluster size and the steps to run on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub nodes: u8,
    pub steps: Vec<Step>,
}

impl Schedule {
    /// A random schedule of `len` steps on `nodes` peers.
    pub fn generate(seed: u64, nodes: u8, len: usize) -> Schedule {
        let mut rng = crate::rng::stream(seed, crate::rng::SCHEDULE);
        let mut below = |n: u32| (rng.next_u32() % n) as u8;
        let steps = (0..len)
            .map(|_| match below(12) {
                0..=4 => Step::Write { node: below(8) },
                5 => Step::Partition { mask: below(255) },
                6 => Step::OneWay {
                    from: below(8),
                    to: below(8),
                },
                7 => Step::Heal,
                8 => Step::Crash { node: below(8) },
                9 => Step::Restart { node: below(8) },
                _ => Step::Wait {
                    ms: u16::from(below(200)) * 50,
                },
            })
            .collect();
        Schedule { nodes, steps }
    }
}

/// Runs `schedule` as scenario `name` with `seed`.
pub fn run_schedule(
    name: &'static str,
    seed: u64,
    schedule: &Schedule,
    opts: &RunOptions,
) -> Outcome {
    let n = usize::from(schedule.nodes.max(2));
    let config = ClusterConfig {
        nodes: n,
        topology: Topology::Mesh,
        tick_ms: TICK_MS,
    };
    let mut c = Cluster::new(name, seed, opts, config);
    let all: Vec<usize> = (0..n).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    for step in &schedule.steps {
        c.event(format!("schedule: {step:?}"));
        match *step {
            Step::Write { node } => {
                let node = usize::from(node) % n;
                if c.nodes[node].up {
                    c.random_write(node, &objects, &texts);
                }
            }
            Step::Partition { mask } => {
                let (a, b): (Vec<usize>, Vec<usize>) =
                    all.iter().partition(|&&i| mask & (1 << i) != 0);
                if !a.is_empty() && !b.is_empty() {
                    c.partition(&a, &b);
                }
            }
            Step::OneWay { from, to } => {
                let (f, t) = (usize::from(from) % n, usize::from(to) % n);
                if f != t {
                    c.partition_oneway(f, t);
                }
            }
            Step::Heal => c.heal_network(),
            Step::Crash { node } => c.crash(usize::from(node) % n),
            Step::Restart { node } => c.restart(usize::from(node) % n),
            Step::Wait { ms } => c.run_for(u64::from(ms)),
        }
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
