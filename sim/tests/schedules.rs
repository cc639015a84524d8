//! Property test: random schedules of writes, partitions, one-way partitions, heals,
//! crashes, restarts and waits, run through the whole harness (real nodes over turmoil),
//! must never break an invariant. On failure proptest shrinks the schedule to a minimal one
//! and prints it; replay it with `run_schedule` (or record it as a regression case).

#![allow(clippy::unwrap_used)]

use echo_sim::schedule::{run_schedule, Schedule, Step};
use echo_sim::RunOptions;
use proptest::prelude::*;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..3).prop_map(|node| Step::Write { node }),
        1 => (1u8..7).prop_map(|mask| Step::Partition { mask }),
        1 => (0u8..3, 0u8..3).prop_map(|(from, to)| Step::OneWay { from, to }),
        1 => Just(Step::Heal),
        1 => (0u8..3).prop_map(|node| Step::Crash { node }),
        1 => (0u8..3).prop_map(|node| Step::Restart { node }),
        2 => (0u16..60).prop_map(|t| Step::Wait { ms: t * 100 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        max_shrink_iters: 32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_schedules_keep_every_invariant(
        steps in prop::collection::vec(step(), 1..14),
        seed in 0u64..10_000,
    ) {
        let schedule = Schedule { nodes: 3, steps };
        let outcome = run_schedule("proptest", seed, &schedule, &RunOptions::default());
        prop_assert!(outcome.ok(), "seed {seed}, {schedule:?}: {:?}", outcome.violations);
    }
}

#[test]
fn a_schedule_replays_to_the_same_trace() {
    let schedule = Schedule {
        nodes: 3,
        steps: vec![
            Step::Partition { mask: 1 },
            Step::Write { node: 0 },
            Step::Write { node: 1 },
            Step::Crash { node: 2 },
            Step::Wait { ms: 3_000 },
            Step::Restart { node: 2 },
            Step::Heal,
            Step::Write { node: 2 },
        ],
    };
    let a = run_schedule("proptest", 7, &schedule, &RunOptions::default());
    let b = run_schedule("proptest", 7, &schedule, &RunOptions::default());
    assert!(a.ok(), "{:?}", a.violations);
    assert_eq!(a.trace_hash, b.trace_hash);
}
