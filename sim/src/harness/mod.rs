//! The turmoil harness: a cluster of whole echo-rs peers, each a turmoil host running the
//! production `Node` over the real quinn transport on simulated UDP, driven step by step
//! by a single-threaded driver that submits client requests, injects faults and runs the
//! checkers.
//!
//! Contract: everything is seeded from the run's seed, one stream per purpose
//! ([`crate::rng`]: the scenario's choices, the faults, turmoil's RNG, each node's RNG and
//! flush delay); turmoil's epoch is fixed; link latency is fixed (no per-packet
//! jitter, which quinn reads as loss); UDP queues hold bursts (4096). The driver only
//! observes nodes through `NodeHandle` requests and their `MemStore`s.

pub mod host;
pub mod invitations;
mod ops;
mod setup;
mod spaces;
pub mod udp;
mod view;
mod watch;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use echo_actors::mesh::MeshConfig;
use echo_actors::node::NodeHandle;
use echo_actors::store::MemStore;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use tokio::sync::mpsc;

use crate::checkers::{AckedFacts, AuthorizationChecker, Violation};
use crate::faults::{ActiveFaults, FaultOptions};
use crate::scenarios::{Outcome, RunOptions};
use crate::trace::Trace;
use host::{HostShared, Job, EPOCH_MS, PEER_PORT};

pub use view::NodeView;

/// How often (simulated) the safety checkers run while the simulation advances.
const CHECK_EVERY_MS: u64 = 1_000;
/// How long a client waits for an answer before it counts the request as unanswered.
pub const REQUEST_TIMEOUT_MS: u64 = 20_000;
/// A simulated store's asynchronous flush takes one tick plus `0..FLUSH_DELAY_SPREAD_MS`
/// ms (drawn per node; 5-12 ms at the scenarios' 5 ms tick). At least one tick: a host runs
/// a whole tick's timers in one step, so a shorter flush would end within the step that
/// wrote the batch, and the driver, which crashes hosts between steps, could never crash
/// one between a batch's write and its flush.
pub const FLUSH_DELAY_SPREAD_MS: u64 = 8;

/// Which static peers each node dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Every node dials every node started before it.
    Mesh,
    /// Node i dials node i-1 only: data must cross intermediaries.
    Line,
    /// No static peers: every node finds the others through the signaling server at
    /// [`host::SIGNAL_HOST`] (a host the scenario runs itself).
    Signaling,
    /// Every node dials the first `k` nodes (hubs) other than itself, and only those: a star
    /// around the hubs, so that many peers cost few connections.
    Hubs(usize),
}

/// Shape of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub topology: Topology,
    /// Turmoil tick (simulated ms per step).
    pub tick_ms: u64,
}

/// One simulated peer as the driver sees it.
pub struct SimNode {
    pub name: String,
    pub addr: SocketAddr,
    pub shared: Rc<HostShared>,
    tx: mpsc::UnboundedSender<Job>,
    /// The host's software runs (not crashed or stopped).
    pub up: bool,
    /// Stopped on purpose (left the cluster); chaos does not restart it, the liveness phase
    /// does.
    pub left: bool,
    /// Lost for good (a device that will never come back): not even the liveness phase
    /// restarts it.
    pub lost: bool,
    pub identity: Option<String>,
    /// The seed phrase `identity create` showed (kept so that a scenario can recover the
    /// identity on another host, as its user would from paper).
    pub seed_phrase: Option<String>,
    /// Joined (or created) the shared space.
    pub member: bool,
}

/// An answer that may still be on its way.
pub struct Pending<T> {
    node: usize,
    incarnation: u32,
    slot: Rc<RefCell<Option<T>>>,
}

/// The simulated world of one run.
pub struct Cluster {
    pub scenario: &'static str,
    pub seed: u64,
    sim: turmoil::Sim<'static>,
    config: ClusterConfig,
    pub nodes: Vec<SimNode>,
    pub trace: Trace,
    /// The scenario's own choices ([`crate::rng::SCENARIO`]).
    pub rng: ChaCha20Rng,
    /// The run's random faults: its options, then every chaos decision
    /// ([`crate::rng::FAULTS`]); nothing else draws from it.
    pub(crate) fault_rng: ChaCha20Rng,
    pub faults: FaultOptions,
    pub active: ActiveFaults,
    pub violations: Vec<Violation>,
    pub facts: AckedFacts,
    auth: AuthorizationChecker,
    next_check_ms: u64,
    /// The shared space's key, once created.
    pub space: Option<String>,
}

