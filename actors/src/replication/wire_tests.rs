//! Tests of the compact wire form: exact round trips, the frames' shape and size, the
//! ring of slots, and every decoding error.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::wire::*;
use super::ReplMessage;
use crate::feed::{Block, Payload};
use crate::types::{decode, encode, encoded_len, Hash, KeyPair, PublicKey, Timeframe};

fn key_pair(n: u64) -> KeyPair {
    KeyPair::generate(&mut ChaCha20Rng::seed_from_u64(n))
}

fn feed(n: u64) -> PublicKey {
    key_pair(n).public()
}

/// `len` chained blocks of feed `n`, block `i` with timeframe `tf(i)` and a `size`-byte
/// payload.
fn chain(n: u64, len: u64, size: usize, tf: impl Fn(u64) -> Timeframe) -> Vec<Block> {
    let key = key_pair(n);
    let mut prev = Hash::default();
    (0..len)
        .map(|seq| {
            let b = Block::sign(
                &key,
                seq,
                prev,
                tf(seq),
                Payload::Mutation(vec![seq as u8; size]),
            )
            .unwrap();
            prev = b.hash();
            b
        })
        .collect()
}

/// A typical data feed's timeframe: its own feed at `seq`, three others fixed.
fn tf_of(own: u64, seq: u64) -> Timeframe {
    let mut tf = Timeframe::new();
    for other in 100..103 {
        tf.advance(feed(other), 7);
    }
    tf.advance(feed(own), seq);
    tf
}

/// Sends `msg` through the encoder, real bytes and the decoder, and checks that exactly
/// `msg` comes out; answers the wire form and its size.
fn cross(enc: &mut WireEncoder, dec: &mut WireDecoder, msg: ReplMessage) -> (WireMessage, usize) {
    let wire = enc.encode(msg.clone());
    let bytes = encode(&wire).unwrap();
    assert_eq!(bytes.len(), encoded_len(&wire).unwrap());
    let back: WireMessage = decode(&bytes).unwrap();
    assert_eq!(back, wire);
    assert_eq!(dec.decode(back).unwrap(), msg);
    (wire, bytes.len())
}

#[test]
fn a_feeds_first_run_names_it_by_key_and_restarts_and_later_runs_use_its_slot_and_continue() {
    let blocks = chain(1, 3, 40, |s| tf_of(1, s));
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    let (first, _) = cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[..1].to_vec()),
    );
    let WireMessage::Blocks(runs) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].feed, FeedRef::New(feed(1)));
    assert_eq!(runs[0].first_seq, 0);
    assert_eq!(
        runs[0].restart,
        Some(Restart {
            prev_hash: Hash::default(),
            base: tf_of(1, 0)
        })
    );
    assert!(runs[0].blocks[0].timeframe.is_empty());

    let (next, _) = cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[1..].to_vec()),
    );
    let WireMessage::Blocks(runs) = &next else {
        panic!("{next:?}")
    };
    assert_eq!(runs[0].feed, FeedRef::Slot(0));
    assert_eq!(runs[0].first_seq, 1);
    assert_eq!(runs[0].restart, None, "continues the block sent before");
    // Only the writer's own entry moved, named by its position.
    let own_at = tf_of(1, 0).iter().position(|(f, _)| *f == feed(1)).unwrap() as u32;
    for (c, seq) in runs[0].blocks.iter().zip(1..) {
        assert_eq!(c.timeframe, vec![TimeframeChange::Set { at: own_at, seq }]);
    }
}

#[test]
fn a_continued_block_costs_its_payload_and_signature_and_a_few_bytes() {
    let blocks = chain(1, 2, 40, |s| tf_of(1, s));
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    let (_, full) = cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[..1].to_vec()),
    );
    let (_, compact) = cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[1..].to_vec()),
    );
    let block = blocks[1].encoded_len().unwrap();
    // payload 40 + 1 length, signature 64 + 1 length; the rest, a byte each: version,
    // variant, run count, feed ref and slot, seq, no restart, block count, change count,
    // one change (variant, position, seq) and the payload variant.
    assert_eq!(compact, 41 + 65 + 13, "compact frame");
    assert!(
        block - compact >= 32 + 32 + 4 * 33 - 12,
        "saves the key, prev_hash and timeframe: block {block} B, frame {compact} B"
    );
    assert!(full > compact);
}

