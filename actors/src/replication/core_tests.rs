//! Two `ReplicationCore`s wired back to back over in-memory feeds, the way quinn-proto tests
//! a `Pair`: whatever each side starts with and appends, both end holding every block.
//!
//! Every driver here checks on every frame that it fits the frame limit (and the block and
//! byte budgets of a `Blocks` frame), and that no block crosses the channel twice in the
//! same direction. The deterministic [`Pair`] counts frames exactly; the random schedule
//! (proptest) interleaves deliveries, reads, ingests and local appends the way the actors
//! may.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::feed::{Block, FeedLog, Payload, MAX_BLOCK_BYTES};
use crate::types::{encode, KeyPair, PublicKey, Timeframe, MAX_FRAME_BYTES};

/// Every feed's full contents, written by its owner: `(length, payload bytes)` per feed.
fn make_feeds(shape: &[(usize, usize)]) -> Vec<Vec<Block>> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &(n, size))| {
            let kp = KeyPair::generate(&mut ChaCha20Rng::seed_from_u64(i as u64));
            let mut log = FeedLog::new(kp.public());
            (0..n)
                .map(|j| {
                    let payload = Payload::Mutation(vec![j as u8; size.max(1)]);
                    let b = log.next_block(&kp, Timeframe::new(), payload).unwrap();
                    log.commit(&b);
                    b
                })
                .collect()
        })
        .collect()
}

/// One peer: its feeds, its core, and what it sent.
struct Side {
    feeds: BTreeMap<PublicKey, Vec<Block>>,
    core: ReplicationCore,
    /// Every block this side sent, to catch one sent twice.
    sent: BTreeSet<(PublicKey, u64)>,
}

impl Side {
    fn new(full: &[Vec<Block>], lens: &[usize]) -> Side {
        Side {
            feeds: full
                .iter()
                .zip(lens)
                .filter(|(_, &n)| n > 0)
                .map(|(f, &n)| (f[0].feed_key, f[..n.min(f.len())].to_vec()))
                .collect(),
            core: ReplicationCore::new(),
            sent: BTreeSet::new(),
        }
    }

    fn heads(&self) -> Heads {
        self.feeds
            .iter()
            .map(|(k, v)| (*k, v.len() as u64))
            .collect()
    }

    /// What the space actor answers to `ReadBlocks`: the range, at most
    /// `MAX_BLOCKS_BYTES` of it when `capped` (as `FeedActor` reads it), else all of it
    /// (the core must then cut the frame itself).
    fn read(&self, feed: &PublicKey, from: u64, to: u64, capped: bool) -> Vec<Block> {
        let mut total = 0;
        let mut out = Vec::new();
        for b in self.feeds.get(feed).into_iter().flatten() {
            if b.seq < from || b.seq >= to {
                continue;
            }
            total += b.encoded_len().unwrap();
            if capped && total > MAX_BLOCKS_BYTES && !out.is_empty() {
                break;
            }
            out.push(b.clone());
        }
        out
    }

    /// Stores what continues our feeds; the rest is ignored (as duplicates or gaps would be).
    fn ingest(&mut self, blocks: Vec<Block>) {
        for blk in blocks {
            let feed = self.feeds.entry(blk.feed_key).or_default();
            if blk.seq == feed.len() as u64 {
                feed.push(blk);
            }
        }
    }

    /// Checks a frame this side is about to send.
    fn check_frame(&mut self, msg: &ReplMessage) {
        assert!(
            // A fresh encoder: every run restarts, the largest form a frame can take.
            encode(&WireEncoder::new().encode(msg.clone()))
                .unwrap()
                .len()
                <= MAX_FRAME_BYTES,
            "frame too large"
        );
        if let ReplMessage::Blocks(blocks) = msg {
            assert!(!blocks.is_empty(), "empty Blocks frame");
            assert!(blocks.len() as u64 <= MAX_BATCH, "{} blocks", blocks.len());
            let bytes: usize = blocks.iter().map(|b| b.encoded_len().unwrap()).sum();
            assert!(
                bytes <= MAX_BLOCKS_BYTES || blocks.len() == 1,
                "{} blocks of {bytes} bytes in one frame",
                blocks.len()
            );
            for b in blocks {
                assert!(
                    self.sent.insert((b.feed_key, b.seq)),
                    "block {} of a feed sent twice",
                    b.seq
                );
            }
        }
    }
}

