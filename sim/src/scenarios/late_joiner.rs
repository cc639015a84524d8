//! Late joiner: three peers build a long history (adds, patches, deletes, text) under the
//! run's faults; then a new peer starts, the owner adds its identity by key, it joins, and it
//! must catch up on everything, become writable, and converge with the rest.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("late-joiner", seed, opts, 3, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 3);
    let history = 40 + c.below(60);
    for _ in 0..history {
        if c.below(4) == 0 {
            c.chaos();
        }
        if let Some(n) = c.pick(&c.live_members()) {
            c.random_write(n, &objects, &texts);
        }
        let pause = c.below(200);
        c.run_for(pause);
    }
    c.heal_network();
    c.restart_due();
    let late = c.add_node();
    c.event(format!("late joiner {} arrives", c.nodes[late].name));
    let owner_up = c.nodes[0].up;
    if !owner_up {
        c.restart(0);
    }
    if c.create_identity(late) && c.add_member(0, late) && c.join(late) {
        if !c.wait_writable(late, ADMIT_BOUND_MS) {
            c.violation("liveness", "the late joiner never became writable");
        }
        for _ in 0..5 {
            c.random_write(late, &objects, &texts);
        }
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
