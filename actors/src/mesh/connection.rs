//! `ConnectionActor`: one authenticated QUIC connection to one peer device, carrying one
//! replication channel per shared space, each on its own bi-directional stream.
//!
//! The channel-opening protocol (Hello exchange, membership checks, races, the deadline to
//! show a shared space, refusals) is [`HelloCore`]'s; this actor only carries out its
//! outputs: it opens, reads, writes, resets and finishes streams, asks the space actors
//! (`MayOpenTo`, `AuthorizePeer`) and the network actor (`LookupSpace`), sets its timers,
//! and starts a `ChannelActor` with a reader and a writer task per open channel. A close
//! for showing no shared space is reported as `stranger`, so that the network actor
//! penalizes the address. A frame that cannot be written (for any reason) is logged at WARN
//! with the peer, the space and the reason, and resets the channel's stream both ways
//! (`BAD_FRAME`): the channel ends, and the network actor offers it again.
//!
//! Every stream starts with its preamble (`transport::StreamKind`). Invitation streams are
//! side streams: handed whole to the network actor (accepted) or to whoever asked for one
//! with [`OpenSideStream`], and reported to the core while they are held.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use quinn::VarInt;
use tokio::sync::{mpsc, oneshot};
// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use super::hello::{FirstFrame, HelloCore, HelloInput, HelloOutput, StreamId};
use super::side_stream::{IncomingInvitation, SideStream, SideStreamGuard};
use super::{ChannelActor, CloseChannel, Inbound};
use crate::credentials::Credential;
use crate::metrics::Metrics;
use crate::replication::{ReplMessage, WireDecoder, WireEncoder, WireMessage};
use crate::signal::{space_topic, Topic};
use crate::space::{AuthorizePeer, MayOpenTo, PeerRefused, SpaceActor};
use crate::transport::{
    close, encode_frame, open_stream, read_frame, read_frame_sized, read_stream_kind, write_frame,
    FrameError, StreamKind, StreamKindError,
};
use crate::types::PublicKey;

/// Queued frames are written together up to this many bytes per stream write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// How long the other side has to send its first frame (or its answering `Hello`).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Reports from a connection to whoever started it (the network actor).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum ConnectionEvent {
    /// A channel of a member opened on connection `id` (leaving channels to former members
    /// are not reported).
    ChannelOpened {
        device: PublicKey,
        id: u64,
        space_key: PublicKey,
    },
    /// That channel ended, or its peer turned out to be a former member.
    ChannelClosed {
        device: PublicKey,
        id: u64,
        space_key: PublicKey,
    },
    Closed {
        device: PublicKey,
        id: u64,
        /// Closed because the peer showed no shared space (deadline, refused Hello, or a
        /// first frame that was not a Hello).
        stranger: bool,
    },
}

/// Finds a space (key and actor) by its swarm topic (the network actor answers).
#[derive(Message)]
#[rtype(result = "Option<(PublicKey, Addr<SpaceActor>)>")]
pub struct LookupSpace(pub Topic);

type StreamPair = (quinn::SendStream, quinn::RecvStream);

/// One peer connection.
pub struct ConnectionActor {
    id: u64,
    conn: quinn::Connection,
    peer: PublicKey,
    /// Our `AuthorizedDevice`, shown in every Hello. `None` on a connection a node without
    /// an identity dialed for a device invitation: it carries side streams only until the
    /// network hands the credential over ([`SetDeviceAuth`]).
    device_auth: Option<Credential>,
    /// Channels asked for before there was a credential to open them with.
    deferred: std::collections::BTreeSet<PublicKey>,
    core: HelloCore,
    /// Space actors by key, as the network actor and lookups named them.
    spaces: BTreeMap<PublicKey, Addr<SpaceActor>>,
    /// Streams on their way to a channel.
    streams: BTreeMap<StreamId, StreamPair>,
    /// Running channels, by space.
    channels: BTreeMap<PublicKey, RunningChannel>,
    next_stream: StreamId,
    events: Recipient<ConnectionEvent>,
    lookup: Recipient<LookupSpace>,
    invitations: Recipient<IncomingInvitation>,
    metrics: Metrics,
    /// Set when we close because the peer showed no shared space.
    stranger: bool,
}

/// One running channel: the stream it runs on, its actor, and whether it is a leaving one
/// (to a former member, which is told and is not a peer of the space: no events).
struct RunningChannel {
    stream: StreamId,
    actor: Addr<ChannelActor>,
    leaving: bool,
}

