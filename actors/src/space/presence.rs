//! The space actor's side of presence: it owns the space's [`PresenceCore`] and only
//! translates. Channels register with [`PresenceJoin`] (answered with their id) and leave
//! with [`PresenceLeave`]; a presence frame a channel reads comes in as [`PresenceIn`] and
//! frames go out to a channel as [`PresenceOut`]. The control state reaches the core as
//! `Members` whenever its version changes; timers are `ctx.run_later` on tokio's clock
//! (simulated under turmoil), and the seq of our announcements comes from the injected
//! wall clock. [`OnlineDevices`] and [`OnlineIdentities`] answer the queries.

use std::collections::{BTreeMap, BTreeSet};

use actix::prelude::*;
// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use super::SpaceActor;
use crate::credentials::{Credential, Role};
use crate::presence::{
    ChannelId, PresenceConfig, PresenceCore, PresenceFrame, PresenceInput, PresenceOutput, Seen,
};
use crate::types::PublicKey;

/// The presence state the space actor keeps next to its core.
pub(super) struct Presence {
    pub(super) core: PresenceCore,
    channels: BTreeMap<ChannelId, Recipient<PresenceOut>>,
    next_channel: ChannelId,
    /// The control-state version the core last heard of.
    members_version: Option<u64>,
}

impl Presence {
    pub(super) fn new(core: PresenceCore) -> Self {
        Presence {
            core,
            channels: BTreeMap::new(),
            next_channel: 0,
            members_version: None,
        }
    }
}

impl SpaceActor {
    /// Presence with these intervals instead of the defaults (before the actor starts).
    pub fn with_presence(mut self, config: PresenceConfig) -> Self {
        let space_key = self.core.record().space_key;
        self.presence = Presence::new(PresenceCore::new(
            config,
            space_key,
            self.signer.key.clone(),
            self.signer.issuer,
        ));
        self
    }

    /// Gives the core one input (after the control state, if that changed) and carries out
    /// its outputs. The control state is handed over lazily, before every other input and
    /// query, so it is never stale when the core decides.
    pub(super) fn presence_input(&mut self, input: PresenceInput, ctx: &mut Context<Self>) {
        self.presence_members(ctx);
        self.presence_apply(input, ctx);
    }

    fn presence_apply(&mut self, input: PresenceInput, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for output in self.presence.core.handle(now, input) {
            match output {
                PresenceOutput::Send { channel, frame } => {
                    if let Some(c) = self.presence.channels.get(&channel) {
                        c.do_send(PresenceOut(frame));
                    }
                }
                PresenceOutput::SetTimer { at, timer } => {
                    ctx.run_later(at.saturating_duration_since(now), move |act, ctx| {
                        let wall_ms = act.clock.now_ms();
                        act.presence_input(PresenceInput::Timer { timer, wall_ms }, ctx);
                    });
                }
                PresenceOutput::Heard { device, identity } => {
                    tracing::trace!(space = %self.core.record().space_key.short(), device = %device.short(), identity = %identity.short(), "presence heard");
                }
                PresenceOutput::Refused { channel, device } => {
                    tracing::warn!(space = %self.core.record().space_key.short(), channel, device = %device.short(),
                        "a presence announcement whose signature does not verify for its device; dropped");
                }
            }
        }
    }

    /// Tells the presence core the control state, if it changed since it last heard.
    fn presence_members(&mut self, ctx: &mut Context<Self>) {
        let version = self.core.control().version();
        if self.presence.members_version == Some(version) {
            return;
        }
        self.presence.members_version = Some(version);
        let state = self.core.state();
        let identities: BTreeSet<PublicKey> = state
            .members()
            .iter()
            .filter(|(_, m)| m.role != Role::Removed)
            .map(|(k, _)| *k)
            .collect();
        let devices: BTreeMap<PublicKey, PublicKey> = state
            .feeds()
            .values()
            .filter(|f| identities.contains(&f.identity_key))
            .map(|f| (f.device_key, f.identity_key))
            .collect();
        self.presence_apply(
            PresenceInput::Members {
                devices,
                identities,
            },
            ctx,
        );
    }

    /// Starts presence (from `started`).
    pub(super) fn presence_start(&mut self, ctx: &mut Context<Self>) {
        let wall_ms = self.clock.now_ms();
        self.presence_input(PresenceInput::Start { wall_ms }, ctx);
    }
}

/// A presence frame for the peer of one channel.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct PresenceOut(pub PresenceFrame);

/// A channel opened to `device`, whose Hello proved `auth` (None in hand-wired tests):
/// answered with the channel's presence id.
#[derive(Message)]
#[rtype(result = "ChannelId")]
pub struct PresenceJoin {
    pub device: PublicKey,
    pub auth: Option<Credential>,
    pub channel: Recipient<PresenceOut>,
}

impl Handler<PresenceJoin> for SpaceActor {
    type Result = MessageResult<PresenceJoin>;
    fn handle(&mut self, msg: PresenceJoin, ctx: &mut Context<Self>) -> Self::Result {
        let id = self.presence.next_channel;
        self.presence.next_channel += 1;
        self.presence.channels.insert(id, msg.channel);
        // Verified at the Hello already; checked again here, for the identity it names.
        let identity = msg
            .auth
            .and_then(|a| a.verify_device_authorization(None, msg.device).ok())
            .map(|d| d.identity);
        self.presence_input(
            PresenceInput::ChannelOpened {
                channel: id,
                device: msg.device,
                identity,
            },
            ctx,
        );
        MessageResult(id)
    }
}

/// A channel ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceLeave(pub ChannelId);

impl Handler<PresenceLeave> for SpaceActor {
    type Result = ();
    fn handle(&mut self, msg: PresenceLeave, ctx: &mut Context<Self>) {
        self.presence.channels.remove(&msg.0);
        self.presence_input(PresenceInput::ChannelClosed { channel: msg.0 }, ctx);
    }
}

/// A presence frame read from a channel.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceIn {
    pub channel: ChannelId,
    pub frame: PresenceFrame,
}

impl Handler<PresenceIn> for SpaceActor {
    type Result = ();
    fn handle(&mut self, msg: PresenceIn, ctx: &mut Context<Self>) {
        self.presence_input(
            PresenceInput::Received {
                channel: msg.channel,
                frame: msg.frame,
            },
            ctx,
        );
    }
}

/// The devices of the space online now (this one included), with identity and silence.
#[derive(Message)]
#[rtype(result = "BTreeMap<PublicKey, Seen>")]
pub struct OnlineDevices;

impl Handler<OnlineDevices> for SpaceActor {
    type Result = MessageResult<OnlineDevices>;
    fn handle(&mut self, _: OnlineDevices, ctx: &mut Context<Self>) -> Self::Result {
        self.presence_members(ctx);
        MessageResult(self.presence.core.online_devices(Instant::now()))
    }
}

/// The identities of the space with a device online now (ours included).
#[derive(Message)]
#[rtype(result = "BTreeSet<PublicKey>")]
pub struct OnlineIdentities;

impl Handler<OnlineIdentities> for SpaceActor {
    type Result = MessageResult<OnlineIdentities>;
    fn handle(&mut self, _: OnlineIdentities, ctx: &mut Context<Self>) -> Self::Result {
        self.presence_members(ctx);
        MessageResult(self.presence.core.online_identities(Instant::now()))
    }
}
