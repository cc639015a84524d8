//! `ReplicationCore`: what to ask for, what to serve and what to push on one channel.
//!
//! Inputs: `Opened` (after Hellos), `Received(msg)`, `LocalHeads(heads)` (feeds of the space
//! that grew, with their new lengths: a partial map, merged by maximum), `BlocksRead(blocks)`
//! (the answer to the last `ReadBlocks` output), `Timer(timer)` (a `SetTimer` came due).
//! Outputs: `Send(msg)`, `ReadBlocks { feed, from, to }`, `Ingest(blocks)`, `Close(reason)`,
//! `SetTimer { after, timer }`. Call order per input: `handle`, then carry out every output
//! in order, feed the answer of every `ReadBlocks` back as `BlocksRead` (empty if the read
//! failed), and every timer back as `Timer` once it is due. At most one read is outstanding
//! at a time. The core reads no clock: time reaches it only as timers coming due.
//!
//! Timers: a want unanswered after [`WANT_TIMEOUT`] is sent again, [`WANT_RETRIES`] times;
//! then its feed cools down for [`WANT_COOLDOWN`] (no want for it, so its slot goes to other
//! feeds) and is asked for again after: a peer that advertises blocks it does not serve
//! cannot stall the channel. `Heads` are debounced: the first change is announced at once,
//! later ones at most once per [`HEADS_DEBOUNCE`], carrying every feed that grew meanwhile
//! (pushed blocks are never held back). Per local change, the work is in the feeds that
//! changed, not in all feeds of the space.
//!
//! Frames are bounded in bytes as well as in blocks: a `Blocks` frame holds at most
//! [`MAX_BATCH`] blocks and at most [`MAX_BLOCKS_BYTES`] of encoded blocks, or a single
//! block that is larger than that by itself (a block never exceeds
//! [`crate::feed::MAX_BLOCK_BYTES`]), so no frame exceeds `MAX_FRAME_BYTES`.
//!
//! Asking: at most [`MAX_IN_FLIGHT`] wants outstanding (one per feed), each for at most
//! [`MAX_BATCH`] blocks, starting after what we hold *or have received on this channel*
//! (blocks still being ingested are never asked for again). A want is done when a `Blocks`
//! frame of its feed arrives: one that ends short of the want (the other side stopped at
//! its byte budget) is followed by a want for the rest, from where it stopped.
//!
//! Serving: wanted and pushed ranges wait per feed and are read one batch at a time,
//! round-robin over feeds, until done. A block already sent on this channel is not sent
//! again: the stream is ordered, so the peer receives it before any later answer.
//!
//! Pushing: new blocks of a feed go straight to a peer that will hold exactly what it knows
//! we hold. Such a feed is then left out of our next `Heads`: the blocks themselves tell
//! the peer our new length, and no announcement overtakes them (one would make the peer
//! want what is already on its way). A `Heads` frame carries the feeds that grew beyond
//! what the peer knows we hold and beyond what it holds itself (every feed, at first).
//!
//! Serving only ([`ReplicationCore::serving_only`]): a channel to a peer that lost its
//! membership tells it so through the credentials themselves. Such a core announces, pushes
//! and serves only the feeds it was given, each up to its limit (the space's control feeds
//! and the causal past of their credentials), never asks for anything, and takes no
//! blocks: a `Blocks` frame is dropped, not ingested.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Duration;

use super::{Heads, ReplMessage};
use crate::feed::Block;
use crate::types::{PublicKey, MAX_FRAME_BYTES};

/// Most blocks asked for or served in one `Want`/`Blocks`.
pub const MAX_BATCH: u64 = 256;
/// Most wants outstanding on one channel.
pub const MAX_IN_FLIGHT: usize = 16;
/// Most encoded bytes of blocks in one `Blocks` frame (1 MiB), unless the frame holds a
/// single larger block. Well below `MAX_FRAME_BYTES`, so that a frame has room for its own
/// overhead and one full frame never holds up the stream for long.
pub const MAX_BLOCKS_BYTES: usize = 1 << 20;
const _: () = assert!(MAX_BLOCKS_BYTES + (64 << 10) <= MAX_FRAME_BYTES);

