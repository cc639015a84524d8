//! Fault injection, one module per layer, each listing the faults it may inject (only ones
//! a correct echo-rs cluster must survive):
//! - [`network`]: two-way and one-way partitions, hold/release of in-flight packets, slow
//!   links (fixed higher latency), random message loss (turmoil fail rate).
//! - [`crash`]: host crash (unflushed store writes lost) and restart on the same store,
//!   long offline periods, graceful stop (leave).
//!
//! A run's [`FaultOptions`] are drawn from its seed and printed as its first trace events;
//! [`Cluster::chaos`] draws one fault decision from them per call during the safety phase.
//! Both draw from the run's fault stream ([`crate::rng::FAULTS`]) and nothing else does, so
//! a scenario choice added or removed never reshuffles the faults of the same seed (only
//! how many chaos calls a scenario makes, and when, shapes them).

mod crash;
mod network;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand_core::RngCore;

use crate::harness::Cluster;

/// How hostile this run is, drawn from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultOptions {
    /// Fixed link latency (ms, a multiple of the tick).
    pub latency_ms: u64,
    /// Message loss while lossy, per mille of packets.
    pub loss_per_mille: u32,
    /// Per chaos step, per mille: two-way partition of a random split.
    pub partition_per_mille: u32,
    /// Per chaos step, per mille: one-way partition of a random pair.
    pub oneway_per_mille: u32,
    /// Per chaos step, per mille: hold a random link's packets (released on heal).
    pub hold_per_mille: u32,
    /// Per chaos step, per mille: crash a random node.
    pub crash_per_mille: u32,
    /// Per chaos step, per mille: make a random link slow.
    pub slow_per_mille: u32,
    /// Longest time a crashed node stays down (ms).
    pub offline_max_ms: u64,
}

impl FaultOptions {
    /// Draws the options for one run.
    pub fn draw(rng: &mut impl RngCore, tick_ms: u64) -> Self {
        let mut below = |n: u32| rng.next_u32() % n;
        let ticks = 1 + u64::from(below(8));
        FaultOptions {
            latency_ms: ticks * tick_ms,
            loss_per_mille: below(40),
            partition_per_mille: 20 + below(120),
            oneway_per_mille: below(60),
            hold_per_mille: below(60),
            crash_per_mille: below(60),
            slow_per_mille: below(60),
            offline_max_ms: 2_000 + u64::from(below(40_000)),
        }
    }

    /// No faults at all (for the speed measurement and calm scenarios).
    pub fn calm(tick_ms: u64) -> Self {
        FaultOptions {
            latency_ms: tick_ms,
            loss_per_mille: 0,
            partition_per_mille: 0,
            oneway_per_mille: 0,
            hold_per_mille: 0,
            crash_per_mille: 0,
            slow_per_mille: 0,
            offline_max_ms: 0,
        }
    }
}

impl fmt::Display for FaultOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency={}ms loss={}‰ partition={}‰ oneway={}‰ hold={}‰ crash={}‰ slow={}‰ offline_max={}ms",
            self.latency_ms,
            self.loss_per_mille,
            self.partition_per_mille,
            self.oneway_per_mille,
            self.hold_per_mille,
            self.crash_per_mille,
            self.slow_per_mille,
            self.offline_max_ms
        )
    }
}

/// Faults in force now (so that the liveness phase can undo all of them).
#[derive(Debug, Default)]
pub struct ActiveFaults {
    /// Two-way partitions between host names (ordered pairs, smaller first).
    pub two_way: BTreeSet<(String, String)>,
    /// One-way partitions `(from, to)`.
    pub one_way: BTreeSet<(String, String)>,
    /// Held links.
    pub held: BTreeSet<(String, String)>,
    /// Slow links.
    pub slow: BTreeSet<(String, String)>,
    /// Current loss rate.
    pub loss: f64,
    /// Crashed node -> simulated time at which it comes back.
    pub restart_at: BTreeMap<usize, u64>,
}

impl ActiveFaults {
    pub fn is_calm(&self) -> bool {
        self.two_way.is_empty()
            && self.one_way.is_empty()
            && self.held.is_empty()
            && self.slow.is_empty()
            && self.loss == 0.0
    }
}

