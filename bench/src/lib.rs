//! echo-bench: measured, not assumed. Each workload runs on echo-rs and on a baseline in
//! the same process and run, so the numbers compare.
//!
//! `local_writes`: N object adds through a whole node (validation, Yrs transaction, one
//! signed hash-chained block per write, store write + flush) against the same adds on a
//! bare `yrs::Doc` (transaction + v1 update encoding only). Replication convergence
//! workloads join when peers replicate.
//!
//! `soak`: a cluster of real `echo-node` processes under writes and kill -9, watched for
//! convergence, lost writes, RSS and open fds over time (see [`soak`]).
//!
//! The write and replication path (issue 11), each beside its baseline from the same run:
//! [`ingest`] (acknowledged durable writes/s with N concurrent writers, in-process or over
//! the local API, vs raw yrs encode+apply and an empty actix-web handler), [`replicate`]
//! (two daemons over QUIC loopback: ops/s until the second holds everything, wire bytes per
//! op vs raw Yrs update bytes, bytes/s vs raw quinn bulk) and [`storage`] (the B1.1 text
//! workload: bytes on disk per op vs raw Yrs update bytes).

mod daemon;
mod disk_sync;
mod http_load;
pub mod ingest;
mod quinn_bulk;
mod relay;
pub mod replicate;
pub mod soak;
pub mod storage;
mod yrs_raw;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use echo_actors::node::{Node, NodeConfig, QueryRequest};
use echo_actors::store::{MemStore, SledStore, Store};
use echo_actors::types::Clock;
use serde_json::json;
use yrs::{Map, Transact};

/// Which store the node under test writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In memory: measures the node's own cost.
    Mem,
    /// sled in a temp dir with a flush per write: what users get.
    Sled,
}

/// One measured side.
#[derive(Debug, Clone)]
pub struct Measured {
    pub name: String,
    pub ops: usize,
    pub elapsed: Duration,
}

impl Measured {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn micros_per_op(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }
}

/// The system clock, for nodes opened in-process.
pub(crate) struct WallClock;
impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        // The benchmark harness measures real time; this clock only stamps ULIDs.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

fn object(i: usize) -> serde_json::Value {
    json!({"@type": "item", "title": format!("item {i}"), "n": i, "done": false})
}

/// The baseline: the same adds on a bare yrs doc, encoding each transaction's update.
pub fn yrs_baseline(ops: usize) -> Result<Measured> {
    let doc = yrs::Doc::with_client_id(1);
    let objects = doc.get_or_insert_map("objects");
    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..ops {
        let mut txn = doc.transact_mut();
        let fields = yrs::MapPrelim::from([
            ("@type".to_string(), yrs::Any::from("item")),
            ("title".to_string(), yrs::Any::from(format!("item {i}"))),
            ("n".to_string(), yrs::Any::from(i as f64)),
            ("done".to_string(), yrs::Any::from(false)),
        ]);
        objects.insert(&mut txn, format!("{i:026}"), fields);
        bytes += txn.encode_update_v1().len();
    }
    let elapsed = start.elapsed();
    ensure!(bytes > 0, "baseline produced no updates");
    Ok(Measured {
        name: "raw yrs".into(),
        ops,
        elapsed,
    })
}

/// A store of `kind`; sled lives in `dir/store`.
pub(crate) fn open_store(kind: StoreKind, dir: &std::path::Path) -> Result<Arc<dyn Store>> {
    Ok(match kind {
        StoreKind::Mem => Arc::new(MemStore::new()),
        StoreKind::Sled => Arc::new(SledStore::open(&dir.join("store"))?),
    })
}

/// Config of a node opened in-process: no network, a fixed seed, the wall clock.
pub(crate) fn node_config(store: Arc<dyn Store>) -> NodeConfig {
    NodeConfig::local(store, [7; 32], Arc::new(WallClock))
}

/// The node side: `ops` adds through `NodeHandle`, each durable before the next.
pub fn node_writes(ops: usize, store: StoreKind) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let store = open_store(store, dir.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local
        .block_on(&rt, async move {
            let node = Node::open(node_config(store)).await?;
            node.identity_create(None).await?;
            node.space_create(Some("bench".into())).await?;
            let start = Instant::now();
            for i in 0..ops {
                node.object_add("bench", object(i)).await?;
            }
            let elapsed = start.elapsed();
            let count = node.query("bench", QueryRequest::default()).await?.len();
            ensure!(count == ops, "node holds {count} objects after {ops} adds");
            node.shutdown().await?;
            Ok(Measured {
                name: String::new(),
                ops,
                elapsed,
            })
        })
        .context("node benchmark failed")
}

/// An indicatif bar on stderr, or a hidden one when nobody watches (`show` false: `--json`
/// or stderr not a terminal), so callers never branch on it.
pub(crate) fn progress_bar(len: u64, message: &str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`) when a run starts, recorded in
/// every report: this machine's 2 cores are shared, and the figures mean little without it.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Latency percentiles of acknowledged writes, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub(crate) fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        Latency {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// `a / b`, or `None` when `b` is not a positive number (no ratio to report).
pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}
