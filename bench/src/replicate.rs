//! `echo-bench replicate`: two `echo-node` daemons on QUIC loopback; M single-field updates
//! written on A, timed until B holds all of them; the wire bytes this costs per op beside
//! the raw Yrs update bytes of the same edits, and the bytes/s beside raw quinn bulk
//! throughput on the same loopback, all measured in the same run.
//!
//! Setup (not timed): A creates an identity and a space; B (`run --peer RELAY`, the relay
//! forwarding to A) creates one, A adds it as an editor, B joins (`space join` waits until
//! B may write). A adds one object per writer (`--batch` B objects) and both nodes settle
//! (same feeds, same lengths). Then `--batch` concurrent HTTP clients on A each update their
//! own object's `v` (1, 2, 3, ...; the API has no batch write, so B at a time means B
//! writers), while B's `GET /v1/status` is polled until B's copy of A's data feed is as
//! long as A's own. At the end B must show every object's last value.
//!
//! Live, the rate is bounded by how fast A acknowledges writes (both are reported). With
//! `--catch-up`, A writes everything before B exists; B then starts, is added, joins, and
//! is timed from its join until it holds A's data feed: replication on its own.
//!
//! Wire bytes: B reaches A through a counting UDP relay in this process ([`crate::relay`]),
//! which sees every QUIC datagram; `--direct` skips it (then the wire columns are absent).
//! Where the nodes count their replication frames (`counters` in `status --json`, issue
//! 11 item 6), the frames both sent are reported too, per frame kind: the part of the wire
//! that is the protocol's, the rest being QUIC's (headers, tags, ACKs, handshake).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use crate::daemon::{self, Daemon};
use crate::http_load::{self, Request};
use crate::relay::{Counts, Relay};
use crate::soak::{api, find_echo_node};
use crate::{load_average, progress_bar, quinn_bulk, ratio, yrs_raw, Latency};

/// Flags of `echo-bench replicate`.
#[derive(Debug, Clone, Args)]
pub struct ReplicateArgs {
    /// Single-field updates written on A (after setup), all to be held by B.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub ops: u64,
    /// Writes in flight on A at once: this many concurrent API clients, each updating its
    /// own object (the local API has no batch write).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    /// MiB sent over one raw quinn stream for the QUIC baseline.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub bulk_mib: u64,
    /// B dials A directly instead of through the counting relay: no extra hop, but no wire
    /// bytes either.
    #[arg(long)]
    pub direct: bool,
    /// A writes everything first; then B starts, joins and catches up, timed from its join
    /// (replication alone, not bounded by A's write rate; the few setup blocks come along).
    #[arg(long)]
    pub catch_up: bool,
    /// Seconds to wait for B to hold everything before giving up.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// The echo-node binary (default: `echo-node` next to this executable).
    #[arg(long)]
    pub echo_node: Option<PathBuf>,
}

/// What crossed the loopback between the nodes while they replicated.
#[derive(Debug, Clone, Serialize)]
pub struct Wire {
    /// UDP payload bytes, both directions, from the first write (with `--catch-up`: B's
    /// join) until 0.5 s after B held everything.
    pub bytes: u64,
    pub datagrams: u64,
    pub bytes_a_to_b: u64,
    pub bytes_b_to_a: u64,
    pub bytes_per_op: f64,
    pub datagrams_per_op: f64,
    /// Wire bytes per op ÷ raw Yrs update bytes per op.
    pub over_raw_yrs: Option<f64>,
    /// Wire bytes/s while replicating.
    pub bytes_per_sec: f64,
    /// Wire bytes/s ÷ raw quinn bulk bytes/s.
    pub over_quinn_bulk: Option<f64>,
    /// Keep-alives and the like on the idle connection afterwards (bytes/s, over 2 s), for
    /// judging what part of `bytes` is not the writes'.
    pub idle_bytes_per_sec: f64,
}

/// Frames of one kind, sent by either node.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct KindCount {
    pub frames: u64,
    /// Including each frame's 4-byte length header.
    pub bytes: u64,
}

/// Replication frames counted by the nodes over the same interval as [`Wire`].
#[derive(Debug, Clone, Serialize)]
pub struct Frames {
    pub frames: u64,
    pub bytes: u64,
    pub bytes_per_op: f64,
    /// Frame bytes per op ÷ raw Yrs update bytes per op.
    pub over_raw_yrs: Option<f64>,
    pub by_kind: BTreeMap<String, KindCount>,
}

