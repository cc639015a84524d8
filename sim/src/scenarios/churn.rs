//! Churn: three peers start a space; then, while everyone keeps writing, new peers join
//! (added by key, joined, writable after replicating their membership), members leave
//! (graceful stop) and come back, and peers crash (unflushed writes lost) and restart.
//! At the end every peer is back and all agree.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("churn", seed, opts, 3, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let events = 6 + c.below(6);
    for _ in 0..events {
        let live = c.live();
        let down: Vec<usize> = (0..c.nodes.len()).filter(|&n| !c.nodes[n].up).collect();
        match c.below(5) {
            0 if c.nodes.len() < 6 => {
                let n = c.add_node();
                if c.create_identity(n) && c.add_member(0, n) && c.join(n) {
                    c.wait_writable(n, ADMIT_BOUND_MS);
                }
            }
            1 if live.len() > 2 => {
                let others: Vec<usize> = live.iter().copied().filter(|&n| n != 0).collect();
                if let Some(n) = c.pick(&others) {
                    c.stop(n);
                }
            }
            2 if live.len() > 2 => {
                if let Some(n) = c.pick(&live) {
                    c.crash(n);
                }
            }
            _ => {
                if let Some(n) = c.pick(&down) {
                    c.restart(n);
                }
            }
        }
        let writes = 2 + c.below(5);
        for _ in 0..writes {
            if let Some(n) = c.pick(&c.live_members()) {
                c.random_write(n, &objects, &texts);
            }
            let pause = c.below(700);
            c.run_for(pause);
        }
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
