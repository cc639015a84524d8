//! `ConnectionActor`: one authenticated QUIC connection to one peer device, carrying one
//! replication channel per shared space, each on its own bi-directional stream.
//!
//! Opening a channel: the opener sends `Hello { space_key, device_auth }`; the other side
//! checks that the TLS device key belongs to a member of that space (via the credential and
//! its own control state) and answers with its own `Hello`, which the opener checks the same
//! way (a node still joining, with no control state yet, cannot check and relies on
//! verifying every block instead). Refusals reset the stream with an application code and a
//! log line. If both sides open the same space at once, the channel opened by the lower
//! device key wins. A connection that ends up with no channel is closed `NOT_A_MEMBER`: an
//! accepted one if no channel opened within [`STRANGER_DEADLINE`] (a peer that shares a
//! space answers a Hello in one round trip), one we dialed after [`IDLE_NO_CHANNEL`], and
//! either one at once when the peer's first frame on a stream is not a Hello while no
//! channel is open (on a connection with channels, only that stream is reset, `PROTOCOL`).
//! Such a close is reported as `stranger`, so that the network actor penalizes the address.
//! A frame that cannot be written (for any reason) is logged at WARN with the peer, the
//! space and the reason, and resets the channel's stream both ways (`BAD_FRAME`): the
//! channel ends, and the network actor offers it again.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use quinn::VarInt;
use tokio::sync::{mpsc, oneshot};

use super::{ChannelActor, CloseChannel, Inbound};
use crate::credentials::Credential;
use crate::replication::ReplMessage;
use crate::signal::{space_topic, Topic};
use crate::space::{AuthorizePeer, MayOpenTo, SpaceActor};
use crate::transport::{close, read_frame, write_frame, FrameError};
use crate::types::PublicKey;

/// How long the other side has to answer a `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection we dialed may stay without any channel before it is closed (we
/// dialed it because signaling or the configuration named the peer).
const IDLE_NO_CHANNEL: Duration = Duration::from_secs(15);
/// How long a connection we accepted has to show a shared space (an open channel).
pub const STRANGER_DEADLINE: Duration = Duration::from_secs(2);

enum ChannelState {
    /// We sent a Hello and wait for the answer.
    Opening,
    Open(Addr<ChannelActor>),
}

