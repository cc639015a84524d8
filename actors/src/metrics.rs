//! [`Metrics`]: the node's counters, shared by its actors. Each is a monotonic `u64` named
//! Prometheus-style, `name{label="value",...}`, so a `/metrics` endpoint can print them as
//! they are ([`Metrics::prometheus`]); `status --json` shows them as a map.
//!
//! What is counted (label `peer` is the peer's short device key, `kind` a frame kind):
//! - `echo_frames_sent_total{peer,kind}`, `echo_frame_bytes_sent_total{peer,kind}` and the
//!   `_received_` pair: replication frames on the wire, bytes including the 4-byte header;
//! - `echo_blocks_ingested_total`, `echo_block_bytes_ingested_total`: peer blocks stored;
//! - `echo_commits_total`, `echo_commit_writes_total` (their ratio is the mean batch size),
//!   `echo_commit_writes_max`, `echo_commit_micros_sum` (from a batch's start to durable);
//! - `echo_flushes_total`, `echo_flush_micros_sum`: store flushes of commits and ingests.
//!
//! Counters never drive behaviour, so they are outside the determinism rules' reach (a
//! shared map under a mutex that is held only to add).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

/// See the module docs.
#[derive(Clone, Default, Debug)]
pub struct Metrics(Arc<Mutex<BTreeMap<String, u64>>>);

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut k = String::with_capacity(name.len() + 32);
    k.push_str(name);
    k.push('{');
    for (i, (label, value)) in labels.iter().enumerate() {
        if i > 0 {
            k.push(',');
        }
        // Label values here are keys, kinds and names the node makes: no quotes in them.
        let _ = write!(k, "{label}=\"{value}\"");
    }
    k.push('}');
    k
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` to a counter.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], value: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = map.entry(key(name, labels)).or_default();
        *slot = slot.saturating_add(value);
    }

    /// Raises a gauge to `value` if it is higher.
    pub fn max(&self, name: &str, labels: &[(&str, &str)], value: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = map.entry(key(name, labels)).or_default();
        *slot = (*slot).max(value);
    }

    /// Every counter, by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The Prometheus text format of every counter.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.snapshot() {
            let _ = writeln!(out, "{k} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_under_their_labels_and_print_as_prometheus() {
        let m = Metrics::new();
        m.add(
            "echo_frames_sent_total",
            &[("peer", "ab12"), ("kind", "Blocks")],
            2,
        );
        m.add(
            "echo_frames_sent_total",
            &[("peer", "ab12"), ("kind", "Blocks")],
            3,
        );
        m.add("echo_commits_total", &[], 1);
        m.max("echo_commit_writes_max", &[], 7);
        m.max("echo_commit_writes_max", &[], 4);
        let s = m.snapshot();
        assert_eq!(s[r#"echo_frames_sent_total{peer="ab12",kind="Blocks"}"#], 5);
        assert_eq!(s["echo_commit_writes_max"], 7);
        assert_eq!(
            m.prometheus(),
            "echo_commit_writes_max 7\necho_commits_total 1\n\
             echo_frames_sent_total{peer=\"ab12\",kind=\"Blocks\"} 5\n"
        );
    }
}