/// Frames that crossed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Frames {
    heads: usize,
    wants: usize,
    blocks: usize,
}

impl Frames {
    fn total(&self) -> usize {
        self.heads + self.wants + self.blocks
    }

    fn count(&mut self, msg: &ReplMessage) {
        match msg {
            ReplMessage::Heads(_) => self.heads += 1,
            ReplMessage::Want { .. } => self.wants += 1,
            ReplMessage::Blocks(_) => self.blocks += 1,
            ReplMessage::Hello { .. } => panic!("the core never sends Hello"),
            ReplMessage::Presence(_) => panic!("the core never sends presence"),
        }
    }
}

/// Two sides and what is in flight between them, run in a fixed order: every pending
/// input (reads and ingests complete at once) before the next frame is delivered.
struct Pair {
    a: Side,
    b: Side,
    wire: VecDeque<(bool, ReplMessage)>,
    pending: VecDeque<(bool, ReplInput)>,
    /// Timers set, fired (in order) only once nothing else is in flight.
    timers: VecDeque<(bool, ReplTimer)>,
    capped: bool,
}

impl Pair {
    fn new(full: &[Vec<Block>], a_len: &[usize], b_len: &[usize]) -> Pair {
        let a = Side::new(full, a_len);
        let b = Side::new(full, b_len);
        let mut pending = VecDeque::new();
        pending.push_back((true, ReplInput::Opened { local: a.heads() }));
        pending.push_back((false, ReplInput::Opened { local: b.heads() }));
        Pair {
            a,
            b,
            wire: VecDeque::new(),
            pending,
            timers: VecDeque::new(),
            capped: false,
        }
    }

    /// Appends `blocks` (the next ones of their feed) on one side, as a local write would.
    fn append(&mut self, to_a: bool, blocks: &[Block]) {
        let side = if to_a { &mut self.a } else { &mut self.b };
        side.ingest(blocks.to_vec());
        let heads = side.heads();
        self.pending.push_back((to_a, ReplInput::LocalHeads(heads)));
    }

    /// Runs until nothing is in flight; the frames that crossed.
    fn run(&mut self) -> Frames {
        let mut frames = Frames::default();
        loop {
            if let Some((to_a, input)) = self.pending.pop_front() {
                let capped = self.capped;
                let side = if to_a { &mut self.a } else { &mut self.b };
                for out in side.core.handle(input) {
                    match out {
                        ReplOutput::Send(m) => {
                            side.check_frame(&m);
                            self.wire.push_back((!to_a, m));
                        }
                        ReplOutput::ReadBlocks { feed, from, to } => {
                            let blocks = side.read(&feed, from, to, capped);
                            self.pending
                                .push_back((to_a, ReplInput::BlocksRead(blocks)));
                        }
                        ReplOutput::Ingest(blocks) => {
                            side.ingest(blocks);
                            self.pending
                                .push_back((to_a, ReplInput::LocalHeads(side.heads())));
                        }
                        ReplOutput::SetTimer { timer, .. } => self.timers.push_back((to_a, timer)),
                        ReplOutput::Close(reason) => panic!("channel closed: {reason}"),
                    }
                }
            } else if let Some((to_a, msg)) = self.wire.pop_front() {
                frames.count(&msg);
                assert!(frames.total() < 10_000, "no convergence");
                self.pending.push_back((to_a, ReplInput::Received(msg)));
            } else if let Some((to_a, timer)) = self.timers.pop_front() {
                self.pending.push_back((to_a, ReplInput::Timer(timer)));
            } else {
                return frames;
            }
        }
    }
}

