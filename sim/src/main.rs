//! `echo-sim`: run, sweep and replay deterministic simulations of echo-rs peers.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use echo_sim::{run, Outcome, SCENARIOS};

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
    },
    /// Run seeds A..B (end exclusive) of one scenario or `all`; prints a command that
    /// reproduces each failure.
    Sweep {
        #[arg(long)]
        scenario: String,
        /// A range like `0..200`.
        #[arg(long)]
        seeds: String,
    },
    /// Run a scenario twice in fresh processes (and once here) and compare trace hashes.
    CheckDeterminism {
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        seed: u64,
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
        "violations": o.violations.iter().map(|v| format!("{}: {}", v.checker, v.detail)).collect::<Vec<_>>(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        } => {
            scenario_names(scenario)?;
            let o = run(scenario, *seed, *trace).context("unknown scenario")?;
            if cli.json {
                println!("{}", outcome_json(&o));
            } else {
                for line in &o.trace {
                    println!("{line}");
                }
                println!(
                    "{} seed={} {} simulated={:.1}s events={} trace_hash={}",
                    o.scenario,
                    o.seed,
                    if o.ok() { "ok" } else { "FAILED" },
                    o.simulated_ms as f64 / 1000.0,
                    o.trace_events,
                    o.trace_hash
                );
                for v in &o.violations {
                    println!("  violation [{}] {}", v.checker, v.detail);
                }
            }
            Ok(o.ok())
        }
        Cmd::Sweep { scenario, seeds } => {
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
                    let o = run(name, seed, false).context("unknown scenario")?;
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
                        "reproduce: echo-sim run --scenario {} --seed {} --trace",
                        f.scenario, f.seed
                    );
                }
            }
            Ok(failures.is_empty())
        }
        Cmd::CheckDeterminism { scenario, seed } => {
            scenario_names(scenario)?;
            let here = run(scenario, *seed, false).context("unknown scenario")?;
            let exe = std::env::current_exe().context("cannot find this executable")?;
            let mut hashes = vec![here.trace_hash.clone()];
            for _ in 0..2 {
                let out = Command::new(&exe)
                    .args([
                        "--json",
                        "run",
                        "--scenario",
                        scenario,
                        "--seed",
                        &seed.to_string(),
                    ])
                    .output()
                    .context("cannot run echo-sim in a fresh process")?;
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).context("child printed no JSON")?;
                hashes.push(v["trace_hash"].as_str().unwrap_or_default().to_string());
            }
            let same = hashes.iter().all(|h| *h == hashes[0]);
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"scenario": scenario, "seed": seed, "deterministic": same, "hashes": hashes})
                );
            } else {
                println!(
                    "{scenario} seed={seed}: {} ({})",
                    if same {
                        "deterministic"
                    } else {
                        "NOT deterministic"
                    },
                    hashes.join(" ")
                );
            }
            Ok(same && here.ok())
        }
    }
}