/// `echo_frames_sent_total` / `echo_frame_bytes_sent_total` of a status, summed over peers,
/// by frame kind; `None` when the status has no counters.
fn sent_by_kind(status: &Value) -> Option<BTreeMap<String, KindCount>> {
    let counters = status.get("counters")?.as_object()?;
    let mut out: BTreeMap<String, KindCount> = BTreeMap::new();
    for (name, v) in counters {
        let (Some(labels), Some(v)) = (name.split_once('{').map(|(_, l)| l), v.as_u64()) else {
            continue;
        };
        let kind = labels
            .split("kind=\"")
            .nth(1)
            .and_then(|k| k.split('"').next())
            .unwrap_or("?")
            .to_owned();
        if name.starts_with("echo_frames_sent_total{") {
            out.entry(kind).or_default().frames += v;
        } else if name.starts_with("echo_frame_bytes_sent_total{") {
            out.entry(kind).or_default().bytes += v;
        }
    }
    Some(out)
}

/// Frames both nodes sent: `after` minus `before` (each the pair A, B).
fn frames(
    before: &[Option<BTreeMap<String, KindCount>>; 2],
    after: &[Option<BTreeMap<String, KindCount>>; 2],
    ops: usize,
    raw_per_op: f64,
) -> Option<Frames> {
    let mut by_kind: BTreeMap<String, KindCount> = BTreeMap::new();
    for (b, a) in before.iter().zip(after) {
        let (b, a) = (b.as_ref()?, a.as_ref()?);
        for (kind, count) in a {
            let was = b.get(kind).copied().unwrap_or_default();
            let slot = by_kind.entry(kind.clone()).or_default();
            slot.frames += count.frames.saturating_sub(was.frames);
            slot.bytes += count.bytes.saturating_sub(was.bytes);
        }
    }
    let bytes: u64 = by_kind.values().map(|k| k.bytes).sum();
    let bytes_per_op = bytes as f64 / ops.max(1) as f64;
    Some(Frames {
        frames: by_kind.values().map(|k| k.frames).sum(),
        bytes,
        bytes_per_op,
        over_raw_yrs: ratio(bytes_per_op, raw_per_op),
        by_kind,
    })
}

/// The outcome of `echo-bench replicate`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicateReport {
    pub command: &'static str,
    pub ops: usize,
    pub batch: usize,
    pub direct: bool,
    pub catch_up: bool,
    pub load_average: Option<[f64; 3]>,
    /// Ops ÷ seconds from the first write on A (with `--catch-up`: from B's join) until B
    /// held A's whole data feed.
    pub replicated_ops_per_sec: f64,
    pub replicate_secs: f64,
    /// A's acknowledged writes alone (the clients' view), for telling which side bounds.
    pub a_acked_ops_per_sec: f64,
    pub a_write_secs: f64,
    pub a_write_latency: Latency,
    /// Blocks A's data feed grew by, per op (1 while every write is its own block).
    pub blocks_per_op: f64,
    pub raw_yrs_update_bytes_per_op: f64,
    pub quinn_bulk_bytes_per_sec: f64,
    pub quinn_bulk_mib: u64,
    /// Absent with `--direct`.
    pub wire: Option<Wire>,
    /// Replication frames as the nodes count them, both directions; absent when the node
    /// binary has no counters.
    pub frames: Option<Frames>,
    /// Where the wire figures come from.
    pub wire_source: &'static str,
}