#[test]
fn a_behind_peer_catches_up_in_batches() {
    let full = make_feeds(&[(600, 1), (3, 1)]);
    let mut pair = Pair::new(&full, &[600, 3], &[0, 1]);
    let frames = pair.run();
    assert_eq!(pair.a.heads(), pair.b.heads());
    assert_eq!(pair.b.feeds[&full[0][0].feed_key].len(), 600);
    // Heads both ways; B wants 0..256 of the long feed and 1..3 of the short one, and the
    // next 256 (then the last 88) as soon as each batch arrives; four answers. Nothing is
    // announced back: A holds everything B got.
    assert_eq!(
        frames,
        Frames {
            heads: 2,
            wants: 4,
            blocks: 4
        }
    );
}

#[test]
fn new_local_blocks_are_pushed_once_and_not_announced() {
    let full = make_feeds(&[(10, 1)]);
    let mut pair = Pair::new(&full, &[5], &[5]);
    assert_eq!(
        pair.run(),
        Frames {
            heads: 2,
            wants: 0,
            blocks: 0
        }
    );
    // A appends locally; its core learns through LocalHeads and pushes the five blocks in
    // one frame. No Heads goes ahead of them (B would want what is on its way), and B does
    // not echo its new length back (A knows it). Before this was fixed: Heads, Blocks,
    // Want, the same Blocks again, and B's Heads.
    pair.append(true, &full[0][5..]);
    assert_eq!(
        pair.run(),
        Frames {
            heads: 0,
            wants: 0,
            blocks: 1
        }
    );
    assert_eq!(pair.b.heads(), pair.a.heads());
    // One more write: one more frame.
    let kp = KeyPair::generate(&mut ChaCha20Rng::seed_from_u64(0));
    let mut log = FeedLog::restore(kp.public(), &full[0], false).unwrap();
    let next = log
        .next_block(&kp, Timeframe::new(), Payload::Mutation(vec![1]))
        .unwrap();
    log.commit(&next);
    pair.append(true, &[next]);
    assert_eq!(pair.run().total(), 1);
    assert_eq!(pair.b.heads(), pair.a.heads());
}

#[test]
fn a_push_overtaking_a_want_sends_nothing_twice() {
    let full = make_feeds(&[(10, 1)]);
    let feed = full[0][0].feed_key;
    let mut a = ReplicationCore::new();
    let five: Heads = [(feed, 5)].into();
    a.handle(ReplInput::Opened {
        local: five.clone(),
    });
    a.handle(ReplInput::Received(ReplMessage::Heads(five)));
    // A writes 5..10: pushed, not announced.
    let out = a.handle(ReplInput::LocalHeads([(feed, 10)].into()));
    assert_eq!(
        out,
        vec![ReplOutput::ReadBlocks {
            feed,
            from: 5,
            to: 10
        }]
    );
    // B had learnt of them elsewhere and wants them while the push is being read: no
    // second read.
    let out = a.handle(ReplInput::Received(ReplMessage::Want {
        feed,
        from: 5,
        to: 10,
    }));
    assert_eq!(out, vec![]);
    let out = a.handle(ReplInput::BlocksRead(full[0][5..10].to_vec()));
    assert_eq!(
        out,
        vec![ReplOutput::Send(ReplMessage::Blocks(
            full[0][5..10].to_vec()
        ))]
    );
    // A want that arrives after they were sent gets nothing either.
    let out = a.handle(ReplInput::Received(ReplMessage::Want {
        feed,
        from: 5,
        to: 10,
    }));
    assert_eq!(out, vec![]);
}

#[test]
fn blocks_being_ingested_are_not_wanted_again() {
    let full = make_feeds(&[(100, 1)]);
    let feed = full[0][0].feed_key;
    let mut b = ReplicationCore::new();
    b.handle(ReplInput::Opened {
        local: Heads::new(),
    });
    let out = b.handle(ReplInput::Received(ReplMessage::Heads([(feed, 40)].into())));
    assert_eq!(out, want_and_timer(feed, 0, 40));
    let out = b.handle(ReplInput::Received(ReplMessage::Blocks(
        full[0][..40].to_vec(),
    )));
    assert_eq!(out, vec![ReplOutput::Ingest(full[0][..40].to_vec())]);
    // The peer grows before our ingest is done: only what we have not received is wanted.
    let out = b.handle(ReplInput::Received(ReplMessage::Heads(
        [(feed, 100)].into(),
    )));
    assert_eq!(out, want_and_timer(feed, 40, 100));
    // Our ingest ends: nothing more to ask, nothing to announce (the peer holds it all).
    let out = b.handle(ReplInput::LocalHeads([(feed, 40)].into()));
    assert_eq!(out, vec![]);
}

