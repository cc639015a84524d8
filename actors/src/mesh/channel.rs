//! `ChannelActor`: one replication channel (one connection x one space). It owns a
//! [`ReplicationCore`] and carries out its outputs: frames go to `outbound` (a writer task
//! puts them on the QUIC stream, or a test pipe), block reads and ingests go to the
//! `SpaceActor`, and head changes of the space come back in as `LocalHeads`.
//!
//! The channel starts after both `Hello`s were exchanged and checked, and checks its peer
//! once more as it starts watching the space (the space may have changed in between). It
//! stops on a protocol violation, when `outbound` is closed, or when told to; dropping it
//! closes the stream. When the peer loses its membership, the channel serves it for a
//! short grace period (so that it learns of its removal or demotion from the credentials
//! themselves) and takes no more blocks from it, then stops.
//!
//! A *leaving* channel ([`ChannelActor::leaving`]) is one to a peer that was a former member
//! already when it said Hello (a REMOVED identity, a revoked device): it would never learn
//! of that otherwise, since no member opens a channel to it. It serves the space's control
//! feeds and nothing else (`ReplicationCore::serving_only`: no data written since, no
//! presence), takes nothing, and stops after the same grace.
//!
//! Presence frames are not replication: the channel registers with the space's presence
//! core (`PresenceJoin`), hands it every `Presence` frame it reads and writes every frame
//! the core sends it (`PresenceOut`). A leaving peer gets and gives no presence.

use actix::prelude::*;
use tokio::sync::mpsc;

use super::connection::PeerLeaving;
use super::hello::StreamId;
use crate::credentials::Credential;
use crate::presence::ChannelId;
use crate::replication::{ReplInput, ReplMessage, ReplOutput, ReplicationCore};
use crate::space::{
    AuthorizePeer, CredentialsPast, GetHeads, HeadsChanged, IngestBlocks, PresenceIn, PresenceJoin,
    PresenceLeave, PresenceOut, ReadBlocks, SpaceActor, WatchHeads,
};
use crate::types::PublicKey;

/// One replication channel.
pub struct ChannelActor {
    core: ReplicationCore,
    space: Addr<SpaceActor>,
    space_key: PublicKey,
    peer: PublicKey,
    /// The credential the peer proved its identity with (None in hand-wired tests).
    peer_auth: Option<Credential>,
    control_version: u64,
    outbound: mpsc::UnboundedSender<ReplMessage>,
    /// The peer is no longer a member: it is being told so, and nothing it sends is taken.
    leaving: bool,
    /// Our id with the space's presence core, once registered.
    presence: Option<ChannelId>,
    /// A leaving channel from the start (see the module docs).
    told_only: bool,
    /// Told when the peer turns out to be no member (the connection stops counting it as
    /// a peer of the space), with the stream this channel runs on.
    leaving_to: Option<(Recipient<PeerLeaving>, StreamId)>,
}

/// How long a channel to a peer that lost its membership stays open so that the peer can
/// fetch the credentials that tell it so (it is served, never heard).
const LEAVE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl ChannelActor {
    pub fn new(
        space: Addr<SpaceActor>,
        space_key: PublicKey,
        peer: PublicKey,
        peer_auth: Option<Credential>,
        outbound: mpsc::UnboundedSender<ReplMessage>,
    ) -> Self {
        ChannelActor {
            core: ReplicationCore::new(),
            space,
            space_key,
            peer,
            peer_auth,
            control_version: 0,
            outbound,
            leaving: false,
            presence: None,
            told_only: false,
            leaving_to: None,
        }
    }

    /// Tells `to` when the peer turns out to be no member.
    pub fn on_leaving(mut self, to: Recipient<PeerLeaving>, stream: StreamId) -> Self {
        self.leaving_to = Some((to, stream));
        self
    }

    /// This channel as a leaving one: the peer is a former member, to be told so.
    pub fn leaving(mut self) -> Self {
        self.leaving = true;
        self.told_only = true;
        self
    }

    /// A leaving channel's start: the control feeds to serve, then our heads of them.
    fn start_leaving(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(peer = %self.peer.short(), space = %self.space_key.short(),
            "a former member asked for the space; serving it the credentials that tell it so");
        self.space.do_send(WatchHeads(ctx.address().recipient()));
        ctx.run_later(LEAVE_GRACE, |_, ctx| ctx.stop());
        let space = self.space.clone();
        async move {
            let limits = space.send(CredentialsPast).await.ok()?;
            let local = space.send(GetHeads).await.ok()?;
            Some((limits, local))
        }
        .into_actor(self)
        .map(|res, act, ctx| match res {
            Some((limits, local)) => {
                act.core = ReplicationCore::serving_only(limits);
                act.input(ReplInput::Opened { local }, ctx);
            }
            None => ctx.stop(),
        })
        .wait(ctx);
    }

    fn input(&mut self, input: ReplInput, ctx: &mut Context<Self>) {
        tracing::debug!(peer = %self.peer.short(), ?input, "channel input");
        for output in self.core.handle(input) {
            tracing::debug!(peer = %self.peer.short(), ?output, "channel output");
            match output {
                ReplOutput::Send(msg) => {
                    if self.outbound.send(msg).is_err() {
                        ctx.stop();
                        return;
                    }
                }
                ReplOutput::ReadBlocks { feed, from, to } => {
                    self.space
                        .send(ReadBlocks { feed, from, to })
                        .into_actor(self)
                        .map(|res, act, ctx| {
                            if let Ok(blocks) = res {
                                act.input(ReplInput::BlocksRead(blocks), ctx);
                            }
                        })
                        .spawn(ctx);
                }
                ReplOutput::Ingest(blocks) => {
                    // Wait for the space before reading further frames' effects: ingest is
                    // ordered per channel.
                    self.space
                        .send(IngestBlocks(blocks))
                        .into_actor(self)
                        .map(|res, act, ctx| {
                            if let Ok(report) = res {
                                if !report.rejected.is_empty() {
                                    // A peer only serves blocks it verified itself; one that
                                    // sends invalid blocks is broken or hostile.
                                    tracing::warn!(peer = %act.peer.short(), space = %act.space_key.short(),
                                        rejected = ?report.rejected, "peer sent blocks that are not part of the space; closing the channel");
                                    ctx.stop();
                                }
                            }
                        })
                        .wait(ctx);
                }
                ReplOutput::SetTimer { after, timer } => {
                    ctx.run_later(after, move |act, ctx| {
                        act.input(ReplInput::Timer(timer), ctx)
                    });
                }
                ReplOutput::Close(reason) => {
                    tracing::warn!(peer = %self.peer.short(), space = %self.space_key.short(), %reason, "closing replication channel");
                    ctx.stop();
                    return;
                }
            }
        }
    }
}

