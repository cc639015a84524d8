//! `echo-bench storage`: what one op costs on disk, for the B1.1 workload of
//! dmonad/crdt-benchmarks (N single-character appends to one text, one after another),
//! beside the raw Yrs update bytes of the same edits, measured in the same run.
//!
//! The node (in-process, its store in a temp dir) gets one object with an empty text field,
//! then N appends at its end, by one of two writers (`--via`): `handle`, N
//! `NodeHandle::text_insert`s each durable before the next (an API client that waits for
//! every answer), or `yjs`, a Yjs client (a `yrs::Doc` synced from the node) whose
//! one-character edits reach the space as the Yjs bridge sends them (`YjsApply`: each
//! applied before the next is made, none waiting for its flush), one every `--pace-ms`
//! (0: back to back, as B1.1 runs them), under the node's coalescing window
//! (`--coalesce-ms`); all of them durable before the end is measured. Measured
//! before the edits (after a flush) and after the node has shut down (flushed) and closed
//! its store: the sled directory's size (allocated blocks, as `du` counts, and apparent
//! length), and the store's logical contents (key + value bytes, all of them and the
//! blocks alone). The baseline makes the same appends on a bare `yrs::Doc`: the sum of each
//! edit's v1 update length, and the final document's size.

use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Result};
use clap::Args;
use echo_actors::node::{Node, NodeHandle};
use echo_actors::space::{YjsApply, YjsDiff};
use echo_actors::store::Store;
use serde::Serialize;
use serde_json::json;

use crate::{load_average, node_config, open_store, progress_bar, ratio, yrs_raw, StoreKind};

/// Flags of `echo-bench storage`.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Single-character appends (B1.1 uses 6000).
    #[arg(long, default_value_t = 6000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ops: u32,
    /// The node's store: sled (on disk; what users get) or memory (logical bytes only).
    #[arg(long, value_enum, default_value_t = StoreKind::Sled)]
    pub store: StoreKind,
    /// Who writes: `yjs`, a Yjs client streaming its edits (typing), or `handle`, an API
    /// client waiting for each append to be durable.
    #[arg(long, value_enum, default_value_t = Writer::Yjs)]
    pub via: Writer,
    /// Milliseconds between two keystrokes of the Yjs client (0: back to back).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub pace_ms: u64,
    /// The node's coalescing window for streamed edits, in milliseconds (`echo-node run
    /// --coalesce-ms`; 0 turns it off).
    #[arg(long, value_name = "MS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=200))]
    pub coalesce_ms: u64,
}

/// Who makes the appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Writer {
    /// A Yjs client through the bridge's `YjsApply`, not waiting for flushes.
    Yjs,
    /// `NodeHandle::text_insert`, each durable before the next.
    Handle,
}

/// Bytes of a directory tree: allocated on disk (`du`) and apparent (file lengths).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DirSize {
    pub allocated: u64,
    pub apparent: u64,
}

/// Key + value bytes held by the store.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Logical {
    pub all_bytes: u64,
    pub block_bytes: u64,
    pub blocks: u64,
}

/// The outcome of `echo-bench storage`.
#[derive(Debug, Clone, Serialize)]
pub struct StorageReport {
    pub command: &'static str,
    pub workload: &'static str,
    pub ops: usize,
    pub store: StoreKind,
    pub via: Writer,
    pub pace_ms: u64,
    pub coalesce_ms: u64,
    pub load_average: Option<[f64; 3]>,
    /// Raw Yrs: sum of each edit's v1 update length.
    pub raw_yrs_update_bytes: u64,
    pub raw_yrs_update_bytes_per_op: f64,
    /// Raw Yrs: the final document as one v1 update.
    pub raw_yrs_doc_bytes: u64,
    /// The node's store directory before the edits and after shutdown (sled only).
    pub disk_before: Option<DirSize>,
    pub disk_after: Option<DirSize>,
    /// Growth of the store directory (allocated, as `du`) per op (sled only).
    pub disk_bytes_per_op: Option<f64>,
    /// The same with apparent file lengths.
    pub disk_apparent_bytes_per_op: Option<f64>,
    /// disk bytes per op ÷ raw Yrs update bytes per op: the figure the target
    /// (≤ 4x) is about.
    pub disk_over_raw_yrs: Option<f64>,
    pub logical_before: Logical,
    pub logical_after: Logical,
    /// Growth of what the store holds (keys + values) per op.
    pub logical_bytes_per_op: f64,
    /// Of that, the blocks (key + encoded signed block) per op.
    pub block_bytes_per_op: f64,
    pub blocks_per_op: f64,
    pub logical_over_raw_yrs: Option<f64>,
    /// Appends per second, from the first until all are durable.
    pub node_ops_per_sec: f64,
}

