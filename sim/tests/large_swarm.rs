//! A 32-peer swarm that finds itself only through a signaling server (`Topology::Signaling`,
//! no static peers) stays connected, and every peer's writes reach every peer: once after
//! the members joined one after another, and again after every peer restarted at the same
//! moment, so that each found all the others at once. That second case is the one that
//! dialling only the XOR-nearest peers split into two halves of the key space (see
//! `echo_actors::mesh::SwarmCore`).
//!
//! No random faults: the subject is the topology. The standard liveness phase
//! (convergence, verdicts, durability, authorization) runs at the end.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use echo_actors::signal::serve_signal;
use echo_actors::transport::{self, NetEnv, TransportConfig};
use echo_actors::types::KeyPair;
use echo_sim::harness::host::{SIGNAL_HOST, SIGNAL_PORT};
use echo_sim::harness::udp::TurmoilUdp;
use echo_sim::harness::{Cluster, ClusterConfig, Topology};
use echo_sim::scenarios::{LIVENESS_BOUND_MS, TICK_MS};
use echo_sim::RunOptions;
use serde_json::json;

const PEERS: usize = 32;
/// How long every write may take to reach every peer (simulated).
const SPREAD_BOUND_MS: u64 = 60_000;
/// How long a member may take to become writable (simulated).
const ADMIT_BOUND_MS: u64 = 60_000;

/// The signaling host: the library's server on the real transport (its state is in memory;
/// it never crashes here).
async fn signal_server(seed: u64) -> turmoil::Result {
    let socket = TurmoilUdp::bind(SIGNAL_PORT).await?;
    let secret = *blake3::hash(&seed.to_le_bytes()).as_bytes();
    let endpoint = transport::endpoint(
        NetEnv::Injected { socket },
        &KeyPair::from_secret(secret),
        &TransportConfig::new(secret),
    )?;
    let _server = serve_signal(endpoint);
    std::future::pending::<()>().await;
    Ok(())
}

/// Each peer's channels in the shared space, by device key; `None` if a peer did not answer.
fn channels(c: &mut Cluster) -> Option<BTreeMap<String, Vec<String>>> {
    let space = c.space.clone().unwrap();
    let members = c.live_members();
    let pending: Vec<_> = members
        .iter()
        .map(|&n| {
            let space = space.clone();
            c.submit(n, move |h| async move {
                let status = h.status().await.ok()?;
                let peers = status
                    .spaces
                    .into_iter()
                    .find(|s| s.space_key == space)?
                    .peers
                    .into_iter()
                    .map(|p| p.device_key)
                    .collect();
                Some((status.device_key, peers))
            })
        })
        .collect();
    c.wait_all(pending, 5_000)
        .into_iter()
        .map(Option::flatten)
        .collect()
}

/// Groups of peers that reach each other through open channels.
fn components(graph: &BTreeMap<String, Vec<String>>) -> Vec<BTreeSet<String>> {
    let mut left: BTreeSet<&String> = graph.keys().collect();
    let mut parts = Vec::new();
    while let Some(start) = left.pop_first() {
        let mut part = BTreeSet::from([start.clone()]);
        let mut todo = vec![start];
        while let Some(d) = todo.pop() {
            let next = graph.get(d).into_iter().flatten();
            let back = graph
                .iter()
                .filter(|(_, peers)| peers.contains(d))
                .map(|(k, _)| k);
            for peer in next.chain(back) {
                if left.remove(peer) {
                    part.insert(peer.clone());
                    todo.push(peer);
                }
            }
        }
        parts.push(part);
    }
    parts
}

/// Every live member writes one object, one right after another; then every member must hold
/// all of them, and the channels must join all peers into one swarm. Returns the number of
/// channels.
fn everyone_writes(c: &mut Cluster, round: u32) -> usize {
    let members = c.live_members();
    assert_eq!(members.len(), PEERS);
    let mut ids = Vec::new();
    for &n in &members {
        let id = c.add_retry(n, json!({"@type": "round", "round": round, "n": n}), 30_000);
        ids.push(id.unwrap_or_else(|| panic!("round {round}: n{n} could not write")));
    }
    let spread = c.wait_seen(&ids, SPREAD_BOUND_MS);
    let graph = channels(c).expect("every peer reports its channels");
    let sizes: Vec<usize> = components(&graph).iter().map(BTreeSet::len).collect();
    assert!(
        spread,
        "round {round}: not every write reached every peer within {SPREAD_BOUND_MS} ms \
         (the swarm's parts: {sizes:?} peers)"
    );
    assert_eq!(sizes, vec![PEERS], "round {round}: the swarm is split");
    let channels = graph.values().map(Vec::len).sum::<usize>() / 2;
    c.event(format!(
        "round {round}: {PEERS} peers in one swarm, {channels} channels"
    ));
    channels
}

fn run(seed: u64) {
    let started = Instant::now();
    let config = ClusterConfig {
        nodes: PEERS,
        topology: Topology::Signaling,
        tick_ms: TICK_MS,
    };
    let mut c = Cluster::new("large-swarm", seed, &RunOptions::default(), config);
    c.host(SIGNAL_HOST, move || signal_server(seed));
    let all: Vec<usize> = (0..PEERS).collect();
    assert!(
        c.form_space(&all, ADMIT_BOUND_MS),
        "seed {seed}: setup failed: {:?}",
        c.violations
    );
    let formed = everyone_writes(&mut c, 1);
    // Everyone restarts at once: each peer learns of all the others in the same moment.
    for &n in &all {
        c.crash(n);
    }
    c.run_for(1_000);
    for &n in &all {
        c.restart(n);
    }
    let reformed = everyone_writes(&mut c, 2);
    c.liveness(LIVENESS_BOUND_MS, &[]);
    let outcome = c.finish();
    assert!(outcome.ok(), "seed {seed}: {:?}", outcome.violations);
    eprintln!(
        "large swarm seed {seed}: {formed} channels, {reformed} after the restart; \
         {:.1} s simulated in {:.1} s",
        outcome.simulated_ms as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_32_peer_signaling_swarm_stays_connected_and_every_write_reaches_every_peer() {
    for seed in [1, 2] {
        run(seed);
    }
}
