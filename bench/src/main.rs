//! `echo-bench`: workloads on echo-rs beside their baselines, measured in the same run.

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Parser, Subcommand};
use echo_bench::{node_writes, yrs_baseline, StoreKind};

#[derive(Parser)]
#[command(
    name = "echo-bench",
    version,
    about = "echo-rs benchmarks, each beside a baseline measured in the same run (build with --release)"
)]
struct Cli {
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Local durable writes through a node (memory and sled stores) vs raw yrs.
    LocalWrites {
        /// Number of object adds per side.
        #[arg(long, default_value_t = 2000)]
        ops: usize,
    },
    /// Soak: N echo-node daemons sharing spaces through a signaling server, writing
    /// continuously through their local APIs while random nodes are killed (-9) and
    /// restarted; reports convergence after each quiet period, RSS and open fds per node,
    /// acknowledged writes lost, a verdict line and a PNG plot. Exits 1 on FAIL.
    Soak(Box<echo_bench::soak::SoakArgs>),
    /// Acknowledged durable writes/s through one node with N concurrent writers (in-process
    /// NodeHandle calls, or HTTP clients of a real daemon, a connection per request), beside
    /// raw yrs encode+apply of the same single-field update and, over HTTP, an empty
    /// actix-web handler driven by the same clients (the HTTP ceiling).
    Ingest(echo_bench::ingest::IngestArgs),
    /// Two echo-node daemons on QUIC loopback: M single-field updates on A, ops/s until B
    /// holds them all, wire bytes per op (through a counting UDP relay) beside raw Yrs
    /// update bytes, and wire bytes/s beside raw quinn bulk throughput.
    Replicate(echo_bench::replicate::ReplicateArgs),
    /// Bytes on disk per op for the B1.1 workload (single-character appends to one text,
    /// one after another) beside the raw Yrs update bytes of the same edits.
    Storage(echo_bench::storage::StorageArgs),
}

/// Prints `report` as one JSON document or as its table.
fn print<R: serde::Serialize>(
    json: bool,
    report: &R,
    text: impl FnOnce(&R) -> String,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Bars draw on stderr; only for a person watching, never into JSON or a log.
    let progress = !cli.json && std::io::stderr().is_terminal();
    match cli.command {
        Cmd::Ingest(args) => {
            let report = echo_bench::ingest::run(&args, progress)?;
            print(cli.json, &report, echo_bench::ingest::IngestReport::text)?;
        }
        Cmd::Replicate(args) => {
            let report = echo_bench::replicate::run(&args, progress)?;
            print(
                cli.json,
                &report,
                echo_bench::replicate::ReplicateReport::text,
            )?;
        }
        Cmd::Storage(args) => {
            let report = echo_bench::storage::run(&args, progress)?;
            print(cli.json, &report, echo_bench::storage::StorageReport::text)?;
        }
        Cmd::Soak(args) => {
            let report = echo_bench::soak::run(&args, progress)?;
            if let Some(path) = &args.json_out {
                std::fs::write(path, serde_json::to_string(&report)?)
                    .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
            }
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.text());
            }
            if !report.pass {
                std::process::exit(1);
            }
        }
        Cmd::LocalWrites { ops } => {
            let mut rows = vec![yrs_baseline(ops)?];
            let mut mem = node_writes(ops, StoreKind::Mem)?;
            mem.name = "echo node, memory store".into();
            rows.push(mem);
            let mut sled = node_writes(ops, StoreKind::Sled)?;
            sled.name = "echo node, sled + flush per write".into();
            rows.push(sled);
            if cli.json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"name": r.name, "ops": r.ops, "ops_per_sec": r.ops_per_sec(), "us_per_op": r.micros_per_op()}))
                    .collect();
                println!("{}", serde_json::Value::Array(out));
            } else {
                println!(
                    "{:<36} {:>10} {:>12} {:>10}",
                    "workload: local-writes", "ops", "ops/s", "µs/op"
                );
                for r in &rows {
                    println!(
                        "{:<36} {:>10} {:>12.0} {:>10.1}",
                        r.name,
                        r.ops,
                        r.ops_per_sec(),
                        r.micros_per_op()
                    );
                }
            }
        }
    }
    Ok(())
}
