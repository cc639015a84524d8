//! The simulator's own guarantees: the same seed gives the same trace hash (single-node and
//! networked scenarios), different seeds explore different runs, crash-restart's crashes do
//! fall between a batch's write and its flush, and the durability checker finds nothing on a
//! correct node but catches a lost write.

#![allow(clippy::unwrap_used)]

#[test]
fn same_seed_same_hash_and_no_violations() {
    for seed in 0..5 {
        let a = echo_sim::run("crash-restart", seed, false).expect("scenario exists");
        let b = echo_sim::run("crash-restart", seed, false).expect("scenario exists");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert!(a.ok(), "seed {seed}: {:?}", a.violations);
        assert!(a.trace_events > 10);
    }
    let x = echo_sim::run("crash-restart", 100, false).expect("scenario exists");
    let y = echo_sim::run("crash-restart", 101, false).expect("scenario exists");
    assert_ne!(x.trace_hash, y.trace_hash);
}

#[test]
fn networked_runs_are_deterministic_and_seeds_differ() {
    for name in ["partition-heal", "bad-peer"] {
        let a = echo_sim::run(name, 3, false).expect("scenario exists");
        let b = echo_sim::run(name, 3, false).expect("scenario exists");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{name} seed 3 is not deterministic"
        );
        assert!(a.ok(), "{name} seed 3: {:?}", a.violations);
        let c = echo_sim::run(name, 4, false).expect("scenario exists");
        assert_ne!(a.trace_hash, c.trace_hash);
    }
}

#[test]
fn the_durability_checker_catches_a_lost_write() {
    use echo_sim::checkers::DurabilityModel;
    use serde_json::json;
    let mut model = DurabilityModel::default();
    model.added("A", &json!({"n": 1}));
    model.added("B", &json!({"n": 2}));
    model.patched("A", &json!({"n": 5}));
    let node = vec![json!({"@id": "A", "n": 1, "@deleted": false})];
    let v = model.check(&node);
    assert!(v.iter().any(|v| v.detail.contains("B is missing")));
    assert!(v.iter().any(|v| v.detail.contains("field n")));
}

/// The numbers of crash-restart's last summary line (`crash windows: ...`).
fn crash_windows(seed: u64) -> Vec<u64> {
    let outcome = echo_sim::run("crash-restart", seed, true).expect("scenario exists");
    assert!(outcome.ok(), "seed {seed}: {:?}", outcome.violations);
    let line = outcome
        .trace
        .iter()
        .find(|l| l.contains("crash windows:"))
        .expect("a summary line")
        .clone();
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .skip(1) // the simulated time
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn crash_restart_crashes_between_a_write_and_its_flush() {
    // crashes, mid-flush crashes, batches lost, writes unanswered, survived, lost
    let mut total = [0u64; 6];
    for seed in 0..4 {
        let numbers = crash_windows(seed);
        assert_eq!(numbers.len(), 6, "seed {seed}: {numbers:?}");
        for (t, n) in total.iter_mut().zip(numbers) {
            *t += n;
        }
    }
    let [crashes, mid_flush, batches, unanswered, survived, lost] = total;
    assert!(
        crashes > 0 && mid_flush > 0 && batches >= mid_flush,
        "{total:?}"
    );
    assert!(unanswered > 0 && lost > 0, "{total:?}");
    assert_eq!(unanswered, survived + lost, "{total:?}");
}