#[test]
fn a_short_answer_is_wanted_again_from_where_it_stopped() {
    let full = make_feeds(&[(100, 1)]);
    let feed = full[0][0].feed_key;
    let mut b = ReplicationCore::new();
    b.handle(ReplInput::Opened {
        local: Heads::new(),
    });
    b.handle(ReplInput::Received(ReplMessage::Heads(
        [(feed, 100)].into(),
    )));
    let out = b.handle(ReplInput::Received(ReplMessage::Blocks(
        full[0][..30].to_vec(),
    )));
    let mut expected = vec![ReplOutput::Ingest(full[0][..30].to_vec())];
    expected.extend(want_and_timer(feed, 30, 100));
    assert_eq!(out, expected);
    // The rest arrives in one frame: the want is done, and nothing is asked again.
    let out = b.handle(ReplInput::Received(ReplMessage::Blocks(
        full[0][30..].to_vec(),
    )));
    assert_eq!(out, vec![ReplOutput::Ingest(full[0][30..].to_vec())]);
    let out = b.handle(ReplInput::LocalHeads([(feed, 100)].into()));
    assert_eq!(out, vec![]);
}

#[test]
fn answers_are_cut_at_the_byte_budget_and_the_rest_follows() {
    // 40 blocks of about 300 KB: three fit in one frame's budget, four do not.
    let full = make_feeds(&[(40, 300_000)]);
    let size = full[0][0].encoded_len().unwrap();
    assert!(3 * size <= MAX_BLOCKS_BYTES && 4 * size > MAX_BLOCKS_BYTES);
    for capped in [false, true] {
        let mut pair = Pair::new(&full, &[40], &[0]);
        pair.capped = capped;
        let frames = pair.run();
        assert_eq!(pair.b.heads(), pair.a.heads(), "capped reads: {capped}");
        // A's Heads (B holds nothing to announce), B's want of all 40, and 14 answers of
        // at most three blocks that A sends one after the other. Every short answer makes
        // B want the rest from where it stopped (13 wants), which A, having sent it
        // already, does not answer again.
        assert_eq!(
            frames,
            Frames {
                heads: 1,
                wants: 14,
                blocks: 14
            },
            "capped reads: {capped}"
        );
    }
}

#[test]
fn a_block_larger_than_the_budget_travels_alone() {
    let full = make_feeds(&[(3, MAX_BLOCKS_BYTES + 1000), (2, 10)]);
    let big = full[0][0].encoded_len().unwrap();
    assert!(big > MAX_BLOCKS_BYTES && big <= MAX_BLOCK_BYTES);
    let mut pair = Pair::new(&full, &[3, 2], &[0, 0]);
    let frames = pair.run();
    assert_eq!(pair.b.heads(), pair.a.heads());
    assert_eq!(frames.blocks, 4, "{frames:?}");
    // fit_frame keeps the first block whatever its size, and only it.
    let frame = fit_frame(full[0].clone(), full[0][0].feed_key, 0, 3);
    assert_eq!(frame, full[0][..1].to_vec());
    // ...and only the consecutive blocks of the feed asked for.
    let frame = fit_frame(full[1].clone(), full[1][0].feed_key, 1, 2);
    assert_eq!(frame, vec![]);
    let frame = fit_frame(full[1][1..].to_vec(), full[0][0].feed_key, 1, 2);
    assert_eq!(frame, vec![]);
}

#[test]
fn a_failed_read_of_a_push_is_announced_instead() {
    let full = make_feeds(&[(10, 1)]);
    let feed = full[0][0].feed_key;
    let mut a = ReplicationCore::new();
    let five: Heads = [(feed, 5)].into();
    a.handle(ReplInput::Opened {
        local: five.clone(),
    });
    a.handle(ReplInput::Received(ReplMessage::Heads(five)));
    a.handle(ReplInput::LocalHeads([(feed, 10)].into()));
    // The opening Heads went out just now: the announcement waits for the debounce.
    let out = a.handle(ReplInput::BlocksRead(vec![]));
    assert_eq!(out, vec![]);
    let out = a.handle(ReplInput::Timer(ReplTimer::Heads));
    assert_eq!(
        out,
        vec![
            ReplOutput::Send(ReplMessage::Heads([(feed, 10)].into())),
            ReplOutput::SetTimer {
                after: HEADS_DEBOUNCE,
                timer: ReplTimer::Heads
            }
        ]
    );
}

