//! echo-sim: deterministic simulation of whole echo-rs peers.
//!
//! A run is a scenario driven by one seed. Networked scenarios run the production actors
//! (`echo_actors::node::Node`) inside turmoil hosts, over the real quinn + rustls transport
//! on turmoil's simulated UDP, each on a `MemStore` with a crash model. Every random choice
//! (operations, faults, keys, ids, turmoil's own RNG) comes from the seed, time is
//! simulated, and every run records a trace whose blake3 hash is identical for the same
//! seed in a fresh process.
//!
//! Layout: `harness/` (turmoil cluster, UDP adapter, host software, client requests),
//! `faults/` (network and host faults), `checkers/` (read-only invariants), `scenarios/`
//! (one story per file), `schedule` (explicit fault/write schedules for proptest), `rng`
//! (one random stream per purpose, derived from the seed), `trace`.

pub mod adversary;
pub mod checkers;
pub mod faults;
pub mod harness;
pub mod rng;
pub mod scenarios;
pub mod schedule;
pub mod trace;

pub use scenarios::{run, run_with, Outcome, RunOptions, SCENARIOS};
