//! Crash and restart: one node (a turmoil host without peers, whose store takes a few ms
//! to flush), a seeded stream of bursts of 1-4 concurrent writes (adds, merge patches,
//! deletes and text inserts, each burst's writes on distinct objects), and crashes at random
//! moments, most of them while a burst is in flight, so that a batch can be written and not
//! yet flushed. A crash stops the host's software and drops whatever the store had not
//! flushed; the node restarts on what is left. After every restart and at the end, the
//! durability checker compares the node with what the client was told: every acknowledged
//! write survives; a write left unanswered by the crash may be lost, but only whole.

use std::collections::BTreeSet;

use echo_actors::node::QueryRequest;
use serde_json::json;

use super::{Outcome, RunOptions, TICK_MS};
use crate::checkers::{DurabilityModel, Write};
use crate::harness::{Cluster, ClusterConfig, Pending, Topology, REQUEST_TIMEOUT_MS};

/// The answer to one write: the new id (add) or text (text insert), or the error.
type Answer = Result<Option<String>, String>;

/// Crash counts of one run (its last trace event before the end).
#[derive(Default)]
struct Tally {
    crashes: u64,
    /// Crashes that found a batch written and not yet flushed.
    mid_flush: u64,
    /// Batches those crashes lost.
    batches_lost: u64,
    /// Writes sent but not answered when a crash hit.
    unanswered: u64,
    /// Of those, the ones found whole after the restart, and the ones lost.
    survived: u64,
    lost: u64,
}

struct Run {
    c: Cluster,
    space: String,
    model: DurabilityModel,
    tally: Tally,
}

fn describe(w: &Write) -> String {
    match w {
        Write::Add { object } => format!("add {object}"),
        Write::Patch { id, patch } => format!("patch {id} {patch}"),
        Write::Delete { id } => format!("delete {id}"),
        Write::TextPrepend { id, field, token } => format!("text {id}.{field} {token:?}"),
    }
}

impl Run {
    /// The writes of one burst: each on an object of its own.
    fn burst(&mut self, step: u64) -> Vec<Write> {
        let n = 1 + self.c.below(4);
        let mut taken: BTreeSet<String> = self.model.in_doubt().map(str::to_string).collect();
        let mut writes = Vec::new();
        for i in 0..n {
            let roll = self.c.below(4);
            let free: Vec<String> = self
                .model
                .ids()
                .filter(|id| !taken.contains(*id))
                .cloned()
                .collect();
            let target = if free.is_empty() {
                None
            } else {
                Some(free[self.c.below(free.len() as u64) as usize].clone())
            };
            let write = match (roll, target) {
                (2, Some(id)) => {
                    let patch = if self.c.below(3) == 0 {
                        json!({"n": null, "tags": {"b": step}})
                    } else {
                        json!({"n": self.c.below(100)})
                    };
                    taken.insert(id.clone());
                    Write::Patch { id, patch }
                }
                (3, Some(id)) => {
                    taken.insert(id.clone());
                    if self.c.below(2) == 0 {
                        Write::Delete { id }
                    } else {
                        Write::TextPrepend {
                            id,
                            field: "body".into(),
                            token: format!("s{step}.{i} "),
                        }
                    }
                }
                _ => Write::Add {
                    object: json!({"@type": "item", "n": self.c.below(100), "tags": {"a": step, "i": i}}),
                },
            };
            writes.push(write);
        }
        writes
    }

    fn submit(&mut self, write: &Write) -> Pending<Answer> {
        let (space, write) = (self.space.clone(), write.clone());
        self.c.submit(0, move |h| async move {
            let answer = match write {
                Write::Add { object } => h.object_add(&space, object).await.map(Some),
                Write::Patch { id, patch } => {
                    h.object_update(&space, &id, patch).await.map(|_| None)
                }
                Write::Delete { id } => h.object_delete(&space, &id).await.map(|()| None),
                Write::TextPrepend { id, field, token } => {
                    h.text_insert(&space, &id, &field, 0, token).await.map(Some)
                }
            };
            answer.map_err(|e| e.to_string())
        })
    }

    /// Takes in the answers of a burst; returns how many writes went unanswered.
    fn settle(&mut self, step: u64, writes: Vec<Write>, answers: Vec<Option<Answer>>) -> u64 {
        let mut unanswered = 0;
        for (write, answer) in writes.into_iter().zip(answers) {
            let result = match &answer {
                Some(Ok(_)) => "ok".to_string(),
                Some(Err(e)) => format!("refused: {}", e.chars().take(80).collect::<String>()),
                None => "unanswered".to_string(),
            };
            self.c
                .event(format!("step {step}: {} -> {result}", describe(&write)));
            match (answer, write) {
                (Some(Ok(Some(id))), Write::Add { object }) => self.model.added(&id, &object),
                (Some(Ok(_)), Write::Patch { id, patch }) => self.model.patched(&id, &patch),
                (Some(Ok(_)), Write::Delete { id }) => self.model.deleted(&id),
                (Some(Ok(Some(text))), Write::TextPrepend { id, field, .. }) => {
                    self.model.patched(&id, &json!({ field: text }));
                }
                (Some(Ok(_)), write) => self.c.violation(
                    "durability",
                    format!(
                        "step {step}: {} answered without its result",
                        describe(&write)
                    ),
                ),
                // Refused: not applied, and the model holds the node to that.
                (Some(Err(_)), _) => {}
                (None, write) => {
                    unanswered += 1;
                    self.model.unacknowledged(write);
                }
            }
        }
        unanswered
    }

