//! Network faults (turmoil links between hosts): two-way partitions, one-way partitions,
//! holding packets in flight until release, slow links (a fixed, higher latency: no jitter,
//! which quinn would read as loss), and random message loss (turmoil's fail rate).
//!
//! One-way partitions are kept out of random loss (their links get a zero fail rate):
//! turmoil's random repair would otherwise silently heal them.

use std::time::Duration;

use crate::harness::Cluster;

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Cluster {
    fn node_name(&self, i: usize) -> String {
        self.nodes[i].name.clone()
    }

    /// Drops every packet between the hosts of `a` and those of `b` (by name).
    pub fn partition_names(&mut self, a: &[String], b: &[String]) {
        for x in a {
            for y in b {
                self.sim().partition(x.as_str(), y.as_str());
                self.active.two_way.insert(ordered(x, y));
            }
        }
        self.event(format!("partition {a:?} | {b:?}"));
    }

    /// Two-way partition between two groups of nodes.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        let a: Vec<String> = a.iter().map(|&i| self.node_name(i)).collect();
        let b: Vec<String> = b.iter().map(|&i| self.node_name(i)).collect();
        self.partition_names(&a, &b);
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(&mut self, node: usize) {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|&i| i != node).collect();
        self.partition(&[node], &others);
    }

    /// Packets from `from` to `to` are dropped; the other direction still works.
    pub fn partition_oneway(&mut self, from: usize, to: usize) {
        let (f, t) = (self.node_name(from), self.node_name(to));
        if self.active.held.contains(&ordered(&f, &t)) {
            return;
        }
        self.sim().partition_oneway(f.as_str(), t.as_str());
        self.sim().set_link_fail_rate(f.as_str(), t.as_str(), 0.0);
        self.active.one_way.insert((f.clone(), t.clone()));
        self.event(format!("partition one-way {f} -> {t}"));
    }

    /// Packets between `a` and `b` wait on the link until the network heals.
    pub fn hold(&mut self, a: usize, b: usize) {
        let (x, y) = (self.node_name(a), self.node_name(b));
        let pair = ordered(&x, &y);
        let oneway = self
            .active
            .one_way
            .iter()
            .any(|(f, t)| ordered(f, t) == pair);
        if oneway || self.active.two_way.contains(&pair) {
            return;
        }
        self.sim().hold(x.as_str(), y.as_str());
        self.active.held.insert(pair);
        self.event(format!("hold {x} <-> {y}"));
    }

    /// A fixed, higher latency on one link.
    pub fn slow_link(&mut self, a: usize, b: usize, ms: u64) {
        let (x, y) = (self.node_name(a), self.node_name(b));
        self.sim()
            .set_link_latency(x.as_str(), y.as_str(), Duration::from_millis(ms));
        self.active.slow.insert(ordered(&x, &y));
        self.event(format!("slow link {x} <-> {y}: {ms} ms"));
    }

    /// Random message loss on every link (0.0 turns it off).
    pub fn set_loss(&mut self, rate: f64) {
        self.sim().set_fail_rate(rate);
        self.active.loss = rate;
        self.event(format!("message loss {:.1}%", rate * 100.0));
    }

    /// Undoes every network fault: partitions repaired, held packets released, latency and
    /// loss back to normal.
    pub fn heal_network(&mut self) {
        let active = std::mem::take(&mut self.active.two_way);
        for (a, b) in &active {
            self.sim().repair(a.as_str(), b.as_str());
        }
        let one_way = std::mem::take(&mut self.active.one_way);
        for (f, t) in &one_way {
            self.sim().repair_oneway(f.as_str(), t.as_str());
        }
        let held = std::mem::take(&mut self.active.held);
        for (a, b) in &held {
            self.sim().release(a.as_str(), b.as_str());
        }
        let latency = Duration::from_millis(self.faults.latency_ms);
        let slow = std::mem::take(&mut self.active.slow);
        for (a, b) in &slow {
            self.sim().set_link_latency(a.as_str(), b.as_str(), latency);
        }
        self.sim().set_fail_rate(0.0);
        self.active.loss = 0.0;
        self.event("network healed");
    }
}