impl ReplicateReport {
    pub fn text(&self) -> String {
        let mut out = format!(
            "replicate: {} ops on A, {} in flight, B {}{}\n",
            self.ops,
            self.batch,
            if self.direct {
                "dialing A directly"
            } else {
                "through the counting relay"
            },
            if self.catch_up {
                ", catching up after A wrote everything"
            } else {
                ", live"
            }
        );
        out += &format!(
            "{:<44} {:>12.0} ops/s   ({:.2} s)\n",
            if self.catch_up {
                "replicated (B's join -> B holds all)"
            } else {
                "replicated (first write -> B holds all)"
            },
            self.replicated_ops_per_sec,
            self.replicate_secs
        );
        out += &format!(
            "{:<44} {:>12.0} ops/s   (p50 {:.2} ms, p99 {:.2} ms)\n",
            "A's acknowledged writes",
            self.a_acked_ops_per_sec,
            self.a_write_latency.p50_ms,
            self.a_write_latency.p99_ms
        );
        out += &format!("{:<44} {:>12.2}\n", "blocks per op", self.blocks_per_op);
        out += &format!(
            "{:<44} {:>12.1} B\n",
            "raw Yrs update per op (baseline)", self.raw_yrs_update_bytes_per_op
        );
        match &self.wire {
            Some(w) => {
                out += &format!(
                    "{:<44} {:>12.1} B   ({:.2} datagrams; A->B {} B, B->A {} B)\n",
                    "wire (UDP payload) per op",
                    w.bytes_per_op,
                    w.datagrams_per_op,
                    w.bytes_a_to_b,
                    w.bytes_b_to_a
                );
                if let Some(x) = w.over_raw_yrs {
                    out += &format!("{:<44} {:>12.1}x\n", "wire / raw Yrs", x);
                }
                out += &format!(
                    "{:<44} {:>12.0} B/s (idle connection: {:.0} B/s)\n",
                    "wire throughput", w.bytes_per_sec, w.idle_bytes_per_sec
                );
            }
            None => out += "wire bytes: not measured (--direct; the nodes have no counters yet)\n",
        }
        match &self.frames {
            Some(f) => {
                out += &format!(
                    "{:<44} {:>12.1} B   ({} frames in all)\n",
                    "replication frames per op (nodes' counters)", f.bytes_per_op, f.frames
                );
                if let Some(x) = f.over_raw_yrs {
                    out += &format!("{:<44} {:>12.1}x\n", "frames / raw Yrs", x);
                }
                for (kind, k) in f.by_kind.iter().filter(|(_, k)| k.frames > 0) {
                    out += &format!("  {:<42} {:>12} B   ({} frames)\n", kind, k.bytes, k.frames);
                }
            }
            None => out += "replication frames: the node binary has no counters\n",
        }
        out += &format!(
            "{:<44} {:>12.0} B/s ({} MiB)\n",
            "raw quinn bulk, one stream (baseline)",
            self.quinn_bulk_bytes_per_sec,
            self.quinn_bulk_mib
        );
        if let Some(x) = self.wire.as_ref().and_then(|w| w.over_quinn_bulk) {
            out += &format!("{:<44} {:>12.5}\n", "wire throughput / quinn bulk", x);
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

/// How often B's status is polled while it catches up.
const POLL: Duration = Duration::from_millis(20);
/// How long the two nodes may take to settle after setup.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `echo-bench replicate`.
pub fn run(args: &ReplicateArgs, progress: bool) -> Result<ReplicateReport> {
    let bin = find_echo_node(args.echo_node.as_deref())?;
    let ops = usize::try_from(args.ops)?;
    let batch = usize::from(args.batch);
    let load = load_average();
    // Baselines first, while nothing else of this run uses the cores.
    let bulk = quinn_bulk::run(args.bulk_mib << 20)?;
    let raw = yrs_raw::field_updates(batch, ops)?;

    let dir = tempfile::Builder::new()
        .prefix("echo-replicate-")
        .tempdir()?;
    let a = Daemon::start(&bin, dir.path(), "a", &[])?;
    let agent = api::agent();
    api::create_identity(&agent, &a.api, "a")?;
    let space = api::create_space(&agent, &a.api, "bench")?;
    let ids = add_objects(&agent, &a, &space, batch)?;
    let feed = daemon::own_data_feed(&a.status(&agent)?, &space)?;
    let before = daemon::feed_length(&a.status(&agent)?, &space, &feed);
    let write = |bar: &indicatif::ProgressBar| {
        http_load::run(
            &a.api.url,
            &a.api.token,
            batch,
            ops,
            200,
            |w, k| Request {
                method: "PATCH",
                path: format!("/v1/spaces/{space}/objects/{}", ids[w]),
                body: json!({ "v": k + 1 }),
            },
            bar,
        )
        .with_context(|| format!("A's log: {}", a.log.display()))
    };
    let deadline = |start: Instant| start + Duration::from_secs(args.timeout_secs);

    let (b, relay, writes, replicate_secs, counts0, frames0);
    if args.catch_up {
        // A writes everything first; then B starts, joins and catches up.
        let bar = progress_bar(ops as u64, "on A", progress);
        writes = write(&bar)?;
        bar.finish_and_clear();
        let target = daemon::feed_length(&a.status(&agent)?, &space, &feed);
        (b, relay) = start_b(&bin, dir.path(), &a, args.direct)?;
        let b_identity = api::create_identity(&agent, &b.api, "b")?;
        api::add_member(&agent, &a.api, &space, &b_identity)?;
        counts0 = relay.as_ref().map(Relay::counts);
        frames0 = [
            sent_by_kind(&a.status(&agent)?),
            sent_by_kind(&b.status(&agent)?),
        ];
        let bar = progress_bar(ops as u64, "on B", progress);
        let start = Instant::now();
        api::join(&agent, &b.api, &space).with_context(|| logs(&a, &b))?;
        wait_b_holds(
            &agent,
            &a,
            &b,
            &space,
            &feed,
            before,
            deadline(start),
            &bar,
            || Ok(Some(target)),
        )?;
        replicate_secs = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
    } else {
        (b, relay) = start_b(&bin, dir.path(), &a, args.direct)?;
        let b_identity = api::create_identity(&agent, &b.api, "b")?;
        api::add_member(&agent, &a.api, &space, &b_identity)?;
        api::join(&agent, &b.api, &space).with_context(|| logs(&a, &b))?;
        settle(&agent, &a, &b, &space).with_context(|| logs(&a, &b))?;
        counts0 = relay.as_ref().map(Relay::counts);
        frames0 = [
            sent_by_kind(&a.status(&agent)?),
            sent_by_kind(&b.status(&agent)?),
        ];
        let bar = progress_bar(ops as u64, "on B", progress);
        let start = Instant::now();
        (writes, replicate_secs) = thread::scope(|s| -> Result<_> {
            let writer = s.spawn(|| write(&indicatif::ProgressBar::hidden()));
            wait_b_holds(
                &agent,
                &a,
                &b,
                &space,
                &feed,
                before,
                deadline(start),
                &bar,
                || {
                    // Once the writers are done, A's length is final: every acknowledged
                    // write is in a block by then.
                    if !writer.is_finished() {
                        return Ok(None);
                    }
                    Ok(Some(daemon::feed_length(&a.status(&agent)?, &space, &feed)))
                },
            )?;
            let secs = start.elapsed().as_secs_f64();
            let writes = writer
                .join()
                .map_err(|_| anyhow!("the writer thread panicked"))??;
            Ok((writes, secs))
        })?;
        bar.finish_and_clear();
    }
    let after = daemon::feed_length(&a.status(&agent)?, &space, &feed);

    // Trailing acknowledgements and heads belong to the replication too.
    thread::sleep(Duration::from_millis(500));
    let frames1 = [
        sent_by_kind(&a.status(&agent)?),
        sent_by_kind(&b.status(&agent)?),
    ];
    let wire = match (&relay, counts0) {
        (Some(r), Some(c0)) => {
            let counted = r.counts().since(&c0);
            // Then the idle connection's own traffic (keep-alives go every 2 s).
            let c1 = r.counts();
            let t = Instant::now();
            thread::sleep(Duration::from_secs(2));
            let idle = r.counts().since(&c1).bytes() as f64 / t.elapsed().as_secs_f64();
            Some(wire(
                &counted,
                ops,
                replicate_secs,
                raw.bytes_per_op(),
                bulk.bytes_per_sec(),
                idle,
            ))
        }
        _ => None,
    };
    check_b(&agent, &b, &space, &ids, ops)?;

    Ok(ReplicateReport {
        command: "replicate",
        ops,
        batch,
        direct: args.direct,
        catch_up: args.catch_up,
        load_average: load,
        replicated_ops_per_sec: ops as f64 / replicate_secs.max(1e-9),
        replicate_secs,
        a_acked_ops_per_sec: writes.ops_per_sec(),
        a_write_secs: writes.elapsed.as_secs_f64(),
        a_write_latency: writes.latency,
        blocks_per_op: after.saturating_sub(before) as f64 / ops as f64,
        raw_yrs_update_bytes_per_op: raw.bytes_per_op(),
        quinn_bulk_bytes_per_sec: bulk.bytes_per_sec(),
        quinn_bulk_mib: args.bulk_mib,
        wire,
        frames: frames(&frames0, &frames1, ops, raw.bytes_per_op()),
        wire_source: if args.direct {
            "none (--direct)"
        } else {
            "counting UDP relay between B and A (QUIC datagrams, UDP payload)"
        },
    })
}

fn logs(a: &Daemon, b: &Daemon) -> String {
    format!("logs: {} and {}", a.log.display(), b.log.display())
}

/// One object per writer on A.
fn add_objects(agent: &ureq::Agent, a: &Daemon, space: &str, n: usize) -> Result<Vec<String>> {
    (0..n)
        .map(|_| {
            let v = api::expect(
                agent,
                &a.api,
                "POST",
                &format!("/v1/spaces/{space}/objects"),
                Some(&json!({"@type": "bench", "v": 0})),
                &[201],
            )?;
            Ok(v["id"]
                .as_str()
                .context("object add without id")?
                .to_owned())
        })
        .collect()
}

/// B, dialing A through a new counting relay (or directly).
fn start_b(
    bin: &std::path::Path,
    dir: &std::path::Path,
    a: &Daemon,
    direct: bool,
) -> Result<(Daemon, Option<Relay>)> {
    let a_listen: SocketAddr = a
        .listen
        .parse()
        .with_context(|| format!("A's listen address {}", a.listen))?;
    let relay = if direct {
        None
    } else {
        Some(Relay::start(a_listen)?)
    };
    let peer = relay.as_ref().map_or(a_listen, |r| r.addr).to_string();
    let b = Daemon::start(bin, dir, "b", &["--peer", &peer])?;
    Ok((b, relay))
}

/// Polls B until its copy of A's data feed `feed` is as long as `target()` says (`None`
/// while A is still writing), showing progress from `before`.
#[allow(clippy::too_many_arguments)]
fn wait_b_holds(
    agent: &ureq::Agent,
    a: &Daemon,
    b: &Daemon,
    space: &str,
    feed: &str,
    before: u64,
    deadline: Instant,
    bar: &indicatif::ProgressBar,
    mut target: impl FnMut() -> Result<Option<u64>>,
) -> Result<()> {
    let mut known = None;
    loop {
        if known.is_none() {
            known = target()?;
        }
        let on_b = daemon::feed_length(&b.status(agent)?, space, feed);
        bar.set_position(on_b.saturating_sub(before));
        if known.is_some_and(|t| on_b >= t) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "B holds {on_b} blocks of A's data feed by the deadline (A: {known:?}); {}",
                logs(a, b)
            );
        }
        thread::sleep(POLL);
    }
}

fn wire(c: &Counts, ops: usize, secs: f64, raw_per_op: f64, bulk: f64, idle: f64) -> Wire {
    let bytes_per_op = c.bytes() as f64 / ops.max(1) as f64;
    let bytes_per_sec = c.bytes() as f64 / secs.max(1e-9);
    Wire {
        bytes: c.bytes(),
        datagrams: c.datagrams(),
        bytes_a_to_b: c.to_client_bytes,
        bytes_b_to_a: c.to_target_bytes,
        bytes_per_op,
        datagrams_per_op: c.datagrams() as f64 / ops.max(1) as f64,
        over_raw_yrs: ratio(bytes_per_op, raw_per_op),
        bytes_per_sec,
        over_quinn_bulk: ratio(bytes_per_sec, bulk),
        idle_bytes_per_sec: idle,
    }
}

/// Feed key -> length of `space` in a status answer.
fn lengths(status: &Value, space: &str) -> BTreeMap<String, u64> {
    daemon::feeds(status, space)
        .iter()
        .filter_map(|f| Some((f["feed_key"].as_str()?.to_owned(), f["length"].as_u64()?)))
        .collect()
}

/// Waits until A and B show the same four (or more) feeds with the same lengths.
fn settle(agent: &ureq::Agent, a: &Daemon, b: &Daemon, space: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let (la, lb) = (
            lengths(&a.status(agent)?, space),
            lengths(&b.status(agent)?, space),
        );
        if la.len() >= 4 && la == lb {
            return Ok(());
        }
        if start.elapsed() > SETTLE_TIMEOUT {
            bail!("A and B did not settle within {SETTLE_TIMEOUT:?}: A {la:?}, B {lb:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// B shows every writer's last value.
fn check_b(agent: &ureq::Agent, b: &Daemon, space: &str, ids: &[String], ops: usize) -> Result<()> {
    let objects = api::objects(agent, &b.api, space)?;
    for (w, id) in ids.iter().enumerate() {
        let want = http_load::share(ops, ids.len(), w);
        let got = objects.get(id).map(|o| &o["v"]);
        ensure!(
            got.is_some_and(|v| *v == want),
            "on B, object {id} of writer {w} holds {got:?}, not v = {want}"
        );
    }
    Ok(())
}