impl Cluster {
    /// A cluster of `config.nodes` started peers (no identities yet).
    pub fn new(
        scenario: &'static str,
        seed: u64,
        opts: &RunOptions,
        config: ClusterConfig,
    ) -> Self {
        let rng = crate::rng::stream(seed, crate::rng::SCENARIO);
        let mut fault_rng = crate::rng::stream(seed, crate::rng::FAULTS);
        let faults = FaultOptions::draw(&mut fault_rng, config.tick_ms);
        let turmoil_seed = crate::rng::stream(seed, crate::rng::TURMOIL).next_u64();
        let sim = turmoil::Builder::new()
            .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
            .rng_seed(turmoil_seed)
            .enable_random_order()
            .tick_duration(Duration::from_millis(config.tick_ms))
            .min_message_latency(Duration::from_millis(faults.latency_ms))
            .max_message_latency(Duration::from_millis(faults.latency_ms))
            .udp_capacity(4096)
            .simulation_duration(Duration::from_secs(24 * 3600))
            .build();
        let mut trace = Trace::new(opts.keep_trace);
        trace.event(0, format!("scenario {scenario} seed {seed}"));
        trace.event(0, format!("options: {faults}"));
        let mut cluster = Cluster {
            scenario,
            seed,
            sim,
            config: config.clone(),
            nodes: Vec::new(),
            trace,
            rng,
            fault_rng,
            faults,
            active: ActiveFaults::default(),
            violations: Vec::new(),
            facts: AckedFacts::default(),
            auth: AuthorizationChecker::default(),
            next_check_ms: CHECK_EVERY_MS,
            space: None,
        };
        for _ in 0..config.nodes {
            cluster.add_node();
        }
        cluster
    }

    /// Simulated time since the start, in ms.
    pub fn now(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    /// Records a trace event at the current simulated time.
    pub fn event(&mut self, text: impl Into<String>) {
        let now = self.now();
        self.trace.event(now, text);
    }

    /// Records a violation (and a trace event for it).
    pub fn violation(&mut self, checker: &'static str, detail: impl Into<String>) {
        let detail = detail.into();
        self.event(format!("VIOLATION [{checker}] {detail}"));
        self.violations.push(Violation { checker, detail });
    }

    /// The turmoil address of a host name (registering the name if new).
    pub fn lookup(&self, name: &str) -> std::net::IpAddr {
        self.sim.lookup(name)
    }

    /// Registers another turmoil host (for scenario-specific software such as a bad peer).
    pub fn host<F, Fut>(&mut self, name: &str, software: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        self.sim.host(name, software);
        self.event(format!("host {name} started"));
    }

    /// Declares a feed that no honest node may ever store (a bad peer's).
    pub fn forbid_feed(&mut self, feed: echo_actors::types::PublicKey) {
        self.auth.forbid(feed);
    }

    /// Starts one more peer; returns its index.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let name = format!("n{index}");
        let ip = self.sim.lookup(name.as_str());
        let static_peers = match self.config.topology {
            Topology::Mesh => self.nodes.iter().map(|n| n.addr).collect(),
            Topology::Line => self.nodes.last().map(|n| n.addr).into_iter().collect(),
            Topology::Hubs(k) => self.nodes.iter().take(k).map(|n| n.addr).collect(),
            Topology::Signaling => vec![],
        };
        let signal_servers = match self.config.topology {
            Topology::Signaling => vec![SocketAddr::new(
                self.sim.lookup(host::SIGNAL_HOST),
                host::SIGNAL_PORT,
            )],
            Topology::Mesh | Topology::Line | Topology::Hubs(_) => vec![],
        };
        let mut node_rng = crate::rng::node(self.seed, index);
        let mut base_seed = [0u8; 32];
        node_rng.fill_bytes(&mut base_seed);
        let flush_delay_ms = self.config.tick_ms + node_rng.next_u64() % FLUSH_DELAY_SPREAD_MS;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Rc::new(HostShared {
            store: Arc::new(MemStore::with_flush_delay(Duration::from_millis(
                flush_delay_ms,
            ))),
            mesh: MeshConfig {
                static_peers,
                signal_servers,
                max_originated: 4,
                max_accepted: 16,
                listen_for_members: true,
                advertise_ips: vec![ip],
                presence: Default::default(),
            },
            base_seed,
            incarnation: Cell::new(0),
            jobs: RefCell::new(Some(rx)),
            open: Cell::new(false),
            failure: RefCell::new(None),
        });
        let software = shared.clone();
        self.sim
            .host(name.as_str(), move || host::software(software.clone()));
        self.event(format!(
            "node {name} started at {ip} (flush delay {flush_delay_ms} ms)"
        ));
        self.nodes.push(SimNode {
            name,
            addr: SocketAddr::new(ip, PEER_PORT),
            shared,
            tx,
            up: true,
            left: false,
            lost: false,
            identity: None,
            seed_phrase: None,
            member: false,
        });
        index
    }