/// Reports from a connection to whoever started it (the network actor).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum ConnectionEvent {
    ChannelOpened {
        device: PublicKey,
        space_key: PublicKey,
    },
    ChannelClosed {
        device: PublicKey,
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

/// One peer connection.
pub struct ConnectionActor {
    id: u64,
    conn: quinn::Connection,
    peer: PublicKey,
    me: PublicKey,
    /// We dialed this connection (rather than accepted it).
    originated: bool,
    device_auth: Credential,
    channels: BTreeMap<PublicKey, ChannelState>,
    events: Recipient<ConnectionEvent>,
    spaces: Recipient<LookupSpace>,
    /// Set when we close because the peer showed no shared space.
    stranger: bool,
}

impl ConnectionActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        conn: quinn::Connection,
        peer: PublicKey,
        me: PublicKey,
        originated: bool,
        device_auth: Credential,
        events: Recipient<ConnectionEvent>,
        spaces: Recipient<LookupSpace>,
    ) -> Self {
        ConnectionActor {
            id,
            conn,
            peer,
            me,
            originated,
            device_auth,
            channels: BTreeMap::new(),
            events,
            spaces,
            stranger: false,
        }
    }

    /// Closes the whole connection because the peer showed no shared space.
    fn close_stranger(&mut self, reason: &'static str, ctx: &mut Context<Self>) {
        self.stranger = true;
        self.conn
            .close(VarInt::from_u32(close::NOT_A_MEMBER), reason.as_bytes());
        ctx.stop();
    }

    fn hello(&self, space_key: PublicKey) -> ReplMessage {
        ReplMessage::Hello {
            topic: space_topic(&space_key),
            device_auth: Box::new(self.device_auth.clone()),
        }
    }

    /// Starts the channel actor and its reader and writer tasks on an accepted stream pair.
    fn start_channel(
        &mut self,
        space_key: PublicKey,
        space: Addr<SpaceActor>,
        peer_auth: Credential,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        ctx: &mut Context<Self>,
    ) {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ReplMessage>();
        let channel =
            ChannelActor::new(space, space_key, self.peer, Some(peer_auth), out_tx).start();
        let peer = self.peer;
        // A frame that cannot be written leaves the stream useless: the writer resets it and
        // tells the reader to stop, so that the channel ends and is opened again.
        let (write_failed, mut failed) = oneshot::channel::<()>();
        actix::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if let Err(e) = write_frame(&mut send, &msg).await {
                    tracing::warn!(peer = %peer.short(), space = %space_key.short(), frame = msg.kind(), error = %e,
                        "cannot write a replication frame; resetting the channel, to be opened again");
                    let _ = send.reset(VarInt::from_u32(close::BAD_FRAME));
                    let _ = write_failed.send(());
                    return;
                }
            }
            let _ = send.finish();
        });
        let reader_channel = channel.clone();
        let conn = self.conn.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let mut writer_running = true;
            let mut reset = false;
            loop {
                // The read is never dropped mid-frame except when the writer failed (the
                // stream is given up then): the writer merely finishing does not cancel it.
                let read = read_frame::<ReplMessage>(&mut recv);
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
                    Ok(Some(msg)) => {
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
            me.do_send(ChannelEnded(space_key));
        });
        self.channels.insert(space_key, ChannelState::Open(channel));
        self.events.do_send(ConnectionEvent::ChannelOpened {
            device: self.peer,
            space_key,
        });
    }
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Incoming channels.
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
        let deadline = if self.originated {
            IDLE_NO_CHANNEL
        } else {
            STRANGER_DEADLINE
        };
        ctx.run_later(deadline, |act, ctx| {
            let open = act
                .channels
                .values()
                .any(|c| matches!(c, ChannelState::Open(_)));
            if !open {
                tracing::info!(peer = %act.peer.short(), originated = act.originated, "no shared space shown with this peer in time; closing");
                act.close_stranger("no shared space", ctx);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for state in std::mem::take(&mut self.channels).into_values() {
            if let ChannelState::Open(ch) = state {
                ch.do_send(CloseChannel);
            }
        }
        self.conn.close(VarInt::from_u32(close::NORMAL), b"bye");
        self.events.do_send(ConnectionEvent::Closed {
            device: self.peer,
            id: self.id,
            stranger: self.stranger,
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct IncomingStream(quinn::SendStream, quinn::RecvStream);

#[derive(Message)]
#[rtype(result = "()")]
struct ConnectionLost;

#[derive(Message)]
#[rtype(result = "()")]
struct ChannelEnded(PublicKey);

/// We refused a peer's channel because it is not a member.
#[derive(Message)]
#[rtype(result = "()")]
struct Refused;

impl Handler<Refused> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, _: Refused, ctx: &mut Context<Self>) {
        if self.channels.is_empty() {
            tracing::warn!(peer = %self.peer.short(), "closing connection to a device that is not a member of any space we share");
            self.close_stranger("not a member", ctx);
        }
    }
}

/// A peer's stream started with something other than a Hello.
#[derive(Message)]
#[rtype(result = "()")]
struct NotHello {
    send: quinn::SendStream,
    what: String,
}

impl Handler<NotHello> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: NotHello, ctx: &mut Context<Self>) {
        let open = self
            .channels
            .values()
            .any(|c| matches!(c, ChannelState::Open(_)));
        if open {
            tracing::warn!(peer = %self.peer.short(), what = %msg.what, "stream did not start with a Hello; resetting it");
            refuse(msg.send, close::PROTOCOL);
        } else {
            // A peer that shares no space with us and breaks the protocol: the documented
            // answer is the connection's close, not only the stream's reset.
            tracing::warn!(peer = %self.peer.short(), what = %msg.what, "first frame from a peer with no shared space is not a Hello; closing the connection");
            self.close_stranger("not a member", ctx);
        }
    }
}

/// Our attempt to open a channel failed (the peer refused, or won the race).
#[derive(Message)]
#[rtype(result = "()")]
struct OpenFailed(PublicKey);

impl Handler<OpenFailed> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: OpenFailed, _: &mut Context<Self>) {
        if matches!(self.channels.get(&msg.0), Some(ChannelState::Opening)) {
            self.channels.remove(&msg.0);
        }
    }
}