impl Cluster {
    /// One chaos decision from the run's options: maybe heal, maybe inject one fault, and
    /// restart crashed nodes whose offline time is over.
    pub fn chaos(&mut self) {
        self.restart_due();
        let o = self.faults.clone();
        let roll = self.fault_below(1000) as u32;
        let live = self.live();
        let mut at = 0;
        let mut hit = |p: u32| {
            let h = roll >= at && roll < at + p;
            at += p;
            h
        };
        if hit(o.partition_per_mille) && live.len() >= 2 {
            let (a, b) = self.random_split(&live);
            self.partition(&a, &b);
        } else if hit(o.oneway_per_mille) && live.len() >= 2 {
            let (a, b) = self.random_pair(&live);
            self.partition_oneway(a, b);
        } else if hit(o.hold_per_mille) && live.len() >= 2 {
            let (a, b) = self.random_pair(&live);
            self.hold(a, b);
        } else if hit(o.slow_per_mille) && live.len() >= 2 {
            let (a, b) = self.random_pair(&live);
            let ms = o.latency_ms * (2 + self.fault_below(20));
            self.slow_link(a, b, ms);
        } else if hit(o.crash_per_mille) && live.len() >= 2 {
            if !live.is_empty() {
                let n = live[self.fault_below(live.len() as u64) as usize];
                let offline = self.fault_below(o.offline_max_ms.max(1));
                self.crash(n);
                let back = self.now() + offline;
                self.active.restart_at.insert(n, back);
            }
        } else if hit(o.loss_per_mille.min(1) * 100) {
            let rate = if self.active.loss > 0.0 {
                0.0
            } else {
                f64::from(o.loss_per_mille) / 1000.0
            };
            self.set_loss(rate);
        } else if hit(150) && !self.active.is_calm() {
            self.heal_network();
        }
    }

    /// Two non-empty groups covering `nodes`.
    fn random_split(&mut self, nodes: &[usize]) -> (Vec<usize>, Vec<usize>) {
        loop {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for &n in nodes {
                if self.fault_below(2) == 0 {
                    a.push(n);
                } else {
                    b.push(n);
                }
            }
            if !a.is_empty() && !b.is_empty() {
                return (a, b);
            }
        }
    }

    fn random_pair(&mut self, nodes: &[usize]) -> (usize, usize) {
        let a = nodes[self.fault_below(nodes.len() as u64) as usize];
        let others: Vec<usize> = nodes.iter().copied().filter(|&n| n != a).collect();
        let b = others[self.fault_below(others.len() as u64) as usize];
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use crate::harness::{Cluster, ClusterConfig, Topology};
    use crate::scenarios::{RunOptions, TICK_MS};

    /// Runs 3 nodes through 80 chaos decisions, 20 ms apart; `extra` adds a scenario draw
    /// (`Cluster::below`) before decision 10, `extra_fault` a fault draw. Returns the
    /// fault events and the whole trace.
    fn chaos_run(seed: u64, extra: bool, extra_fault: bool) -> (Vec<String>, Vec<String>) {
        let opts = RunOptions {
            keep_trace: true,
            nodes: None,
        };
        let config = ClusterConfig {
            nodes: 3,
            topology: Topology::Mesh,
            tick_ms: TICK_MS,
        };
        let mut c = Cluster::new("chaos-test", seed, &opts, config);
        for i in 0..80 {
            if i == 10 && extra {
                let _ = c.below(1000);
                let live = c.live();
                let _ = c.pick(&live);
            }
            if i == 10 && extra_fault {
                let _ = c.fault_below(1000);
            }
            c.chaos();
            c.run_for(20);
        }
        let trace = c.finish().trace;
        let faults = trace
            .iter()
            .filter(|l| {
                [
                    "options:",
                    "partition",
                    "hold ",
                    "slow link",
                    "message loss",
                    "network healed",
                    "crash ",
                    "restart ",
                ]
                .iter()
                .any(|k| l.contains(k))
            })
            .cloned()
            .collect();
        (faults, trace)
    }

    #[test]
    fn a_scenario_draw_does_not_change_the_faults() {
        let mut events = 0;
        for seed in [3, 11] {
            let (faults, trace) = chaos_run(seed, false, false);
            let (faults_extra, trace_extra) = chaos_run(seed, true, false);
            assert_eq!(faults, faults_extra, "seed {seed}");
            assert_eq!(trace, trace_extra, "seed {seed}");
            events += faults.len();
            // The comparison can fail: one more fault draw reshuffles the later faults.
            let (shifted, _) = chaos_run(seed, false, true);
            assert_ne!(faults, shifted, "seed {seed}");
        }
        assert!(events > 20, "only {events} fault events");
    }
}
