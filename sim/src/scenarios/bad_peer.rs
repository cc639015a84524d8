//! Bad peer: two peers share a space; a third is added and joins while cut off from them, so
//! it has no control state yet and cannot refuse anyone. A non-member host ("mallory",
//! see `adversary`) keeps dialing all three with the real transport, sends Hellos with its
//! own or mismatched device credentials, and pushes forged, wrongly signed and unadmitted
//! blocks. Then the newcomer reaches the others. No honest peer may ever store a block of
//! mallory's, honest work goes on, and the members converge.

use std::rc::Rc;

use echo_actors::types::PublicKey;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::adversary::{self, BadPeer};
use crate::harness::{Cluster, Topology};

fn drain(c: &mut Cluster, peer: &BadPeer) {
    let lines: Vec<String> = peer.log.borrow_mut().drain(..).collect();
    for line in lines {
        c.event(line);
    }
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("bad-peer", seed, opts, 3, Topology::Mesh);
    let newcomer = c.nodes.len() - 1;
    let members: Vec<usize> = (0..newcomer).collect();
    if !c.form_space(&members, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);
    let Some(space) = c.space.as_deref().and_then(|s| s.parse::<PublicKey>().ok()) else {
        return c.finish();
    };
    let targets = c.nodes.iter().map(|n| n.addr).collect();
    let peer = Rc::new(BadPeer::new(seed, space, targets));
    c.forbid_feed(peer.control.public());
    c.forbid_feed(peer.data.public());
    let software = peer.clone();
    c.host("mallory", move || adversary::software(software.clone()));

    c.partition(&[newcomer], &members);
    if !(c.create_identity(newcomer) && c.add_member(0, newcomer) && c.join(newcomer)) {
        return c.finish();
    }
    let attack_ms = 10_000 + c.below(20_000);
    let until = c.now() + attack_ms;
    while c.now() < until {
        if let Some(n) = c.pick(&members) {
            c.random_write(n, &objects, &texts);
        }
        let pause = c.below(2_000);
        c.run_for(pause);
        drain(&mut c, &peer);
    }
    c.heal_network();
    if !c.wait_writable(newcomer, ADMIT_BOUND_MS) {
        c.violation("liveness", "the newcomer never became writable");
    }
    c.random_write(newcomer, &objects, &texts);
    c.liveness(LIVENESS_BOUND_MS, &texts);
    drain(&mut c, &peer);
    c.finish()
}
