//! The replication channel as it crosses its stream: [`ReplMessage`]s in wire form, with
//! blocks in compact form.
//!
//! Contract:
//! - One [`WireEncoder`] per sending direction of a stream and one [`WireDecoder`] per
//!   receiving direction. Frames are encoded and decoded in stream order (the stream is
//!   ordered and reliable), so both ends hold the same [`Tails`] at every frame.
//! - `decode(encode(m)) == m` for every message, block fields included: the compact form
//!   drops only what the receiver can recompute, and every block comes out whole, to be
//!   verified (signature, chain, verdict) exactly as before. A peer that sends a compact
//!   block whose reconstruction is wrong merely produces a block whose signature fails.
//! - Compact block: a `Blocks` frame is a list of *runs*, consecutive blocks of one feed.
//!   A run names its feed by a slot number once this stream has carried that feed
//!   ([`MAX_SLOTS`] slots, reused in a ring), carries no seq but the first, and no
//!   `prev_hash` but at a *restart*: a run that continues the last block of its feed sent
//!   on this stream omits it altogether. Each block's timeframe is sent as its change
//!   against the previous block's of the run (or the last block of the feed on this
//!   stream): entries by their position in that timeframe, new feeds by key.
//! - Decoding is total: a slot never assigned, a continuation without a tail, a position
//!   outside the base timeframe, a seq overflow give a [`WireError`] (the channel is then
//!   closed like for a malformed frame), never a panic.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Heads, ReplMessage};
use crate::credentials::Credential;
use crate::feed::{Block, Payload};
use crate::presence::PresenceFrame;
use crate::signal::Topic;
use crate::types::{Hash, PublicKey, Signature, Timeframe};

/// Feeds a stream direction remembers (their last block sent): a ring, so the memory per
/// channel is bounded whatever the number of feeds.
pub const MAX_SLOTS: usize = 1024;

/// One frame on a replication stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireMessage {
    Hello {
        topic: Topic,
        device_auth: Box<Credential>,
    },
    Heads(Heads),
    Want {
        feed: PublicKey,
        from: u64,
        to: u64,
    },
    Blocks(Vec<WireRun>),
    /// Last, so that the variants before it keep their encoding.
    Presence(PresenceFrame),
}

impl WireMessage {
    /// The frame's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            WireMessage::Hello { .. } => "Hello",
            WireMessage::Heads(_) => "Heads",
            WireMessage::Want { .. } => "Want",
            WireMessage::Blocks(_) => "Blocks",
            WireMessage::Presence(_) => "Presence",
        }
    }
}

/// Consecutive blocks of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRun {
    pub feed: FeedRef,
    pub first_seq: u64,
    /// Present unless the run continues the last block of its feed sent on this stream.
    pub restart: Option<Restart>,
    pub blocks: Vec<CompactBlock>,
}

/// A feed: by key the first time (it takes the next slot), by slot after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedRef {
    New(PublicKey),
    Slot(u16),
}

/// Where a run starts when the receiver cannot know: the first block's `prev_hash`, and the
/// timeframe its change is taken against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub prev_hash: Hash,
    pub base: Timeframe,
}

/// A block without its feed key, seq and `prev_hash`, its timeframe as a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    pub timeframe: Vec<TimeframeChange>,
    pub payload: Payload,
    pub signature: Signature,
}

/// One difference between a block's timeframe and the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeframeChange {
    /// The entry at this position of the base timeframe (in key order) has this seq.
    Set { at: u32, seq: u64 },
    /// A feed the base does not have.
    Add { feed: PublicKey, seq: u64 },
    /// The entry at this position of the base is gone.
    Drop { at: u32 },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("blocks name slot {0}, which this stream never assigned")]
    UnknownSlot(u16),
    #[error("a run of feed {0} continues a feed this stream has not carried")]
    NoTail(String),
    #[error(
        "a run of feed {feed} continues at seq {got}, but its last block was seq {expected} - 1"
    )]
    NotContinuous {
        feed: String,
        expected: u64,
        got: u64,
    },
    #[error("a timeframe change names position {0}, outside its base")]
    BadPosition(u32),
    #[error("an empty run")]
    EmptyRun,
    #[error("seq overflows")]
    SeqOverflow,
}

/// The last block of a feed sent on a stream direction.
#[derive(Debug, Clone)]
struct Tail {
    feed: PublicKey,
    next_seq: u64,
    hash: Hash,
    timeframe: Timeframe,
}

