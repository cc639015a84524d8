//! `ReplicationCore`: what to ask for, what to serve and what to push on one channel.
//!
//! Inputs: `Opened` (after Hellos), `Received(msg)`, `LocalHeads(heads)` (the space's feed
//! lengths changed), `BlocksRead { feed, blocks }` (answer to a `ReadBlocks` output),
//! `Ingested { heads }` (a received batch was processed). Outputs: `Send(msg)`,
//! `ReadBlocks { feed, from, to }`, `Ingest(blocks)`, `Close(reason)`.
//! Call order per input: `handle`, then carry out every output in order.
//!
//! Flow control: at most [`MAX_IN_FLIGHT`] wants outstanding, each for at most
//! [`MAX_BATCH`] blocks; a want is cleared when its blocks arrive (or a `Heads` says the
//! peer no longer has them).

use std::collections::BTreeMap;

use super::{Heads, ReplMessage};
use crate::feed::Block;
use crate::types::PublicKey;

/// Most blocks asked for or served in one `Want`/`Blocks`.
pub const MAX_BATCH: u64 = 256;
/// Most wants outstanding on one channel.
pub const MAX_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplInput {
    /// Both Hellos were exchanged; `local` is our current heads.
    Opened {
        local: Heads,
    },
    Received(ReplMessage),
    /// Our heads changed (a local write or blocks from any peer).
    LocalHeads(Heads),
    /// Blocks read from our feeds for a `ReadBlocks` output.
    BlocksRead(Vec<Block>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplOutput {
    Send(ReplMessage),
    /// Read blocks `from..to` of `feed` from storage and feed them back as `BlocksRead`.
    ReadBlocks {
        feed: PublicKey,
        from: u64,
        to: u64,
    },
    /// Verify, store and apply these blocks (the space decides what to accept).
    Ingest(Vec<Block>),
    /// Protocol violation: close the channel.
    Close(String),
}

/// Replication state of one channel.
#[derive(Debug, Default)]
pub struct ReplicationCore {
    opened: bool,
    local: Heads,
    /// What we believe the peer holds.
    peer: Heads,
    /// What we last announced.
    announced: Heads,
    /// Outstanding wants: feed -> (from, to).
    wants: BTreeMap<PublicKey, (u64, u64)>,
}

impl ReplicationCore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn handle(&mut self, input: ReplInput) -> Vec<ReplOutput> {
        let mut out = Vec::new();
        match input {
            ReplInput::Opened { local } => {
                self.opened = true;
                self.local = local;
                self.announce(&mut out);
            }
            ReplInput::Received(msg) if !self.opened => {
                out.push(ReplOutput::Close(format!(
                    "{} before the channel opened",
                    kind(&msg)
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
                    .retain(|feed, (from, _)| peer.get(feed).is_some_and(|l| l > from));
                self.want_more(&mut out);
            }
            ReplInput::Received(ReplMessage::Want { feed, from, to }) => {
                if to <= from {
                    out.push(ReplOutput::Close(format!("empty want {from}..{to}")));
                } else {
                    let to = to.min(from.saturating_add(MAX_BATCH));
                    out.push(ReplOutput::ReadBlocks { feed, from, to });
                }
            }
            ReplInput::Received(ReplMessage::Blocks(blocks)) => {
                if blocks.len() as u64 > MAX_BATCH * 2 {
                    out.push(ReplOutput::Close(format!(
                        "{} blocks in one frame",
                        blocks.len()
                    )));
                    return out;
                }
                for b in &blocks {
                    let known = self.peer.entry(b.feed_key).or_insert(0);
                    *known = (*known).max(b.seq + 1);
                    if let Some((_, to)) = self.wants.get(&b.feed_key) {
                        if b.seq + 1 >= *to {
                            self.wants.remove(&b.feed_key);
                        }
                    }
                }
                if !blocks.is_empty() {
                    out.push(ReplOutput::Ingest(blocks));
                }
            }
            ReplInput::LocalHeads(heads) => {
                self.local = heads;
                if self.opened {
                    // Wants for what we now hold anyway are satisfied.
                    let local = &self.local;
                    self.wants
                        .retain(|feed, (_, to)| local.get(feed).is_none_or(|l| l < to));
                    self.push(&mut out);
                    self.announce(&mut out);
                    self.want_more(&mut out);
                }
            }
            ReplInput::BlocksRead(blocks) => {
                if let Some(last) = blocks.last() {
                    let known = self.peer.entry(last.feed_key).or_insert(0);
                    *known = (*known).max(last.seq + 1);
                    out.push(ReplOutput::Send(ReplMessage::Blocks(blocks)));
                }
            }
        }
        out
    }

    /// Sends our heads if they changed since the last announcement.
    fn announce(&mut self, out: &mut Vec<ReplOutput>) {
        if self.local != self.announced {
            self.announced = self.local.clone();
            out.push(ReplOutput::Send(ReplMessage::Heads(self.local.clone())));
        }
    }

    /// Pushes new blocks of feeds the peer holds exactly up to where we were.
    fn push(&mut self, out: &mut Vec<ReplOutput>) {
        for (feed, &ours) in &self.local {
            let Some(&theirs) = self.peer.get(feed) else {
                continue;
            };
            let announced = self.announced.get(feed).copied().unwrap_or(0);
            if theirs == announced && theirs < ours {
                let to = ours.min(theirs + MAX_BATCH);
                out.push(ReplOutput::ReadBlocks {
                    feed: *feed,
                    from: theirs,
                    to,
                });
            }
        }
    }

    /// Asks for what the peer has and we lack, within the in-flight limit.
    fn want_more(&mut self, out: &mut Vec<ReplOutput>) {
        for (feed, &theirs) in &self.peer {
            if self.wants.len() >= MAX_IN_FLIGHT {
                break;
            }
            let ours = self.local.get(feed).copied().unwrap_or(0);
            if theirs > ours && !self.wants.contains_key(feed) {
                let to = theirs.min(ours + MAX_BATCH);
                self.wants.insert(*feed, (ours, to));
                out.push(ReplOutput::Send(ReplMessage::Want {
                    feed: *feed,
                    from: ours,
                    to,
                }));
            }
        }
    }
}

fn kind(msg: &ReplMessage) -> &'static str {
    match msg {
        ReplMessage::Hello { .. } => "Hello",
        ReplMessage::Heads(_) => "Heads",
        ReplMessage::Want { .. } => "Want",
        ReplMessage::Blocks(_) => "Blocks",
    }
}