/// How long a want may go unanswered before it is sent again.
pub const WANT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an unanswered want is sent again before its feed cools down.
pub const WANT_RETRIES: u8 = 2;
/// How long a feed whose wants went unanswered is not asked for.
pub const WANT_COOLDOWN: Duration = Duration::from_secs(10);
/// Least time between two `Heads` frames of a channel.
pub const HEADS_DEBOUNCE: Duration = Duration::from_millis(20);

/// What a `SetTimer` output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplTimer {
    /// The want for `feed` starting at `from` may have gone unanswered.
    Want {
        feed: PublicKey,
        from: u64,
        try_no: u8,
    },
    /// The cool-down of `feed` is over.
    Cooldown(PublicKey),
    /// `Heads` may be sent again.
    Heads,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplInput {
    /// Both Hellos were exchanged; `local` is our current heads.
    Opened {
        local: Heads,
    },
    Received(ReplMessage),
    /// Our heads changed (a local write or blocks from any peer).
    LocalHeads(Heads),
    /// Blocks read from our feeds for the last `ReadBlocks` output.
    BlocksRead(Vec<Block>),
    /// A timer set with `SetTimer` came due.
    Timer(ReplTimer),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplOutput {
    Send(ReplMessage),
    /// Read blocks `from..to` of `feed` from storage (at most [`MAX_BLOCKS_BYTES`] of them
    /// by encoded size, at least one) and feed them back as `BlocksRead`.
    ReadBlocks {
        feed: PublicKey,
        from: u64,
        to: u64,
    },
    /// Verify, store and apply these blocks (the space decides what to accept).
    Ingest(Vec<Block>),
    /// Protocol violation: close the channel.
    Close(String),
    /// Feed `Timer(timer)` back after `after`.
    SetTimer {
        after: Duration,
        timer: ReplTimer,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    from: u64,
    to: u64,
    /// How often it was sent (1 at first).
    tries: u8,
}

/// Replication state of one channel.
#[derive(Debug, Default)]
pub struct ReplicationCore {
    opened: bool,
    local: Heads,
    /// What the peer holds, or will hold once the blocks we sent it arrive.
    peer: Heads,
    /// What the peer knows we hold: what we announced, and what our blocks tell it.
    announced: Heads,
    /// Outstanding wants, per feed.
    wants: BTreeMap<PublicKey, Want>,
    /// Feeds whose wants went unanswered, not asked for until their cool-down is over.
    cooling: BTreeSet<PublicKey>,
    /// Feeds that grew and are not announced yet.
    dirty: BTreeSet<PublicKey>,
    /// A `Heads` went out less than `HEADS_DEBOUNCE` ago (its timer is set).
    heads_held: bool,
    /// Per feed, the end of the blocks received in order on this channel, stored yet or
    /// not: never asked for again. Dropped once our heads reach it.
    received: Heads,
    /// Ranges still to send, per feed: `from..to`.
    serve: BTreeMap<PublicKey, (u64, u64)>,
    /// The read in progress: feed, from, to.
    reading: Option<(PublicKey, u64, u64)>,
    /// The feed read last (serving goes round-robin from there).
    last_read: Option<PublicKey>,
    /// Serving only these feeds, each up to this many blocks, hearing nothing (see the
    /// module docs).
    serve_only: Option<Heads>,
}

fn get(heads: &Heads, feed: &PublicKey) -> u64 {
    heads.get(feed).copied().unwrap_or(0)
}

impl ReplicationCore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A core that serves only the feeds of `limits`, each up to its limit in blocks, and
    /// takes nothing (see the module docs).
    pub fn serving_only(limits: Heads) -> Self {
        ReplicationCore {
            serve_only: Some(limits),
            ..Self::default()
        }
    }

    /// Of `heads`, what this core may announce and serve.
    fn servable(&self, mut heads: Heads) -> Heads {
        if let Some(limits) = &self.serve_only {
            heads = heads
                .into_iter()
                .filter_map(|(feed, len)| Some((feed, len.min(*limits.get(&feed)?))))
                .filter(|(_, len)| *len > 0)
                .collect();
        }
        heads
    }

    pub fn handle(&mut self, input: ReplInput) -> Vec<ReplOutput> {
        let mut out = Vec::new();
        match input {
            ReplInput::Opened { local } => {
                let local = self.servable(local);
                self.opened = true;
                self.dirty.extend(local.keys().copied());
                self.local = local;
                self.announce(&mut out);
            }
            ReplInput::Received(msg) if !self.opened => {
                out.push(ReplOutput::Close(format!(
                    "{} before the channel opened",
                    msg.kind()
                )));
            }
            ReplInput::Received(ReplMessage::Hello { .. }) => {
                out.push(ReplOutput::Close("second Hello".into()));
            }
            ReplInput::Received(ReplMessage::Heads(heads)) => {
                for (feed, len) in heads {
                    let known = self.peer.entry(feed).or_insert(0);
                    *known = (*known).max(len);
                }
                // Wants the peer can no longer satisfy are dropped.
                let peer = &self.peer;
                self.wants
                    .retain(|feed, w| peer.get(feed).is_some_and(|l| *l > w.from));
                self.want_more(&mut out);
            }
            ReplInput::Received(ReplMessage::Want { feed, from, to }) => {
                if to <= from {
                    out.push(ReplOutput::Close(format!("empty want {from}..{to}")));
                } else {
                    self.serve_range(feed, from, to.min(from.saturating_add(MAX_BATCH)));
                    self.pump(&mut out);
                }
            }
            // Presence is the space's presence core's (the channel routes it there).
            ReplInput::Received(ReplMessage::Presence(_)) => {}
            // A serving-only core hears nothing.
            ReplInput::Received(ReplMessage::Blocks(_)) if self.serve_only.is_some() => {}
            ReplInput::Received(ReplMessage::Blocks(blocks)) => {
                if blocks.len() as u64 > MAX_BATCH * 2 {
                    out.push(ReplOutput::Close(format!(
                        "{} blocks in one frame",
                        blocks.len()
                    )));
                    return out;
                }
                self.receive(&blocks);
                if !blocks.is_empty() {
                    out.push(ReplOutput::Ingest(blocks));
                }
                self.want_more(&mut out);
            }
            ReplInput::LocalHeads(grown) => {
                let grown = self.servable(grown);
                let mut changed = Vec::with_capacity(grown.len());
                for (feed, len) in grown {
                    let slot = self.local.entry(feed).or_insert(0);
                    if len > *slot {
                        *slot = len;
                        changed.push(feed);
                    }
                }
                if self.opened && !changed.is_empty() {
                    // Wants for what we now hold anyway are satisfied.
                    for feed in &changed {
                        let ours = get(&self.local, feed);
                        if self.wants.get(feed).is_some_and(|w| ours >= w.to) {
                            self.wants.remove(feed);
                        }
                        if self.received.get(feed).is_some_and(|end| ours >= *end) {
                            self.received.remove(feed);
                        }
                    }
                    self.push(&changed);
                    self.dirty.extend(changed);
                    self.announce(&mut out);
                    self.want_more(&mut out);
                    self.pump(&mut out);
                }
            }
            ReplInput::BlocksRead(blocks) => self.read_done(blocks, &mut out),
            ReplInput::Timer(timer) => self.timer(timer, &mut out),
        }
        out
    }

    /// What the peer will hold of `feed` once everything we sent or queued has arrived.
    fn promised(&self, feed: &PublicKey) -> u64 {
        let queued = self.serve.get(feed).map_or(0, |(_, to)| *to);
        let reading = match self.reading {
            Some((f, _, to)) if f == *feed => to,
            _ => 0,
        };
        get(&self.peer, feed).max(queued).max(reading)
    }

    /// Records blocks from the peer; settles the wants of their feeds (a short answer is
    /// wanted again from where it stopped, by `want_more`).
    fn receive(&mut self, blocks: &[Block]) {
        let mut feeds = BTreeSet::new();
        for b in blocks {
            let next = b.seq.saturating_add(1);
            let known = self.peer.entry(b.feed_key).or_insert(0);
            *known = (*known).max(next);
            let ours = get(&self.local, &b.feed_key).max(get(&self.received, &b.feed_key));
            if b.seq <= ours {
                self.received.insert(b.feed_key, ours.max(next));
            }
            feeds.insert(b.feed_key);
        }
        for feed in feeds {
            self.wants.remove(&feed);
            // The peer serves this feed after all.
            self.cooling.remove(&feed);
        }
    }

    fn timer(&mut self, timer: ReplTimer, out: &mut Vec<ReplOutput>) {
        match timer {
            ReplTimer::Want { feed, from, try_no } => {
                let Some(want) = self.wants.get_mut(&feed) else {
                    return;
                };
                if want.from != from || want.tries != try_no {
                    return; // answered meanwhile, or a later want
                }
                if want.tries <= WANT_RETRIES {
                    want.tries += 1;
                    let (to, tries) = (want.to, want.tries);
                    out.push(ReplOutput::Send(ReplMessage::Want { feed, from, to }));
                    out.push(ReplOutput::SetTimer {
                        after: WANT_TIMEOUT,
                        timer: ReplTimer::Want {
                            feed,
                            from,
                            try_no: tries,
                        },
                    });
                    return;
                }
                // The peer advertises what it does not serve: give its slot to other feeds.
                self.wants.remove(&feed);
                self.cooling.insert(feed);
                out.push(ReplOutput::SetTimer {
                    after: WANT_COOLDOWN,
                    timer: ReplTimer::Cooldown(feed),
                });
                self.want_more(out);
            }
            ReplTimer::Cooldown(feed) => {
                if self.cooling.remove(&feed) {
                    self.want_more(out);
                }
            }
            ReplTimer::Heads => {
                self.heads_held = false;
                self.announce(out);
            }
        }
    }

    /// Queues `from..to` of `feed` to send, without what the peer holds or was sent
    /// already and without what we do not hold.
    fn serve_range(&mut self, feed: PublicKey, from: u64, to: u64) {
        let from = from.max(get(&self.peer, &feed));
        let to = to.min(get(&self.local, &feed));
        if from >= to {
            return;
        }
        let range = self.serve.entry(feed).or_insert((from, to));
        range.0 = range.0.min(from);
        range.1 = range.1.max(to);
    }

    /// Starts the next read, if none is in progress: the next feed with something to send
    /// after the one read last.
    fn pump(&mut self, out: &mut Vec<ReplOutput>) {
        if !self.opened || self.reading.is_some() {
            return;
        }
        loop {
            let after = match self.last_read {
                Some(f) => self
                    .serve
                    .range((Bound::Excluded(f), Bound::Unbounded))
                    .next(),
                None => None,
            };
            let Some((&feed, &(from, to))) = after.or_else(|| self.serve.iter().next()) else {
                return;
            };
            let from = from.max(get(&self.peer, &feed));
            let to = to.min(get(&self.local, &feed));
            if from >= to {
                self.serve.remove(&feed);
                continue;
            }
            self.serve.insert(feed, (from, to));
            let end = to.min(from.saturating_add(MAX_BATCH));
            self.reading = Some((feed, from, end));
            self.last_read = Some(feed);
            out.push(ReplOutput::ReadBlocks {
                feed,
                from,
                to: end,
            });
            return;
        }
    }

    /// The answer to our read: sends what fits in one frame, and goes on serving.
    fn read_done(&mut self, blocks: Vec<Block>, out: &mut Vec<ReplOutput>) {
        let Some((feed, from, to)) = self.reading.take() else {
            return;
        };
        let frame = fit_frame(blocks, feed, from, to);
        match frame.last().map(|b| b.seq + 1) {
            Some(end) => {
                let known = self.peer.entry(feed).or_insert(0);
                *known = (*known).max(end);
                let told = self.announced.entry(feed).or_insert(0);
                *told = (*told).max(end);
                if let Some(range) = self.serve.get_mut(&feed) {
                    range.0 = range.0.max(end);
                    if range.0 >= range.1 {
                        self.serve.remove(&feed);
                    }
                }
                out.push(ReplOutput::Send(ReplMessage::Blocks(frame)));
            }
            None => {
                // Nothing could be read: give the range up. If it was a push, the peer
                // has not learnt our length from it; announce it instead.
                self.serve.remove(&feed);
                let peer = get(&self.peer, &feed);
                if get(&self.announced, &feed) > peer {
                    self.announced.insert(feed, peer);
                }
                self.dirty.insert(feed);
                self.announce(out);
            }
        }
        self.pump(out);
    }

    /// Sends the feeds that grew (since the last `Heads`) beyond what the peer knows we
    /// hold and holds itself; held back while a `Heads` went out less than
    /// [`HEADS_DEBOUNCE`] ago.
    fn announce(&mut self, out: &mut Vec<ReplOutput>) {
        if self.heads_held || self.dirty.is_empty() {
            return;
        }
        let grew: Heads = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|feed| (feed, get(&self.local, &feed)))
            .filter(|(feed, len)| *len > get(&self.announced, feed).max(get(&self.peer, feed)))
            .collect();
        if grew.is_empty() {
            return;
        }
        for (feed, len) in &grew {
            self.announced.insert(*feed, *len);
        }
        out.push(ReplOutput::Send(ReplMessage::Heads(grew)));
        self.heads_held = true;
        out.push(ReplOutput::SetTimer {
            after: HEADS_DEBOUNCE,
            timer: ReplTimer::Heads,
        });
    }

    /// Queues new blocks of feeds the peer will hold exactly up to what it knows we hold;
    /// they count as announced (the blocks tell the peer).
    fn push(&mut self, changed: &[PublicKey]) {
        let feeds: Vec<(PublicKey, u64)> = changed
            .iter()
            .filter(|feed| self.peer.contains_key(feed))
            .map(|feed| (*feed, get(&self.local, feed)))
            .collect();
        for (feed, ours) in feeds {
            let theirs = self.promised(&feed);
            if theirs == get(&self.announced, &feed) && theirs < ours {
                let range = self.serve.entry(feed).or_insert((theirs, ours));
                range.1 = range.1.max(ours);
                self.announced.insert(feed, ours);
            }
        }
    }

    /// Asks for what the peer has and we neither hold nor have received, within the
    /// in-flight limit.
    fn want_more(&mut self, out: &mut Vec<ReplOutput>) {
        if self.serve_only.is_some() {
            return;
        }
        for (feed, &theirs) in &self.peer {
            if self.wants.len() >= MAX_IN_FLIGHT {
                break;
            }
            let ours = get(&self.local, feed).max(get(&self.received, feed));
            if theirs > ours && !self.wants.contains_key(feed) && !self.cooling.contains(feed) {
                let to = theirs.min(ours + MAX_BATCH);
                self.wants.insert(
                    *feed,
                    Want {
                        from: ours,
                        to,
                        tries: 1,
                    },
                );
                out.push(ReplOutput::Send(ReplMessage::Want {
                    feed: *feed,
                    from: ours,
                    to,
                }));
                out.push(ReplOutput::SetTimer {
                    after: WANT_TIMEOUT,
                    timer: ReplTimer::Want {
                        feed: *feed,
                        from: ours,
                        try_no: 1,
                    },
                });
            }
        }
    }
}

/// Of what a read returned, the consecutive blocks `from..to` of `feed` that fit in one
/// frame: up to [`MAX_BLOCKS_BYTES`] of encoded blocks, or the first block alone.
pub fn fit_frame(blocks: Vec<Block>, feed: PublicKey, from: u64, to: u64) -> Vec<Block> {
    let mut frame = Vec::new();
    let mut total = 0usize;
    for (seq, b) in (from..to).zip(blocks) {
        if b.feed_key != feed || b.seq != seq {
            break;
        }
        total = total.saturating_add(b.encoded_len().unwrap_or(usize::MAX));
        if total > MAX_BLOCKS_BYTES && !frame.is_empty() {
            break;
        }
        frame.push(b);
    }
    frame
}