/// What one stream direction remembers, the same on both ends.
#[derive(Debug, Default)]
pub struct Tails {
    slots: Vec<Tail>,
    /// The next slot a new feed takes (a ring over `MAX_SLOTS`).
    next: usize,
    by_feed: std::collections::BTreeMap<PublicKey, u16>,
}

impl Tails {
    fn slot_of(&self, feed: &PublicKey) -> Option<u16> {
        self.by_feed.get(feed).copied()
    }

    /// Gives `feed` the next slot (evicting the feed that held it), with `tail` in it.
    fn assign(&mut self, tail: Tail) -> u16 {
        let slot = self.next;
        self.next = (self.next + 1) % MAX_SLOTS;
        if let Some(old) = self.slots.get(slot) {
            self.by_feed.remove(&old.feed);
        }
        self.by_feed.insert(tail.feed, slot as u16);
        if slot < self.slots.len() {
            self.slots[slot] = tail;
        } else {
            self.slots.push(tail);
        }
        slot as u16
    }

    fn get(&self, slot: u16) -> Option<&Tail> {
        self.slots.get(slot as usize)
    }

    fn set(&mut self, slot: u16, tail: Tail) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = tail;
        }
    }
}

/// The change from `base` to `next`.
fn diff(base: &Timeframe, next: &Timeframe) -> Vec<TimeframeChange> {
    let mut changes = Vec::new();
    let mut theirs = next.iter().peekable();
    for (at, (feed, seq)) in base.iter().enumerate() {
        let at = at as u32;
        // Keys of `next` below this one are new.
        while let Some((f, s)) = theirs.next_if(|(f, _)| *f < feed) {
            changes.push(TimeframeChange::Add { feed: *f, seq: *s });
        }
        match theirs.next_if(|(f, _)| *f == feed) {
            Some((_, s)) if s != seq => changes.push(TimeframeChange::Set { at, seq: *s }),
            Some(_) => {}
            None => changes.push(TimeframeChange::Drop { at }),
        }
    }
    for (f, s) in theirs {
        changes.push(TimeframeChange::Add { feed: *f, seq: *s });
    }
    changes
}

/// `base` with `changes` applied.
fn apply(base: &Timeframe, changes: &[TimeframeChange]) -> Result<Timeframe, WireError> {
    if changes.is_empty() {
        return Ok(base.clone());
    }
    let keys: Vec<PublicKey> = base.iter().map(|(f, _)| *f).collect();
    let key_at = |at: u32| {
        keys.get(at as usize)
            .copied()
            .ok_or(WireError::BadPosition(at))
    };
    let mut out = base.clone();
    for change in changes {
        match *change {
            TimeframeChange::Set { at, seq } => out.set(key_at(at)?, seq),
            TimeframeChange::Add { feed, seq } => out.set(feed, seq),
            TimeframeChange::Drop { at } => out.remove(&key_at(at)?),
        }
    }
    Ok(out)
}

/// Turns the messages of one sending direction into wire form.
#[derive(Debug, Default)]
pub struct WireEncoder {
    tails: Tails,
}