impl StorageReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "storage: {} ({} appends), store {:?}, via {:?}, pace {} ms, coalescing window {} ms\n",
            self.workload, self.ops, self.store, self.via, self.pace_ms, self.coalesce_ms
        );
        let line = |name: &str, v: f64, unit: &str| format!("{name:<48} {v:>12.1} {unit}\n");
        out += &line(
            "raw Yrs update bytes per op (baseline)",
            self.raw_yrs_update_bytes_per_op,
            "B",
        );
        out += &line("raw Yrs final document", self.raw_yrs_doc_bytes as f64, "B");
        if let (Some(d), Some(a), Some(r)) = (
            self.disk_bytes_per_op,
            self.disk_apparent_bytes_per_op,
            self.disk_over_raw_yrs,
        ) {
            out += &line("store dir growth per op (du, allocated)", d, "B");
            out += &line("store dir growth per op (apparent size)", a, "B");
            out += &line("disk / raw Yrs", r, "x");
        }
        out += &line(
            "store contents growth per op (keys + values)",
            self.logical_bytes_per_op,
            "B",
        );
        out += &line("  of which blocks", self.block_bytes_per_op, "B");
        out += &line("blocks per op", self.blocks_per_op, "");
        if let Some(r) = self.logical_over_raw_yrs {
            out += &line("store contents / raw Yrs", r, "x");
        }
        out += &line("node appends per second", self.node_ops_per_sec, "ops/s");
        if let Some(l) = self.load_average {
            out += &format!(
                "load average at start: {:.2} {:.2} {:.2}\n",
                l[0], l[1], l[2]
            );
        }
        out
    }
}

/// Size of the tree under `path` (0 if it does not exist).
pub fn dir_size(path: &Path) -> Result<DirSize> {
    use std::os::unix::fs::MetadataExt;
    let mut size = DirSize::default();
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(size);
    };
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let sub = dir_size(&entry.path())?;
            size.allocated += sub.allocated;
            size.apparent += sub.apparent;
        } else {
            size.allocated += meta.blocks() * 512;
            size.apparent += meta.len();
        }
    }
    Ok(size)
}

fn logical(store: &dyn Store) -> Result<Logical> {
    let len = |e: &(Vec<u8>, Vec<u8>)| (e.0.len() + e.1.len()) as u64;
    let all = store.scan_prefix(b"")?;
    let blocks = store.scan_prefix(b"b")?;
    Ok(Logical {
        all_bytes: all.iter().map(len).sum(),
        block_bytes: blocks.iter().map(len).sum(),
        blocks: blocks.len() as u64,
    })
}

