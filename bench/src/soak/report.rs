//! What a soak found: convergence of each quiet period, RSS and fds of each daemon run once
//! warm, writes acknowledged and lost, crashes; the verdict; text and JSON renderings.
//!
//! Warm: a daemon run (one process, from a start to its kill) is warm from the end of the
//! first quiet period that began after it started and after every working set was full
//! (every node had `--objects` live objects in every space; from then on the live data is
//! bounded). Before that it is still loading its spaces and catching up, the data is still
//! growing, and its heap is still growing towards its working size. Each run
//! is judged on its own: a restart begins with a fresh heap, so comparing it with the
//! previous run of the same node would measure the restart, not a leak. A warm run's
//! baseline is its first warm sample; every later sample must be within `--rss-tolerance`
//! percent of it, and its fd count within max(16, 25%) above it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::api;
use super::cluster::{fd_count, rss_kib};
use super::plot::color_name;
use super::work::{Event, Expect, NodeWrites, Sample, Shared};
use super::SoakArgs;

/// One quiet period: writes paused, then waiting for every node to hold the same objects.
#[derive(Debug, Clone, Serialize)]
pub struct QuietPeriod {
    pub index: usize,
    /// Seconds since the soak started, when writes paused and when the period ended.
    pub start_secs: f64,
    pub end_secs: f64,
    /// From the pause until all nodes agreed (`None`: not within `--converge-timeout`).
    pub converge_secs: Option<f64>,
    /// Acknowledged writes so far (all spaces, all kinds).
    pub acked: u64,
    /// Objects whose add was acknowledged so far (all spaces): what the check covers.
    pub tracked: usize,
    /// Distinct object ids seen on the nodes (all spaces), soft-deleted ones included.
    pub objects: usize,
    /// Of those, soft-deleted on the first node that answered.
    pub deleted: usize,
    /// Tracked objects that some answering node does not show as acknowledged (missing, a
    /// value older than the last acknowledged update, or not deleted after an acknowledged
    /// delete); 0 when converged.
    pub missing_acked: usize,
    /// What was still different when the period ended unconverged.
    pub problems: Vec<String>,
    /// Each node at the end of the period, all holding the same data when converged.
    pub nodes: Vec<NodeAtRest>,
}

/// One node at the end of a quiet period.
#[derive(Debug, Clone, Serialize)]
pub struct NodeAtRest {
    pub node: usize,
    pub incarnation: usize,
    /// When its current run started (seconds since the soak started).
    pub run_started_secs: Option<f64>,
    pub rss_kib: Option<u64>,
    pub fds: Option<usize>,
    /// Size of its data dir (sled's files), KiB.
    pub store_kib: u64,
}