#[test]
fn a_serving_only_core_serves_up_to_its_limits_and_takes_and_asks_for_nothing() {
    // Feed 0 is served whole (a control feed), feed 1 only up to 2 blocks (the causal past
    // of the credentials), feed 3 not at all; feed 2 is the peer's own.
    let full = make_feeds(&[(3, 1), (5, 1), (4, 1), (2, 1)]);
    let [control, data, theirs, other] = [0, 1, 2, 3].map(|i| full[i][0].feed_key);
    let limits = Heads::from([(control, u64::MAX), (data, 2)]);
    let mut pair = Pair::new(&full, &[3, 5, 0, 2], &[0, 0, 4, 0]);
    pair.a.core = ReplicationCore::serving_only(limits.clone());
    // A announces what it may serve; B wants it and gets it; A asks for nothing.
    let frames = pair.run();
    assert_eq!(
        frames,
        Frames {
            heads: 2,
            wants: 2,
            blocks: 2
        }
    );
    assert_eq!(
        pair.b.heads(),
        Heads::from([(control, 3), (data, 2), (theirs, 4)])
    );
    assert_eq!(
        pair.a.heads(),
        Heads::from([(control, 3), (data, 5), (other, 2)])
    );

    let mut a = ReplicationCore::serving_only(limits);
    let out = a.handle(ReplInput::Opened {
        local: [(control, 3), (data, 5), (other, 2)].into(),
    });
    assert_eq!(
        out[0],
        ReplOutput::Send(ReplMessage::Heads([(control, 3), (data, 2)].into()))
    );
    a.handle(ReplInput::Received(ReplMessage::Heads(
        [(control, 3), (data, 2), (theirs, 4)].into(),
    )));
    // New blocks past a limit are neither pushed nor announced.
    assert_eq!(
        a.handle(ReplInput::LocalHeads([(data, 6), (other, 3)].into())),
        vec![]
    );
    // A peer that wants them anyway is served nothing.
    for (feed, to) in [(data, 5), (other, 2)] {
        let want = ReplMessage::Want { feed, from: 0, to };
        assert_eq!(a.handle(ReplInput::Received(want)), vec![]);
    }
    // Blocks it sends are dropped, not ingested.
    let blocks = ReplMessage::Blocks(full[2].clone());
    assert_eq!(a.handle(ReplInput::Received(blocks)), vec![]);
    // The control feed still grows towards it: pushed.
    let out = a.handle(ReplInput::LocalHeads([(control, 4)].into()));
    assert_eq!(
        out,
        vec![ReplOutput::ReadBlocks {
            feed: control,
            from: 3,
            to: 4
        }]
    );
}

/// A `Want` and the timer that watches it.
fn want_and_timer(feed: PublicKey, from: u64, to: u64) -> Vec<ReplOutput> {
    vec![
        ReplOutput::Send(ReplMessage::Want { feed, from, to }),
        ReplOutput::SetTimer {
            after: WANT_TIMEOUT,
            timer: ReplTimer::Want {
                feed,
                from,
                try_no: 1,
            },
        },
    ]
}

