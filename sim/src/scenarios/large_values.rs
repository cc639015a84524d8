//! Large values: three peers share a space. One member goes away (stopped, or cut off by a
//! partition) while one heavy writer builds a backlog far larger than one frame: hundreds of
//! objects of about 20 KB and a few values at the API's limit (1 MiB of JSON per value),
//! under the run's faults; the others write small objects. Then the member returns and a
//! newcomer, added by key after the backlog exists, joins (in either order, by seed). Both
//! must receive everything (the newcomer first its own membership), become writable, and
//! converge with the rest; every acknowledged write must be everywhere.
//!
//! The objects are written through `NodeHandle` directly rather than `Cluster::add`, so that
//! the trace names each large object by its size instead of carrying its content.

use echo_actors::db::MAX_VALUE_BYTES;
use serde_json::{json, Value};

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::{Cluster, Topology};

/// Length of the filler string of a backlog object (about 20 KB of JSON).
const BACKLOG_VALUE: usize = 20_000;
/// How long the run waits for every member to hold the same feed lengths before the
/// liveness phase compares (much more expensive) full views.
const HEADS_BOUND_MS: u64 = 60_000;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("large-values", seed, opts, 3, Topology::Mesh);
    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let members: Vec<usize> = all[1..].to_vec();
    let away = c.pick(&members).unwrap_or(1);
    let heavy = c.pick(
        &all.iter()
            .copied()
            .filter(|&n| n != away)
            .collect::<Vec<_>>(),
    );
    let heavy = heavy.unwrap_or(0);
    let stopped = c.below(2) == 0;
    let name = c.nodes[away].name.clone();
    if stopped {
        c.event(format!("{name} stops"));
        c.stop(away);
    } else {
        c.event(format!("{name} is cut off"));
        c.isolate(away);
    }

    // The backlog: hundreds of 20 KB objects from one writer, with values at the limit
    // among them, and a few small writes by the others.
    let backlog = 150 + c.below(60);
    let large: Vec<u64> = (0..1 + c.below(2)).map(|_| c.below(backlog)).collect();
    c.event(format!(
        "{} writes {backlog} objects of {BACKLOG_VALUE} bytes, {} of them at the {MAX_VALUE_BYTES}-byte limit",
        c.nodes[heavy].name,
        large.len()
    ));
    for i in 0..backlog {
        if c.below(50) == 0 {
            c.chaos();
            c.heal_if_needed(away, stopped);
        }
        let writer = if c.nodes[heavy].up {
            heavy
        } else {
            c.restart(heavy);
            heavy
        };
        let size = if large.contains(&i) {
            None
        } else {
            Some(BACKLOG_VALUE)
        };
        c.blob(writer, i, size);
        if c.below(25) == 0 {
            let others: Vec<usize> = c
                .live_members()
                .into_iter()
                .filter(|&n| n != away && n != heavy)
                .collect();
            if let Some(n) = c.pick(&others) {
                let from = c.nodes[n].name.clone();
                c.add(n, json!({"@type": "small", "from": from, "i": i}));
            }
        }
    }
    c.heal_network();
    c.restart_due();
    if !stopped {
        // Away for longer than QUIC's idle timeout, so that its connections end and the
        // backlog is not simply delivered late by the transport.
        c.isolate(away);
        let away_ms = 12_000 + c.below(8_000);
        c.run_for(away_ms);
    }

    let newcomer_first = c.below(2) == 0;
    if !newcomer_first {
        c.come_back(away, stopped);
    }
    let late = c.add_node();
    c.event(format!("newcomer {} arrives", c.nodes[late].name));
    if !stopped && newcomer_first {
        // Still cut off: from the newcomer too.
        c.partition(&[away], &[late]);
    }
    if !c.nodes[0].up {
        c.restart(0);
    }
    if c.create_identity(late) && c.add_member(0, late) && c.join(late) {
        if c.wait_writable(late, ADMIT_BOUND_MS) {
            c.add(late, json!({"@type": "small", "from": "newcomer"}));
        } else {
            c.violation("liveness", "the newcomer never became writable");
        }
    }
    if newcomer_first {
        c.come_back(away, stopped);
    }
    // A later small write on every member must reach everyone too.
    for n in c.live_members() {
        let from = c.nodes[n].name.clone();
        c.add(n, json!({"@type": "small", "from": from, "after": true}));
    }
    c.wait_same_heads(HEADS_BOUND_MS);
    c.liveness(LIVENESS_BOUND_MS, &[]);
    c.finish()
}

impl Cluster {
    /// Adds backlog object `i` on `node`: `{"@type": "blob", "i": i, "b": "..."}` with a
    /// filler of `size` characters, or (`None`) as large as the API accepts.
    fn blob(&mut self, node: usize, i: u64, size: Option<usize>) {
        let mut object = json!({"@type": "blob", "i": i, "b": ""});
        let len = size.unwrap_or_else(|| MAX_VALUE_BYTES - object.to_string().len());
        let fill = char::from(b'a' + (i % 26) as u8);
        object["b"] = Value::String(std::iter::repeat_n(fill, len).collect());
        let space = self.space.clone().unwrap_or_default();
        let sent = object.clone();
        let answer = self.call(
            node,
            move |h| async move { h.object_add(&space, sent).await },
        );
        let name = self.nodes[node].name.clone();
        let bytes = object.to_string().len();
        match answer {
            Some(Ok(id)) => {
                self.event(format!("{name} add {id} blob {i} ({bytes} bytes)"));
                self.facts.added(&id, &object);
            }
            Some(Err(e)) => self.event(format!("{name} add blob {i} ({bytes} bytes) failed: {e}")),
            None => self.event(format!("{name} add blob {i} unanswered")),
        }
    }

    /// After a chaos step: the away member stays away.
    fn heal_if_needed(&mut self, away: usize, stopped: bool) {
        if !stopped && self.nodes[away].up {
            self.isolate(away);
        }
    }

    /// The away member returns: restarted, or its partition healed.
    fn come_back(&mut self, away: usize, stopped: bool) {
        let name = self.nodes[away].name.clone();
        self.event(format!("{name} comes back"));
        if stopped {
            self.restart(away);
        } else {
            self.heal_network();
        }
    }

    /// Waits until every live member reports the same feed lengths (cheap: no objects are
    /// rendered), at most `bound_ms`; the liveness phase then decides.
    fn wait_same_heads(&mut self, bound_ms: u64) {
        let until = self.now() + bound_ms;
        let space = self.space.clone().unwrap_or_default();
        loop {
            let members = self.live_members();
            let pending: Vec<_> = members
                .iter()
                .map(|&n| {
                    let space = space.clone();
                    self.submit(n, move |h| async move {
                        let status = h.status().await.ok()?;
                        let s = status.spaces.into_iter().find(|s| s.space_key == space)?;
                        let heads: Vec<(String, u64)> = s
                            .feeds
                            .into_iter()
                            .map(|f| (f.feed_key, f.length))
                            .collect();
                        Some(heads)
                    })
                })
                .collect();
            let answers = self.wait_all(pending, 5_000);
            let first = answers.first().cloned().flatten();
            if first.is_some() && answers.iter().all(|a| *a == first) {
                self.event("every member holds the same feed lengths");
                return;
            }
            if self.now() >= until {
                self.event("feed lengths still differ; the liveness phase decides");
                return;
            }
            self.run_for(500);
        }
    }
}
