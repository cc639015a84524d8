#![no_main]
//! Fuzz target: `echo_actors::fuzzing::invitation` (see its docs for the invariants checked).

libfuzzer_sys::fuzz_target!(|data: &[u8]| echo_actors::fuzzing::invitation(data));