impl ChannelActor {
    /// After a membership change: a peer that is no longer a member loses the channel.
    fn recheck_peer(&mut self, ctx: &mut Context<Self>) {
        let Some(auth) = self.peer_auth.clone().filter(|_| !self.told_only) else {
            return;
        };
        self.space
            .send(AuthorizePeer { device: self.peer, auth })
            .into_actor(self)
            .map(|res, act, ctx| {
                if let Ok(Err(reason)) = res {
                    if !act.leaving {
                        tracing::warn!(peer = %act.peer.short(), space = %act.space_key.short(), %reason,
                            "peer is no longer a member; closing the channel once it was told");
                        act.leaving = true;
                        if let Some((to, stream)) = &act.leaving_to {
                            to.do_send(PeerLeaving {
                                space_key: act.space_key,
                                stream: *stream,
                            });
                        }
                        ctx.run_later(LEAVE_GRACE, |_, ctx| ctx.stop());
                    }
                }
            })
            .wait(ctx);
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.told_only {
            return self.start_leaving(ctx);
        }
        self.space.do_send(WatchHeads(ctx.address().recipient()));
        // The connection checked the peer before it started us, but the space may have
        // changed since (an answering Hello was written in between). Checked again now,
        // queued behind `WatchHeads`: a change before this check is seen by it, one after
        // reaches us as a new control version.
        self.recheck_peer(ctx);
        self.space
            .send(PresenceJoin {
                device: self.peer,
                auth: self.peer_auth.clone(),
                channel: ctx.address().recipient(),
            })
            .into_actor(self)
            .map(|res, act, _| act.presence = res.ok())
            .wait(ctx);
        self.space
            .send(GetHeads)
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(local) => act.input(ReplInput::Opened { local }, ctx),
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(id) = self.presence {
            self.space.do_send(PresenceLeave(id));
        }
    }
}

/// A frame that arrived from the peer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub ReplMessage);

impl Handler<Inbound> for ChannelActor {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        if self.leaving && matches!(msg.0, ReplMessage::Blocks(_) | ReplMessage::Presence(_)) {
            return;
        }
        if let ReplMessage::Presence(frame) = msg.0 {
            if let Some(channel) = self.presence {
                self.space.do_send(PresenceIn { channel, frame });
            }
            return;
        }
        self.input(ReplInput::Received(msg.0), ctx);
    }
}

impl Handler<HeadsChanged> for ChannelActor {
    type Result = ();
    fn handle(&mut self, msg: HeadsChanged, ctx: &mut Context<Self>) {
        if msg.control_version != self.control_version {
            self.control_version = msg.control_version;
            self.recheck_peer(ctx);
        }
        self.input(ReplInput::LocalHeads(msg.heads), ctx);
    }
}

impl Handler<PresenceOut> for ChannelActor {
    type Result = ();
    fn handle(&mut self, msg: PresenceOut, ctx: &mut Context<Self>) {
        if !self.leaving && self.outbound.send(ReplMessage::Presence(msg.0)).is_err() {
            ctx.stop();
        }
    }
}

/// Stop the channel (connection closing, node shutting down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseChannel;

impl Handler<CloseChannel> for ChannelActor {
    type Result = ();
    fn handle(&mut self, _: CloseChannel, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