impl ConnectionActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        conn: quinn::Connection,
        peer: PublicKey,
        me: PublicKey,
        originated: bool,
        device_auth: Option<Credential>,
        events: Recipient<ConnectionEvent>,
        lookup: Recipient<LookupSpace>,
        invitations: Recipient<IncomingInvitation>,
        metrics: Metrics,
    ) -> Self {
        ConnectionActor {
            id,
            conn,
            peer,
            device_auth,
            deferred: Default::default(),
            core: HelloCore::new(me, peer, originated),
            spaces: BTreeMap::new(),
            streams: BTreeMap::new(),
            channels: BTreeMap::new(),
            next_stream: 0,
            events,
            lookup,
            invitations,
            metrics,
            stranger: false,
        }
    }

    /// Our Hello for a space; `None` without a credential (never asked then: channels are
    /// deferred and peers' Hellos refused until there is one).
    fn hello(&self, space_key: PublicKey) -> Option<WireMessage> {
        Some(WireMessage::Hello {
            topic: space_topic(&space_key),
            device_auth: Box::new(self.device_auth.clone()?),
        })
    }

    fn new_stream_id(&mut self) -> StreamId {
        self.next_stream += 1;
        self.next_stream
    }

    /// Feeds the core one input and carries out what it says.
    fn feed(&mut self, input: HelloInput, ctx: &mut Context<Self>) {
        tracing::trace!(peer = %self.peer.short(), id = self.id, ?input, "hello input");
        let outputs = self.core.handle(Instant::now(), input);
        tracing::trace!(peer = %self.peer.short(), id = self.id, ?outputs, "hello outputs");
        self.carry_out(outputs, ctx);
    }

    fn carry_out(&mut self, outputs: Vec<HelloOutput>, ctx: &mut Context<Self>) {
        for output in outputs {
            self.carry_out_one(output, ctx);
        }
    }

    fn carry_out_one(&mut self, output: HelloOutput, ctx: &mut Context<Self>) {
        let peer = self.peer;
        match output {
            HelloOutput::AskMayOpen(space_key) => {
                let Some(space) = self.spaces.get(&space_key).cloned() else {
                    return self.feed(
                        HelloInput::MayOpen {
                            space: space_key,
                            allowed: false,
                        },
                        ctx,
                    );
                };
                // We reveal that we hold this space (and our identity) only to a device we
                // know as a member, or while we are joining and know nobody yet.
                async move { matches!(space.send(MayOpenTo(peer)).await, Ok(true)) }
                    .into_actor(self)
                    .map(move |allowed, act, ctx| {
                        act.feed(
                            HelloInput::MayOpen {
                                space: space_key,
                                allowed,
                            },
                            ctx,
                        )
                    })
                    .spawn(ctx);
            }
            HelloOutput::OpenStream(space_key) => {
                let stream = self.new_stream_id();
                let conn = self.conn.clone();
                let Some(hello) = self.hello(space_key) else {
                    tracing::warn!(peer = %peer.short(), "no device credential to open a channel with");
                    return;
                };
                async move {
                    let (mut send, mut recv) = open_stream(&conn, StreamKind::Replication).await?;
                    write_frame(&mut send, &hello)
                        .await
                        .map_err(|e| e.to_string())?;
                    let answer = first_frame(&mut recv).await;
                    Ok::<_, String>((send, recv, answer))
                }
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok((send, recv, frame)) => {
                        act.streams.insert(stream, (send, recv));
                        act.feed(
                            HelloInput::Opened {
                                space: space_key,
                                stream,
                            },
                            ctx,
                        );
                        if let FirstFrame::Gone(reason) | FirstFrame::NotHello(reason) = &frame {
                            tracing::info!(peer = %peer.short(), space = %space_key.short(), %reason, "channel not opened");
                        }
                        act.feed(HelloInput::Answer { stream, frame }, ctx);
                    }
                    Err(reason) => {
                        tracing::info!(peer = %peer.short(), space = %space_key.short(), %reason, "channel not opened");
                        act.feed(
                            HelloInput::OpenFailed {
                                space: space_key,
                                reason,
                            },
                            ctx,
                        );
                    }
                })
                .spawn(ctx);
            }
            HelloOutput::Lookup { stream, topic } => {
                let lookup = self.lookup.clone();
                async move { lookup.send(LookupSpace(topic)).await.ok().flatten() }
                    .into_actor(self)
                    .map(move |found, act, ctx| {
                        let space = found.map(|(key, addr)| {
                            act.spaces.insert(key, addr);
                            key
                        });
                        if space.is_none() {
                            tracing::info!(peer = %peer.short(), "peer asked for a space we do not have");
                        }
                        act.feed(HelloInput::Found { stream, space }, ctx);
                    })
                    .spawn(ctx);
            }
            HelloOutput::Authorize {
                stream,
                space,
                device_auth,
            } => {
                let addr = self.spaces.get(&space).cloned();
                let ready = self.device_auth.is_some();
                async move {
                    match addr {
                        _ if !ready => Err("this node has no identity yet".into()),
                        Some(addr) => authorize(&addr, peer, *device_auth).await,
                        None => Err("space is not open here".into()),
                    }
                }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    if let Err(reason) = &result {
                        tracing::warn!(peer = %peer.short(), space = %space.short(), %reason, "refusing channel");
                    }
                    act.feed(HelloInput::Authorized { stream, result }, ctx);
                })
                .spawn(ctx);
            }
            HelloOutput::AnswerHello { stream, space } => {
                let Some((mut send, recv)) = self.streams.remove(&stream) else {
                    return self.feed(
                        HelloInput::Answered {
                            stream,
                            result: Err("stream is gone".into()),
                        },
                        ctx,
                    );
                };
                let Some(hello) = self.hello(space) else {
                    return self.feed(
                        HelloInput::Answered {
                            stream,
                            result: Err("no device credential to answer with".into()),
                        },
                        ctx,
                    );
                };
                async move {
                    let result = write_frame(&mut send, &hello)
                        .await
                        .map_err(|e| e.to_string());
                    (send, recv, result)
                }
                .into_actor(self)
                .map(move |(send, recv, result), act, ctx| {
                    if let Err(e) = &result {
                        tracing::info!(peer = %peer.short(), error = %e, "could not answer Hello");
                    }
                    act.streams.insert(stream, (send, recv));
                    act.feed(HelloInput::Answered { stream, result }, ctx);
                })
                .spawn(ctx);
            }
            HelloOutput::StartChannel {
                stream,
                space,
                peer_auth,
                leaving,
            } => match (
                self.streams.remove(&stream),
                self.spaces.get(&space).cloned(),
            ) {
                (Some(pair), Some(addr)) => {
                    let start = StartedChannel {
                        space_key: space,
                        space: addr,
                        peer_auth: *peer_auth,
                        stream,
                        leaving,
                    };
                    self.start_channel(start, pair, ctx)
                }
                _ => self.feed(HelloInput::ChannelEnded(space), ctx),
            },
            HelloOutput::StopChannel(space) => {
                if let Some(running) = self.channels.remove(&space) {
                    running.actor.do_send(CloseChannel);
                    // What replaces it says whether the peer is still a peer of the space.
                    if !running.leaving {
                        self.events.do_send(ConnectionEvent::ChannelClosed {
                            device: self.peer,
                            id: self.id,
                            space_key: space,
                        });
                    }
                }
            }
            HelloOutput::Reset { stream, code } => {
                if let Some((mut send, mut recv)) = self.streams.remove(&stream) {
                    let _ = send.reset(VarInt::from_u32(code));
                    let _ = recv.stop(VarInt::from_u32(code));
                }
            }
            HelloOutput::Finish { stream } => {
                if let Some((mut send, _)) = self.streams.remove(&stream) {
                    let _ = send.finish();
                }
            }
            HelloOutput::Close {
                code,
                reason,
                stranger,
            } => {
                tracing::info!(peer = %peer.short(), reason, stranger, "closing the connection");
                self.stranger = stranger;
                self.conn.close(VarInt::from_u32(code), reason.as_bytes());
                ctx.stop();
            }
            HelloOutput::SetTimer { at, timer } => {
                let wait = at.saturating_duration_since(Instant::now());
                ctx.run_later(wait, move |act, ctx| {
                    act.feed(HelloInput::Timer(timer), ctx)
                });
            }
        }
    }

    /// Starts the channel actor and its reader and writer tasks on an accepted stream pair.
    fn start_channel(
        &mut self,
        start: StartedChannel,
        (mut send, mut recv): StreamPair,
        ctx: &mut Context<Self>,
    ) {
        let StartedChannel {
            space_key,
            space,
            peer_auth,
            stream,
            leaving,
        } = start;
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ReplMessage>();
        let channel = ChannelActor::new(space, space_key, self.peer, Some(peer_auth), out_tx)
            .on_leaving(ctx.address().recipient(), stream);
        let channel = if leaving { channel.leaving() } else { channel }.start();
        let peer = self.peer;
        let peer_label = peer.short();
        let metrics = self.metrics.clone();
        // A frame that cannot be written leaves the stream useless: the writer resets it and
        // tells the reader to stop, so that the channel ends and is opened again.
        let (write_failed, mut failed) = oneshot::channel::<()>();
        actix::spawn(async move {
            // The frames queued when the writer wakes go out in one stream write (up to
            // WRITE_BATCH_BYTES, so that one write never holds a huge buffer).
            // Blocks go out in compact form (`replication/wire.rs`), in stream order.
            let mut encoder = WireEncoder::new();
            let mut buf = Vec::new();
            while let Some(first) = out_rx.recv().await {
                buf.clear();
                let mut next = Some(first);
                let mut failed = None;
                while let Some(msg) = next.take() {
                    let kind = msg.kind();
                    match encode_frame(&encoder.encode(msg), &mut buf) {
                        Ok(bytes) => count_frame(&metrics, "sent", &peer_label, kind, bytes),
                        Err(e) => {
                            failed = Some((kind, e.to_string()));
                            break;
                        }
                    }
                    if buf.len() < WRITE_BATCH_BYTES {
                        next = out_rx.try_recv().ok();
                    }
                }
                let written = match failed {
                    Some(failure) => Err(failure),
                    None => send
                        .write_all(&buf)
                        .await
                        .map_err(|e| ("frames", e.to_string())),
                };
                if let Err((kind, e)) = written {
                    tracing::warn!(peer = %peer.short(), space = %space_key.short(), frame = kind, error = %e,
                        "cannot write a replication frame; resetting the channel, to be opened again");
                    let _ = send.reset(VarInt::from_u32(close::BAD_FRAME));
                    let _ = write_failed.send(());
                    return;
                }
            }
            let _ = send.finish();
        });
        let metrics = self.metrics.clone();
        let peer_label = peer.short();
        let reader_channel = channel.clone();
        let conn = self.conn.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let mut writer_running = true;
            let mut reset = false;
            let mut decoder = WireDecoder::new();
            loop {
                // The read is never dropped mid-frame except when the writer failed (the
                // stream is given up then): the writer merely finishing does not cancel it.
                let read = read_frame_sized::<WireMessage>(&mut recv);
                tokio::pin!(read);
                let frame = loop {
                    tokio::select! {
                        biased;
                        result = &mut failed, if writer_running => {
                            writer_running = false;
                            if result.is_ok() {
                                break None;
                            }
                        }
                        frame = &mut read => break Some(frame),
                    }
                };
                let Some(frame) = frame else {
                    reset = true;
                    break;
                };
                match frame {
                    Ok(Some((wire, bytes))) => {
                        let msg = match decoder.decode(wire) {
                            Ok(msg) => msg,
                            Err(e) => {
                                tracing::warn!(peer = %peer.short(), space = %space_key.short(), error = %e, "bad compact blocks; closing the connection");
                                conn.close(VarInt::from_u32(close::BAD_FRAME), b"bad frame");
                                break;
                            }
                        };
                        count_frame(&metrics, "received", &peer_label, msg.kind(), bytes);
                        if reader_channel.send(Inbound(msg)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(FrameError::Io(e)) => {
                        // The stream or connection went away (peer shut down, timeout): not
                        // the peer's fault, and there is nothing left to close.
                        tracing::debug!(peer = %peer.short(), space = %space_key.short(), error = %e, "replication stream ended");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer.short(), space = %space_key.short(), error = %e, "bad replication frame; closing the connection");
                        conn.close(VarInt::from_u32(close::BAD_FRAME), b"bad frame");
                        break;
                    }
                }
            }
            if reset {
                let _ = recv.stop(VarInt::from_u32(close::BAD_FRAME));
            }
            reader_channel.do_send(CloseChannel);
            me.do_send(ChannelEnded(space_key, stream));
        });
        self.channels.insert(
            space_key,
            RunningChannel {
                stream,
                actor: channel,
                leaving,
            },
        );
        if !leaving {
            self.events.do_send(ConnectionEvent::ChannelOpened {
                device: self.peer,
                id: self.id,
                space_key,
            });
        }
    }
}

