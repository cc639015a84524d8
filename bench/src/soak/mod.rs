//! `echo-bench soak`: a cluster of real `echo-node` processes under churn, watched over time.
//!
//! One standalone signaling server and N daemons (own data dirs, `run --listen 127.0.0.1:0
//! --signal S`) share one or more spaces (space k is created by node k mod N, which adds every
//! other identity as an editor; they join). Then, for the run's length, cycles of:
//!
//! - a write phase: every node writes through its local API at a steady rate to a bounded
//!   working set of its own objects (adds until `--objects` live ones per space, then
//!   updates, and now and then a delete of the oldest followed by an add: see `work.rs`),
//!   while the seeded chaos schedule SIGKILLs a random node now and then and restarts it
//!   after a short downtime;
//! - a quiet period: writes pause (in-flight ones answered), every node runs, and the soak
//!   waits until all nodes hold the same objects (same ids, same contents) and those show
//!   every write the API ever acknowledged (each acknowledged add present, each object's
//!   last acknowledged value, each acknowledged delete); the time this takes is the
//!   convergence time.
//!
//! A sampler reads VmRSS and the open fd count of each daemon every second. The report
//! (`report.rs`) turns all this into a verdict; `plot.rs` draws RSS and fds over time.

pub(crate) mod api;
mod cluster;
mod plot;
mod report;
mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use cluster::{Node, Signal, READY_TIMEOUT};
pub use report::{QuietPeriod, Report};
use work::Shared;

/// Flags of `echo-bench soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Number of echo-node daemons (at least 2).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub nodes: u16,
    /// Length of the churn (write phases plus quiet periods), in minutes; setup and the
    /// final convergence come on top.
    #[arg(long, default_value_t = 10.0, conflicts_with = "seconds")]
    pub minutes: f64,
    /// Length of the churn in seconds (instead of --minutes), for short runs.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Number of spaces shared by all nodes (space k is created by node k mod N).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub spaces: u16,
    /// Writes (adds, updates, deletes) per second per node during write phases.
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
    /// Live objects each node keeps of its own per space (its working set): it adds until
    /// it has that many, then updates them, deleting the oldest now and then (and adding
    /// a new one), so the live data stays bounded while writes go on.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub objects: u32,
    /// Once a working set is full, one write in this many is a delete of its oldest object
    /// (the next write in that space adds one); the others are updates. A soft-deleted
    /// object stays in the document, so deletes grow the data a little.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub delete_every: u64,
    /// Length of each write phase in seconds; a quiet period follows each one.
    #[arg(long, default_value_t = 45.0)]
    pub write_secs: f64,
    /// Mean seconds between two kill -9 during write phases (0: no kills).
    #[arg(long, default_value_t = 10.0)]
    pub kill_every: f64,
    /// Longest downtime of a killed node, in seconds (each downtime is drawn from
    /// 0.5 s up to this).
    #[arg(long, default_value_t = 5.0)]
    pub max_downtime: f64,
    /// Most nodes down at once (default: a quarter of the nodes, at least 1).
    #[arg(long)]
    pub max_down: Option<u16>,
    /// How long a quiet period may wait for convergence, in seconds, before it counts as
    /// not converged.
    #[arg(long, default_value_t = 120.0)]
    pub converge_timeout: f64,
    /// RNG seed of the chaos schedule (which node is killed when, downtimes) and of the
    /// writers' choice of space. Timing still varies from run to run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Milliseconds between two RSS/fd samples of every node.
    #[arg(long, default_value_t = 1000)]
    pub sample_ms: u64,
    /// Allowed RSS change of a warm node against its warm baseline, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub rss_tolerance: f64,
    /// Where to write the PNG plot of RSS and open fds over time.
    #[arg(long, default_value = "soak.png")]
    pub plot: PathBuf,
    /// Also write the JSON report to this file (whether or not --json is given).
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// The echo-node binary (default: `echo-node` next to this executable).
    #[arg(long)]
    pub echo_node: Option<PathBuf>,
    /// Directory for the nodes' data dirs and logs, kept afterwards (default: a temporary
    /// directory, deleted after a PASS and kept after a FAIL).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl SoakArgs {
    fn churn(&self) -> Duration {
        let secs = self.seconds.unwrap_or(self.minutes * 60.0);
        Duration::from_secs_f64(secs.clamp(0.0, 7.0 * 24.0 * 3600.0))
    }

    fn check(&self) -> Result<()> {
        let secs = self.seconds.unwrap_or(self.minutes * 60.0);
        if !(secs.is_finite() && secs >= 1.0) {
            bail!("the churn must last at least one second (--minutes / --seconds)");
        }
        for (name, v, min) in [
            ("--rate", self.rate, 0.01),
            ("--write-secs", self.write_secs, 0.5),
            ("--max-downtime", self.max_downtime, 0.5),
            ("--converge-timeout", self.converge_timeout, 1.0),
        ] {
            if !(v.is_finite() && v >= min) {
                bail!("{name} must be a number of at least {min}, not {v}");
            }
        }
        if !(self.kill_every.is_finite() && self.kill_every >= 0.0) {
            bail!("--kill-every must be 0 or more seconds");
        }
        if !(self.rss_tolerance.is_finite() && self.rss_tolerance > 0.0) {
            bail!("--rss-tolerance must be a positive percentage");
        }
        if self.sample_ms < 50 {
            bail!("--sample-ms must be at least 50");
        }
        Ok(())
    }

    fn max_down(&self) -> usize {
        let n = usize::from(self.nodes);
        let d = self.max_down.map_or((n / 4).max(1), usize::from);
        d.clamp(1, n - 1)
    }
}

