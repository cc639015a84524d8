//! Two `ReplicationCore`s wired back to back over in-memory feeds, the way quinn-proto tests
//! a `Pair`: whatever each side starts with and appends, both end holding every block.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::feed::{Block, FeedLog, Payload};
use crate::types::{KeyPair, PublicKey, Timeframe};

/// One peer: its feeds and its core.
struct Side {
    feeds: BTreeMap<PublicKey, Vec<Block>>,
    core: ReplicationCore,
}

impl Side {
    fn heads(&self) -> Heads {
        self.feeds
            .iter()
            .map(|(k, v)| (*k, v.len() as u64))
            .collect()
    }
}

/// Every feed's full contents, written by its owner.
fn make_feeds(lengths: &[usize]) -> Vec<Vec<Block>> {
    lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let kp = KeyPair::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(i as u64));
            let mut log = FeedLog::new(kp.public());
            (0..n)
                .map(|j| {
                    let b = log
                        .next_block(&kp, Timeframe::new(), Payload::Mutation(vec![j as u8]))
                        .unwrap();
                    log.commit(&b);
                    b
                })
                .collect()
        })
        .collect()
}

/// Runs both sides until nothing is in flight; returns the number of frames exchanged.
fn drive(a: &mut Side, b: &mut Side) -> usize {
    let mut wire: VecDeque<(bool, ReplMessage)> = VecDeque::new();
    let mut frames = 0;
    let mut pending: VecDeque<(bool, ReplInput)> = VecDeque::new();
    pending.push_back((true, ReplInput::Opened { local: a.heads() }));
    pending.push_back((false, ReplInput::Opened { local: b.heads() }));
    loop {
        if let Some((to_a, input)) = pending.pop_front() {
            let side = if to_a { &mut *a } else { &mut *b };
            for out in side.core.handle(input) {
                match out {
                    ReplOutput::Send(m) => wire.push_back((!to_a, m)),
                    ReplOutput::ReadBlocks { feed, from, to } => {
                        let blocks = side.feeds.get(&feed).map(|v| {
                            v.iter()
                                .filter(|b| b.seq >= from && b.seq < to)
                                .cloned()
                                .collect()
                        });
                        pending
                            .push_back((to_a, ReplInput::BlocksRead(blocks.unwrap_or_default())));
                    }
                    ReplOutput::Ingest(blocks) => {
                        for blk in blocks {
                            let feed = side.feeds.entry(blk.feed_key).or_default();
                            if blk.seq == feed.len() as u64 {
                                feed.push(blk);
                            }
                        }
                        pending.push_back((to_a, ReplInput::LocalHeads(side.heads())));
                    }
                    ReplOutput::Close(reason) => panic!("channel closed: {reason}"),
                }
            }
        } else if let Some((to_a, msg)) = wire.pop_front() {
            frames += 1;
            assert!(frames < 10_000, "no convergence");
            pending.push_back((to_a, ReplInput::Received(msg)));
        } else {
            return frames;
        }
    }
}

fn sides(full: &[Vec<Block>], a_len: &[usize], b_len: &[usize]) -> (Side, Side) {
    let mk = |lens: &[usize]| Side {
        feeds: full
            .iter()
            .zip(lens)
            .filter(|(_, &n)| n > 0)
            .map(|(f, &n)| (f[0].feed_key, f[..n.min(f.len())].to_vec()))
            .collect(),
        core: ReplicationCore::new(),
    };
    (mk(a_len), mk(b_len))
}

#[test]
fn a_behind_peer_catches_up_in_batches() {
    let full = make_feeds(&[600, 3]);
    let (mut a, mut b) = sides(&full, &[600, 3], &[0, 1]);
    drive(&mut a, &mut b);
    assert_eq!(a.heads(), b.heads());
    assert_eq!(b.feeds[&full[0][0].feed_key].len(), 600);
}

#[test]
fn new_local_blocks_are_pushed() {
    let full = make_feeds(&[10]);
    let (mut a, mut b) = sides(&full, &[5], &[5]);
    drive(&mut a, &mut b);
    // A appends locally; its core learns through LocalHeads and pushes.
    let feed = full[0][0].feed_key;
    a.feeds
        .get_mut(&feed)
        .unwrap()
        .extend(full[0][5..].iter().cloned());
    let out = a.core.handle(ReplInput::LocalHeads(a.heads()));
    assert!(
        out.iter().any(|o| matches!(
            o,
            ReplOutput::ReadBlocks {
                from: 5,
                to: 10,
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn protocol_violations_close_the_channel() {
    let mut core = ReplicationCore::new();
    let out = core.handle(ReplInput::Received(ReplMessage::Heads(Heads::new())));
    assert!(matches!(out[..], [ReplOutput::Close(_)]));
    let mut core = ReplicationCore::new();
    core.handle(ReplInput::Opened {
        local: Heads::new(),
    });
    let feed = PublicKey::from_bytes([1; 32]);
    let out = core.handle(ReplInput::Received(ReplMessage::Want {
        feed,
        from: 3,
        to: 3,
    }));
    assert!(matches!(out[..], [ReplOutput::Close(_)]));
    // Oversized wants are clamped, not served whole.
    let out = core.handle(ReplInput::Received(ReplMessage::Want {
        feed,
        from: 0,
        to: u64::MAX,
    }));
    assert_eq!(
        out,
        vec![ReplOutput::ReadBlocks {
            feed,
            from: 0,
            to: MAX_BATCH
        }]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Whatever prefixes of three feeds each side starts with, both end with everything.
    #[test]
    fn two_sides_converge(a_len in proptest::collection::vec(0usize..40, 3), b_len in proptest::collection::vec(0usize..40, 3)) {
        let full = make_feeds(&[40, 40, 40]);
        let (mut a, mut b) = sides(&full, &a_len, &b_len);
        drive(&mut a, &mut b);
        let want: Heads = full
            .iter()
            .zip(a_len.iter().zip(&b_len))
            .filter(|(_, (x, y))| **x.max(y) > 0)
            .map(|(f, (x, y))| (f[0].feed_key, *x.max(y) as u64))
            .collect();
        prop_assert_eq!(a.heads(), want.clone());
        prop_assert_eq!(b.heads(), want);
    }
}
