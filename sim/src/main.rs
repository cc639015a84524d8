//! `echo-sim`: run, sweep and replay deterministic simulations of echo-rs peers.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use echo_sim::{run_with, Outcome, RunOptions, SCENARIOS};

#[derive(Parser)]
#[command(
    name = "echo-sim",
    version,
    about = "Deterministic simulation of echo-rs peers: every run is reproduced exactly by its scenario and seed"
)]
struct Cli {
    /// Print one JSON document per command instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Print the actors' logs (filter with RUST_LOG, e.g. `echo_actors=debug`) to stderr.
    #[arg(long, global = true)]
    log: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the scenarios.
    List,
    /// Run one scenario with one seed; prints the result, simulated duration and trace hash.
    Run {
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Also print every trace event.
        #[arg(long)]
        trace: bool,
        /// Number of peers (scenarios with a variable cluster size).
        #[arg(long)]
        nodes: Option<usize>,
    },
    /// Run seeds A..B (end exclusive) of one scenario or `all`; prints a command that
    /// reproduces each failure.
    Sweep {
        #[arg(long)]
        scenario: String,
        /// A range like `0..200`.
        #[arg(long)]
        seeds: String,
        /// Number of peers (scenarios with a variable cluster size).
        #[arg(long)]
        nodes: Option<usize>,
    },
    /// Run a scenario (or `all`) twice in fresh processes and once here, and compare the
    /// trace hashes.
    CheckDeterminism {
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Number of peers (scenarios with a variable cluster size).
        #[arg(long)]
        nodes: Option<usize>,
    },
}

fn parse_range(s: &str) -> Result<std::ops::Range<u64>> {
    let (a, b) = s
        .split_once("..")
        .context("seeds must look like A..B, e.g. 0..200")?;
    let a: u64 = a
        .trim()
        .parse()
        .context("seed range start is not a number")?;
    let b: u64 = b.trim().parse().context("seed range end is not a number")?;
    if b <= a {
        bail!("empty seed range {a}..{b}");
    }
    Ok(a..b)
}

fn scenario_names(name: &str) -> Result<Vec<&'static str>> {
    if name == "all" {
        return Ok(SCENARIOS.iter().map(|s| s.name).collect());
    }
    match SCENARIOS.iter().find(|s| s.name == name) {
        Some(s) => Ok(vec![s.name]),
        None => bail!("no scenario `{name}` (see `echo-sim list`)"),
    }
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "scenario": o.scenario, "seed": o.seed, "ok": o.ok(), "simulated_ms": o.simulated_ms,
        "trace_hash": o.trace_hash, "trace_events": o.trace_events,
        "options": o.options,
        "violations": o.violations.iter().map(|v| format!("{}: {}", v.checker, v.detail)).collect::<Vec<_>>(),
    })
}