/// What `start_channel` starts: the channel of `space_key` on `stream`.
struct StartedChannel {
    space_key: PublicKey,
    space: Addr<SpaceActor>,
    peer_auth: Credential,
    stream: StreamId,
    leaving: bool,
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Incoming streams.
        let conn = self.conn.clone();
        let me = ctx.address();
        actix::spawn(async move {
            while let Ok((send, recv)) = conn.accept_bi().await {
                if me.send(IncomingStream(send, recv)).await.is_err() {
                    break;
                }
            }
            me.do_send(ConnectionLost);
        });
        let outputs = self.core.start(Instant::now());
        self.carry_out(outputs, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for running in std::mem::take(&mut self.channels).into_values() {
            running.actor.do_send(CloseChannel);
        }
        self.conn.close(VarInt::from_u32(close::NORMAL), b"bye");
        self.events.do_send(ConnectionEvent::Closed {
            device: self.peer,
            id: self.id,
            stranger: self.stranger,
        });
    }
}

/// Reads the first frame of a stream (within [`HELLO_TIMEOUT`]) as the core sees it.
async fn first_frame(recv: &mut quinn::RecvStream) -> FirstFrame {
    match tokio::time::timeout(HELLO_TIMEOUT, read_frame::<WireMessage>(recv)).await {
        Ok(Ok(Some(WireMessage::Hello { topic, device_auth }))) => {
            FirstFrame::Hello { topic, device_auth }
        }
        Ok(Ok(Some(other))) => FirstFrame::NotHello(format!("a {} frame", other.kind())),
        Ok(Err(FrameError::Io(e))) => FirstFrame::Gone(format!("stream failed: {e}")),
        Ok(Err(e)) => FirstFrame::NotHello(format!("a malformed frame ({e})")),
        Ok(Ok(None)) => FirstFrame::Gone("stream ended".into()),
        Err(_) => FirstFrame::Gone(format!("no frame within {HELLO_TIMEOUT:?}")),
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct IncomingStream(quinn::SendStream, quinn::RecvStream);

impl Handler<IncomingStream> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: IncomingStream, ctx: &mut Context<Self>) {
        let IncomingStream(send, mut recv) = msg;
        let stream = self.new_stream_id();
        let peer = self.peer;
        async move {
            let kind = tokio::time::timeout(HELLO_TIMEOUT, read_stream_kind(&mut recv)).await;
            let frame = match kind {
                Ok(Ok(StreamKind::Replication)) => first_frame(&mut recv).await,
                Ok(Ok(StreamKind::Invitation)) => return (send, recv, None),
                Ok(Err(e @ StreamKindError::Unknown(_))) => FirstFrame::NotHello(e.to_string()),
                Ok(Err(e @ StreamKindError::Gone(_))) => FirstFrame::Gone(e.to_string()),
                Err(_) => FirstFrame::Gone(format!("no preamble within {HELLO_TIMEOUT:?}")),
            };
            (send, recv, Some(frame))
        }
        .into_actor(self)
        .map(move |(send, recv, frame), act, ctx| {
            let Some(frame) = frame else {
                // An invitation handshake: handed over whole; the guard reports its end.
                act.feed(HelloInput::SideOpened(stream), ctx);
                let side = SideStream {
                    device: peer,
                    send,
                    recv,
                    guard: SideStreamGuard {
                        conn: ctx.address(),
                        stream,
                    },
                };
                act.invitations.do_send(IncomingInvitation(side));
                return;
            };
            if let FirstFrame::NotHello(what) | FirstFrame::Gone(what) = &frame {
                tracing::warn!(peer = %peer.short(), %what, "stream did not start with a Hello");
            }
            act.streams.insert(stream, (send, recv));
            act.feed(HelloInput::First { stream, frame }, ctx);
        })
        .spawn(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ConnectionLost;

impl Handler<ConnectionLost> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, _: ConnectionLost, ctx: &mut Context<Self>) {
        tracing::info!(peer = %self.peer.short(), reason = ?self.conn.close_reason(), "connection closed");
        ctx.stop();
    }
}

/// The channel of a space on a stream found that its peer is no longer a member: it is being
/// told so (a leaving channel now), and is no longer a peer of the space.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerLeaving {
    pub space_key: PublicKey,
    pub stream: StreamId,
}

