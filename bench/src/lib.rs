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

pub mod soak;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use echo_actors::node::{Node, NodeConfig, QueryRequest};
use echo_actors::store::{MemStore, SledStore, Store};
use echo_actors::types::Clock;
use serde_json::json;
use yrs::{Map, Transact};

/// Which store the node under test writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

struct WallClock;
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

/// The node side: `ops` adds through `NodeHandle`, each durable before the next.
pub fn node_writes(ops: usize, store: StoreKind) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = match store {
        StoreKind::Mem => Arc::new(MemStore::new()),
        StoreKind::Sled => Arc::new(SledStore::open(&dir.path().join("store"))?),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local
        .block_on(&rt, async move {
            let node = Node::open(NodeConfig {
                store,
                rng_seed: [7; 32],
                clock: Arc::new(WallClock),
                listen: None,
                network: None,
            })
            .await?;
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
