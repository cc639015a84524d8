//! `echo-bench ingest`: acknowledged durable writes per second through one node with N
//! concurrent writers, beside raw yrs encode+apply of the same kind of edit and (over HTTP)
//! the HTTP ceiling of this machine, all in the same run.
//!
//! Each writer owns one object (`{"@type": "bench", "v": 0}`, created before timing) and
//! updates its field `v` to 1, 2, 3, ... one write after another, each acknowledged only
//! once durable. `--via handle`: tokio tasks on the node's own thread calling
//! `NodeHandle::object_update` (no HTTP). `--via http`: N client threads sending
//! `PATCH /v1/spaces/S/objects/ID {"v": k}` to a real `echo-node run`, a new connection per
//! request; the ceiling is an empty actix-web handler (one worker, keep-alive off) driven
//! by the same clients with the same requests. At the end every object must hold its
//! writer's last value.
//!
//! With sled, the disk's own sync rate (64 B append + `fdatasync`, [`crate::disk_sync`]) is
//! measured too, and the node's data feed length tells how many writes shared a block
//! (group commit): with one flush per block, ops/s ≈ syncs/s × writes per block.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use echo_actors::node::Node;
use serde::Serialize;
use serde_json::{json, Value};

use crate::daemon::{self, Daemon};
use crate::http_load::{self, Ceiling, Request};
use crate::soak::api;
use crate::Latency;
use crate::{disk_sync, load_average, node_config, open_store, progress_bar, ratio, yrs_raw};
use crate::{soak::find_echo_node, StoreKind};

/// How the writes reach the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// In-process `NodeHandle` calls (the node's own cost, no HTTP).
    Handle,
    /// The local API of a real `echo-node run` daemon (what apps get).
    Http,
}

/// Flags of `echo-bench ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Concurrent writers; each updates its own object, one acknowledged write after
    /// another.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub writers: u16,
    /// Where the writes come from: in-process `NodeHandle` calls, or HTTP clients of a
    /// real daemon (which always stores in sled).
    #[arg(long, value_enum, default_value_t = Via::Handle)]
    pub via: Via,
    /// The node's store (`--via handle` only): sled with a flush per acknowledged write,
    /// or memory (the node's own cost without durability).
    #[arg(long, value_enum, default_value_t = StoreKind::Sled)]
    pub store: StoreKind,
    /// Acknowledged writes in all, spread evenly over the writers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub ops: u64,
    /// Edits of the raw yrs baseline (at least --ops; more gives a steadier rate).
    #[arg(long, default_value_t = 200_000)]
    pub baseline_ops: u64,
    /// The echo-node binary for `--via http` (default: `echo-node` next to this
    /// executable).
    #[arg(long)]
    pub echo_node: Option<PathBuf>,
}

/// One measured side of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub ops: usize,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub us_per_op: f64,
    /// Per acknowledged write (absent for the raw baseline, which has no acknowledgements).
    pub latency: Option<Latency>,
}

impl Row {
    fn new(name: &str, ops: usize, elapsed: Duration, latency: Option<Latency>) -> Row {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Row {
            name: name.to_owned(),
            ops,
            secs,
            ops_per_sec: ops as f64 / secs,
            us_per_op: secs * 1e6 / ops.max(1) as f64,
            latency,
        }
    }
}

/// What the node's counters (`status --json` `counters`) say about the timed writes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Commits {
    pub commits: u64,
    pub writes: u64,
    pub writes_per_commit: f64,
    /// Mean time from handing a batch to the feed until it is durable (sign, write, flush).
    pub commit_ms_mean: f64,
    /// Commits × mean commit time ÷ the run's time: near 1, a commit was always in flight,
    /// so commit latency and batch size bound the rate.
    pub commit_busy_fraction: f64,
}

fn counter(status: &Value, name: &str) -> Option<u64> {
    status.get("counters")?.get(name)?.as_u64()
}