/// A Hello exchange finished: start the channel, or drop the stream.
#[derive(Message)]
#[rtype(result = "()")]
struct HelloDone {
    space_key: PublicKey,
    space: Addr<SpaceActor>,
    /// The credential the peer proved its identity with.
    peer_auth: Credential,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// We opened this stream (rather than the peer).
    ours: bool,
}

impl Handler<ConnectionLost> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, _: ConnectionLost, ctx: &mut Context<Self>) {
        tracing::info!(peer = %self.peer.short(), reason = ?self.conn.close_reason(), "connection closed");
        ctx.stop();
    }
}

impl Handler<ChannelEnded> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: ChannelEnded, _: &mut Context<Self>) {
        if self.channels.remove(&msg.0).is_some() {
            self.events.do_send(ConnectionEvent::ChannelClosed {
                device: self.peer,
                space_key: msg.0,
            });
        }
    }
}

/// Refuses a stream with an application code.
fn refuse(mut send: quinn::SendStream, code: u32) {
    let _ = send.reset(VarInt::from_u32(code));
}

/// Checks the peer's Hello against our space: Ok if it is a member (or if we cannot tell yet).
async fn authorize(
    space: &Addr<SpaceActor>,
    device: PublicKey,
    auth: Credential,
) -> Result<(), String> {
    match space.send(AuthorizePeer { device, auth }).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err("space is shutting down".into()),
    }
}