#[test]
fn a_gap_or_a_fork_restarts_the_run_with_its_prev_hash() {
    let blocks = chain(1, 4, 8, |s| tf_of(1, s));
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[..1].to_vec()),
    );
    // Seq 2 after seq 0: the receiver cannot know block 1's hash.
    let (gap, _) = cross(
        &mut enc,
        &mut dec,
        ReplMessage::Blocks(blocks[2..3].to_vec()),
    );
    let WireMessage::Blocks(runs) = &gap else {
        panic!()
    };
    assert_eq!(runs[0].feed, FeedRef::Slot(0));
    assert_eq!(
        runs[0].restart.as_ref().unwrap().prev_hash,
        blocks[1].hash()
    );
    // Another seq 3 than ours (a fork): restarts too, and comes out whole.
    let other = Block::sign(
        &key_pair(1),
        3,
        Hash([9; 32]),
        tf_of(1, 3),
        Payload::Mutation(vec![1]),
    )
    .unwrap();
    let (fork, _) = cross(&mut enc, &mut dec, ReplMessage::Blocks(vec![other.clone()]));
    let WireMessage::Blocks(runs) = &fork else {
        panic!()
    };
    assert!(runs[0].restart.is_some());
}

#[test]
fn one_frame_of_several_feeds_becomes_one_run_per_feed_and_comes_out_in_order() {
    let a = chain(1, 3, 4, |s| tf_of(1, s));
    let b = chain(2, 2, 4, |s| tf_of(2, s));
    let mixed = vec![
        a[0].clone(),
        a[1].clone(),
        b[0].clone(),
        b[1].clone(),
        a[2].clone(),
    ];
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    let (wire, _) = cross(&mut enc, &mut dec, ReplMessage::Blocks(mixed.clone()));
    let WireMessage::Blocks(runs) = &wire else {
        panic!()
    };
    let shape: Vec<_> = runs
        .iter()
        .map(|r| (r.feed, r.first_seq, r.blocks.len(), r.restart.is_some()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (FeedRef::New(feed(1)), 0, 2, true),
            (FeedRef::New(feed(2)), 0, 2, true),
            (FeedRef::Slot(0), 2, 1, false),
        ]
    );
}

#[test]
fn slots_are_a_ring_and_an_evicted_feed_is_named_by_key_again() {
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    let tf = |_| Timeframe::new();
    let first = chain(0, 2, 1, tf);
    cross(&mut enc, &mut dec, ReplMessage::Blocks(first[..1].to_vec()));
    for n in 1..MAX_SLOTS as u64 + 1 {
        let b = chain(10_000 + n, 1, 1, tf);
        cross(&mut enc, &mut dec, ReplMessage::Blocks(b));
    }
    // Feed 0's slot went to the last new feed: it is named by key and restarts.
    let (wire, _) = cross(&mut enc, &mut dec, ReplMessage::Blocks(first[1..].to_vec()));
    let WireMessage::Blocks(runs) = &wire else {
        panic!()
    };
    assert_eq!(runs[0].feed, FeedRef::New(feed(0)));
    assert!(runs[0].restart.is_some());
}

#[test]
fn hello_heads_and_want_cross_unchanged() {
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    let heads: super::Heads = [(feed(1), 3), (feed(2), 9)].into();
    for msg in [
        ReplMessage::Heads(heads),
        ReplMessage::Want {
            feed: feed(1),
            from: 2,
            to: 9,
        },
        ReplMessage::Blocks(vec![]),
    ] {
        cross(&mut enc, &mut dec, msg);
    }
}

fn run(feed: FeedRef, first_seq: u64, restart: Option<Restart>, n: usize) -> WireMessage {
    let block = CompactBlock {
        timeframe: vec![],
        payload: Payload::Mutation(vec![1]),
        signature: crate::types::Signature([0; 64]),
    };
    WireMessage::Blocks(vec![WireRun {
        feed,
        first_seq,
        restart,
        blocks: vec![block; n],
    }])
}

