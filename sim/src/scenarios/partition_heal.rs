//! Partition and heal: four peers share a space with objects and a text document that the
//! owner created. In a few rounds the network splits (two-way partitions of a random split,
//! one-way partitions, held links, loss), and peers on every side edit the same fields of the
//! same objects and insert into the same text. Each round ends healed; at the end all peers
//! must hold identical objects and text, with every acknowledged token present once.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("partition-heal", seed, opts, 4, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);

    let rounds = 2 + c.below(3);
    for round in 0..rounds {
        c.event(format!("round {round}"));
        for _ in 0..3 {
            c.chaos();
        }
        if c.active.two_way.is_empty() {
            let split = c.below(all.len() as u64 - 1) as usize + 1;
            let (a, b) = all.split_at(split);
            c.partition(a, b);
        }
        let writes = 6 + c.below(12);
        for _ in 0..writes {
            let node = c.pick(&c.live()).unwrap_or(0);
            c.random_write(node, &objects, &texts);
            let pause = c.below(800);
            c.run_for(pause);
        }
        c.heal_network();
        c.restart_due();
        let settle = c.below(8_000);
        c.run_for(settle);
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
