//! The run trace: events stamped with simulated time, hashed with blake3. Two runs of the
//! same seed must produce the same hash.

/// An append-only list of events and its running hash.
pub struct Trace {
    hasher: blake3::Hasher,
    events: usize,
    keep: Option<Vec<String>>,
}

impl Trace {
    /// A trace; `keep` also keeps the event texts (for printing).
    pub fn new(keep: bool) -> Self {
        Trace {
            hasher: blake3::Hasher::new(),
            events: 0,
            keep: keep.then(Vec::new),
        }
    }

    /// Records one event at simulated time `at_ms`.
    pub fn event(&mut self, at_ms: u64, text: impl Into<String>) {
        let text = text.into();
        self.hasher.update(&at_ms.to_le_bytes());
        self.hasher.update(&(text.len() as u64).to_le_bytes());
        self.hasher.update(text.as_bytes());
        self.events += 1;
        if let Some(keep) = &mut self.keep {
            keep.push(format!("{at_ms:>8} {text}"));
        }
    }

    pub fn len(&self) -> usize {
        self.events
    }
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }
    pub fn hash_hex(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
    pub fn lines(&self) -> &[String] {
        self.keep.as_deref().unwrap_or(&[])
    }
}
