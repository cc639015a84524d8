//! Scenarios: each a short story in its own file, run from a seed. Networked scenarios
//! have two phases: safety (faults on, checkers every simulated second) and liveness (all
//! faults healed, crashed nodes restarted; live members must converge within a bound).

mod bad_peer;
mod churn;
mod crash_restart;
mod device_join;
mod invitation;
mod large_values;
mod late_joiner;
mod line_topology;
mod offline_writer;
mod partition_heal;
mod partitioned_add;
mod random_schedule;
mod recovery;
mod revocation;
mod revocation_relay;
mod role_change;
mod signaling;

use crate::checkers::Violation;
use crate::harness::{Cluster, ClusterConfig, Topology};

/// Simulated milliseconds per turmoil step in every networked scenario.
pub const TICK_MS: u64 = 5;

/// How a run is asked for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep the trace lines (for printing).
    pub keep_trace: bool,
    /// Number of peers, where the scenario lets it vary.
    pub nodes: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: &'static str,
    pub seed: u64,
    /// Simulated time the run covered.
    pub simulated_ms: u64,
    pub trace_hash: String,
    pub trace_events: usize,
    /// Trace lines, when asked for.
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
    /// The fault options drawn from the seed.
    pub options: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A named scenario.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(seed: u64, opts: &RunOptions) -> Outcome,
}

/// Every scenario, in the order `list` shows them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "crash-restart",
        about: "one node sends bursts of concurrent writes; it crashes at random moments, often between a batch's write and its flush (unflushed writes lost), and restarts; every acknowledged write must survive, an unanswered one may be lost",
        run: crash_restart::run,
    },
    Scenario {
        name: "offline-writer",
        about: "one peer goes offline for a long time and keeps writing (and may crash) while the others write too; then it returns",
        run: offline_writer::run,
    },
    Scenario {
        name: "partition-heal",
        about: "random splits (two-way, one-way, held links); both sides edit the same fields and the same text; then heal",
        run: partition_heal::run,
    },
    Scenario {
        name: "line-topology",
        about: "peers in a line of static peers (A-B-C-...): data crosses intermediaries under loss, latency and crashes",
        run: line_topology::run,
    },
    Scenario {
        name: "churn",
        about: "peers join, leave, crash and restart while everyone writes",
        run: churn::run,
    },
    Scenario {
        name: "late-joiner",
        about: "a member added by key after much history must catch up",
        run: late_joiner::run,
    },
    Scenario {
        name: "partitioned-add",
        about: "a member is added and joins while partitioned away from everyone; it can write once it reaches a peer",
        run: partitioned_add::run,
    },
    Scenario {
        name: "bad-peer",
        about: "a non-member host completes the QUIC handshake, sends Hellos and forged, unsigned and unadmitted blocks; honest peers must never store them",
        run: bad_peer::run,
    },
    Scenario {
        name: "random-schedule",
        about: "a random schedule of writes, partitions, crashes and restarts (the proptest's generator, driven by the seed)",
        run: random_schedule::run,
    },
    Scenario {
        name: "signaling",
        about: "peers with only a signaling server (no static peers) form a space and write; partitions (one cuts a peer off from the server), a peer crash and a crash of the server itself; all must re-join and converge",
        run: signaling::run,
    },
    Scenario {
        name: "role-change",
        about: "demotions, removals and promotions concurrent with writes, under partitions, through relays that saw the writes first; every peer must reach the same verdicts",
        run: role_change::run,
    },
    Scenario {
        name: "large-values",
        about: "a member is away while one peer writes hundreds of 20 KB objects and values at the 1 MiB limit; the member returns and a newcomer joins; all must catch up and converge",
        run: large_values::run,
    },
    Scenario {
        name: "invitation",
        about: "16 peers join only through invitations (key, pin and no auth; single and multi use) under loss: wrong codes from several guests, a host crash mid-handshake, a cut-off guest, a cancel and an expiry; every accept ends once, in time, as the rules allow",
        run: invitation::run,
    },
    Scenario {
        name: "revocation",
        about: "a second device of an identity (recovered from the seed phrase) is revoked while it is partitioned away with a relay; it keeps writing and the relay stores its blocks first; after the heal every peer denies exactly its blocks past the cut and keeps everything before",
        run: revocation::run,
    },
    Scenario {
        name: "revocation-relay",
        about: "a revoked device, cut off with a member who does not know, joins that member's space (where no other device of its identity is) and writes there; after the heal the members who hold the revocation from a space they share with its identity relay it, and every peer of that space denies all the device's blocks there",
        run: revocation_relay::run,
    },
    Scenario {
        name: "device-join",
        about: "three fresh devices join an identity through device invitations under loss: a wrong code first, one cut off from everyone (host unreachable, then in after the heal); each gets every space of the identity, a space made later included, and writes in all; nobody else gets them",
        run: device_join::run,
    },
    Scenario {
        name: "recovery",
        about: "every device of an identity is lost for good while the others keep writing; its seed phrase recovered on a new host gets back every space a peer holds (found by asking peers: no one holds its identity space), and it writes and converges",
        run: recovery::run,
    },
];

/// Runs `name` with `seed`; `None` if there is no such scenario.
pub fn run(name: &str, seed: u64, keep_trace: bool) -> Option<Outcome> {
    let opts = RunOptions {
        keep_trace,
        nodes: None,
    };
    run_with(name, seed, &opts)
}

/// Runs `name` with `seed` and options; a panic inside the run becomes a violation.
pub fn run_with(name: &str, seed: u64, opts: &RunOptions) -> Option<Outcome> {
    let scenario = SCENARIOS.iter().find(|s| s.name == name)?;
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (scenario.run)(seed, opts)));
    Some(result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Outcome {
            scenario: scenario.name,
            seed,
            simulated_ms: 0,
            trace_hash: String::new(),
            trace_events: 0,
            trace: Vec::new(),
            violations: vec![Violation {
                checker: "panic",
                detail: message,
            }],
            options: String::new(),
        }
    }))
}

/// A networked cluster for a scenario: `default_nodes` peers unless `--nodes` says otherwise.
pub(crate) fn cluster(
    name: &'static str,
    seed: u64,
    opts: &RunOptions,
    default_nodes: usize,
    topology: Topology,
) -> Cluster {
    let config = ClusterConfig {
        nodes: opts.nodes.unwrap_or(default_nodes).max(2),
        topology,
        tick_ms: TICK_MS,
    };
    Cluster::new(name, seed, opts, config)
}

/// How long the liveness phase may take before non-convergence is a violation.
pub const LIVENESS_BOUND_MS: u64 = 90_000;
/// How long a new member may take to become writable.
pub const ADMIT_BOUND_MS: u64 = 60_000;
