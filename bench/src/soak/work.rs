//! The threads of a soak: one writer per node (paced writes through the node's local API to
//! a bounded working set of its own objects, each acknowledged write recorded in the
//! [`Ledger`]) and one sampler (VmRSS and fd count of every running daemon, and crash
//! detection), plus the state they share with the driver in `mod.rs`.
//!
//! The workload keeps the live data bounded while writes go on: a writer keeps at most
//! `--objects` live objects of its own per space. Below that it adds one; at the limit each
//! write updates one of them (`PATCH {"v": seq}`), or, one write in `--delete-every`,
//! soft-deletes the oldest (the next write in that space then adds a new one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;

use super::api::{self, Change, Write};
use super::cluster::{fd_count, rss_kib, Node};

/// Write outcomes of one node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeWrites {
    pub acked: u64,
    /// Acknowledged writes by kind (they add up to `acked`).
    pub adds: u64,
    pub updates: u64,
    pub deletes: u64,
    /// Answered with another status (403 not admitted, 503 shutting down, 500...).
    pub refused: u64,
    /// Not answered (the node was down or died during the request).
    pub no_answer: u64,
    /// Refusals by status, for the report (`"403": 2`).
    pub refused_by_status: std::collections::BTreeMap<String, u64>,
    pub last_refusal: Option<String>,
}

/// What the acknowledged writes to one object require every node to show after convergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The values `v` may have: the last acknowledged one first, then those of writes sent
    /// after it that got no acknowledgment (each may or may not have been applied; a later
    /// acknowledged write of the same writer overrides them all).
    pub v: Vec<u64>,
    /// `Some(true)`: its delete was acknowledged; `Some(false)`: no delete was sent;
    /// `None`: a delete was sent and not acknowledged yet (either is right; it is retried).
    pub deleted: Option<bool>,
}

impl Expect {
    /// Whether `object` (as the query returns it) shows every acknowledged write.
    pub fn holds(&self, object: &serde_json::Value) -> bool {
        let v_ok = object["v"].as_u64().is_some_and(|v| self.v.contains(&v));
        let del_ok = match self.deleted {
            Some(d) => object["@deleted"].as_bool() == Some(d),
            None => true,
        };
        v_ok && del_ok
    }
}

/// Every acknowledged write, per space: what must be on every node after convergence.
#[derive(Default)]
pub struct Ledger {
    /// `objects[space][id]`: every object whose add was acknowledged.
    pub objects: Vec<BTreeMap<String, Expect>>,
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
    /// Working sets (node, space) that have reached `--objects` live objects.
    pub full_sets: AtomicUsize,
    /// When the last working set got full (seconds since the start): from then on the live
    /// data no longer grows.
    pub full_at: Mutex<Option<f64>>,
}

impl NodeWrites {
    fn refuse(&mut self, status: u16, body: String) {
        self.refused += 1;
        *self
            .refused_by_status
            .entry(status.to_string())
            .or_default() += 1;
        self.last_refusal = Some(format!("{status} {body}"));
    }
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
                objects: Vec::new(),
                per_node: vec![NodeWrites::default(); n],
            }),
            samples: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            full_sets: AtomicUsize::new(0),
            full_at: Mutex::new(None),
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

    /// Records an acknowledged add of `node` to space number `space`.
    pub fn record_add(&self, node: usize, space: usize, id: String, v: u64) {
        let mut l = self.ledger();
        let expect = Expect {
            v: vec![v],
            deleted: Some(false),
        };
        l.objects[space].insert(id, expect);
        l.per_node[node].acked += 1;
        l.per_node[node].adds += 1;
    }

    /// Records the outcome of an update (`v: Some`) or delete (`None`) of object `id`.
    fn record_change(&self, node: usize, space: usize, id: &str, v: Option<u64>, c: Change) {
        let mut l = self.ledger();
        let acked = matches!(c, Change::Acked);
        if let Some(e) = l.objects[space].get_mut(id) {
            match (v, acked) {
                (Some(v), true) => e.v = vec![v],
                (Some(v), false) => e.v.push(v),
                (None, true) => e.deleted = Some(true),
                (None, false) => e.deleted = None,
            }
        }
        let w = &mut l.per_node[node];
        match c {
            Change::Acked => {
                w.acked += 1;
                if v.is_some() {
                    w.updates += 1;
                } else {
                    w.deletes += 1;
                }
            }
            Change::Refused(status, body) => w.refuse(status, body),
            Change::NoAnswer => w.no_answer += 1,
        }
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

/// The workload's knobs.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Writes per second per node.
    pub rate: f64,
    /// Live objects of its own a writer keeps per space.
    pub objects: usize,
    /// One write in this many, once a working set is full, is a delete.
    pub delete_every: u64,
    pub seed: u64,
}

/// Starts one writer per node: `rate` writes per second, each to a space picked by the
/// writer's own seeded RNG.
pub fn start_writers(shared: &Arc<Shared>, w: Workload) -> Vec<JoinHandle<()>> {
    (0..shared.nodes.len())
        .map(|i| {
            let shared = shared.clone();
            thread::spawn(move || writer(&shared, i, w))
        })
        .collect()
}

/// One writer's own objects in one space.
#[derive(Default)]
struct WorkingSet {
    /// Live objects, oldest first.
    live: Vec<String>,
    /// A delete sent and not acknowledged: retried before anything else in this space.
    deleting: Option<String>,
    was_full: bool,
}

enum Op {
    Add,
    Update(String),
    Delete(String),
}

fn writer(shared: &Shared, i: usize, w: Workload) {
    let agent = api::agent();
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed ^ (0x5eed_0000 + i as u64));
    let interval = Duration::from_secs_f64(1.0 / w.rate);
    let mut sets: Vec<WorkingSet> = (0..shared.spaces.len())
        .map(|_| WorkingSet::default())
        .collect();
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
            let name = &shared.spaces[space];
            let set = &mut sets[space];
            seq += 1;
            let op = if let Some(id) = set.deleting.clone() {
                Op::Delete(id)
            } else if set.live.len() < w.objects {
                Op::Add
            } else if rng.next_u64() % w.delete_every == 0 {
                let id = set.live.remove(0);
                set.deleting = Some(id.clone());
                Op::Delete(id)
            } else {
                let k = (rng.next_u64() % set.live.len() as u64) as usize;
                Op::Update(set.live[k].clone())
            };
            match op {
                Op::Add => {
                    let object = json!({"@type": "soak", "node": i, "v": seq});
                    match api::add_object(&agent, &ep, name, &object) {
                        Write::Acked(id) => {
                            shared.record_add(i, space, id.clone(), seq);
                            set.live.push(id);
                            if set.live.len() >= w.objects && !set.was_full {
                                set.was_full = true;
                                let full = shared.full_sets.fetch_add(1, Ordering::SeqCst) + 1;
                                if full == shared.nodes.len() * shared.spaces.len() {
                                    *lock(&shared.full_at) = Some(shared.now());
                                }
                            }
                        }
                        Write::Refused(status, body) => {
                            shared.ledger().per_node[i].refuse(status, body)
                        }
                        Write::NoAnswer(_) => shared.ledger().per_node[i].no_answer += 1,
                    }
                }
                Op::Update(id) => {
                    let c = api::patch_object(&agent, &ep, name, &id, &json!({ "v": seq }));
                    shared.record_change(i, space, &id, Some(seq), c);
                }
                Op::Delete(id) => {
                    let c = api::delete_object(&agent, &ep, name, &id);
                    if matches!(c, Change::Acked) {
                        set.deleting = None;
                    }
                    shared.record_change(i, space, &id, None, c);
                }
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
