//! [`HelloCore`]: the channel-opening protocol of one peer connection, sans-IO.
//!
//! A connection carries one replication channel per shared space, each on its own stream
//! that starts with a `Hello { topic, device_auth }` from both sides (docs/protocol.md).
//! This core decides everything about that exchange; `ConnectionActor` only does the I/O
//! and the questions to space actors that the outputs name, and feeds the answers back.
//!
//! Call order: [`HelloCore::start`] once when the connection is up (it sets the deadline
//! timer), then [`HelloCore::handle`] with every input as it happens, passing `now` (tokio
//! time). Each call returns the outputs to carry out in order. After an output
//! [`HelloOutput::Close`] the core ignores everything.
//!
//! Rules:
//! - Opening (we start): ask the space whether we may reveal it to this device
//!   (`AskMayOpen`), then open a stream and send our Hello (`OpenStream`); the peer's answer
//!   is checked (`Authorize`) before the channel starts.
//! - Accepting (the peer starts): the first frame must be a Hello; its topic is looked up
//!   (`Lookup`), the peer's credential checked (`Authorize`), and our Hello sent back
//!   (`AnswerHello`) before the channel starts. A refusal resets the stream `NOT_A_MEMBER`.
//! - Former members (a REMOVED identity, a revoked device: `PeerRefused::former_member`)
//!   are told, not merely refused: their Hello is answered and a *leaving* channel starts,
//!   which serves only the space's control feeds, takes nothing and ends after a grace
//!   (`ChannelActor`). It does not count as a shared space: the peer is not reported as a
//!   channel peer, and the deadline closes the connection once the channel ended. The same
//!   holds when the peer that answered our own Hello turns out to be a former member.
//! - Races: if both sides open the same space at once, the stream opened by the lower device
//!   key wins; a second stream for a space with an open channel is reset `DUPLICATE`.
//! - Strangers: an accepted connection must get a channel open within
//!   [`STRANGER_DEADLINE`] (a dialed one within [`IDLE_NO_CHANNEL`]), a refused Hello on a
//!   connection without channels, or a first frame that is not a Hello while no channel is
//!   open, closes the connection `NOT_A_MEMBER`, reported as `stranger`. A first frame that
//!   is not a Hello on a connection with channels resets only that stream (`PROTOCOL`).
//! - A close for showing no shared space is reported as `stranger` (its address is then
//!   penalized) unless the peer named a space we hold in a Hello with a valid credential of
//!   an identity that is no member yet (a newcomer), or a side stream's holder vouched for it
//!   (it named a live invitation).
//! - Side streams (an invitation handshake, named by the stream preamble): while one is
//!   open the connection is not closed for showing no shared space, and a refused Hello does
//!   not close it; when the last one ends without a channel open, the deadline starts again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use crate::credentials::Credential;
use crate::signal::{space_topic, Topic};
use crate::space::PeerRefused;
use crate::transport::close;
use crate::types::PublicKey;

/// How long a connection we dialed may stay without any channel before it is closed (we
/// dialed it because signaling or the configuration named the peer).
pub const IDLE_NO_CHANNEL: Duration = Duration::from_secs(15);
/// How long a connection we accepted has to show a shared space (an open channel).
pub const STRANGER_DEADLINE: Duration = Duration::from_secs(2);

/// The actor's name for one of the connection's streams.
pub type StreamId = u64;

/// What arrived first on a stream (or in answer to our Hello).
#[derive(Debug, Clone)]
pub enum FirstFrame {
    Hello {
        topic: Topic,
        device_auth: Box<Credential>,
    },
    /// A well-formed frame of another kind, or a malformed one (described).
    NotHello(String),
    /// The stream ended, failed or stayed silent: nothing the peer did wrong that we can
    /// tell.
    Gone(String),
}