impl Handler<IncomingStream> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: IncomingStream, ctx: &mut Context<Self>) {
        let IncomingStream(send, mut recv) = msg;
        let peer = self.peer;
        let spaces = self.spaces.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let hello =
                tokio::time::timeout(HELLO_TIMEOUT, read_frame::<ReplMessage>(&mut recv)).await;
            let (topic, auth) = match hello {
                Ok(Ok(Some(ReplMessage::Hello { topic, device_auth }))) => (topic, *device_auth),
                Ok(Ok(Some(other))) => {
                    me.do_send(NotHello {
                        send,
                        what: format!("a {} frame", other.kind()),
                    });
                    return;
                }
                Ok(Err(e)) if !matches!(e, FrameError::Io(_)) => {
                    me.do_send(NotHello {
                        send,
                        what: format!("a malformed frame ({e})"),
                    });
                    return;
                }
                other => {
                    // The stream ended, broke or stayed silent: nothing the peer did wrong
                    // that we can tell; the stream alone is refused.
                    tracing::info!(peer = %peer.short(), result = ?other.map(|r| r.map(|m| m.is_some())), "channel did not start with a Hello; refusing it");
                    refuse(send, close::PROTOCOL);
                    return;
                }
            };
            let Ok(Some((space_key, space))) = spaces.send(LookupSpace(topic)).await else {
                tracing::info!(peer = %peer.short(), "peer asked for a space we do not have");
                refuse(send, close::NOT_A_MEMBER);
                me.do_send(Refused);
                return;
            };
            if let Err(reason) = authorize(&space, peer, auth.clone()).await {
                tracing::warn!(peer = %peer.short(), space = %space_key.short(), %reason, "refusing channel");
                refuse(send, close::NOT_A_MEMBER);
                me.do_send(Refused);
                return;
            }
            me.do_send(HelloDone {
                space_key,
                space,
                peer_auth: auth,
                send,
                recv,
                ours: false,
            });
        });
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
        if self.channels.contains_key(&msg.space_key) {
            return;
        }
        self.channels.insert(msg.space_key, ChannelState::Opening);
        let conn = self.conn.clone();
        let hello = self.hello(msg.space_key);
        let topic = space_topic(&msg.space_key);
        let peer = self.peer;
        let me = ctx.address();
        actix::spawn(async move {
            // We reveal that we hold this space (and our identity) only to a device we know as
            // a member, or while we are joining and know nobody yet.
            if !matches!(msg.space.send(MayOpenTo(peer)).await, Ok(true)) {
                me.do_send(OpenFailed(msg.space_key));
                return;
            }
            let opened = async {
                let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                write_frame(&mut send, &hello)
                    .await
                    .map_err(|e| e.to_string())?;
                match tokio::time::timeout(HELLO_TIMEOUT, read_frame::<ReplMessage>(&mut recv))
                    .await
                {
                    Ok(Ok(Some(ReplMessage::Hello {
                        topic: t,
                        device_auth,
                    }))) if t == topic => {
                        authorize(&msg.space, peer, (*device_auth).clone()).await?;
                        Ok((send, recv, *device_auth))
                    }
                    Ok(Ok(Some(_))) => {
                        Err("peer answered with something other than Hello".to_string())
                    }
                    Ok(Ok(None)) => Err("peer closed the channel".to_string()),
                    Ok(Err(e)) => Err(format!("peer refused the channel: {e}")),
                    Err(_) => Err("peer did not answer in time".to_string()),
                }
            };
            match opened.await {
                Ok((send, recv, peer_auth)) => me.do_send(HelloDone {
                    space_key: msg.space_key,
                    space: msg.space,
                    peer_auth,
                    send,
                    recv,
                    ours: true,
                }),
                Err(reason) => {
                    tracing::info!(peer = %peer.short(), space = %msg.space_key.short(), %reason, "channel not opened");
                    me.do_send(OpenFailed(msg.space_key));
                }
            }
        });
    }
}

impl Handler<HelloDone> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: HelloDone, ctx: &mut Context<Self>) {
        let HelloDone {
            space_key,
            space,
            peer_auth,
            mut send,
            recv,
            ours,
        } = msg;
        match (self.channels.get(&space_key), ours) {
            (Some(ChannelState::Open(_)), true) => {
                // The peer's channel won the race; ours is not needed.
                let _ = send.finish();
            }
            (Some(ChannelState::Open(_)), false) => refuse(send, close::DUPLICATE),
            (Some(ChannelState::Opening), false) if self.me < self.peer => {
                // We both opened; the lower device key's channel wins, and that is ours.
                refuse(send, close::DUPLICATE);
            }
            (_, false) => {
                let hello = self.hello(space_key);
                let me = ctx.address();
                actix::spawn(async move {
                    match write_frame(&mut send, &hello).await {
                        Ok(()) => me.do_send(ChannelReady {
                            space_key,
                            space,
                            peer_auth,
                            send,
                            recv,
                        }),
                        Err(e) => tracing::info!(error = %e, "could not answer Hello"),
                    }
                });
            }
            (_, true) => self.start_channel(space_key, space, peer_auth, send, recv, ctx),
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ChannelReady {
    space_key: PublicKey,
    space: Addr<SpaceActor>,
    peer_auth: Credential,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl Handler<ChannelReady> for ConnectionActor {
    type Result = ();
    fn handle(&mut self, msg: ChannelReady, ctx: &mut Context<Self>) {
        if let Some(ChannelState::Open(old)) = self.channels.get(&msg.space_key) {
            old.do_send(CloseChannel);
        }
        self.start_channel(
            msg.space_key,
            msg.space,
            msg.peer_auth,
            msg.send,
            msg.recv,
            ctx,
        );
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
