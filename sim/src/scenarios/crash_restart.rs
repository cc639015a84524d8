//! Crash and restart: one node, a seeded stream of adds, merge patches, deletes and text
//! inserts, and crashes at random steps. A crash drops whatever the store had not flushed
//! and restarts the node on what is left. After every restart and at the end, the
//! durability checker compares the node with what clients were told.

use std::sync::Arc;

use echo_actors::node::{Node, NodeConfig, NodeHandle, QueryRequest};
use echo_actors::store::MemStore;
use echo_actors::types::FixedClock;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};

use super::{Outcome, RunOptions};
use crate::checkers::DurabilityModel;
use crate::trace::Trace;

const START_MS: u64 = 1_700_000_000_000;

struct Sim {
    rng: ChaCha20Rng,
    clock: Arc<FixedClock>,
    store: Arc<MemStore>,
    trace: Trace,
    model: DurabilityModel,
    violations: Vec<crate::checkers::Violation>,
}

impl Sim {
    fn now(&self) -> u64 {
        use echo_actors::types::Clock;
        self.clock.now_ms() - START_MS
    }

    async fn open(&mut self) -> NodeHandle {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let node = Node::open(NodeConfig {
            store: self.store.clone(),
            rng_seed: seed,
            clock: self.clock.clone(),
            listen: None,
            network: None,
        })
        .await;
        match node {
            Ok(node) => node,
            // The node must always reopen on what a crash left; anything else is a bug the
            // run reports by panicking with the seed in the message.
            Err(e) => panic!("node failed to reopen: {e}"),
        }
    }

    async fn check(&mut self, node: &NodeHandle) {
        let all = node
            .query(
                "s",
                QueryRequest {
                    include_deleted: true,
                    ..Default::default()
                },
            )
            .await;
        match all {
            Ok(objects) => {
                let found = self.model.check(&objects);
                let now = self.now();
                self.trace.event(
                    now,
                    format!(
                        "check durability: {} objects, {} violations",
                        objects.len(),
                        found.len()
                    ),
                );
                self.violations.extend(found);
            }
            Err(e) => self.violations.push(crate::checkers::Violation {
                checker: "durability",
                detail: format!("query failed: {e}"),
            }),
        }
    }

    fn pick<'a>(&mut self, ids: &'a [String]) -> Option<&'a String> {
        (!ids.is_empty()).then(|| &ids[(self.rng.next_u32() as usize) % ids.len()])
    }
}

/// Runs the scenario for `seed`.
pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let keep_trace = opts.keep_trace;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build the simulation runtime: {e}"),
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, scenario(seed, keep_trace))
}

async fn scenario(seed: u64, keep_trace: bool) -> Outcome {
    let mut sim = Sim {
        rng: ChaCha20Rng::seed_from_u64(seed),
        clock: Arc::new(FixedClock::new(START_MS)),
        store: Arc::new(MemStore::new()),
        trace: Trace::new(keep_trace),
        model: DurabilityModel::default(),
        violations: Vec::new(),
    };
    let steps = 60 + sim.rng.next_u32() % 90;
    let crash_per_mille = 10 + sim.rng.next_u32() % 60;
    sim.trace.event(
        0,
        format!("options: steps={steps} crash_per_mille={crash_per_mille}"),
    );

    let mut node = sim.open().await;
    let identity = node.identity_create(Some("sim".into())).await;
    let space = node.space_create(Some("s".into())).await;
    sim.trace.event(
        0,
        format!(
            "identity {:?} space {:?}",
            identity.map(|i| i.identity_key),
            space.map(|s| s.space_key)
        ),
    );

    let mut ids: Vec<String> = Vec::new();
    for step in 0..steps {
        sim.clock.advance(1 + u64::from(sim.rng.next_u32() % 500));
        let roll = sim.rng.next_u32() % 1000;
        if roll < crash_per_mille {
            sim.store.crash();
            node = sim.open().await;
            let now = sim.now();
            sim.trace
                .event(now, format!("step {step}: crash + restart"));
            sim.check(&node).await;
            continue;
        }
        let now = sim.now();
        match roll % 4 {
            0 | 1 => {
                let object =
                    json!({"@type": "item", "n": sim.rng.next_u32() % 100, "tags": {"a": step}});
                let result = node.object_add("s", object.clone()).await;
                sim.trace
                    .event(now, format!("step {step}: add -> {result:?}"));
                if let Ok(id) = result {
                    sim.model.added(&id, &object);
                    ids.push(id);
                }
            }
            2 => {
                let Some(id) = sim.pick(&ids).cloned() else {
                    continue;
                };
                let patch = if sim.rng.next_u32().is_multiple_of(3) {
                    json!({"n": null, "tags": {"b": step}})
                } else {
                    json!({"n": sim.rng.next_u32() % 100})
                };
                let result = node
                    .object_update("s", &id, patch.clone())
                    .await
                    .map(|_| ());
                sim.trace.event(
                    now,
                    format!("step {step}: patch {id} {patch} -> {result:?}"),
                );
                if result.is_ok() {
                    sim.model.patched(&id, &patch);
                }
            }
            _ => {
                let Some(id) = sim.pick(&ids).cloned() else {
                    continue;
                };
                if sim.rng.next_u32().is_multiple_of(2) {
                    let result = node.object_delete("s", &id).await;
                    sim.trace
                        .event(now, format!("step {step}: delete {id} -> {result:?}"));
                    if result.is_ok() {
                        sim.model.deleted(&id);
                    }
                } else {
                    let result = node
                        .text_insert("s", &id, "body", 0, format!("s{step} "))
                        .await;
                    sim.trace
                        .event(now, format!("step {step}: text {id} -> {result:?}"));
                    if let Ok(text) = result {
                        sim.model
                            .patched(&id, &json!({ "body": Value::String(text) }));
                    }
                }
            }
        }
    }
    sim.store.crash();
    let node = sim.open().await;
    let now = sim.now();
    sim.trace.event(now, "final crash + restart");
    sim.check(&node).await;
    Outcome {
        scenario: "crash-restart",
        seed,
        simulated_ms: sim.now(),
        trace_hash: sim.trace.hash_hex(),
        trace_events: sim.trace.len(),
        trace: sim.trace.lines().to_vec(),
        violations: sim.violations,
        options: format!("steps={steps} crash_per_mille={crash_per_mille}"),
    }
}