    /// A fresh job queue for a node's next incarnation.
    pub(crate) fn renew_jobs(&mut self, node: usize) {
        let (tx, rx) = mpsc::unbounded_channel();
        let n = &mut self.nodes[node];
        n.tx = tx;
        *n.shared.jobs.borrow_mut() = Some(rx);
        n.shared.incarnation.set(n.shared.incarnation.get() + 1);
        n.shared.open.set(false);
    }

    pub(crate) fn sim(&mut self) -> &mut turmoil::Sim<'static> {
        &mut self.sim
    }

    /// Advances the simulation by one tick; the safety checkers run every second.
    pub fn step(&mut self) {
        if let Err(e) = self.sim.step() {
            self.violation("host", format!("a host's software failed: {e}"));
        }
        if self.now() >= self.next_check_ms {
            self.next_check_ms += CHECK_EVERY_MS;
            self.safety_check();
        }
    }

    /// Advances the simulation by `ms` simulated milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now() + ms;
        while self.now() < until {
            self.step();
        }
    }

    /// The read-only checks that must hold at every moment: authorization of every stored
    /// block on every node (crashed ones included).
    pub fn safety_check(&mut self) {
        let mut found = Vec::new();
        let mut digest = blake3::Hasher::new();
        for n in &self.nodes {
            found.extend(self.auth.check(&n.name, &n.shared.store));
            digest.update(&self.auth.last_digest());
        }
        let digest = digest.finalize().to_hex();
        self.event(format!("stores {}", &digest[..16]));
        for v in found {
            self.violation(v.checker, v.detail);
        }
    }

    /// Sends a request to a node; its answer arrives while the simulation runs.
    pub fn submit<T, F, Fut>(&mut self, node: usize, request: F) -> Pending<T>
    where
        T: 'static,
        F: FnOnce(NodeHandle) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let slot = Rc::new(RefCell::new(None));
        let pending = Pending {
            node,
            incarnation: self.nodes[node].shared.incarnation.get(),
            slot: slot.clone(),
        };
        if self.nodes[node].up {
            let job: Job = Box::new(move |handle| {
                Box::pin(async move {
                    let answer = request(handle).await;
                    *slot.borrow_mut() = Some(answer);
                })
            });
            let _ = self.nodes[node].tx.send(job);
        }
        pending
    }

    /// Is the answer in, or will it never come (node down or restarted)?
    fn settled<T>(&self, p: &Pending<T>) -> bool {
        let n = &self.nodes[p.node];
        p.slot.borrow().is_some() || !n.up || n.shared.incarnation.get() != p.incarnation
    }

    /// Runs the simulation until the answer arrives (`None`: no answer within `timeout_ms`,
    /// or the node went down).
    pub fn wait_for<T>(&mut self, p: Pending<T>, timeout_ms: u64) -> Option<T> {
        let until = self.now() + timeout_ms;
        while !self.settled(&p) && self.now() < until {
            self.step();
        }
        p.slot.borrow_mut().take()
    }

    /// Waits for several answers at once.
    pub fn wait_all<T>(&mut self, ps: Vec<Pending<T>>, timeout_ms: u64) -> Vec<Option<T>> {
        let until = self.now() + timeout_ms;
        while !ps.iter().all(|p| self.settled(p)) && self.now() < until {
            self.step();
        }
        ps.into_iter().map(|p| p.slot.borrow_mut().take()).collect()
    }

    /// One request, waited for.
    pub fn call<T, F, Fut>(&mut self, node: usize, request: F) -> Option<T>
    where
        T: 'static,
        F: FnOnce(NodeHandle) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let p = self.submit(node, request);
        self.wait_for(p, REQUEST_TIMEOUT_MS)
    }

    /// Indices of nodes whose software runs.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].up)
            .collect()
    }

    /// Picks one of `from` with the scenario RNG.
    pub fn pick(&mut self, from: &[usize]) -> Option<usize> {
        (!from.is_empty()).then(|| from[(self.rng.next_u32() as usize) % from.len()])
    }

    /// A number in `0..n` from the scenario RNG.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }

    /// A number in `0..n` from the fault RNG (chaos decisions only).
    pub(crate) fn fault_below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.fault_rng.next_u64() % n
        }
    }

    /// Ends the run: the outcome with the trace hash.
    pub fn finish(mut self) -> Outcome {
        let simulated_ms = self.now();
        self.event(format!("end: {} violations", self.violations.len()));
        Outcome {
            scenario: self.scenario,
            seed: self.seed,
            simulated_ms,
            trace_hash: self.trace.hash_hex(),
            trace_events: self.trace.len(),
            trace: self.trace.lines().to_vec(),
            violations: std::mem::take(&mut self.violations),
            options: self.faults.to_string(),
        }
    }
}
