//! Random streams: every purpose draws from its own ChaCha20 stream, keyed by
//! `blake3::derive_key("echo-sim <purpose>", seed)`, so that a draw added for one purpose
//! never shifts another's. A scenario that makes one more choice keeps the same faults,
//! node keys and packet fates for the same seed, and the other way round.
//!
//! | stream | draws |
//! |---|---|
//! | [`SCENARIO`] | the scenario's own choices (`Cluster::rng`, `below`, `pick`, random writes) |
//! | [`FAULTS`] | the run's `FaultOptions`, then every `Cluster::chaos` decision (which fault, which nodes, how slow, how long offline) |
//! | [`TURMOIL`] | the seed of turmoil's own RNG (packet loss, host order) |
//! | [`node`] | per node index: its RNG seed (keys, ids, Yrs client ids per incarnation) and its store's flush delay |
//! | [`SIGNAL`] | the signaling server's seed (`signaling`) |
//! | [`ADVERSARY`] | the bad peer's keys and transport seed (`bad-peer`) |
//! | [`SCHEDULE`] | `Schedule::generate` (`random-schedule`) |

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const SCENARIO: &str = "scenario";
pub const FAULTS: &str = "faults";
pub const TURMOIL: &str = "turmoil";
pub const SIGNAL: &str = "signal server";
pub const ADVERSARY: &str = "adversary";
pub const SCHEDULE: &str = "schedule";

fn derive(purpose: &str, material: &[u8]) -> ChaCha20Rng {
    let context = format!("echo-sim {purpose}");
    ChaCha20Rng::from_seed(blake3::derive_key(&context, material))
}

/// The stream of `purpose` for the run's `seed`.
pub fn stream(seed: u64, purpose: &str) -> ChaCha20Rng {
    derive(purpose, &seed.to_le_bytes())
}

/// The stream of node `index` (its RNG seed and its store's flush delay): independent of
/// how many nodes the scenario starts, and when.
pub fn node(seed: u64, index: usize) -> ChaCha20Rng {
    let mut material = seed.to_le_bytes().to_vec();
    material.extend_from_slice(&(index as u64).to_le_bytes());
    derive("node", &material)
}

#[cfg(test)]
mod tests {
    use rand_core::RngCore;

    use super::*;

    #[test]
    fn streams_differ_by_purpose_seed_and_node() {
        let first = |mut r: ChaCha20Rng| r.next_u64();
        let a = first(stream(1, FAULTS));
        assert_eq!(a, first(stream(1, FAULTS)));
        assert_ne!(a, first(stream(1, SCENARIO)));
        assert_ne!(a, first(stream(2, FAULTS)));
        assert_ne!(first(node(1, 0)), first(node(1, 1)));
        assert_ne!(first(node(1, 0)), first(node(2, 0)));
    }
}
