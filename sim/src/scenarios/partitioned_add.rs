//! Added while partitioned: three peers share a space; a fourth starts cut off from all of
//! them. The owner adds its identity and it joins by key while still partitioned, so it
//! cannot learn its membership and its writes are refused. The others keep writing. Then it
//! reaches one peer only (the others stay cut off from it): membership and data must flow
//! through that peer, it must become writable, and finally everyone converges.

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;
use serde_json::json;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("partitioned-add", seed, opts, 3, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let newcomer = c.add_node();
    c.isolate(newcomer);
    if !(c.create_identity(newcomer) && c.add_member(0, newcomer) && c.join(newcomer)) {
        return c.finish();
    }
    let early = c.add(newcomer, json!({"@type": "early"}));
    if early.is_some() {
        c.violation(
            "authorization",
            "a member that cannot have seen its membership could write",
        );
    }
    let writes = 10 + c.below(20);
    for _ in 0..writes {
        if let Some(n) = c.pick(&all) {
            c.random_write(n, &objects, &texts);
        }
        let pause = c.below(1_000);
        c.run_for(pause);
    }
    let bridge = c.pick(&all).unwrap_or(0);
    let others: Vec<usize> = all.iter().copied().filter(|&n| n != bridge).collect();
    c.heal_network();
    c.partition(&[newcomer], &others);
    c.event(format!(
        "{} reaches only {}",
        c.nodes[newcomer].name, c.nodes[bridge].name
    ));
    if !c.wait_writable(newcomer, ADMIT_BOUND_MS) {
        c.violation(
            "liveness",
            "the newcomer never became writable through its one peer",
        );
    }
    for _ in 0..5 {
        c.random_write(newcomer, &objects, &texts);
    }
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}
