//! A 20-second soak of the real binaries: `echo-bench soak` (cargo's `CARGO_BIN_EXE_echo-bench`)
//! driving three `echo-node` daemons (built by `echo_tests::echo_node`, or
//! `$ECHO_NODE_BIN`) with kill -9 and restarts. It checks what the soak must never get
//! wrong (the JSON is well formed, no acknowledged write is lost, quiet periods converge,
//! adds, updates and deletes were all acknowledged, the plot is a PNG), and nothing about
//! timing or memory: 20 seconds on two shared cores
//! say nothing about those.

#![allow(clippy::unwrap_used)] // test: a failed unwrap is a failed test

use std::process::{Command, Stdio};

use serde_json::Value;

fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_echo-bench"));
    c.stdin(Stdio::null());
    c
}

#[test]
fn twenty_second_soak_loses_nothing_and_converges() {
    let node = echo_tests::echo_node();
    let tmp = tempfile::tempdir().unwrap();
    let plot = tmp.path().join("soak.png");
    let out = bench()
        .args([
            "--json",
            "soak",
            "--nodes",
            "3",
            "--seconds",
            "20",
            "--write-secs",
            "6",
        ])
        .args([
            "--kill-every",
            "4",
            "--max-downtime",
            "2",
            "--rate",
            "5",
            "--seed",
            "7",
            "--objects",
            "4",
            "--delete-every",
            "3",
        ])
        .arg("--plot")
        .arg(&plot)
        .arg("--echo-node")
        .arg(&node)
        .arg("--dir")
        .arg(tmp.path().join("work"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 1 is a FAIL verdict, which may be RSS noise in so short a run; the checks below
    // decide. Anything else (2: usage, a panic) is a broken soak.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "echo-bench soak exited with {}:\n{stdout}\n{stderr}",
        out.status
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("soak --json printed no single JSON document ({e}):\n{stdout}\n{stderr}")
    });
    let show = || serde_json::to_string_pretty(&report["reasons"]).unwrap();

    assert!(
        ["PASS", "FAIL"].contains(&report["verdict"].as_str().unwrap()),
        "{}",
        show()
    );
    assert_eq!(
        report["writes"]["lost"],
        0,
        "acknowledged writes lost: {}",
        show()
    );
    assert!(
        report["writes"]["acked"].as_u64().unwrap() > 3,
        "hardly any writes acked"
    );
    // The bounded working set: adds until full, then updates and deletes, all acknowledged.
    for kind in ["adds", "updates", "deletes"] {
        assert!(
            report["writes"][kind].as_u64().unwrap() > 0,
            "no {kind} acknowledged: {}",
            report["writes"]
        );
    }
    let w = &report["writes"];
    assert_eq!(
        w["adds"].as_u64().unwrap()
            + w["updates"].as_u64().unwrap()
            + w["deletes"].as_u64().unwrap(),
        w["acked"].as_u64().unwrap(),
        "{w}"
    );
    let quiet = report["quiet_periods"].as_array().unwrap();
    assert!(!quiet.is_empty(), "no quiet period ran");
    for q in quiet {
        assert!(
            q["converge_secs"].is_number(),
            "quiet period did not converge: {q}"
        );
        assert_eq!(q["missing_acked"], 0, "{q}");
        assert!(q["objects"].as_u64() >= q["tracked"].as_u64(), "{q}");
        assert!(q["tracked"].as_u64().unwrap() > 0, "{q}");
    }
    assert!(
        report["kills"].as_u64().unwrap() >= 1,
        "the chaos schedule killed nothing"
    );
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["crashes"], Value::Array(vec![]), "a node crashed: {n}");
    }
    let reasons = show();
    assert!(!reasons.contains("panicked"), "a node panicked: {reasons}");
    assert!(
        !report["samples"].as_array().unwrap().is_empty(),
        "no RSS/fd samples"
    );
    for s in report["samples"].as_array().unwrap() {
        assert!(
            s["rss_kib"].as_u64().unwrap() > 0 && s["fds"].as_u64().unwrap() > 0,
            "{s}"
        );
    }

    assert_eq!(report["plot"].as_str(), Some(plot.to_str().unwrap()));
    let png = std::fs::read(&plot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the plot is not a PNG"
    );
    assert!(png.len() > 1000, "the plot is suspiciously small");
}

#[test]
fn bad_flags_are_refused_without_a_panic() {
    for (args, code) in [
        (&["soak", "--nodes", "1"][..], 2),
        (&["soak", "--minutes", "1", "--seconds", "5"][..], 2),
        (
            &["soak", "--rate", "0", "--echo-node", "/nonexistent"][..],
            1,
        ),
        (&["soak", "--seconds", "nan"][..], 1),
        (&["soak", "--echo-node", "/nonexistent/echo-node"][..], 1),
    ] {
        let out = bench().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?}: no message");
    }
    let help = bench().args(["soak", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--nodes",
        "--minutes",
        "--seed",
        "--plot",
        "--echo-node",
        "--kill-every",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}