#[test]
fn an_unanswered_want_is_sent_again_then_its_feed_cools_down_and_others_go_on() {
    let full = make_feeds(&[(10, 1), (10, 1)]);
    let (f1, f2) = (full[0][0].feed_key, full[1][0].feed_key);
    let mut b = ReplicationCore::new();
    b.handle(ReplInput::Opened {
        local: Heads::new(),
    });
    let out = b.handle(ReplInput::Received(ReplMessage::Heads(
        [(f1, 10), (f2, 10)].into(),
    )));
    // Wants go out in key order.
    let mut expected = want_and_timer(f1.min(f2), 0, 10);
    expected.extend(want_and_timer(f1.max(f2), 0, 10));
    assert_eq!(out, expected);
    // f2 is served; f1 never is (the peer advertises what it does not serve).
    b.handle(ReplInput::Received(ReplMessage::Blocks(full[1].to_vec())));
    for try_no in 1..=WANT_RETRIES {
        let out = b.handle(ReplInput::Timer(ReplTimer::Want {
            feed: f1,
            from: 0,
            try_no,
        }));
        assert_eq!(
            out,
            vec![
                ReplOutput::Send(ReplMessage::Want {
                    feed: f1,
                    from: 0,
                    to: 10
                }),
                ReplOutput::SetTimer {
                    after: WANT_TIMEOUT,
                    timer: ReplTimer::Want {
                        feed: f1,
                        from: 0,
                        try_no: try_no + 1
                    }
                }
            ],
            "try {try_no}"
        );
    }
    // A stale timer (an earlier try) does nothing.
    assert_eq!(
        b.handle(ReplInput::Timer(ReplTimer::Want {
            feed: f1,
            from: 0,
            try_no: 1
        })),
        vec![]
    );
    // The last try went unanswered too: f1 cools down, and is not asked for meanwhile.
    let out = b.handle(ReplInput::Timer(ReplTimer::Want {
        feed: f1,
        from: 0,
        try_no: WANT_RETRIES + 1,
    }));
    assert_eq!(
        out,
        vec![ReplOutput::SetTimer {
            after: WANT_COOLDOWN,
            timer: ReplTimer::Cooldown(f1)
        }]
    );
    let out = b.handle(ReplInput::Received(ReplMessage::Heads([(f1, 10)].into())));
    assert_eq!(out, vec![], "no want while cooling down");
    // After the cool-down it is asked for again.
    let out = b.handle(ReplInput::Timer(ReplTimer::Cooldown(f1)));
    assert_eq!(out, want_and_timer(f1, 0, 10));
}

#[test]
fn heads_are_debounced_and_carry_every_feed_that_grew_meanwhile() {
    let full = make_feeds(&[(10, 1), (10, 1), (10, 1)]);
    let feeds: Vec<PublicKey> = full.iter().map(|f| f[0].feed_key).collect();
    let mut a = ReplicationCore::new();
    let out = a.handle(ReplInput::Opened {
        local: [(feeds[0], 1)].into(),
    });
    assert_eq!(
        out,
        vec![
            ReplOutput::Send(ReplMessage::Heads([(feeds[0], 1)].into())),
            ReplOutput::SetTimer {
                after: HEADS_DEBOUNCE,
                timer: ReplTimer::Heads
            }
        ]
    );
    // Three changes within the debounce: nothing goes out (the peer holds none of these
    // feeds, so nothing is pushed either).
    for (i, feed) in feeds.iter().enumerate() {
        let out = a.handle(ReplInput::LocalHeads([(*feed, 2 + i as u64)].into()));
        assert_eq!(out, vec![]);
    }
    // A partial map merges: a shorter length changes nothing.
    assert_eq!(
        a.handle(ReplInput::LocalHeads([(feeds[0], 1)].into())),
        vec![]
    );
    let out = a.handle(ReplInput::Timer(ReplTimer::Heads));
    assert_eq!(
        out,
        vec![
            ReplOutput::Send(ReplMessage::Heads(
                [(feeds[0], 2), (feeds[1], 3), (feeds[2], 4)].into()
            )),
            ReplOutput::SetTimer {
                after: HEADS_DEBOUNCE,
                timer: ReplTimer::Heads
            }
        ]
    );
    // Nothing grew since: the next timer sends nothing and sets no new one.
    assert_eq!(a.handle(ReplInput::Timer(ReplTimer::Heads)), vec![]);
}