/// Runs `echo-bench storage`.
pub fn run(args: &StorageArgs, progress: bool) -> Result<StorageReport> {
    let ops = args.ops as usize;
    let load = load_average();
    let raw = yrs_raw::text_appends(ops)?;

    let dir = tempfile::Builder::new().prefix("echo-storage-").tempdir()?;
    let store_dir = dir.path().join("store");
    let store = open_store(args.store, dir.path())?;
    let bar = progress_bar(ops as u64, "appends", progress);
    let (before_logical, before_disk, after_logical, elapsed) = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let local = tokio::task::LocalSet::new();
        let out = local.block_on(&rt, async {
            let mut config = node_config(store.clone());
            config.coalesce = std::time::Duration::from_millis(args.coalesce_ms);
            let node = Node::open(config).await?;
            node.identity_create(None).await?;
            node.space_create(Some("bench".into())).await?;
            let id = node
                .object_add("bench", json!({"@type": "doc", "text": {"@text": ""}}))
                .await?;
            store.flush()?;
            let before_logical = logical(store.as_ref())?;
            let before_disk = dir_size(&store_dir)?;
            let start = std::time::Instant::now();
            match args.via {
                Writer::Handle => {
                    let mut buf = [0u8; 4];
                    for k in 0..ops {
                        let c = yrs_raw::b1_char(k).encode_utf8(&mut buf);
                        node.text_insert("bench", &id, "text", k as u32, c.to_owned())
                            .await?;
                        bar.inc(1);
                    }
                }
                Writer::Yjs => {
                    let pace = std::time::Duration::from_millis(args.pace_ms);
                    yjs_appends(&node, &id, ops, pace, &bar).await?;
                }
            }
            let elapsed = start.elapsed();
            let text = node.text_get("bench", &id, "text").await?;
            ensure!(
                text.chars().count() == ops,
                "the text has {} characters after {ops} appends",
                text.chars().count()
            );
            node.shutdown().await?;
            let after_logical = logical(store.as_ref())?;
            anyhow::Ok((before_logical, before_disk, after_logical, elapsed))
        })?;
        // The actors (and their handles on the store) go with the runtime.
        drop(local);
        drop(rt);
        out
    };
    bar.finish_and_clear();
    ensure!(
        Arc::strong_count(&store) == 1,
        "the store is still held after the node stopped"
    );
    drop(store);
    let after_disk = dir_size(&store_dir)?;

    let per_op = |a: u64, b: u64| a.saturating_sub(b) as f64 / ops as f64;
    let raw_per_op = raw.run.bytes_per_op();
    let sled = args.store == StoreKind::Sled;
    let disk_bytes_per_op = sled.then(|| per_op(after_disk.allocated, before_disk.allocated));
    let logical_bytes_per_op = per_op(after_logical.all_bytes, before_logical.all_bytes);
    Ok(StorageReport {
        command: "storage",
        workload: "B1.1 (dmonad/crdt-benchmarks): single-character appends to one text",
        ops,
        store: args.store,
        via: args.via,
        pace_ms: args.pace_ms,
        coalesce_ms: args.coalesce_ms,
        load_average: load,
        raw_yrs_update_bytes: raw.run.update_bytes as u64,
        raw_yrs_update_bytes_per_op: raw_per_op,
        raw_yrs_doc_bytes: raw.doc_bytes as u64,
        disk_before: sled.then_some(before_disk),
        disk_after: sled.then_some(after_disk),
        disk_bytes_per_op,
        disk_apparent_bytes_per_op: sled.then(|| per_op(after_disk.apparent, before_disk.apparent)),
        disk_over_raw_yrs: disk_bytes_per_op.and_then(|d| ratio(d, raw_per_op)),
        logical_before: before_logical,
        logical_after: after_logical,
        logical_bytes_per_op,
        block_bytes_per_op: per_op(after_logical.block_bytes, before_logical.block_bytes),
        blocks_per_op: per_op(after_logical.blocks, before_logical.blocks),
        logical_over_raw_yrs: ratio(logical_bytes_per_op, raw_per_op),
        node_ops_per_sec: ops as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

/// `ops` one-character appends to the text `text` of object `id`, by a Yjs client synced
/// from the node, sent as the Yjs bridge sends them: each applied (`YjsApply` answered)
/// before the next is made, none waiting for its block to be durable; then all of them
/// durable.
async fn yjs_appends(
    node: &NodeHandle,
    id: &str,
    ops: usize,
    pace: std::time::Duration,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    use yrs::{GetString, Map, ReadTxn, StateVector, Text, Transact};
    let actor = node.space_actor("bench").await?;
    let doc = yrs::Doc::with_client_id(4242);
    let objects = doc.get_or_insert_map("objects");
    let diff = actor
        .send(YjsDiff(StateVector::default().encode_v1()))
        .await??;
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(&diff)?)?;
    let mut durable = Vec::with_capacity(ops);
    let mut buf = [0u8; 4];
    for k in 0..ops {
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            let Some(yrs::Out::YMap(object)) = objects.get(&txn, id) else {
                anyhow::bail!("the client does not see object {id}");
            };
            let Some(yrs::Out::YText(text)) = object.get(&txn, "text") else {
                anyhow::bail!("object {id} has no text field the client sees");
            };
            let end = text.get_string(&txn).len() as u32;
            text.insert(&mut txn, end, yrs_raw::b1_char(k).encode_utf8(&mut buf));
        }
        let update = doc.transact().encode_diff_v1(&before);
        durable.push(actor.send(YjsApply(update)).await??);
        bar.inc(1);
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    for d in durable {
        d.wait().await?;
    }
    Ok(())
}
