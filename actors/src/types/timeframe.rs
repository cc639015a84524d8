//! Timeframe: the vector clock `{feed key -> highest seq seen}` that every block carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PublicKey;

/// `{feed key -> seq}`: for each feed, the highest block sequence number seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeframe(BTreeMap<PublicKey, u64>);

impl Timeframe {
    pub fn new() -> Self {
        Self::default()
    }
    /// The highest seq seen of `feed`.
    pub fn get(&self, feed: &PublicKey) -> Option<u64> {
        self.0.get(feed).copied()
    }
    /// Records that `feed` reached `seq` (never moves backwards).
    pub fn advance(&mut self, feed: PublicKey, seq: u64) {
        let entry = self.0.entry(feed).or_insert(seq);
        if *entry < seq {
            *entry = seq;
        }
    }
    /// Sets `feed` to exactly `seq` (for rebuilding a timeframe sent as a change).
    pub fn set(&mut self, feed: PublicKey, seq: u64) {
        self.0.insert(feed, seq);
    }
    /// Drops the entry of `feed`.
    pub fn remove(&mut self, feed: &PublicKey) {
        self.0.remove(feed);
    }
    /// True if every entry of `other` is covered by `self`.
    pub fn covers(&self, other: &Timeframe) -> bool {
        other
            .0
            .iter()
            .all(|(feed, seq)| self.get(feed).is_some_and(|mine| mine >= *seq))
    }
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &u64)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn covers_and_advance() {
        let mut a = Timeframe::new();
        a.advance(key(1), 3);
        a.advance(key(1), 2);
        assert_eq!(a.get(&key(1)), Some(3));
        let mut b = Timeframe::new();
        b.advance(key(1), 3);
        assert!(a.covers(&b));
        b.advance(key(2), 0);
        assert!(!a.covers(&b));
        assert!(a.covers(&Timeframe::new()));
    }
}