impl Handler<PeerLeaving> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: PeerLeaving, _: &mut Context<Self>) {
        let Some(running) = self.channels.get_mut(&msg.space_key) else {
            return;
        };
        if running.stream == msg.stream && !running.leaving {
            running.leaving = true;
            self.events.do_send(ConnectionEvent::ChannelClosed {
                device: self.peer,
                id: self.id,
                space_key: msg.space_key,
            });
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ChannelEnded(PublicKey, StreamId);

impl Handler<ChannelEnded> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, ChannelEnded(space_key, stream): ChannelEnded, ctx: &mut Context<Self>) {
        // A channel that a newer stream replaced ends later: only the current one counts.
        if self
            .channels
            .get(&space_key)
            .is_some_and(|c| c.stream == stream)
        {
            let leaving = self.channels.remove(&space_key).is_some_and(|c| c.leaving);
            if !leaving {
                self.events.do_send(ConnectionEvent::ChannelClosed {
                    device: self.peer,
                    id: self.id,
                    space_key,
                });
            }
            self.feed(HelloInput::ChannelEnded(space_key), ctx);
        }
    }
}

/// Checks the peer's Hello against our space: Ok if it is a member (or if we cannot tell yet).
async fn authorize(
    space: &Addr<SpaceActor>,
    device: PublicKey,
    auth: Credential,
) -> Result<(), PeerRefused> {
    match space.send(AuthorizePeer { device, auth }).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err("space is shutting down".into()),
    }
}