    /// Crashes the node (with `writes` in flight), restarts it and checks it.
    fn crash(&mut self, step: u64, writes: Vec<Write>, pending: Vec<Pending<Answer>>, at: u64) {
        let sent = writes.len();
        // The answers that came before the crash (the host's software stops with it).
        let answers = self.c.wait_all(pending, 0);
        let unanswered = self.settle(step, writes, answers);
        let unflushed = self.c.nodes[0].shared.store.unflushed() as u64;
        self.c.crash(0);
        self.tally.crashes += 1;
        self.tally.unanswered += unanswered;
        if unflushed > 0 {
            self.tally.mid_flush += 1;
            self.tally.batches_lost += unflushed;
        }
        self.c.event(format!(
            "step {step}: crash {at} ms into a burst of {sent}: {unanswered} writes unanswered, \
             {unflushed} batches written and not flushed"
        ));
        self.c.restart(0);
        self.check(&format!("step {step}: restart"));
    }

    /// Resolves the unanswered writes against the restarted node, then checks it.
    fn check(&mut self, label: &str) {
        let space = self.space.clone();
        let objects = self.c.call(0, move |h| async move {
            let query = QueryRequest {
                include_deleted: true,
                ..Default::default()
            };
            h.query(&space, query).await
        });
        match objects {
            Some(Ok(objects)) => {
                let resolved = self.model.resolve(&objects);
                self.tally.survived += resolved.survived as u64;
                self.tally.lost += resolved.lost as u64;
                let found = self.model.check(&objects);
                self.c.event(format!(
                    "{label}: unanswered writes {} survived, {} lost; check durability: {} \
                     objects, {} violations",
                    resolved.survived,
                    resolved.lost,
                    objects.len(),
                    found.len()
                ));
                for v in found {
                    self.c.violation(v.checker, v.detail);
                }
            }
            other => {
                let detail = format!("{label}: query failed: {other:?}");
                self.c.violation("durability", detail);
            }
        }
    }
}

/// Runs the scenario for `seed`.
pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let config = ClusterConfig {
        nodes: 1,
        topology: Topology::Mesh,
        tick_ms: TICK_MS,
    };
    let mut c = Cluster::new("crash-restart", seed, opts, config);
    let steps = 60 + c.below(90);
    let crash_per_mille = 50 + c.below(100);
    let delay = c.nodes[0].shared.store.flush_delay().as_millis();
    let options = format!("steps={steps} crash_per_mille={crash_per_mille} flush_delay={delay}ms");
    c.event(format!("crash-restart: {options}"));
    if !c.create_identity(0) || !c.create_space(0) {
        let mut outcome = c.finish();
        outcome.options = options;
        return outcome;
    }
    let mut r = Run {
        space: c.space.clone().unwrap_or_default(),
        c,
        model: DurabilityModel::default(),
        tally: Tally::default(),
    };
    for step in 0..steps {
        let pause = 1 + r.c.below(500);
        r.c.run_for(pause);
        let crash = r.c.below(1000) < crash_per_mille;
        // Most crashes hit while the burst is in flight: 0-3 ticks after it was sent, the
        // span in which its batches are written, flushed and answered.
        let mid_burst = crash && r.c.below(4) > 0;
        let at = r.c.below(4) * TICK_MS;
        let writes = r.burst(step);
        let pending: Vec<Pending<Answer>> = writes.iter().map(|w| r.submit(w)).collect();
        if mid_burst {
            r.c.run_for(at);
            r.crash(step, writes, pending, at);
            continue;
        }
        let answers = r.c.wait_all(pending, REQUEST_TIMEOUT_MS);
        let unanswered = r.settle(step, writes, answers);
        if unanswered > 0 {
            r.c.violation(
                "liveness",
                format!(
                    "step {step}: {unanswered} writes unanswered after {REQUEST_TIMEOUT_MS} ms"
                ),
            );
        }
        if crash {
            r.crash(step, Vec::new(), Vec::new(), 0);
        }
    }
    r.crash(steps, Vec::new(), Vec::new(), 0);
    let t = &r.tally;
    let summary = format!(
        "crash windows: {} crashes, {} between a batch's write and its flush ({} batches \
         lost); {} writes unanswered at a crash: {} survived, {} lost",
        t.crashes, t.mid_flush, t.batches_lost, t.unanswered, t.survived, t.lost
    );
    r.c.event(summary);
    let mut outcome = r.c.finish();
    outcome.options = options;
    outcome
}
