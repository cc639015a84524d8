//! The benchmark measures what it claims: every side really performs all its writes.

#![allow(clippy::unwrap_used)]

use echo_bench::{node_writes, yrs_baseline, StoreKind};

#[test]
fn local_writes_run_on_every_side() {
    let base = yrs_baseline(50).unwrap();
    assert_eq!(base.ops, 50);
    for kind in [StoreKind::Mem, StoreKind::Sled] {
        let m = node_writes(30, kind).unwrap();
        assert_eq!(m.ops, 30);
        assert!(m.ops_per_sec() > 0.0);
    }
}