/// Inputs, from the actor.
#[derive(Debug, Clone)]
pub enum HelloInput {
    /// Open a channel for this space (if there is none).
    OpenWanted(PublicKey),
    /// The answer to `AskMayOpen`.
    MayOpen {
        space: PublicKey,
        allowed: bool,
    },
    /// Our stream for `space` is open and our Hello written; its answer comes as `Answer`.
    Opened {
        space: PublicKey,
        stream: StreamId,
    },
    /// Opening our stream or writing our Hello failed.
    OpenFailed {
        space: PublicKey,
        reason: String,
    },
    /// The peer's answer on our stream.
    Answer {
        stream: StreamId,
        frame: FirstFrame,
    },
    /// The first frame of a stream the peer opened.
    First {
        stream: StreamId,
        frame: FirstFrame,
    },
    /// The answer to `Lookup`: the space with that topic, if we hold it.
    Found {
        stream: StreamId,
        space: Option<PublicKey>,
    },
    /// The answer to `Authorize`.
    Authorized {
        stream: StreamId,
        result: Result<(), PeerRefused>,
    },
    /// Our answering Hello was written (`Ok`) or could not be (`Err`).
    Answered {
        stream: StreamId,
        result: Result<(), String>,
    },
    /// The channel of `space` ended.
    ChannelEnded(PublicKey),
    /// A side stream (not a replication channel) opened on the connection.
    SideOpened(StreamId),
    /// That side stream ended.
    SideEnded(StreamId),
    /// The side stream's holder vouched for the peer (it named a live invitation): a close
    /// for showing no shared space is then not reported as a stranger's.
    SideVouched(StreamId),
    Timer(HelloTimer),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloTimer {
    /// The connection's deadline to show a shared space.
    Deadline,
}

/// Outputs, for the actor to carry out in order.
#[derive(Debug, Clone, PartialEq)]
pub enum HelloOutput {
    /// Ask the space whether we may reveal it to the peer (answer: `MayOpen`).
    AskMayOpen(PublicKey),
    /// Open a stream, send our Hello for the space (answer: `Opened` or `OpenFailed`), then
    /// read the peer's answer (`Answer`).
    OpenStream(PublicKey),
    /// Which of our spaces has this topic? (answer: `Found`).
    Lookup {
        stream: StreamId,
        topic: Topic,
    },
    /// Does the peer's credential make it a member of `space`? (answer: `Authorized`).
    Authorize {
        stream: StreamId,
        space: PublicKey,
        device_auth: Box<Credential>,
    },
    /// Send our Hello for `space` on the peer's stream (answer: `Answered`).
    AnswerHello {
        stream: StreamId,
        space: PublicKey,
    },
    /// Start the channel of `space` on `stream`; the peer proved itself with `peer_auth`.
    /// `leaving`: the peer is a former member, to be served the control feeds and no more.
    StartChannel {
        stream: StreamId,
        space: PublicKey,
        peer_auth: Box<Credential>,
        leaving: bool,
    },
    /// Stop the channel of `space` (a new stream replaces it).
    StopChannel(PublicKey),
    /// Reset the stream (both directions) with an application code.
    Reset {
        stream: StreamId,
        code: u32,
    },
    /// Finish the stream quietly (our stream lost a race the peer won).
    Finish {
        stream: StreamId,
    },
    /// Close the whole connection.
    Close {
        code: u32,
        reason: &'static str,
        stranger: bool,
    },
    SetTimer {
        at: Instant,
        timer: HelloTimer,
    },
}

#[derive(Debug, Clone)]
enum Chan {
    /// We asked the space whether we may open to this peer.
    Checking,
    /// Our stream is opening, or open with our Hello sent.
    Opening {
        stream: Option<StreamId>,
    },
    /// The peer answered on our stream; its credential is being checked.
    Verifying {
        stream: StreamId,
        peer_auth: Box<Credential>,
    },
    /// We are answering the peer's stream.
    Answering {
        stream: StreamId,
    },
    Open {
        stream: StreamId,
    },
    /// A leaving channel to a former member runs (it is told, never heard).
    Leaving,
}

/// A peer's stream on its way to a channel.
#[derive(Debug, Clone)]
enum Incoming {
    LookingUp {
        device_auth: Box<Credential>,
    },
    Authorizing {
        space: PublicKey,
        device_auth: Box<Credential>,
    },
    Answering {
        space: PublicKey,
        device_auth: Box<Credential>,
        /// A former member's: its channel is a leaving one.
        leaving: bool,
    },
}

/// See the module docs.
#[derive(Debug)]
pub struct HelloCore {
    me: PublicKey,
    peer: PublicKey,
    originated: bool,
    channels: BTreeMap<PublicKey, Chan>,
    incoming: BTreeMap<StreamId, Incoming>,
    side: BTreeSet<StreamId>,
    /// The peer is not to be reported a stranger when closed: a side stream's holder
    /// vouched for it, or it named a space we hold in a Hello (and was refused as no member).
    vouched: bool,
    /// When the connection must show a shared space by (if no side stream is open).
    deadline_at: Option<Instant>,
    closed: bool,
}

impl HelloCore {
    /// The core of a connection to `peer`; `originated`: we dialed it.
    pub fn new(me: PublicKey, peer: PublicKey, originated: bool) -> Self {
        HelloCore {
            me,
            peer,
            originated,
            channels: BTreeMap::new(),
            incoming: BTreeMap::new(),
            side: BTreeSet::new(),
            vouched: false,
            deadline_at: None,
            closed: false,
        }
    }