impl Commits {
    fn between(before: &Value, after: &Value, elapsed: Duration) -> Option<Commits> {
        let diff = |name| Some(counter(after, name)?.saturating_sub(counter(before, name)?));
        let commits = diff("echo_commits_total")?;
        let writes = diff("echo_commit_writes_total")?;
        let micros = diff("echo_commit_micros_sum")?;
        Some(Commits {
            commits,
            writes,
            writes_per_commit: writes as f64 / commits.max(1) as f64,
            commit_ms_mean: micros as f64 / 1e3 / commits.max(1) as f64,
            commit_busy_fraction: micros as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
        })
    }
}

/// One node run: its row, the blocks its data feed grew by, its commit counters.
type NodeRun = (Row, u64, Option<Commits>);

/// The outcome of `echo-bench ingest`.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub command: &'static str,
    pub writers: usize,
    pub via: Via,
    pub store: StoreKind,
    /// Load averages when the run started (the machine's cores are shared).
    pub load_average: Option<[f64; 3]>,
    pub node: Row,
    pub raw_yrs: Row,
    /// Bytes of one raw yrs update of this edit, for reference.
    pub raw_yrs_update_bytes_per_op: f64,
    /// Sled only: 64 B append + `fdatasync` in the same temp dir, the disk's sync rate.
    pub disk_sync: Option<Row>,
    /// Blocks the node's data feed grew by during the timed writes, per write (1 without
    /// group commit; 1/k when k writes share a block).
    pub blocks_per_op: f64,
    /// The node's commit counters over the timed writes (absent for a node without them).
    pub commits: Option<Commits>,
    /// `--via http` only: the empty actix-web handler, same clients, same requests.
    pub http_ceiling: Option<Row>,
    /// node ops/s ÷ raw yrs ops/s.
    pub node_over_raw_yrs: Option<f64>,
    /// node ops/s ÷ ceiling ops/s (`--via http`).
    pub node_over_http_ceiling: Option<f64>,
}

impl IngestReport {
    pub fn text(&self) -> String {
        let mut rows = vec![&self.raw_yrs];
        rows.extend(self.disk_sync.as_ref());
        rows.extend(self.http_ceiling.as_ref());
        rows.push(&self.node);
        let mut out = format!(
            "ingest: {} writers via {:?}, store {:?}\n{:<44} {:>9} {:>11} {:>9} {:>9} {:>9}\n",
            self.writers, self.via, self.store, "side", "ops", "ops/s", "µs/op", "p50 ms", "p99 ms"
        );
        for r in rows {
            let (p50, p99) = r
                .latency
                .map_or((String::from("-"), String::from("-")), |l| {
                    (format!("{:.2}", l.p50_ms), format!("{:.2}", l.p99_ms))
                });
            out += &format!(
                "{:<44} {:>9} {:>11.0} {:>9.1} {:>9} {:>9}\n",
                r.name, r.ops, r.ops_per_sec, r.us_per_op, p50, p99
            );
        }
        out += &format!(
            "blocks per write:    {:.4} ({:.1} writes per block)\n",
            self.blocks_per_op,
            1.0 / self.blocks_per_op.max(1e-9)
        );
        if let Some(c) = self.commits {
            out += &format!(
                "commits:             {} of {:.1} writes, {:.3} ms each, in flight {:.0}% of the time\n",
                c.commits,
                c.writes_per_commit,
                c.commit_ms_mean,
                c.commit_busy_fraction * 100.0
            );
        }
        if let Some(x) = self.node_over_raw_yrs {
            out += &format!("node / raw yrs:      {x:.4}\n");
        }
        if let Some(x) = self.node_over_http_ceiling {
            out += &format!("node / HTTP ceiling: {x:.4}\n");
        }
        if let Some(l) = self.load_average {
            out += &format!(
                "load average at start: {:.2} {:.2} {:.2}\n",
                l[0], l[1], l[2]
            );
        }
        out
    }
}