/// `echo-node` next to the running executable (cargo puts both in `target/<profile>/`).
pub(crate) fn find_echo_node(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--echo-node {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let me = std::env::current_exe().context("cannot find this executable's path")?;
    let dir = me.parent().context("executable path has no parent")?;
    // Test binaries live one level down, in target/<profile>/deps.
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let p = d.join("echo-node");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no echo-node binary next to {} (build it: `cargo build --release -p echo-node`, or pass --echo-node PATH)",
        me.display()
    )
}

/// Runs the soak and returns its report (also on FAIL); `Err` only when the cluster could
/// not be set up or the soak itself broke.
pub fn run(args: &SoakArgs, progress: bool) -> Result<Report> {
    args.check()?;
    let bin = find_echo_node(args.echo_node.as_deref())?;
    let (root, tmp) = match &args.dir {
        Some(d) => {
            // Old data dirs would bring old identities and spaces: setup would fail.
            if std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
                bail!(
                    "--dir {} is not empty; give a new or empty directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("echo-soak-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    match soak(args, &bin, &root, progress) {
        Ok(mut report) => {
            report.work_dir = match tmp {
                // Keep the evidence (logs, data dirs) of a failed run for the reproduction.
                Some(t) if !report.pass => Some(t.keep().display().to_string()),
                Some(_) => None,
                None => Some(root.display().to_string()),
            };
            Ok(report)
        }
        Err(e) => {
            let kept = tmp.map_or(root, |t| t.keep());
            Err(e.context(format!(
                "soak failed; data dirs and logs in {}",
                kept.display()
            )))
        }
    }
}

/// The soak proper, in `root`.
fn soak(args: &SoakArgs, bin: &Path, root: &Path, progress: bool) -> Result<Report> {
    let t0 = Instant::now();
    let signal = Signal::start(bin, root)?;
    let n = usize::from(args.nodes);
    let nodes = (0..n)
        .map(|i| Node::new(i, root, bin, &signal.addr))
        .collect();
    let mut shared = Shared::new(nodes, t0);
    let spaces = setup(&mut shared, usize::from(args.spaces))?;
    shared.ledger().objects = vec![Default::default(); spaces.len()];
    shared.spaces = spaces;
    let shared = Arc::new(shared);
    admit_all(&shared)?;

    let bar = progress_bar(progress, args.churn());
    let sampler = work::start_sampler(&shared, Duration::from_millis(args.sample_ms));
    let workload = work::Workload {
        rate: args.rate,
        objects: args.objects as usize,
        delete_every: args.delete_every,
        seed: args.seed,
    };
    let writers = work::start_writers(&shared, workload);
    let churn = churn(&shared, args, &bar);
    shared.stop.store(true, Ordering::SeqCst);
    for h in writers {
        let _ = h.join();
    }
    let _ = sampler.join();
    bar.finish_and_clear();
    let quiet = churn?;

    let mut report = Report::build(&shared, args, bin, quiet);
    report.plot = plot::draw(&args.plot, &report)
        .map(|()| args.plot.display().to_string())
        .map_err(|e| report.reasons.push(format!("plot failed: {e:#}")))
        .ok();
    report.finish_verdict();
    drop(signal);
    for node in &shared.nodes {
        let _ = node.kill9();
    }
    Ok(report)
}

fn progress_bar(show: bool, churn: Duration) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(churn.as_secs().max(1));
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len}s {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Starts every node, creates identities and spaces, adds members and joins; returns the
/// space keys.
fn setup(shared: &mut Shared, spaces: usize) -> Result<Vec<String>> {
    let agent = api::agent();
    for node in &shared.nodes {
        node.start()?;
    }
    let mut eps = Vec::new();
    let mut identities = Vec::new();
    for node in &shared.nodes {
        let ep = node.wait_ready(READY_TIMEOUT)?;
        identities.push(api::create_identity(
            &agent,
            &ep,
            &format!("soak-{}", node.index),
        )?);
        eps.push(ep);
    }
    for node in 0..shared.nodes.len() {
        shared.event(node, "start");
    }
    let n = eps.len();
    let mut keys = Vec::new();
    for k in 0..spaces {
        let owner = k % n;
        let key = api::create_space(&agent, &eps[owner], &format!("soak-{k}"))?;
        for j in (0..n).filter(|&j| j != owner) {
            api::add_member(&agent, &eps[owner], &key, &identities[j])?;
            api::join(&agent, &eps[j], &key)?;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Waits until every node may write to every space (bounded), with one acknowledged write
/// each: the first write after `join` is refused until the admission has replicated.
fn admit_all(shared: &Shared) -> Result<()> {
    let agent = api::agent();
    for node in &shared.nodes {
        let ep = node.wait_ready(READY_TIMEOUT)?;
        for (s, space) in shared.spaces.iter().enumerate() {
            let object = json!({"@type": "soak", "node": node.index, "v": 0, "admitted": true});
            let id = api::add_when_admitted(&agent, &ep, space, &object, Duration::from_secs(90))
                .with_context(|| format!("node {} in space {space}", node.index))?;
            shared.record_add(node.index, s, id, 0);
        }
    }
    Ok(())
}

/// The write phases and quiet periods; returns the quiet periods.
fn churn(shared: &Shared, args: &SoakArgs, bar: &ProgressBar) -> Result<Vec<QuietPeriod>> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let start = Instant::now();
    let total = args.churn();
    let mut quiet = Vec::new();
    // restart_at[i]: when killed node i comes back.
    let mut restart_at: Vec<Option<Instant>> = vec![None; shared.nodes.len()];
    let mut next_kill = Instant::now() + draw_kill_gap(&mut rng, args.kill_every);
    loop {
        let phase_end = Instant::now()
            + Duration::from_secs_f64(args.write_secs).min(total.saturating_sub(start.elapsed()));
        shared.writing.store(true, Ordering::SeqCst);
        while Instant::now() < phase_end {
            let now = Instant::now();
            for (i, node) in shared.nodes.iter().enumerate() {
                let due = restart_at[i].is_some_and(|t| t <= now);
                // A crashed node (the sampler noticed) comes back at once.
                if due || (restart_at[i].is_none() && !node.is_running()) {
                    node.start()?;
                    shared.event(i, "start");
                    restart_at[i] = None;
                }
            }
            if args.kill_every > 0.0 && now >= next_kill {
                next_kill = now + draw_kill_gap(&mut rng, args.kill_every);
                let down = restart_at.iter().filter(|r| r.is_some()).count();
                // Only ready nodes are killed, so a node is never killed again mid-start.
                let ready: Vec<usize> = (0..shared.nodes.len())
                    .filter(|&i| restart_at[i].is_none() && shared.nodes[i].endpoint().is_some())
                    .collect();
                if down < args.max_down() && !ready.is_empty() {
                    let victim = ready[(rng.next_u64() % ready.len() as u64) as usize];
                    shared.nodes[victim].kill9()?;
                    shared.event(victim, "kill9");
                    let downtime = 0.5 + unit(&mut rng) * (args.max_downtime - 0.5);
                    restart_at[victim] = Some(now + Duration::from_secs_f64(downtime));
                }
            }
            let acked: u64 = shared.ledger().per_node.iter().map(|w| w.acked).sum();
            let down = shared.nodes.iter().filter(|n| !n.is_running()).count();
            bar.set_position(start.elapsed().as_secs());
            bar.set_message(format!("writing, {down} down, {acked} acked"));
            thread::sleep(Duration::from_millis(50));
        }
        bar.set_message(format!("quiet period {}: converging", quiet.len() + 1));
        let q = quiet_period(shared, args, quiet.len() + 1, &mut restart_at)?;
        quiet.push(q);
        bar.set_position(start.elapsed().as_secs());
        // A last write phase of under a second would only add a quiet period.
        if start.elapsed() + Duration::from_secs(1) >= total {
            return Ok(quiet);
        }
    }
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A gap between two kills: uniform in [mean/2, 3·mean/2].
fn draw_kill_gap(rng: &mut ChaCha8Rng, mean: f64) -> Duration {
    Duration::from_secs_f64((mean * (0.5 + unit(rng))).max(0.1))
}

/// Pauses writes, brings every node up, and waits for convergence.
fn quiet_period(
    shared: &Shared,
    args: &SoakArgs,
    index: usize,
    restart_at: &mut [Option<Instant>],
) -> Result<QuietPeriod> {
    let paused = Instant::now();
    let start_t = shared.now();
    if !shared.pause_writes(Duration::from_secs(60)) {
        bail!("writes still in flight 60 s after the pause: a node does not answer");
    }
    for (i, node) in shared.nodes.iter().enumerate() {
        if !node.is_running() {
            node.start()?;
            shared.event(i, "start");
        }
        restart_at[i] = None;
    }
    let agent = api::agent();
    let timeout = Duration::from_secs_f64(args.converge_timeout);
    let (expected, acked_total) = {
        let l = shared.ledger();
        let acked: u64 = l.per_node.iter().map(|w| w.acked).sum();
        (l.objects.clone(), acked)
    };
    let tracked: usize = expected.iter().map(|s| s.len()).sum();
    loop {
        let view = report::view(shared, &agent, &expected, paused + timeout);
        if view.converged() {
            return Ok(QuietPeriod {
                index,
                start_secs: start_t,
                end_secs: shared.now(),
                converge_secs: Some(paused.elapsed().as_secs_f64()),
                acked: acked_total,
                tracked,
                objects: view.objects(),
                deleted: view.deleted(),
                missing_acked: 0,
                problems: Vec::new(),
                nodes: report::snapshot(shared),
            });
        }
        if paused.elapsed() > timeout {
            return Ok(QuietPeriod {
                index,
                start_secs: start_t,
                end_secs: shared.now(),
                converge_secs: None,
                acked: acked_total,
                tracked,
                objects: view.objects(),
                deleted: view.deleted(),
                missing_acked: view.missing_acked(),
                problems: view.problems(8),
                nodes: report::snapshot(shared),
            });
        }
        // A node that crashed during the wait is restarted: convergence needs all of them.
        for (i, node) in shared.nodes.iter().enumerate() {
            if node.reap_crashed() {
                shared.event(i, "crash");
            }
            if !node.is_running() {
                node.start()?;
                shared.event(i, "start");
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
}