impl WireEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encode(&mut self, msg: ReplMessage) -> WireMessage {
        match msg {
            ReplMessage::Hello { topic, device_auth } => WireMessage::Hello { topic, device_auth },
            ReplMessage::Heads(h) => WireMessage::Heads(h),
            ReplMessage::Want { feed, from, to } => WireMessage::Want { feed, from, to },
            ReplMessage::Blocks(blocks) => WireMessage::Blocks(self.runs(blocks)),
            ReplMessage::Presence(p) => WireMessage::Presence(p),
        }
    }

    fn runs(&mut self, blocks: Vec<Block>) -> Vec<WireRun> {
        let mut runs = Vec::new();
        let mut run: Vec<Block> = Vec::new();
        for b in blocks {
            let continues = run
                .last()
                .is_some_and(|l| l.feed_key == b.feed_key && l.seq.checked_add(1) == Some(b.seq));
            if !continues && !run.is_empty() {
                runs.push(self.run(std::mem::take(&mut run)));
            }
            run.push(b);
        }
        if !run.is_empty() {
            runs.push(self.run(run));
        }
        runs
    }

    /// One run of consecutive blocks of one feed (`blocks` is not empty).
    fn run(&mut self, blocks: Vec<Block>) -> WireRun {
        let first = &blocks[0];
        let (feed, first_seq, first_prev) = (first.feed_key, first.seq, first.prev_hash);
        let slot = self.tails.slot_of(&feed);
        let tail = slot.and_then(|s| self.tails.get(s));
        let continues = tail.is_some_and(|t| t.next_seq == first_seq && t.hash == first_prev);
        let (restart, mut base) = match tail {
            Some(t) if continues => (None, t.timeframe.clone()),
            _ => (
                Some(Restart {
                    prev_hash: first_prev,
                    base: first.timeframe.clone(),
                }),
                first.timeframe.clone(),
            ),
        };
        // The tail after this run: its last block (hashed once per run).
        let last = &blocks[blocks.len() - 1];
        let tail = Tail {
            feed,
            next_seq: last.seq.saturating_add(1),
            hash: last.hash(),
            timeframe: last.timeframe.clone(),
        };
        let feed_ref = match slot {
            Some(s) => {
                self.tails.set(s, tail);
                FeedRef::Slot(s)
            }
            None => {
                self.tails.assign(tail);
                FeedRef::New(feed)
            }
        };
        let blocks = blocks
            .into_iter()
            .map(|b| {
                let timeframe = diff(&base, &b.timeframe);
                base = b.timeframe;
                CompactBlock {
                    timeframe,
                    payload: b.payload,
                    signature: b.signature,
                }
            })
            .collect();
        WireRun {
            feed: feed_ref,
            first_seq,
            restart,
            blocks,
        }
    }
}

/// Turns the frames of one receiving direction back into messages.
#[derive(Debug, Default)]
pub struct WireDecoder {
    tails: Tails,
}

impl WireDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn decode(&mut self, msg: WireMessage) -> Result<ReplMessage, WireError> {
        Ok(match msg {
            WireMessage::Hello { topic, device_auth } => ReplMessage::Hello { topic, device_auth },
            WireMessage::Heads(h) => ReplMessage::Heads(h),
            WireMessage::Want { feed, from, to } => ReplMessage::Want { feed, from, to },
            WireMessage::Blocks(runs) => {
                let mut blocks = Vec::with_capacity(runs.iter().map(|r| r.blocks.len()).sum());
                for run in runs {
                    self.run(run, &mut blocks)?;
                }
                ReplMessage::Blocks(blocks)
            }
            WireMessage::Presence(p) => ReplMessage::Presence(p),
        })
    }

    fn run(&mut self, run: WireRun, out: &mut Vec<Block>) -> Result<(), WireError> {
        if run.blocks.is_empty() {
            return Err(WireError::EmptyRun);
        }
        let (feed, slot) = match run.feed {
            FeedRef::New(feed) => (feed, None),
            FeedRef::Slot(s) => {
                let tail = self.tails.get(s).ok_or(WireError::UnknownSlot(s))?;
                (tail.feed, Some(s))
            }
        };
        let (mut prev_hash, mut base) = match (&run.restart, slot.and_then(|s| self.tails.get(s))) {
            (Some(r), _) => (r.prev_hash, r.base.clone()),
            (None, Some(t)) if t.next_seq == run.first_seq => (t.hash, t.timeframe.clone()),
            (None, Some(t)) => {
                return Err(WireError::NotContinuous {
                    feed: feed.short(),
                    expected: t.next_seq,
                    got: run.first_seq,
                })
            }
            (None, None) => return Err(WireError::NoTail(feed.short())),
        };
        let mut seq = run.first_seq;
        let count = run.blocks.len();
        for (i, c) in run.blocks.into_iter().enumerate() {
            let timeframe = apply(&base, &c.timeframe)?;
            let block = Block {
                feed_key: feed,
                seq,
                prev_hash,
                timeframe,
                payload: c.payload,
                signature: c.signature,
            };
            prev_hash = block.hash();
            base = block.timeframe.clone();
            out.push(block);
            if i + 1 < count {
                seq = seq.checked_add(1).ok_or(WireError::SeqOverflow)?;
            }
        }
        let tail = Tail {
            feed,
            next_seq: seq.checked_add(1).ok_or(WireError::SeqOverflow)?,
            hash: prev_hash,
            timeframe: base,
        };
        match slot {
            Some(s) => self.tails.set(s, tail),
            None => {
                self.tails.assign(tail);
            }
        }
        Ok(())
    }
}