/// Open a replication channel for a space (if there is none yet).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenChannel {
    pub space_key: PublicKey,
    pub space: Addr<SpaceActor>,
}

impl Handler<OpenChannel> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: OpenChannel, ctx: &mut Context<Self>) {
        self.spaces.insert(msg.space_key, msg.space);
        if self.device_auth.is_none() {
            self.deferred.insert(msg.space_key);
            return;
        }
        self.feed(HelloInput::OpenWanted(msg.space_key), ctx);
    }
}

/// Our device credential, now that there is one (a device invitation's guest took its
/// identity on): channels asked for meanwhile open now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetDeviceAuth(pub Credential);

impl Handler<SetDeviceAuth> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: SetDeviceAuth, ctx: &mut Context<Self>) {
        self.device_auth = Some(msg.0);
        for space in std::mem::take(&mut self.deferred) {
            self.feed(HelloInput::OpenWanted(space), ctx);
        }
    }
}

/// Close the connection with an application code.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseConnection {
    pub code: u32,
    pub reason: String,
}

impl Handler<CloseConnection> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: CloseConnection, ctx: &mut Context<Self>) {
        self.conn
            .close(VarInt::from_u32(msg.code), msg.reason.as_bytes());
        ctx.stop();
    }
}

/// Open an invitation stream to the peer (the guest side of a handshake).
#[derive(Message)]
#[rtype(result = "Result<SideStream, String>")]
pub struct OpenSideStream;

