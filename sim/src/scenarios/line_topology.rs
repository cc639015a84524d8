//! Multi-hop line: peers connect only to their neighbour (static peers n0-n1-n2-...), so
//! membership, admissions and data from one end reach the other only through every peer in
//! between. Both ends and the middle write under the run's loss, latency and crash faults;
//! at the end every peer holds everything.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("line-topology", seed, opts, 4, Topology::Line);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let ends = [0, all.len() - 1, all.len() / 2];
    let steps = 15 + c.below(25);
    for _ in 0..steps {
        c.chaos();
        let live: Vec<usize> = ends.iter().copied().filter(|&n| c.nodes[n].up).collect();
        if let Some(node) = c.pick(&live) {
            c.random_write(node, &objects, &texts);
        }
        let pause = c.below(1_000);
        c.run_for(pause);
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