/// Log lines are stamped with the simulated time (ms) of the host that logs them.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>8}", t.as_millis()),
            None => write!(w, "{:>8}", "-"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(SimTime)
            .with_writer(std::io::stderr)
            .init();
    }
    match dispatch(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("echo-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<bool> {
    match &cli.command {
        Cmd::List => {
            if cli.json {
                let list: Vec<_> = SCENARIOS
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "about": s.about}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for s in SCENARIOS {
                    println!("{:<16} {}", s.name, s.about);
                }
            }
            Ok(true)
        }
        Cmd::Run {
            scenario,
            seed,
            trace,
            nodes,
        } => {
            scenario_names(scenario)?;
            let opts = RunOptions {
                keep_trace: *trace,
                nodes: *nodes,
            };
            // Wall time for the speed report only; it never enters the trace.
            let started = std::time::Instant::now();
            let o = run_with(scenario, *seed, &opts).context("unknown scenario")?;
            let wall = started.elapsed().as_secs_f64();
            if cli.json {
                println!("{}", outcome_json(&o));
            } else {
                for line in &o.trace {
                    println!("{line}");
                }
                println!("options: {}", o.options);
                println!(
                    "{} seed={} {} simulated={:.1}s events={} trace_hash={}",
                    o.scenario,
                    o.seed,
                    if o.ok() { "ok" } else { "FAILED" },
                    o.simulated_ms as f64 / 1000.0,
                    o.trace_events,
                    o.trace_hash
                );
                eprintln!(
                    "wall={wall:.1}s speed={:.1} simulated s per wall s",
                    o.simulated_ms as f64 / 1000.0 / wall.max(1e-9)
                );
                if !o.ok() {
                    println!(
                        "reproduce: echo-sim run --scenario {} --seed {}{} --trace",
                        o.scenario,
                        o.seed,
                        nodes.map(|n| format!(" --nodes {n}")).unwrap_or_default()
                    );
                }
                for v in &o.violations {
                    println!("  violation [{}] {}", v.checker, v.detail);
                }
            }
            Ok(o.ok())
        }
        Cmd::Sweep {
            scenario,
            seeds,
            nodes,
        } => {
            let opts = RunOptions {
                keep_trace: false,
                nodes: *nodes,
            };
            let names = scenario_names(scenario)?;
            let range = parse_range(seeds)?;
            let total = names.len() as u64 * (range.end - range.start);
            let bar = indicatif::ProgressBar::new(total);
            if cli.json || std::env::var_os("CI").is_some() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let mut failures = Vec::new();
            let mut runs = 0u64;
            let mut simulated = 0u64;
            for name in &names {
                for seed in range.clone() {
                    let o = run_with(name, seed, &opts).context("unknown scenario")?;
                    runs += 1;
                    simulated += o.simulated_ms;
                    if !o.ok() {
                        bar.suspend(|| {
                            eprintln!("FAILED {name} seed={seed}: {:?}", o.violations.first())
                        });
                        failures.push(o);
                    }
                    bar.inc(1);
                }
            }
            bar.finish_and_clear();
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"runs": runs, "failures": failures.iter().map(outcome_json).collect::<Vec<_>>(), "simulated_ms": simulated})
                );
            } else {
                println!(
                    "sweep: {runs} runs, {} failed, {:.0} simulated seconds",
                    failures.len(),
                    simulated as f64 / 1000.0
                );
                for f in &failures {
                    println!(
                        "reproduce: echo-sim run --scenario {} --seed {}{} --trace",
                        f.scenario,
                        f.seed,
                        nodes.map(|n| format!(" --nodes {n}")).unwrap_or_default()
                    );
                }
            }
            Ok(failures.is_empty())
        }
        Cmd::CheckDeterminism {
            scenario,
            seed,
            nodes,
        } => {
            let mut all_ok = true;
            for name in scenario_names(scenario)? {
                all_ok &= check_determinism(name, *seed, *nodes, cli.json)?;
            }
            Ok(all_ok)
        }
    }
}

/// Runs one scenario here and twice in fresh processes; true if all three trace hashes
/// agree and the run had no violation.
fn check_determinism(scenario: &str, seed: u64, nodes: Option<usize>, json: bool) -> Result<bool> {
    let opts = RunOptions {
        keep_trace: false,
        nodes,
    };
    let here = run_with(scenario, seed, &opts).context("unknown scenario")?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut hashes = vec![here.trace_hash.clone()];
    for _ in 0..2 {
        let mut args = vec![
            "--json".to_string(),
            "run".into(),
            "--scenario".into(),
            scenario.to_string(),
            "--seed".into(),
            seed.to_string(),
        ];
        if let Some(n) = nodes {
            args.extend(["--nodes".to_string(), n.to_string()]);
        }
        let out = Command::new(&exe)
            .args(&args)
            .output()
            .context("cannot run echo-sim in a fresh process")?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("child printed no JSON")?;
        hashes.push(v["trace_hash"].as_str().unwrap_or_default().to_string());
    }
    let same = hashes.iter().all(|h| *h == hashes[0]);
    if json {
        println!(
            "{}",
            serde_json::json!({"scenario": scenario, "seed": seed, "deterministic": same, "ok": here.ok(), "hashes": hashes})
        );
    } else {
        println!(
            "{scenario} seed={seed}: {}{} ({})",
            if same {
                "deterministic"
            } else {
                "NOT deterministic"
            },
            if here.ok() { "" } else { ", with violations" },
            hashes.join(" ")
        );
    }
    Ok(same && here.ok())
}