#[test]
fn protocol_violations_close_the_channel() {
    let mut core = ReplicationCore::new();
    let out = core.handle(ReplInput::Received(ReplMessage::Heads(Heads::new())));
    assert!(matches!(out[..], [ReplOutput::Close(_)]));
    let feed = PublicKey::from_bytes([1; 32]);
    let mut core = ReplicationCore::new();
    core.handle(ReplInput::Opened {
        local: [(feed, 1000)].into(),
    });
    let out = core.handle(ReplInput::Received(ReplMessage::Want {
        feed,
        from: 3,
        to: 3,
    }));
    assert!(matches!(out[..], [ReplOutput::Close(_)]));
    let out = core.handle(ReplInput::Received(ReplMessage::Blocks(vec![])));
    assert_eq!(out, vec![]);
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
    // A want of what we do not hold is not read at all.
    let other = PublicKey::from_bytes([2; 32]);
    core.handle(ReplInput::BlocksRead(vec![]));
    let out = core.handle(ReplInput::Received(ReplMessage::Want {
        feed: other,
        from: 0,
        to: 10,
    }));
    assert_eq!(out, vec![]);
}

/// The feeds of the random schedules, built once: A's own feed (small blocks), a third
/// party's (blocks of 200 KB, five to a frame) and B's own (blocks over the byte budget).
fn schedule_feeds() -> &'static [Vec<Block>] {
    static FEEDS: OnceLock<Vec<Vec<Block>>> = OnceLock::new();
    FEEDS.get_or_init(|| make_feeds(&[(40, 10), (30, 200_000), (6, MAX_BLOCKS_BYTES + 10)]))
}

/// One side of a random schedule: its inbox (frames and head changes, in the order the
/// actor would handle them), its read in progress, the ingest it waits for.
struct Actor {
    side: Side,
    inbox: VecDeque<ReplInput>,
    /// Timers set; any may come due at any moment.
    timers: VecDeque<ReplTimer>,
    read: Option<(PublicKey, u64, u64)>,
    ingesting: Option<Vec<Block>>,
    /// Which feed this side writes, and how far it has written.
    own: usize,
}