/// Runs `echo-bench ingest`.
pub fn run(args: &IngestArgs, progress: bool) -> Result<IngestReport> {
    if args.via == Via::Http && args.store == StoreKind::Mem {
        bail!("`--via http` drives a real daemon, which always stores in sled; use `--via handle --store mem` for the memory store");
    }
    let writers = usize::from(args.writers);
    let ops = usize::try_from(args.ops)?;
    let load = load_average();
    let raw_ops = usize::try_from(args.baseline_ops)?.max(ops);
    let raw = yrs_raw::field_updates(writers, raw_ops)?;
    let raw_yrs = Row::new("raw yrs (encode v1 + apply)", raw.ops, raw.elapsed, None);
    let disk_sync = match args.store {
        StoreKind::Sled => {
            let dir = tempfile::tempdir()?;
            let s = disk_sync::measure(dir.path(), Duration::from_secs(1), 5000)?;
            Some(Row::new(
                "disk: 64 B append + fdatasync",
                s.ops,
                s.elapsed,
                None,
            ))
        }
        StoreKind::Mem => None,
    };
    let ((node, blocks, commits), http_ceiling) = match args.via {
        Via::Handle => (via_handle(writers, ops, args.store, progress)?, None),
        Via::Http => {
            let bin = find_echo_node(args.echo_node.as_deref())?;
            let node = via_http(&bin, writers, ops, progress)?;
            let ceiling = http_ceiling(writers, ops, progress)?;
            (node, Some(ceiling))
        }
    };
    Ok(IngestReport {
        command: "ingest",
        writers,
        via: args.via,
        store: args.store,
        load_average: load,
        node_over_raw_yrs: ratio(node.ops_per_sec, raw_yrs.ops_per_sec),
        node_over_http_ceiling: http_ceiling
            .as_ref()
            .and_then(|c| ratio(node.ops_per_sec, c.ops_per_sec)),
        raw_yrs_update_bytes_per_op: raw.bytes_per_op(),
        disk_sync,
        blocks_per_op: blocks as f64 / ops as f64,
        commits,
        node,
        raw_yrs,
        http_ceiling,
    })
}

fn bench_object() -> Value {
    json!({"@type": "bench", "v": 0})
}

/// Length of the node's own data feed of `space` in a status.
fn data_feed_length(status: &Value, space: &str) -> Result<u64> {
    let feed = daemon::own_data_feed(status, space)?;
    Ok(daemon::feed_length(status, space, &feed))
}

