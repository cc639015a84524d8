//! The threads of a soak: one writer per node (paced object adds through the node's local
//! API, each acknowledged id recorded in the [`Ledger`]) and one sampler (VmRSS and fd count
//! of every running daemon, and crash detection), plus the state they share with the
//! driver in `mod.rs`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;

use super::api::{self, Write};
use super::cluster::{fd_count, rss_kib, Node};

/// Write outcomes of one node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeWrites {
    pub acked: u64,
    /// Answered with another status (403 not admitted, 503 shutting down, 500...).
    pub refused: u64,
    /// Not answered (the node was down or died during the request).
    pub no_answer: u64,
    /// Refusals by status, for the report (`"403": 2`).
    pub refused_by_status: std::collections::BTreeMap<String, u64>,
    pub last_refusal: Option<String>,
}

/// Every acknowledged write, per space: what must be on every node after convergence.
#[derive(Default)]
pub struct Ledger {
    pub acked: Vec<BTreeSet<String>>,
    pub per_node: Vec<NodeWrites>,
}

/// One `/proc` reading of one daemon.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t: f64,
    pub node: usize,
    /// Which run of the node (1 = first start); a restart begins a new line in the plot.
    pub incarnation: usize,
    pub rss_kib: u64,
    pub fds: usize,
}

/// Something the driver or the sampler did to or saw of a node.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub t: f64,
    pub node: usize,
    /// `start`, `kill9` or `crash`.
    pub kind: &'static str,
    pub incarnation: usize,
}

/// State shared by the driver and its threads.
pub struct Shared {
    pub nodes: Vec<Node>,
    pub spaces: Vec<String>,
    pub t0: Instant,
    /// Writers write only while this is set.
    pub writing: AtomicBool,
    /// Threads end when this is set.
    pub stop: AtomicBool,
    /// Writes sent and not yet answered; a quiet period starts when it is back to 0.
    pub in_flight: AtomicUsize,
    pub ledger: Mutex<Ledger>,
    pub samples: Mutex<Vec<Sample>>,
    pub events: Mutex<Vec<Event>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(nodes: Vec<Node>, t0: Instant) -> Shared {
        let n = nodes.len();
        Shared {
            nodes,
            spaces: Vec::new(),
            t0,
            writing: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            ledger: Mutex::new(Ledger {
                acked: Vec::new(),
                per_node: vec![NodeWrites::default(); n],
            }),
            samples: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
        }
    }

    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    pub fn samples(&self) -> MutexGuard<'_, Vec<Sample>> {
        lock(&self.samples)
    }

    pub fn events(&self) -> MutexGuard<'_, Vec<Event>> {
        lock(&self.events)
    }

    pub fn event(&self, node: usize, kind: &'static str) {
        let incarnation = self.nodes[node].state().incarnation;
        let t = self.now();
        self.events().push(Event {
            t,
            node,
            kind,
            incarnation,
        });
    }

    /// Records an acknowledged write of `node` to space number `space`.
    pub fn record_ack(&self, node: usize, space: usize, id: String) {
        let mut l = self.ledger();
        l.acked[space].insert(id);
        l.per_node[node].acked += 1;
    }

    /// Stops new writes and waits (bounded) until every write in flight was answered, so
    /// that the ledger is complete when a quiet period starts.
    pub fn pause_writes(&self, timeout: Duration) -> bool {
        self.writing.store(false, Ordering::SeqCst);
        let start = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// Starts one writer per node: `rate` adds per second, each to a space picked by the
/// writer's own seeded RNG.
pub fn start_writers(shared: &Arc<Shared>, rate: f64, seed: u64) -> Vec<JoinHandle<()>> {
    (0..shared.nodes.len())
        .map(|i| {
            let shared = shared.clone();
            thread::spawn(move || writer(&shared, i, rate, seed))
        })
        .collect()
}

fn writer(shared: &Shared, i: usize, rate: f64, seed: u64) {
    let agent = api::agent();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5eed_0000 + i as u64));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        // A writer that fell behind (slow node) does not burst to catch up.
        next = next.max(now) + interval;
        if !shared.writing.load(Ordering::SeqCst) {
            continue;
        }
        let Some(ep) = shared.nodes[i].endpoint() else {
            continue;
        };
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        // Checked again after counting ourselves in flight: a pause that began in between
        // sees this write either as in flight or not started.
        if shared.writing.load(Ordering::SeqCst) {
            let space = (rng.next_u64() % shared.spaces.len() as u64) as usize;
            seq += 1;
            let object =
                json!({"@type": "soak", "node": i, "seq": seq, "title": format!("n{i} #{seq}")});
            match api::add_object(&agent, &ep, &shared.spaces[space], &object) {
                Write::Acked(id) => shared.record_ack(i, space, id),
                Write::Refused(status, body) => {
                    let mut l = shared.ledger();
                    let w = &mut l.per_node[i];
                    w.refused += 1;
                    *w.refused_by_status.entry(status.to_string()).or_default() += 1;
                    w.last_refusal = Some(format!("{status} {body}"));
                }
                Write::NoAnswer(_) => shared.ledger().per_node[i].no_answer += 1,
            }
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts the sampler: every `every`, VmRSS and fd count of each running daemon; a daemon
/// that exited on its own is recorded as a crash (the driver restarts it).
pub fn start_sampler(shared: &Arc<Shared>, every: Duration) -> JoinHandle<()> {
    let shared = shared.clone();
    thread::spawn(move || {
        let mut next = Instant::now();
        while !shared.stop.load(Ordering::SeqCst) {
            sample_once(&shared);
            next += every;
            while Instant::now() < next && !shared.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        }
    })
}

pub fn sample_once(shared: &Shared) {
    for node in &shared.nodes {
        if node.reap_crashed() {
            shared.event(node.index, "crash");
            continue;
        }
        let Some((pid, incarnation)) = node.pid() else {
            continue;
        };
        // A process killed between reading its pid and its /proc entry just has no sample.
        if let (Some(rss), Some(fds)) = (rss_kib(pid), fd_count(pid)) {
            let t = shared.now();
            shared.samples().push(Sample {
                t,
                node: node.index,
                incarnation,
                rss_kib: rss,
                fds,
            });
        }
    }
}