/// Runs one random interleaving to the end; panics on a broken rule. Returns the number of
/// frames delivered and both sides' heads at the end.
fn random_schedule(seed: u64, a_len: &[usize], b_len: &[usize]) -> (usize, [Heads; 2]) {
    let full = schedule_feeds();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut actors = [
        Actor {
            side: Side::new(full, a_len),
            inbox: VecDeque::new(),
            timers: VecDeque::new(),
            read: None,
            ingesting: None,
            own: 0,
        },
        Actor {
            side: Side::new(full, b_len),
            inbox: VecDeque::new(),
            timers: VecDeque::new(),
            read: None,
            ingesting: None,
            own: 2,
        },
    ];
    for a in &mut actors {
        let local = a.side.heads();
        a.inbox.push_back(ReplInput::Opened { local });
    }
    // wire[i]: frames on their way to side i.
    let mut wire: [VecDeque<ReplMessage>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut frames = 0;
    loop {
        // Every action that may happen now: (side, kind).
        let mut can = Vec::new();
        for (i, a) in actors.iter().enumerate() {
            if !wire[i].is_empty() {
                can.push((i, 0));
            }
            if a.ingesting.is_none() {
                if !a.inbox.is_empty() {
                    can.push((i, 1));
                }
                if a.read.is_some() {
                    can.push((i, 2));
                }
            } else {
                can.push((i, 3));
            }
            let written = a
                .side
                .feeds
                .get(&full[a.own][0].feed_key)
                .map_or(0, Vec::len);
            if written < full[a.own].len() {
                can.push((i, 4));
            }
            if !a.timers.is_empty() && a.ingesting.is_none() {
                can.push((i, 5));
            }
        }
        if can.is_empty() {
            return (frames, [actors[0].side.heads(), actors[1].side.heads()]);
        }
        let (i, what) = can[rng.next_u32() as usize % can.len()];
        let inputs = match what {
            0 => {
                let msg = wire[i].pop_front().unwrap();
                actors[i].inbox.push_back(ReplInput::Received(msg));
                frames += 1;
                assert!(frames < 20_000, "no convergence");
                continue;
            }
            1 => vec![actors[i].inbox.pop_front().unwrap()],
            5 => {
                let k = rng.next_u32() as usize % actors[i].timers.len();
                let timer = actors[i].timers.remove(k).unwrap();
                vec![ReplInput::Timer(timer)]
            }
            2 => {
                let (feed, from, to) = actors[i].read.take().unwrap();
                let capped = rng.next_u32() % 2 == 0;
                vec![ReplInput::BlocksRead(
                    actors[i].side.read(&feed, from, to, capped),
                )]
            }
            3 => {
                let blocks = actors[i].ingesting.take().unwrap();
                actors[i].side.ingest(blocks);
                let heads = actors[i].side.heads();
                actors[i].inbox.push_back(ReplInput::LocalHeads(heads));
                continue;
            }
            _ => {
                let own = &full[actors[i].own];
                let n = actors[i]
                    .side
                    .feeds
                    .get(&own[0].feed_key)
                    .map_or(0, Vec::len);
                actors[i].side.ingest(vec![own[n].clone()]);
                let heads = actors[i].side.heads();
                actors[i].inbox.push_back(ReplInput::LocalHeads(heads));
                continue;
            }
        };
        for input in inputs {
            let a = &mut actors[i];
            for out in a.side.core.handle(input) {
                match out {
                    ReplOutput::Send(m) => {
                        a.side.check_frame(&m);
                        wire[1 - i].push_back(m);
                    }
                    ReplOutput::ReadBlocks { feed, from, to } => {
                        assert!(a.read.is_none(), "a second read while one is in progress");
                        a.read = Some((feed, from, to));
                    }
                    ReplOutput::Ingest(blocks) => {
                        assert!(a.ingesting.is_none());
                        a.ingesting = Some(blocks);
                    }
                    ReplOutput::SetTimer { timer, .. } => a.timers.push_back(timer),
                    ReplOutput::Close(reason) => panic!("channel closed: {reason}"),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Whatever prefixes of three feeds each side starts with, both end with everything,
    /// in at most a few frames per batch each way.
    #[test]
    fn two_sides_converge(a_len in proptest::collection::vec(0usize..40, 3), b_len in proptest::collection::vec(0usize..40, 3)) {
        let full = make_feeds(&[(40, 1), (40, 1), (40, 1)]);
        let mut pair = Pair::new(&full, &a_len, &b_len);
        let frames = pair.run();
        let want: Heads = full
            .iter()
            .zip(a_len.iter().zip(&b_len))
            .filter(|(_, (x, y))| **x.max(y) > 0)
            .map(|(f, (x, y))| (f[0].feed_key, *x.max(y) as u64))
            .collect();
        prop_assert_eq!(pair.a.heads(), want.clone());
        prop_assert_eq!(pair.b.heads(), want);
        // Each side's Heads, then per feed at most one want and one answer (40 < MAX_BATCH).
        prop_assert!(frames.heads <= 2 && frames.wants <= 3 && frames.blocks <= 3, "{:?}", frames);
    }

    /// Any interleaving of deliveries, reads, ingests and local writes on both sides ends
    /// with both holding every block, none sent twice, no frame over the limit, one read
    /// at a time.
    #[test]
    fn random_schedules_converge(
        seed in any::<u64>(),
        a_len in proptest::collection::vec(0usize..40, 3),
        b_len in proptest::collection::vec(0usize..40, 3),
    ) {
        let full = schedule_feeds();
        // A writes feed 0 and B feed 2: nobody holds more of a feed than its writer.
        let clamp = |lens: &[usize]| -> Vec<usize> {
            lens.iter().zip(full).map(|(&n, f)| n.min(f.len())).collect()
        };
        let mut a_len = clamp(&a_len);
        let mut b_len = clamp(&b_len);
        b_len[0] = b_len[0].min(a_len[0]);
        a_len[2] = a_len[2].min(b_len[2]);
        let (frames, [a, b]) = random_schedule(seed, &a_len, &b_len);
        // Both write their own feed to the end; the third party's is the longer prefix.
        let want: Heads = full
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let n = if i == 1 { a_len[1].max(b_len[1]) } else { f.len() };
                (f[0].feed_key, n as u64)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        prop_assert_eq!(&a, &want, "seed {}", seed);
        prop_assert_eq!(&b, &want, "seed {}", seed);
        // Own feeds start with a local write at the latest, so something always crosses.
        prop_assert!(frames > 0);
    }
}
