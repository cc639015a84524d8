#![no_main]
//! Fuzz target: `echo_actors::fuzzing::merge_patch` (see its docs for the invariants checked).
//! The node catches yrs panics while integrating updates; the default panic hook replaces
//! libFuzzer's aborting one so that those caught panics are not reported as crashes
//! (an uncaught panic still aborts the run).

libfuzzer_sys::fuzz_target!(
    init: drop(std::panic::take_hook()),
    |data: &[u8]| echo_actors::fuzzing::merge_patch(data)
);