fn dir_kib(dir: &std::path::Path) -> u64 {
    fn walk(d: &std::path::Path) -> u64 {
        std::fs::read_dir(d).map_or(0, |es| {
            es.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
    }
    walk(dir) / 1024
}

/// RSS and fds of every node now, with the start of its current run.
pub fn snapshot(shared: &Shared) -> Vec<NodeAtRest> {
    shared
        .nodes
        .iter()
        .map(|node| {
            let (pid, incarnation, started) = {
                let st = node.state();
                (st.pid, st.incarnation, st.started_at)
            };
            NodeAtRest {
                node: node.index,
                incarnation,
                run_started_secs: started
                    .map(|s| s.saturating_duration_since(shared.t0).as_secs_f64()),
                rss_kib: pid.and_then(rss_kib),
                fds: pid.and_then(fd_count),
                store_kib: dir_kib(&node.data_dir),
            }
        })
        .collect()
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

impl QuietPeriod {
    /// Median RSS at the end of the period of the nodes whose run started after
    /// `since` (fresh: restarted from disk, caught up) and of the others (long-running).
    /// Holding the same data, a long-running node well above the fresh ones holds memory
    /// that is not data: a leak.
    pub fn rss_fresh_and_old(&self, since: f64) -> (Option<u64>, Option<u64>) {
        let pick = |fresh: bool| {
            median(
                self.nodes
                    .iter()
                    .filter(|n| n.run_started_secs.is_some_and(|s| (s > since) == fresh))
                    .filter_map(|n| n.rss_kib)
                    .collect(),
            )
        };
        (pick(true), pick(false))
    }

    pub fn rss_median(&self) -> Option<u64> {
        median(self.nodes.iter().filter_map(|n| n.rss_kib).collect())
    }

    pub fn store_median(&self) -> Option<u64> {
        median(self.nodes.iter().map(|n| n.store_kib).collect())
    }
}

/// What every node holds, per space, at one moment of a quiet period.
pub struct View {
    /// `sets[space][node]`: the node's objects by id, or why it could not be asked.
    sets: Vec<Vec<Result<BTreeMap<String, Value>, String>>>,
    expected: Vec<BTreeMap<String, Expect>>,
}

/// Asks every node for the objects of every space.
///
/// Past `deadline` the nodes not asked yet are not asked (each ask may wait for its HTTP
/// timeout on a stalled node, and a quiet period must end near its `--converge-timeout`).
pub fn view(
    shared: &Shared,
    agent: &ureq::Agent,
    expected: &[BTreeMap<String, Expect>],
    deadline: Instant,
) -> View {
    let sets = shared
        .spaces
        .iter()
        .map(|space| {
            shared
                .nodes
                .iter()
                .map(|node| match node.endpoint() {
                    _ if Instant::now() > deadline => {
                        Err("not asked: the quiet period's time was up".to_owned())
                    }
                    Some(ep) => api::objects(agent, &ep, space).map_err(|e| format!("{e:#}")),
                    None => Err("not ready".to_owned()),
                })
                .collect()
        })
        .collect();
    View {
        sets,
        expected: expected.to_vec(),
    }
}

/// Tracked objects of one space that `set` does not show as acknowledged.
fn unmet<'a>(
    expected: &'a BTreeMap<String, Expect>,
    set: &'a BTreeMap<String, Value>,
) -> impl Iterator<Item = &'a String> + 'a {
    expected
        .iter()
        .filter(|(id, e)| !set.get(*id).is_some_and(|o| e.holds(o)))
        .map(|(id, _)| id)
}

impl View {
    /// Every node answered with the same objects (ids and contents), and they show every
    /// acknowledged write.
    pub fn converged(&self) -> bool {
        self.sets
            .iter()
            .zip(&self.expected)
            .all(|(nodes, expected)| {
                let Some(Ok(first)) = nodes.first() else {
                    return false;
                };
                unmet(expected, first).next().is_none()
                    && nodes.iter().all(|s| s.as_ref().is_ok_and(|s| s == first))
            })
    }

    pub fn objects(&self) -> usize {
        self.sets
            .iter()
            .map(|nodes| {
                let all: BTreeSet<&String> =
                    nodes.iter().flatten().flat_map(|s| s.keys()).collect();
                all.len()
            })
            .sum()
    }

    /// Soft-deleted objects on the first node that answered, all spaces.
    pub fn deleted(&self) -> usize {
        self.sets
            .iter()
            .filter_map(|nodes| nodes.iter().flatten().next())
            .map(|s| s.values().filter(|o| o["@deleted"] == true).count())
            .sum()
    }

    /// Tracked objects that some answering node does not show as acknowledged.
    pub fn missing_acked(&self) -> usize {
        self.sets
            .iter()
            .zip(&self.expected)
            .map(|(nodes, expected)| {
                let bad: BTreeSet<&String> = nodes
                    .iter()
                    .flatten()
                    .flat_map(|s| unmet(expected, s))
                    .collect();
                bad.len()
            })
            .sum()
    }

    /// Up to `limit` lines saying which node differs how.
    pub fn problems(&self, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (s, (nodes, expected)) in self.sets.iter().zip(&self.expected).enumerate() {
            let first = nodes.iter().flatten().next();
            for (i, set) in nodes.iter().enumerate() {
                match set {
                    Err(e) => out.push(format!("node {i}, space {s}: not answering ({e})")),
                    Ok(set) => {
                        let bad: Vec<&String> = unmet(expected, set).collect();
                        let differ = first.map_or(0, |f| {
                            f.keys()
                                .chain(set.keys())
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .filter(|id| f.get(*id) != set.get(*id))
                                .count()
                        });
                        if let Some(id) = bad.first() {
                            out.push(format!(
                                "node {i}, space {s}: {} objects do not show their acknowledged writes, e.g. {id} = {} (expected {:?})",
                                bad.len(),
                                set.get(*id).map_or("missing".to_owned(), Value::to_string),
                                expected[*id]
                            ));
                        } else if differ > 0 {
                            out.push(format!(
                                "node {i}, space {s}: {differ} objects differ from the first node's"
                            ));
                        }
                    }
                }
            }
        }
        out.truncate(limit);
        out
    }
}

/// Min and max of a series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

/// One daemon run (process) of a node.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub incarnation: usize,
    pub started_secs: f64,
    /// `None`: the run never got warm (killed first, or the soak ended).
    pub warm_from_secs: Option<f64>,
    pub warm_samples: usize,
    pub rss_baseline_kib: Option<u64>,
    pub rss_kib: Option<Range>,
    /// Largest RSS change against the baseline, in percent (signed: the larger in size).
    pub rss_max_change_pct: Option<f64>,
    pub fds_baseline: Option<u64>,
    pub fds: Option<Range>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub node: usize,
    /// Its line colour in the plot.
    pub color: &'static str,
    pub starts: usize,
    pub kills: usize,
    pub crashes: Vec<String>,
    pub writes: NodeWrites,
    /// Over the warm samples of all its runs.
    pub rss_warm_kib: Option<Range>,
    pub fds_warm: Option<Range>,
    pub runs: Vec<RunReport>,
    pub log: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Writes {
    pub acked: u64,
    /// Acknowledged writes by kind.
    pub adds: u64,
    pub updates: u64,
    pub deletes: u64,
    pub refused: u64,
    pub no_answer: u64,
    /// Tracked objects that some node did not show as acknowledged after the last quiet
    /// period (missing, an older value than the last acknowledged update, or not deleted
    /// after an acknowledged delete).
    pub lost: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    pub quiet_periods: usize,
    pub converged: usize,
    pub min_secs: Option<f64>,
    pub median_secs: Option<f64>,
    pub max_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: &'static str,
    pub pass: bool,
    pub reasons: Vec<String>,
    pub notes: Vec<String>,
    pub command: String,
    pub config: Value,
    pub elapsed_secs: f64,
    pub writes: Writes,
    pub kills: usize,
    pub restarts: usize,
    pub convergence: Convergence,
    pub quiet_periods: Vec<QuietPeriod>,
    pub memory: Memory,
    pub warm: &'static str,
    pub nodes: Vec<NodeReport>,
    pub plot: Option<String>,
    pub work_dir: Option<String>,
    pub events: Vec<Event>,
    pub samples: Vec<Sample>,
}

/// RSS at rest (end of each quiet period): how it grows with the data, and whether nodes
/// that ran long hold more than nodes freshly restarted onto the same data.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// Median-node RSS growth per acknowledged write, first to last converged period.
    pub kib_per_write: Option<f64>,
    pub at_rest: Vec<AtRest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AtRest {
    pub quiet_period: usize,
    pub acked: u64,
    /// Distinct objects on the nodes (live and soft-deleted): the size of the data.
    pub objects: usize,
    pub median_rss_kib: Option<u64>,
    /// Median size of the nodes' data dirs.
    pub median_store_kib: Option<u64>,
    /// Nodes restarted since the previous quiet period (they reloaded from disk).
    pub fresh_median_rss_kib: Option<u64>,
    pub long_running_median_rss_kib: Option<u64>,
}

impl Memory {
    fn of(quiet: &[QuietPeriod]) -> Memory {
        let mut since = 0.0;
        let mut at_rest = Vec::new();
        for q in quiet {
            let (fresh, old) = q.rss_fresh_and_old(since);
            at_rest.push(AtRest {
                quiet_period: q.index,
                acked: q.acked,
                objects: q.objects,
                median_rss_kib: q.rss_median(),
                median_store_kib: q.store_median(),
                fresh_median_rss_kib: fresh,
                long_running_median_rss_kib: old,
            });
            since = q.end_secs;
        }
        let converged: Vec<&QuietPeriod> =
            quiet.iter().filter(|q| q.converge_secs.is_some()).collect();
        let kib_per_write = match (converged.first(), converged.last()) {
            (Some(a), Some(b)) if b.acked > a.acked => match (a.rss_median(), b.rss_median()) {
                (Some(x), Some(y)) => Some((y as f64 - x as f64) / (b.acked - a.acked) as f64),
                _ => None,
            },
            _ => None,
        };
        Memory {
            kib_per_write,
            at_rest,
        }
    }
}

const WARM: &str = "a daemon run is warm from the end of the first quiet period that began after both its start and the moment every node's working set was full in every space; RSS baseline = its first warm sample";

fn range(values: impl Iterator<Item = u64>) -> Option<Range> {
    values.fold(None, |acc, v| match acc {
        None => Some(Range { min: v, max: v }),
        Some(r) => Some(Range {
            min: r.min.min(v),
            max: r.max.max(v),
        }),
    })
}

impl Report {
    pub fn build(
        shared: &Shared,
        args: &SoakArgs,
        bin: &std::path::Path,
        quiet: Vec<QuietPeriod>,
    ) -> Report {
        let samples = shared.samples().clone();
        let events = shared.events().clone();
        let ledger_nodes = shared.ledger().per_node.clone();
        let mut reasons = Vec::new();
        let mut notes = Vec::new();
        let quiet_starts: Vec<(f64, f64)> =
            quiet.iter().map(|q| (q.start_secs, q.end_secs)).collect();
        // Until every working set is full the data still grows: no run is warm before.
        let full_at = *shared.full_at.lock().unwrap_or_else(|e| e.into_inner());
        if full_at.is_none() {
            notes.push(format!(
                "the working sets never all got full (--objects {}): no run was warm, RSS not checked",
                args.objects
            ));
        }
        let mut nodes = Vec::new();
        // RSS outside the band, per warm run: (change %, description); one reason for all.
        let mut rss_off: Vec<(f64, String)> = Vec::new();
        let mut checked_runs = 0usize;
        for node in &shared.nodes {
            let i = node.index;
            let starts: Vec<&Event> = events
                .iter()
                .filter(|e| e.node == i && e.kind == "start")
                .collect();
            let kills = events
                .iter()
                .filter(|e| e.node == i && e.kind == "kill9")
                .count();
            let mut runs = Vec::new();
            for start in &starts {
                let warm_from = full_at.and_then(|full| {
                    quiet_starts
                        .iter()
                        .find(|(s, _)| *s > start.t.max(full))
                        .map(|(_, end)| *end)
                });
                let warm: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| s.node == i && s.incarnation == start.incarnation)
                    .filter(|s| warm_from.is_some_and(|w| s.t >= w))
                    .collect();
                let base = warm.first().map(|s| s.rss_kib);
                let fd_base = warm.first().map(|s| s.fds as u64);
                let change = base.filter(|b| *b > 0).map(|b| {
                    warm.iter()
                        .map(|s| (s.rss_kib as f64 / b as f64 - 1.0) * 100.0)
                        .fold(0.0f64, |m, c| if c.abs() > m.abs() { c } else { m })
                });
                let run = RunReport {
                    incarnation: start.incarnation,
                    started_secs: start.t,
                    warm_from_secs: warm_from,
                    warm_samples: warm.len(),
                    rss_baseline_kib: base,
                    rss_kib: range(warm.iter().map(|s| s.rss_kib)),
                    rss_max_change_pct: change,
                    fds_baseline: fd_base,
                    fds: range(warm.iter().map(|s| s.fds as u64)),
                };
                if warm.len() >= 3 {
                    checked_runs += 1;
                    if let (Some(c), Some(b), Some(r)) = (change, base, run.rss_kib) {
                        if c.abs() > args.rss_tolerance {
                            rss_off.push((
                                c,
                                format!(
                                    "node {i} run #{}: {c:+.1}%, {:.1} -> {:.1}-{:.1} MiB",
                                    start.incarnation,
                                    mib(b),
                                    mib(r.min),
                                    mib(r.max)
                                ),
                            ));
                        }
                    }
                    if let (Some(b), Some(r)) = (fd_base, run.fds) {
                        if r.max > b + (b / 4).max(16) {
                            reasons.push(format!(
                                "node {i} run #{}: open fds grew from {b} to {} once warm",
                                start.incarnation, r.max
                            ));
                        }
                    }
                }
                runs.push(run);
            }
            let warm_samples = |f: fn(&Sample) -> u64| {
                let runs = &runs;
                range(
                    samples
                        .iter()
                        .filter(move |s| {
                            s.node == i
                                && runs.iter().any(|r| {
                                    r.incarnation == s.incarnation
                                        && r.warm_from_secs.is_some_and(|w| s.t >= w)
                                })
                        })
                        .map(f),
                )
            };
            let crashes = node.state().crashes.clone();
            for c in &crashes {
                reasons.push(format!("node {i} crashed: {c}"));
            }
            if node.log_has_panic() {
                reasons.push(format!(
                    "node {i} panicked (see {})",
                    node.log_path().display()
                ));
            }
            nodes.push(NodeReport {
                node: i,
                color: color_name(i),
                starts: starts.len(),
                kills,
                crashes,
                writes: ledger_nodes[i].clone(),
                rss_warm_kib: warm_samples(|s| s.rss_kib),
                fds_warm: warm_samples(|s| s.fds as u64),
                runs,
                log: node.log_path().display().to_string(),
            });
        }
        if !nodes
            .iter()
            .flat_map(|n| &n.runs)
            .any(|r| r.warm_samples >= 3)
        {
            notes.push(
                "RSS and fds not checked: no daemon run stayed warm for 3 samples (run longer)"
                    .into(),
            );
        }
        if !rss_off.is_empty() {
            rss_off.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
            let worst: Vec<&str> = rss_off.iter().take(3).map(|(_, d)| d.as_str()).collect();
            reasons.push(format!(
                "RSS left the ±{}% band around the warm baseline in {} of {checked_runs} warm daemon runs (largest: {})",
                args.rss_tolerance,
                rss_off.len(),
                worst.join("; ")
            ));
        }
        let memory = Memory::of(&quiet);
        if let Some(k) = memory.kib_per_write {
            notes.push(format!(
                "RSS (median node) grew {k:.2} KiB per acknowledged write between the first and the last quiet period"
            ));
        }
        let lost = quiet.last().map_or(0, |q| q.missing_acked);
        if lost > 0 {
            reasons.push(format!("acknowledged writes lost: {lost} objects do not show them on some node after the last quiet period"));
        }
        for q in &quiet {
            if q.converge_secs.is_none() {
                reasons.push(format!(
                    "quiet period {} did not converge within {} s: {}",
                    q.index,
                    args.converge_timeout,
                    q.problems.join("; ")
                ));
            }
        }
        let acked: u64 = ledger_nodes.iter().map(|w| w.acked).sum();
        if quiet.is_empty() {
            reasons.push("no quiet period ran".into());
        }
        let mut times: Vec<f64> = quiet.iter().filter_map(|q| q.converge_secs).collect();
        times.sort_by(f64::total_cmp);
        let kills = events.iter().filter(|e| e.kind == "kill9").count();
        let starts = events.iter().filter(|e| e.kind == "start").count();
        Report {
            verdict: "FAIL",
            pass: false,
            reasons,
            notes,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            config: json!({
                "nodes": args.nodes, "spaces": args.spaces, "churn_secs": args.churn().as_secs_f64(),
                "objects_per_node_and_space": args.objects, "delete_every": args.delete_every,
                "rate_per_node": args.rate, "write_secs": args.write_secs, "kill_every": args.kill_every,
                "max_downtime": args.max_downtime, "max_down": args.max_down(), "converge_timeout": args.converge_timeout,
                "seed": args.seed, "sample_ms": args.sample_ms, "rss_tolerance_pct": args.rss_tolerance,
                "echo_node": bin.display().to_string(),
            }),
            elapsed_secs: shared.now(),
            writes: Writes {
                acked,
                adds: ledger_nodes.iter().map(|w| w.adds).sum(),
                updates: ledger_nodes.iter().map(|w| w.updates).sum(),
                deletes: ledger_nodes.iter().map(|w| w.deletes).sum(),
                refused: ledger_nodes.iter().map(|w| w.refused).sum(),
                no_answer: ledger_nodes.iter().map(|w| w.no_answer).sum(),
                lost,
            },
            kills,
            restarts: starts.saturating_sub(shared.nodes.len()),
            convergence: Convergence {
                quiet_periods: quiet.len(),
                converged: times.len(),
                min_secs: times.first().copied(),
                median_secs: times.get(times.len() / 2).copied(),
                max_secs: times.last().copied(),
            },
            quiet_periods: quiet,
            memory,
            warm: WARM,
            nodes,
            plot: None,
            work_dir: None,
            events,
            samples,
        }
    }

    /// Sets the verdict from the reasons collected so far.
    pub fn finish_verdict(&mut self) {
        self.pass = self.reasons.is_empty();
        self.verdict = if self.pass { "PASS" } else { "FAIL" };
    }

    /// The last line of the text report.
    pub fn verdict_line(&self) -> String {
        if self.pass {
            format!(
                "VERDICT: PASS ({} acked writes ({} adds, {} updates, {} deletes), 0 lost, {}/{} quiet periods converged, {} kill -9)",
                self.writes.acked, self.writes.adds, self.writes.updates, self.writes.deletes,
                self.convergence.converged, self.convergence.quiet_periods, self.kills
            )
        } else {
            format!("VERDICT: FAIL: {}", self.reasons.join("; "))
        }
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let secs = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} s"));
        o += &format!("soak: {}\n", self.command);
        o += &format!(
            "{} nodes, {} spaces, {:.0} s churn, {:.1} s in all; {} kill -9, {} restarts\n\n",
            self.config["nodes"],
            self.config["spaces"],
            self.config["churn_secs"].as_f64().unwrap_or(0.0),
            self.elapsed_secs,
            self.kills,
            self.restarts
        );
        let m = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{:.1}", mib(v)));
        o += "quiet period  paused at  converged in  acked  objects (deleted)  missing  store MiB  RSS MiB: median  fresh  long-running\n";
        for (q, r) in self.quiet_periods.iter().zip(&self.memory.at_rest) {
            o += &format!(
                "{:>12}  {:>7.1} s  {:>12}  {:>5}  {:>17}  {:>7}  {:>9}  {:>15}  {:>5}  {:>12}\n",
                q.index,
                q.start_secs,
                secs(q.converge_secs),
                q.acked,
                format!("{} ({})", q.objects, q.deleted),
                q.missing_acked,
                m(r.median_store_kib),
                m(r.median_rss_kib),
                m(r.fresh_median_rss_kib),
                m(r.long_running_median_rss_kib)
            );
        }
        o += "(converged in: from the pause of writes; fresh: nodes restarted since the previous quiet period, reloaded from disk)\n";
        o += &format!(
            "convergence: {}/{} quiet periods, min {} / median {} / max {}\n\n",
            self.convergence.converged,
            self.convergence.quiet_periods,
            secs(self.convergence.min_secs),
            secs(self.convergence.median_secs),
            secs(self.convergence.max_secs)
        );
        o += "node  colour   starts  kills  acked  refused  no-answer  RSS warm MiB (max change)  fds warm\n";
        for n in &self.nodes {
            let rss = n.rss_warm_kib.map_or("-".to_owned(), |r| {
                format!("{:.1}-{:.1}", mib(r.min), mib(r.max))
            });
            let change = n
                .runs
                .iter()
                .filter(|r| r.warm_samples >= 3)
                .filter_map(|r| r.rss_max_change_pct)
                .fold(None, |m: Option<f64>, c| {
                    Some(m.map_or(c, |m| if c.abs() > m.abs() { c } else { m }))
                });
            let change = change.map_or(String::new(), |c| format!(" ({c:+.1}%)"));
            let fds = n
                .fds_warm
                .map_or("-".to_owned(), |r| format!("{}-{}", r.min, r.max));
            o += &format!(
                "{:>4}  {:<7}  {:>6}  {:>5}  {:>5}  {:>7}  {:>9}  {:>26}  {:>8}\n",
                n.node,
                n.color,
                n.starts,
                n.kills,
                n.writes.acked,
                n.writes.refused,
                n.writes.no_answer,
                format!("{rss}{change}"),
                fds
            );
        }
        o += &format!(
            "\nwrites: {} acknowledged ({} adds, {} updates, {} deletes), {} refused, {} unanswered; {} objects lost or not showing an acknowledged write\n",
            self.writes.acked,
            self.writes.adds,
            self.writes.updates,
            self.writes.deletes,
            self.writes.refused,
            self.writes.no_answer,
            self.writes.lost
        );
        o += &format!("warm: {}\n", self.warm);
        if let Some(p) = &self.plot {
            o += &format!("plot: {p} (top: RSS MiB, bottom: open fds; x: seconds; grey: quiet periods; ticks at the top: kill -9; colours as above)\n");
        }
        if let Some(d) = &self.work_dir {
            o += &format!("data dirs and logs: {d}\n");
        }
        for n in &self.notes {
            o += &format!("note: {n}\n");
        }
        o += &self.verdict_line();
        o += "\n";
        o
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