/// Writers as tasks on the node's thread, each awaiting `object_update` in turn; the row
/// and the blocks written.
fn via_handle(writers: usize, ops: usize, kind: StoreKind, progress: bool) -> Result<NodeRun> {
    let dir = tempfile::tempdir()?;
    let store = open_store(kind, dir.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let bar = progress_bar(ops as u64, "writes", progress);
    let row = local.block_on(&rt, async {
        let node = Node::open(node_config(store)).await?;
        node.identity_create(None).await?;
        let space = node.space_create(Some("bench".into())).await?.space_key;
        let mut ids = Vec::with_capacity(writers);
        for _ in 0..writers {
            ids.push(node.object_add("bench", bench_object()).await?);
        }
        let status0 = serde_json::to_value(node.status().await?)?;
        let before = data_feed_length(&status0, &space)?;
        let start = Instant::now();
        let tasks: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(w, id)| {
                let (node, id, bar) = (node.clone(), id.clone(), bar.clone());
                let n = http_load::share(ops, writers, w);
                tokio::task::spawn_local(async move {
                    let mut lat = Vec::with_capacity(n);
                    for k in 0..n {
                        let t = Instant::now();
                        node.object_update("bench", &id, json!({ "v": k + 1 }))
                            .await?;
                        lat.push(t.elapsed());
                        bar.inc(1);
                    }
                    anyhow::Ok(lat)
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(ops);
        for t in tasks {
            samples.extend(t.await.context("a writer task failed")??);
        }
        let elapsed = start.elapsed();
        let status1 = serde_json::to_value(node.status().await?)?;
        let after = data_feed_length(&status1, &space)?;
        for (w, id) in ids.iter().enumerate() {
            let v = node.object_get("bench", id).await?;
            let want = http_load::share(ops, writers, w);
            ensure!(
                v["v"] == want,
                "object {id} of writer {w} holds {v}, not v = {want}"
            );
        }
        node.shutdown().await?;
        let name = match kind {
            StoreKind::Sled => "echo node via NodeHandle, sled (durable)",
            StoreKind::Mem => "echo node via NodeHandle, memory store",
        };
        let row = Row::new(name, samples.len(), elapsed, Some(Latency::of(samples)));
        let commits = Commits::between(&status0, &status1, elapsed);
        anyhow::Ok((row, after - before, commits))
    })?;
    bar.finish_and_clear();
    Ok(row)
}

/// Writers as HTTP clients of a real daemon; the row and the blocks written.
fn via_http(bin: &std::path::Path, writers: usize, ops: usize, progress: bool) -> Result<NodeRun> {
    let dir = tempfile::Builder::new().prefix("echo-ingest-").tempdir()?;
    let node = Daemon::start(bin, dir.path(), "node", &[])?;
    let agent = api::agent();
    api::create_identity(&agent, &node.api, "bench")?;
    let space = api::create_space(&agent, &node.api, "bench")?;
    let mut ids = Vec::with_capacity(writers);
    for _ in 0..writers {
        let v = api::expect(
            &agent,
            &node.api,
            "POST",
            &format!("/v1/spaces/{space}/objects"),
            Some(&bench_object()),
            &[201],
        )?;
        ids.push(
            v["id"]
                .as_str()
                .context("object add without id")?
                .to_owned(),
        );
    }
    let status0 = node.status(&agent)?;
    let before = data_feed_length(&status0, &space)?;
    let bar = progress_bar(ops as u64, "writes", progress);
    let load = http_load::run(
        &node.api.url,
        &node.api.token,
        writers,
        ops,
        200,
        |w, k| patch(&space, &ids[w], k),
        &bar,
    )
    .with_context(|| format!("node log: {}", node.log.display()))?;
    bar.finish_and_clear();
    let status1 = node.status(&agent)?;
    let written = data_feed_length(&status1, &space)? - before;
    let objects = api::objects(&agent, &node.api, &space)?;
    for (w, id) in ids.iter().enumerate() {
        let want = http_load::share(ops, writers, w);
        let got = objects.get(id).map(|o| &o["v"]);
        ensure!(
            got.is_some_and(|v| *v == want),
            "object {id} of writer {w} holds {got:?}, not v = {want}"
        );
    }
    let row = Row::new(
        "echo node via HTTP API, sled (durable)",
        load.ops,
        load.elapsed,
        Some(load.latency),
    );
    let commits = Commits::between(&status0, &status1, load.elapsed);
    Ok((row, written, commits))
}

fn patch(space: &str, id: &str, k: usize) -> Request {
    Request {
        method: "PATCH",
        path: format!("/v1/spaces/{space}/objects/{id}"),
        body: json!({ "v": k + 1 }),
    }
}

/// The same clients and requests against the empty handler.
fn http_ceiling(writers: usize, ops: usize, progress: bool) -> Result<Row> {
    let ceiling = Ceiling::start()?;
    let ids: Vec<String> = (0..writers).map(|w| format!("{w:026}")).collect();
    let bar = progress_bar(ops as u64, "ceiling", progress);
    let load = http_load::run(
        &ceiling.url,
        "unused",
        writers,
        ops,
        200,
        |w, k| patch("bench", &ids[w], k),
        &bar,
    )?;
    bar.finish_and_clear();
    Ok(Row::new(
        "HTTP ceiling: empty actix-web handler",
        load.ops,
        load.elapsed,
        Some(load.latency),
    ))
}
