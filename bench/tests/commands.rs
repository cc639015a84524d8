//! `echo-bench ingest`, `replicate` and `storage` run on a tiny configuration and print one
//! well-formed JSON document with the expected members. Nothing here looks at how fast
//! anything was: a few dozen ops on two shared cores say nothing about that.

#![allow(clippy::unwrap_used)] // test: a failed unwrap is a failed test

use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_echo-bench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `echo-bench --json ARGS`, which must succeed and print one JSON object.
fn json(args: &[&str]) -> Value {
    let out = bench(&[&["--json"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "echo-bench {args:?} exited with {}:\n{stdout}\n{stderr}",
        out.status
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("echo-bench {args:?} printed no JSON document ({e}):\n{stdout}")
    });
    assert!(v.is_object(), "{v}");
    v
}

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn check_row(row: &Value, ops: u64) {
    assert_eq!(row["ops"], ops, "{row}");
    for key in ["secs", "ops_per_sec", "us_per_op"] {
        assert!(number(row, key) > 0.0, "{key} in {row}");
    }
    assert!(row["name"].is_string(), "{row}");
}

fn echo_node() -> String {
    echo_tests::echo_node().to_string_lossy().into_owned()
}

#[test]
fn ingest_via_handle_reports_node_and_raw_yrs() {
    for store in ["sled", "mem"] {
        let v = json(&[
            "ingest",
            "--writers",
            "3",
            "--ops",
            "30",
            "--baseline-ops",
            "100",
            "--store",
            store,
        ]);
        assert_eq!(v["command"], "ingest");
        assert_eq!(v["via"], "handle");
        assert_eq!(v["store"], store);
        assert_eq!(v["writers"], 3);
        check_row(&v["node"], 30);
        check_row(&v["raw_yrs"], 100);
        assert!(v["node"]["latency"]["p50_ms"].is_number(), "{v}");
        assert!(number(&v, "node_over_raw_yrs") > 0.0);
        assert!(number(&v, "raw_yrs_update_bytes_per_op") > 0.0);
        assert!(number(&v, "blocks_per_op") > 0.0, "{v}");
        assert!(number(&v["commits"], "writes_per_commit") >= 1.0, "{v}");
        assert!(number(&v["commits"], "commit_ms_mean") >= 0.0, "{v}");
        if store == "sled" {
            assert!(number(&v["disk_sync"], "ops_per_sec") > 0.0, "{v}");
        } else {
            assert!(v["disk_sync"].is_null(), "{v}");
        }
        assert!(v["http_ceiling"].is_null(), "{v}");
        assert!(v["node_over_http_ceiling"].is_null(), "{v}");
        assert!(v.get("load_average").is_some());
    }
}

#[test]
fn ingest_via_http_reports_the_ceiling_too() {
    let node = echo_node();
    let v = json(&[
        "ingest",
        "--via",
        "http",
        "--writers",
        "3",
        "--ops",
        "20",
        "--baseline-ops",
        "100",
        "--echo-node",
        &node,
    ]);
    assert_eq!(v["via"], "http");
    check_row(&v["node"], 20);
    check_row(&v["http_ceiling"], 20);
    assert!(v["http_ceiling"]["latency"]["p99_ms"].is_number(), "{v}");
    assert!(number(&v, "node_over_http_ceiling") > 0.0);
    assert!(number(&v["disk_sync"], "ops_per_sec") > 0.0, "{v}");
    assert!(number(&v, "blocks_per_op") > 0.0, "{v}");
    assert!(number(&v, "node_over_raw_yrs") > 0.0);
}

#[test]
fn ingest_refuses_http_with_the_memory_store() {
    let out = bench(&["ingest", "--via", "http", "--store", "mem"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("always stores in sled"), "{stderr}");
}

#[test]
fn replicate_live_reports_rate_wire_and_baselines() {
    check_replicate(&[]);
}

#[test]
fn replicate_catch_up_reports_rate_wire_and_baselines() {
    check_replicate(&["--catch-up"]);
}

fn check_replicate(extra: &[&str]) {
    let node = echo_node();
    let args = [
        "replicate",
        "--ops",
        "20",
        "--batch",
        "2",
        "--bulk-mib",
        "1",
        "--echo-node",
        &node,
    ];
    let v = json(&[&args[..], extra].concat());
    assert_eq!(v["command"], "replicate");
    assert_eq!(v["catch_up"], extra.contains(&"--catch-up"));
    assert_eq!(v["ops"], 20);
    assert_eq!(v["batch"], 2);
    for key in [
        "replicated_ops_per_sec",
        "replicate_secs",
        "a_acked_ops_per_sec",
        "blocks_per_op",
        "raw_yrs_update_bytes_per_op",
        "quinn_bulk_bytes_per_sec",
    ] {
        assert!(number(&v, key) > 0.0, "{key} in {v}");
    }
    assert!(v["a_write_latency"]["p50_ms"].is_number(), "{v}");
    let wire = &v["wire"];
    for key in [
        "bytes",
        "datagrams",
        "bytes_a_to_b",
        "bytes_per_op",
        "over_raw_yrs",
        "bytes_per_sec",
        "over_quinn_bulk",
    ] {
        assert!(number(wire, key) > 0.0, "{key} in {wire}");
    }
    assert!(wire["idle_bytes_per_sec"].is_number(), "{wire}");
    // The node under test counts its frames (status --json `counters`).
    let frames = &v["frames"];
    assert!(number(frames, "bytes_per_op") > 0.0, "{frames}");
    assert!(
        frames["by_kind"]["Blocks"]["frames"].as_u64().unwrap() > 0,
        "{frames}"
    );
    assert!(v["wire_source"].is_string());
}

#[test]
fn storage_reports_disk_and_raw_yrs_bytes() {
    let v = json(&["storage", "--ops", "30"]);
    assert_eq!(v["command"], "storage");
    assert_eq!(v["ops"], 30);
    assert_eq!(v["store"], "sled");
    for key in [
        "raw_yrs_update_bytes",
        "raw_yrs_update_bytes_per_op",
        "raw_yrs_doc_bytes",
        "logical_bytes_per_op",
        "block_bytes_per_op",
        "logical_over_raw_yrs",
        "node_ops_per_sec",
    ] {
        assert!(number(&v, key) > 0.0, "{key} in {v}");
    }
    // Disk growth may round to nothing for 30 small ops (sled allocates in segments).
    for key in [
        "disk_bytes_per_op",
        "disk_apparent_bytes_per_op",
        "disk_over_raw_yrs",
    ] {
        assert!(number(&v, key) >= 0.0, "{key} in {v}");
    }
    assert!(v["disk_after"]["allocated"].is_u64(), "{v}");
    assert!(v["logical_after"]["blocks"].is_u64(), "{v}");

    let mem = json(&["storage", "--ops", "30", "--store", "mem"]);
    assert_eq!(mem["store"], "mem");
    assert!(mem["disk_bytes_per_op"].is_null(), "{mem}");
    assert!(number(&mem, "logical_bytes_per_op") > 0.0);
}