impl Handler<OpenSideStream> for ConnectionActor {
    type Result = ResponseActFuture<Self, Result<SideStream, String>>;
    fn handle(&mut self, _: OpenSideStream, ctx: &mut Context<Self>) -> Self::Result {
        let stream = self.new_stream_id();
        // Held from now, so the connection is not closed while the stream opens.
        self.feed(HelloInput::SideOpened(stream), ctx);
        let guard = SideStreamGuard {
            conn: ctx.address(),
            stream,
        };
        let conn = self.conn.clone();
        let device = self.peer;
        Box::pin(
            async move { open_stream(&conn, StreamKind::Invitation).await }
                .into_actor(self)
                .map(move |opened, _, _| {
                    let (send, recv) = opened?;
                    Ok(SideStream {
                        device,
                        send,
                        recv,
                        guard,
                    })
                }),
        )
    }
}

/// A side stream's holder vouched for the peer.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct SideStreamVouched(pub StreamId);

impl Handler<SideStreamVouched> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: SideStreamVouched, ctx: &mut Context<Self>) {
        self.feed(HelloInput::SideVouched(msg.0), ctx);
    }
}

/// A side stream's holder let it go.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct SideStreamEnded(pub StreamId);

impl Handler<SideStreamEnded> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: SideStreamEnded, ctx: &mut Context<Self>) {
        self.feed(HelloInput::SideEnded(msg.0), ctx);
    }
}

/// Counts one replication frame of `kind` sent to or received from `peer`.
fn count_frame(metrics: &Metrics, direction: &str, peer: &str, kind: &str, bytes: usize) {
    let labels = [("peer", peer), ("kind", kind)];
    metrics.add(&format!("echo_frames_{direction}_total"), &labels, 1);
    metrics.add(
        &format!("echo_frame_bytes_{direction}_total"),
        &labels,
        bytes as u64,
    );
}