fn restart() -> Option<Restart> {
    Some(Restart {
        prev_hash: Hash::default(),
        base: Timeframe::new(),
    })
}

#[test]
fn every_bad_run_is_a_named_error() {
    let mut dec = WireDecoder::new();
    assert_eq!(
        dec.decode(run(FeedRef::Slot(3), 0, restart(), 1)),
        Err(WireError::UnknownSlot(3))
    );
    assert_eq!(
        dec.decode(run(FeedRef::New(feed(1)), 0, None, 1)),
        Err(WireError::NoTail(feed(1).short()))
    );
    assert_eq!(
        dec.decode(run(FeedRef::New(feed(1)), 0, restart(), 0)),
        Err(WireError::EmptyRun)
    );
    // Slot 0 now holds feed 1 at next seq 2.
    assert!(dec
        .decode(run(FeedRef::New(feed(1)), 0, restart(), 2))
        .is_ok());
    assert_eq!(
        dec.decode(run(FeedRef::Slot(0), 5, None, 1)),
        Err(WireError::NotContinuous {
            feed: feed(1).short(),
            expected: 2,
            got: 5
        })
    );
    let mut bad = run(FeedRef::Slot(0), 2, None, 1);
    if let WireMessage::Blocks(runs) = &mut bad {
        runs[0].blocks[0].timeframe = vec![TimeframeChange::Set { at: 0, seq: 1 }];
    }
    assert_eq!(dec.decode(bad), Err(WireError::BadPosition(0)));
    assert_eq!(
        dec.decode(run(FeedRef::New(feed(2)), u64::MAX, restart(), 2)),
        Err(WireError::SeqOverflow)
    );
}

fn timeframe_strategy() -> impl Strategy<Value = Timeframe> {
    proptest::collection::btree_map(0u8..12, 0u64..1000, 0..8).prop_map(|m| {
        let mut tf = Timeframe::new();
        for (k, v) in m {
            tf.set(PublicKey::from_bytes([k; 32]), v);
        }
        tf
    })
}

proptest! {
    #[test]
    fn a_timeframe_is_rebuilt_exactly_from_its_change(
        base in timeframe_strategy(),
        next in timeframe_strategy(),
    ) {
        let mut enc = WireEncoder::new();
        let mut dec = WireDecoder::new();
        // Two blocks of one feed: the second's timeframe crosses as a change from the first.
        let key = key_pair(1);
        let b0 = Block::sign(&key, 0, Hash::default(), base, Payload::Mutation(vec![])).unwrap();
        let b1 = Block::sign(&key, 1, b0.hash(), next, Payload::Mutation(vec![2])).unwrap();
        let blocks = vec![b0, b1];
        let wire = enc.encode(ReplMessage::Blocks(blocks.clone()));
        prop_assert_eq!(dec.decode(wire).unwrap(), ReplMessage::Blocks(blocks));
    }

    /// Any sequence of frames (feeds interleaved, gaps, repeats, restarts) decodes to
    /// exactly what was encoded.
    #[test]
    fn any_sequence_of_frames_round_trips(
        frames in proptest::collection::vec(
            proptest::collection::vec((0u64..4, 0u64..6), 0..6), 1..12),
    ) {
        let chains: Vec<Vec<Block>> =
            (0..4).map(|n| chain(n, 6, 3, |s| tf_of(n, s))).collect();
        let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
        for frame in frames {
            let blocks: Vec<Block> =
                frame.iter().map(|(f, s)| chains[*f as usize][*s as usize].clone()).collect();
            let wire = enc.encode(ReplMessage::Blocks(blocks.clone()));
            let bytes = encode(&wire).unwrap();
            prop_assert_eq!(bytes.len(), encoded_len(&wire).unwrap());
            let back: WireMessage = decode(&bytes).unwrap();
            prop_assert_eq!(dec.decode(back).unwrap(), ReplMessage::Blocks(blocks));
        }
    }
}
