//! Offline writer: three peers share a space. One of them goes offline for a long time
//! (often far beyond QUIC's idle timeout), keeps writing to the shared objects and text,
//! and may crash while away; the others keep writing too. Then it comes back: everything
//! acknowledged on either side must end up everywhere, and all peers must agree.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("offline-writer", seed, opts, 3, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 3);

    let writer = c.pick(&all).unwrap_or(0);
    let offline_ms = 5_000 + c.below(60_000);
    c.event(format!(
        "{} goes offline for {offline_ms} ms",
        c.nodes[writer].name
    ));
    c.isolate(writer);
    let back = c.now() + offline_ms;
    while c.now() < back {
        let node = c.pick(&c.live()).unwrap_or(writer);
        c.random_write(node, &objects, &texts);
        if node == writer && c.below(1000) < u64::from(c.faults.crash_per_mille) {
            c.crash(writer);
            let pause = c.below(5_000);
            c.run_for(pause);
            c.restart(writer);
        }
        let pause = c.below(1_500);
        c.run_for(pause);
    }
    c.event(format!("{} comes back", c.nodes[writer].name));
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
