//! echo-sim: deterministic simulation of echo-rs peers.
//!
//! A run is a scenario driven by one seed: every random choice (operations, faults, keys,
//! ids) comes from RNGs seeded from it, time comes from a fixed clock, and actors run on a
//! single-threaded tokio runtime with a `LocalSet` (the same host shape turmoil gives each
//! simulated node). Every run records a trace whose blake3 hash must be identical for the
//! same seed in a fresh process.
//!
//! Layout: `scenarios/` (one story per file), `checkers/` (read-only invariants), `trace`.
//! Networked scenarios under turmoil arrive with peer replication.

pub mod checkers;
pub mod scenarios;
pub mod trace;

pub use scenarios::{run, Outcome, SCENARIOS};