    fn deadline_wait(&self) -> Duration {
        if self.originated {
            IDLE_NO_CHANNEL
        } else {
            STRANGER_DEADLINE
        }
    }

    fn set_deadline(&mut self, now: Instant, out: &mut Vec<HelloOutput>) {
        let at = now + self.deadline_wait();
        self.deadline_at = Some(at);
        out.push(HelloOutput::SetTimer {
            at,
            timer: HelloTimer::Deadline,
        });
    }

    /// Nothing holds the connection open but channels: no side stream.
    fn only_channels(&self) -> bool {
        self.side.is_empty()
    }

    /// The connection is up: the deadline to show a shared space starts.
    pub fn start(&mut self, now: Instant) -> Vec<HelloOutput> {
        let mut out = vec![];
        self.set_deadline(now, &mut out);
        out
    }

    /// Spaces with an open channel.
    pub fn open_channels(&self) -> Vec<PublicKey> {
        self.channels
            .iter()
            .filter(|(_, c)| matches!(c, Chan::Open { .. }))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The stream the open channel of `space` runs on.
    pub fn channel_stream(&self, space: &PublicKey) -> Option<StreamId> {
        match self.channels.get(space) {
            Some(Chan::Open { stream }) => Some(*stream),
            _ => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn has_open(&self) -> bool {
        self.channels
            .values()
            .any(|c| matches!(c, Chan::Open { .. }))
    }

    /// A leaving channel runs: the deadline waits for it to end.
    fn has_leaving(&self) -> bool {
        self.channels.values().any(|c| matches!(c, Chan::Leaving))
    }

    fn close_stranger(&mut self, out: &mut Vec<HelloOutput>) {
        self.closed = true;
        out.push(HelloOutput::Close {
            code: close::NOT_A_MEMBER,
            reason: "not a member",
            stranger: !self.vouched,
        });
    }

    /// A peer's stream was refused: reset it, and close a connection that has no channel.
    fn refuse(&mut self, stream: StreamId, out: &mut Vec<HelloOutput>) {
        self.incoming.remove(&stream);
        out.push(HelloOutput::Reset {
            stream,
            code: close::NOT_A_MEMBER,
        });
        if self.channels.is_empty() && self.only_channels() {
            self.close_stranger(out);
        }
    }

    pub fn handle(&mut self, now: Instant, input: HelloInput) -> Vec<HelloOutput> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        match input {
            HelloInput::OpenWanted(space) => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.channels.entry(space) {
                    e.insert(Chan::Checking);
                    out.push(HelloOutput::AskMayOpen(space));
                }
            }
            HelloInput::MayOpen { space, allowed } => {
                if matches!(self.channels.get(&space), Some(Chan::Checking)) {
                    if allowed {
                        self.channels.insert(space, Chan::Opening { stream: None });
                        out.push(HelloOutput::OpenStream(space));
                    } else {
                        self.channels.remove(&space);
                    }
                }
            }
            HelloInput::Opened { space, stream } => match self.channels.get_mut(&space) {
                Some(Chan::Opening { stream: s @ None }) => *s = Some(stream),
                // The peer's stream won meanwhile: ours is not needed.
                _ => out.push(HelloOutput::Finish { stream }),
            },
            HelloInput::OpenFailed { space, .. } => {
                if matches!(self.channels.get(&space), Some(Chan::Opening { .. })) {
                    self.channels.remove(&space);
                }
            }
            HelloInput::Answer { stream, frame } => self.answer(stream, frame, &mut out),
            HelloInput::First { stream, frame } => match frame {
                FirstFrame::Hello { topic, device_auth } => {
                    self.incoming
                        .insert(stream, Incoming::LookingUp { device_auth });
                    out.push(HelloOutput::Lookup { stream, topic });
                }
                FirstFrame::NotHello(_) if !self.has_open() && self.only_channels() => {
                    self.close_stranger(&mut out)
                }
                FirstFrame::NotHello(_) | FirstFrame::Gone(_) => out.push(HelloOutput::Reset {
                    stream,
                    code: close::PROTOCOL,
                }),
            },
            HelloInput::Found { stream, space } => {
                let Some(Incoming::LookingUp { device_auth }) = self.incoming.remove(&stream)
                else {
                    return out;
                };
                match space {
                    None => self.refuse(stream, &mut out),
                    Some(space) => {
                        self.incoming.insert(
                            stream,
                            Incoming::Authorizing {
                                space,
                                device_auth: device_auth.clone(),
                            },
                        );
                        out.push(HelloOutput::Authorize {
                            stream,
                            space,
                            device_auth,
                        });
                    }
                }
            }
            HelloInput::Authorized { stream, result } => self.authorized(stream, result, &mut out),
            HelloInput::Answered { stream, result } => {
                let Some(Incoming::Answering {
                    space,
                    device_auth,
                    leaving,
                }) = self.incoming.remove(&stream)
                else {
                    return out;
                };
                if result.is_err() {
                    if matches!(self.channels.get(&space), Some(Chan::Answering { stream: s }) if *s == stream)
                    {
                        self.channels.remove(&space);
                    }
                    out.push(HelloOutput::Reset {
                        stream,
                        code: close::PROTOCOL,
                    });
                    return out;
                }
                if let Some(Chan::Open { .. }) = self.channels.get(&space) {
                    out.push(HelloOutput::StopChannel(space));
                }
                let chan = if leaving {
                    Chan::Leaving
                } else {
                    Chan::Open { stream }
                };
                self.channels.insert(space, chan);
                out.push(HelloOutput::StartChannel {
                    stream,
                    space,
                    peer_auth: device_auth,
                    leaving,
                });
            }
            HelloInput::ChannelEnded(space) => match self.channels.get(&space) {
                Some(Chan::Open { .. }) => {
                    self.channels.remove(&space);
                }
                Some(Chan::Leaving) => {
                    self.channels.remove(&space);
                    // The former member was told; a connection left with nothing shared
                    // gets the deadline again (a channel it may still open has that long).
                    if !self.has_open() && !self.has_leaving() && self.only_channels() {
                        self.set_deadline(now, &mut out);
                    }
                }
                _ => {}
            },
            HelloInput::SideOpened(stream) => {
                self.side.insert(stream);
            }
            HelloInput::SideVouched(stream) => {
                if self.side.contains(&stream) {
                    self.vouched = true;
                }
            }
            HelloInput::SideEnded(stream) => {
                if self.side.remove(&stream) && self.side.is_empty() && !self.has_open() {
                    self.set_deadline(now, &mut out);
                }
            }
            HelloInput::Timer(HelloTimer::Deadline) => {
                // An earlier deadline that a side stream postponed is not the current one.
                let due = self.deadline_at.is_none_or(|at| now >= at);
                if due && !self.has_open() && !self.has_leaving() && self.only_channels() {
                    self.close_stranger(&mut out);
                }
            }
        }
        out
    }

    /// The peer answered our Hello on `stream`.
    fn answer(&mut self, stream: StreamId, frame: FirstFrame, out: &mut Vec<HelloOutput>) {
        let Some((space, _)) = self
            .channels
            .iter()
            .find(|(_, c)| matches!(c, Chan::Opening { stream: Some(s) } if *s == stream))
        else {
            // The peer's stream won meanwhile: ours is not needed.
            out.push(HelloOutput::Finish { stream });
            return;
        };
        let space = *space;
        match frame {
            FirstFrame::Hello { topic, device_auth } if topic == space_topic(&space) => {
                self.channels.insert(
                    space,
                    Chan::Verifying {
                        stream,
                        peer_auth: device_auth.clone(),
                    },
                );
                out.push(HelloOutput::Authorize {
                    stream,
                    space,
                    device_auth,
                });
            }
            // Another topic, another frame, or nothing: the channel did not open.
            _ => {
                self.channels.remove(&space);
                out.push(HelloOutput::Reset {
                    stream,
                    code: close::PROTOCOL,
                });
            }
        }
    }

    fn authorized(
        &mut self,
        stream: StreamId,
        result: Result<(), PeerRefused>,
        out: &mut Vec<HelloOutput>,
    ) {
        // Our own stream, answered by the peer?
        let ours = self.channels.iter().find_map(|(space, c)| match c {
            Chan::Verifying {
                stream: s,
                peer_auth,
            } if *s == stream => Some((*space, peer_auth.clone())),
            _ => None,
        });
        if let Some((space, peer_auth)) = ours {
            let leaving = match result {
                Ok(()) => false,
                Err(refusal) if refusal.former_member => true,
                Err(_) => {
                    self.channels.remove(&space);
                    out.push(HelloOutput::Reset {
                        stream,
                        code: close::NOT_A_MEMBER,
                    });
                    return;
                }
            };
            let chan = if leaving {
                Chan::Leaving
            } else {
                Chan::Open { stream }
            };
            self.channels.insert(space, chan);
            out.push(HelloOutput::StartChannel {
                stream,
                space,
                peer_auth,
                leaving,
            });
            return;
        }
        let Some(Incoming::Authorizing { space, device_auth }) = self.incoming.remove(&stream)
        else {
            // Our stream, but the peer's stream for its space won meanwhile.
            out.push(HelloOutput::Finish { stream });
            return;
        };
        let leaving = match result {
            Ok(()) => false,
            // A former member is told (once at a time per space), not merely refused.
            Err(refusal) if refusal.former_member && !self.channels.contains_key(&space) => true,
            Err(refusal) => {
                // A newcomer named a space we hold with a valid credential: it knows the
                // space key, so it is a device that is not a member yet (say, about to
                // accept an invitation), not a stranger probing us; its address is not
                // penalized.
                self.vouched |= refusal.newcomer;
                self.refuse(stream, out);
                return;
            }
        };
        let we_win = self.me < self.peer;
        match self.channels.get(&space) {
            Some(Chan::Open { .. } | Chan::Answering { .. }) => out.push(HelloOutput::Reset {
                stream,
                code: close::DUPLICATE,
            }),
            // We both opened; the lower device key's stream wins, and that is ours.
            Some(Chan::Opening { .. } | Chan::Verifying { .. }) if we_win => {
                out.push(HelloOutput::Reset {
                    stream,
                    code: close::DUPLICATE,
                })
            }
            _ => {
                // A member now (re-admitted), with a leaving channel still running: it
                // stops before the channel of a member starts.
                if matches!(self.channels.get(&space), Some(Chan::Leaving)) {
                    out.push(HelloOutput::StopChannel(space));
                }
                self.channels.insert(space, Chan::Answering { stream });
                self.incoming.insert(
                    stream,
                    Incoming::Answering {
                        space,
                        device_auth,
                        leaving,
                    },
                );
                out.push(HelloOutput::AnswerHello { stream, space });
            }
        }
    }
}

#[cfg(test)]
#[path = "hello_tests.rs"]
mod tests;
