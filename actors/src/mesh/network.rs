//! `NetworkActor`: the node's QUIC endpoint and everything above it. It accepts and dials
//! connections (one `ConnectionActor` per peer device, duplicates resolved in favour of the
//! connection started by the lower device key), opens a replication channel for every shared
//! space, keeps static peers connected (reconnect with backoff), runs one [`SwarmCore`] per
//! swarm topic over what signaling reports (every open space's topic; the swarms are
//! kept by topic, apart from spaces, so that invitations can join theirs, and a recovering
//! device seeks under its identity topic), listens under the identity topics of its
//! spaces' members (`identity_topics.rs`, `network_identity.rs`), and answers
//! status queries. Accepted connections hold
//! the slots of an [`AcceptSlots`]: strangers get at most half of them, a member's device
//! evicts an unproven stranger when they are all taken, and addresses whose connections
//! showed no shared space are refused before the TLS handshake for a while.
//!
//! Invitations: incoming invitation streams go to whoever asked with `RouteInvitations`;
//! a guest asks for a connection to a host's device by address with [`ConnectDevice`] (the
//! connection may share no space; its side stream holds it open).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;

use super::identity_topics::IdentityTopics;
use super::side_stream::IncomingInvitation;
use super::slots::{AcceptSlots, Admission, Refusal, SlotLimits};
use super::swarm::SwarmCore;
use super::{
    CloseConnection, ConnectionActor, ConnectionEvent, LookupSpace, OpenChannel, SetDeviceAuth,
};
use crate::credentials::Credential;
use crate::identity::{CurrentSigner, IdentityActor};
use crate::signal::{space_topic, JoinTopic, PeerEvent, SignalClient, Topic};
use crate::space::{KnowsDevice, PeerStatus, SpaceActor, SpaceDirectory, SpaceOpened, WatchSpaces};
use crate::transport::{accept, close, connect};
use crate::types::{Backoff, PublicKey};

/// A `ConnectDevice` request waiting for its device to connect (or its dial to fail).
pub(super) type DeviceWaiter = tokio::sync::oneshot::Sender<Result<Addr<ConnectionActor>, String>>;

const TICK: Duration = Duration::from_millis(250);
const REOFFER: Duration = Duration::from_secs(2);
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How the node takes part in the network.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Peers to keep connected to, whatever the space.
    pub static_peers: Vec<SocketAddr>,
    /// Signaling servers.
    pub signal_servers: Vec<SocketAddr>,
    /// Most connections this node starts per space swarm.
    pub max_originated: usize,
    /// Most connections this node accepts in all.
    pub max_accepted: usize,
    /// Listen under the identity topics of the members of this node's spaces
    /// (`identity_topics.rs`), so that their recovered devices find it through signaling.
    pub listen_for_members: bool,
    /// The IPs other machines reach this node at, for invitation codes when the endpoint is
    /// bound to every interface (the daemon finds them, or takes `run --advertise`).
    pub advertise_ips: Vec<std::net::IpAddr>,
    /// How often this node announces its presence in each space, and after how much
    /// silence a peer counts as offline (`crate::presence`; 10 s and 20 s by default).
    pub presence: crate::presence::PresenceConfig,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            static_peers: vec![],
            signal_servers: vec![],
            max_originated: 4,
            max_accepted: 10,
            listen_for_members: true,
            advertise_ips: vec![],
            presence: Default::default(),
        }
    }
}

pub(super) struct Conn {
    id: u64,
    pub(super) addr: Addr<ConnectionActor>,
    remote: SocketAddr,
    originated: bool,
}

struct StaticPeer {
    addr: SocketAddr,
    device: Option<PublicKey>,
    retry_at: Instant,
    backoff: Backoff,
    dialing: bool,
}

pub(super) struct Space {
    pub(super) addr: Addr<SpaceActor>,
    /// Devices with an open channel for this space.
    peers: BTreeSet<PublicKey>,
    /// A reason to dial static peers (`SpaceOpened::needs_peers`).
    needs_peers: bool,
    /// Our identity space, still joining (`SpaceOpened::identity_space_joining`).
    pub(super) identity_space_joining: bool,
}

/// The node's network.
pub struct NetworkActor {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) me: PublicKey,
    pub(super) config: MeshConfig,
    identity: Addr<IdentityActor>,
    directory: Addr<SpaceDirectory>,
    pub(super) device_auth: Option<Credential>,
    pub(super) spaces: BTreeMap<PublicKey, Space>,
    pub(super) topics: BTreeMap<Topic, PublicKey>,
    /// One swarm per topic joined (listened identity topics excepted).
    pub(super) swarms: BTreeMap<Topic, SwarmCore>,
    /// The identity topics we listen or seek under (`identity_topics.rs`).
    pub(super) identity_topics: IdentityTopics,
    pub(super) conns: BTreeMap<PublicKey, Conn>,
    slots: AcceptSlots,
    /// Devices a channel has opened with (members of a space we share): preferred for slots.
    members_seen: BTreeSet<PublicKey>,
    statics: Vec<StaticPeer>,
    pub(super) signal: Option<Addr<SignalClient>>,
    /// Where incoming invitation streams go.
    pub(super) invitations: Option<Recipient<IncomingInvitation>>,
    /// Told about every connection that comes up (`WatchPeers`).
    pub(super) peer_watchers: Option<Recipient<super::RecoveryStream>>,
    /// `ConnectDevice` requests waiting for a device to connect.
    pub(super) awaited: BTreeMap<PublicKey, Vec<DeviceWaiter>>,
    /// Why the last `ConnectDevice` dial of a device failed.
    pub(super) dial_errors: BTreeMap<PublicKey, String>,
    pub(super) rng: rand_chacha::ChaCha20Rng,
    next_id: u64,
    metrics: crate::metrics::Metrics,
}

impl NetworkActor {
    pub fn new(
        endpoint: quinn::Endpoint,
        me: PublicKey,
        config: MeshConfig,
        identity: Addr<IdentityActor>,
        directory: Addr<SpaceDirectory>,
        rng: rand_chacha::ChaCha20Rng,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        let now = Instant::now();
        let statics = config
            .static_peers
            .iter()
            .map(|addr| StaticPeer {
                addr: *addr,
                device: None,
                retry_at: now,
                backoff: Backoff::new(BACKOFF_START, BACKOFF_MAX),
                dialing: false,
            })
            .collect();
        let slots = AcceptSlots::new(SlotLimits::new(config.max_accepted));
        NetworkActor {
            endpoint,
            me,
            slots,
            members_seen: BTreeSet::new(),
            config,
            identity,
            directory,
            device_auth: None,
            spaces: BTreeMap::new(),
            topics: BTreeMap::new(),
            swarms: BTreeMap::new(),
            identity_topics: IdentityTopics::default(),
            conns: BTreeMap::new(),
            statics,
            signal: None,
            invitations: None,
            peer_watchers: None,
            awaited: BTreeMap::new(),
            dial_errors: BTreeMap::new(),
            rng,
            next_id: 0,
            metrics,
        }
    }

    /// The addresses we tell signaling about.
    fn advertised(&self) -> Vec<SocketAddr> {
        match self.endpoint.local_addr() {
            Ok(a) if !a.ip().is_unspecified() => vec![a],
            _ => vec![],
        }
    }

    /// Dials a static peer; on failure it is retried with backoff.
    fn dial_static(&mut self, addr: SocketAddr, ctx: &mut Context<Self>) {
        let endpoint = self.endpoint.clone();
        async move { connect(&endpoint, addr).await }
            .into_actor(self)
            .map(move |result, act, ctx| {
                let now = Instant::now();
                let Some(s) = act.statics.iter_mut().find(|s| s.addr == addr) else {
                    return;
                };
                s.dialing = false;
                match result {
                    Ok((conn, device)) => {
                        // The backoff resets only once a channel opens: a peer that accepts
                        // connections but refuses us is not hammered.
                        s.device = Some(device);
                        act.add_connection(conn, device, true, true, ctx);
                    }
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "dial failed");
                        s.retry_at = now + s.backoff.fail();
                    }
                }
            })
            .spawn(ctx);
    }

    /// Dials a signaled peer at each of its addresses in turn until one answers.
    fn dial_any(&mut self, addrs: Vec<SocketAddr>, device: PublicKey, ctx: &mut Context<Self>) {
        let endpoint = self.endpoint.clone();
        async move {
            let mut last = None;
            for addr in addrs {
                match connect(&endpoint, addr).await {
                    Ok(ok) => return Ok(ok),
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "dial failed; trying the next address");
                        last = Some(e.to_string());
                    }
                }
            }
            Err(last.unwrap_or_else(|| "no address".into()))
        }
        .into_actor(self)
        .map(move |result, act, ctx| match result {
            Ok((conn, found)) => {
                if found != device {
                    tracing::warn!(expected = %device.short(), found = %found.short(), "peer has another device key than signaling said");
                    // The device we meant to dial is not there: free its dialing slot.
                    let now = Instant::now();
                    for swarm in act.swarms.values_mut() {
                        swarm.dial_failed(&device, now);
                    }
                }
                act.add_connection(conn, found, true, true, ctx);
            }
            Err(_) => {
                let now = Instant::now();
                for swarm in act.swarms.values_mut() {
                    swarm.dial_failed(&device, now);
                }
            }
        })
        .spawn(ctx);
    }

    /// Starts the signaling client for `servers` (there is at most one).
    pub(super) fn start_signal(&mut self, servers: Vec<SocketAddr>, ctx: &mut Context<Self>) {
        use rand_core::{RngCore, SeedableRng};
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let client = SignalClient::new(
            self.endpoint.clone(),
            servers,
            self.advertised(),
            rand_chacha::ChaCha20Rng::from_seed(seed),
            ctx.address().recipient(),
        )
        .start();
        for topic in self.swarms.keys().chain(self.identity_topics.listened()) {
            client.do_send(JoinTopic(*topic));
        }
        self.signal = Some(client);
        self.refresh_identity_topics(ctx);
    }

    /// Starts the swarm of `topic` (once): it knows the connections there are, and
    /// signaling is asked for its peers.
    pub(super) fn join_swarm(&mut self, topic: Topic) {
        if self.swarms.contains_key(&topic) {
            return;
        }
        let mut salt = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut salt);
        let swarm = SwarmCore::new(self.me, self.config.max_originated, salt);
        self.start_swarm(topic, swarm);
    }

    /// Runs `swarm` for `topic` (unless one runs already): it learns the connections there
    /// are, and signaling is asked for the topic's peers.
    pub(super) fn start_swarm(&mut self, topic: Topic, mut swarm: SwarmCore) {
        if self.swarms.contains_key(&topic) {
            return;
        }
        for (device, conn) in &self.conns {
            swarm.connected(*device, conn.originated);
        }
        self.swarms.insert(topic, swarm);
        if let Some(signal) = &self.signal {
            signal.do_send(JoinTopic(topic));
        }
    }

    /// Fetches our `AuthorizedDevice` credential from the identity actor (none until an
    /// identity exists).
    pub(super) fn fetch_device_auth(
        &self,
        _: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = ()> {
        self.identity
            .send(CurrentSigner)
            .into_actor(self)
            .map(|res, act, _| {
                if let Ok(Ok(signer)) = res {
                    let first = act.device_auth.is_none();
                    act.device_auth = signer.chain;
                    // Connections made before (a device invitation's) get it too.
                    if let (true, Some(auth)) = (first, &act.device_auth) {
                        for conn in act.conns.values() {
                            conn.addr.do_send(SetDeviceAuth(auth.clone()));
                        }
                    }
                }
            })
    }

    /// Whether `device` is one we prefer for accepted slots without asking the spaces.
    fn remembered(&self, device: &PublicKey) -> bool {
        self.members_seen.contains(device) || self.statics.iter().any(|s| s.device == Some(*device))
    }

    /// An accepted connection from `device` (`known`: as a member's device): takes a slot,
    /// makes room by evicting a stranger, or is refused.
    fn admit(
        &mut self,
        conn: quinn::Connection,
        device: PublicKey,
        known: bool,
        ctx: &mut Context<Self>,
    ) {
        if !self.conns.contains_key(&device) {
            let remote = conn.remote_address();
            match self.slots.admit(known) {
                Admission::Accept => {}
                Admission::AcceptEvicting(id) => {
                    self.slots.remove(id);
                    if let Some(c) = self.conns.values().find(|c| c.id == id) {
                        tracing::info!(peer = %device.short(), evicted = %c.remote, "all accepted slots taken; closing a stranger's connection for a member");
                        c.addr.do_send(CloseConnection {
                            code: close::NORMAL,
                            reason: "making room for a member".into(),
                        });
                    }
                }
                Admission::Refuse(why) => {
                    tracing::info!(peer = %device.short(), %remote, ?why, "refusing connection: no accepted slot for it");
                    if why == Refusal::Busy {
                        self.slots.penalize(Instant::now(), remote);
                    }
                    conn.close(close::NORMAL.into(), b"too many connections");
                    return;
                }
            }
        }
        self.add_connection(conn, device, false, known, ctx);
    }

    pub(super) fn add_connection(
        &mut self,
        conn: quinn::Connection,
        device: PublicKey,
        originated: bool,
        known: bool,
        ctx: &mut Context<Self>,
    ) {
        // A node without an identity dials only a device invitation's host (its side
        // stream needs no credential); it accepts nobody.
        let auth = self.device_auth.clone();
        if auth.is_none() && !originated {
            conn.close(close::NOT_A_MEMBER.into(), b"no spaces yet");
            return;
        }
        if device == self.me {
            conn.close(close::PROTOCOL.into(), b"connected to ourselves");
            return;
        }
        let initiator = |originated: bool| if originated { self.me } else { device };
        let preferred = self.me.min(device);
        if let Some(existing) = self.conns.get(&device) {
            // Keep the connection started by the lower device key; if both were started by the
            // same side, the newer one replaces a probably dead older one.
            let keep_existing =
                initiator(existing.originated) == preferred && initiator(originated) != preferred;
            if keep_existing {
                conn.close(close::DUPLICATE.into(), b"duplicate connection");
                return;
            }
            existing.addr.do_send(CloseConnection {
                code: close::DUPLICATE,
                reason: "replaced".into(),
            });
            self.slots.remove(existing.id);
            // Its channels close with it: the device is a peer of a space again once the
            // new connection opens a channel there.
            for s in self.spaces.values_mut() {
                s.peers.remove(&device);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        let remote = conn.remote_address();
        // A static peer reached another way (an invitation's dial, or it dialed us) is not
        // dialed again: a second connection would replace this one and drop its channels.
        for s in self.statics.iter_mut().filter(|s| s.addr == remote) {
            s.device = Some(device);
        }
        let side = if originated { "dialed" } else { "accepted" };
        self.metrics
            .add("echo_connections_total", &[("side", side)], 1);
        if !originated {
            self.slots.insert(id, device, remote, known, Instant::now());
        }
        let addr = ConnectionActor::new(
            id,
            conn,
            device,
            self.me,
            originated,
            auth,
            ctx.address().recipient(),
            ctx.address().recipient(),
            ctx.address().recipient(),
            self.metrics.clone(),
        )
        .start();
        tracing::info!(peer = %device.short(), %remote, originated, "connected");
        // A recovered device asks each new peer for its spaces, on a side stream opened
        // before the channels are offered (so that it is held before any Hello of ours
        // could be refused: `Addr::send` queues the message now).
        let recovering = self.spaces.values().any(|s| s.identity_space_joining);
        if let (true, Some(watcher)) = (recovering, self.peer_watchers.clone()) {
            let opened = addr.send(super::OpenSideStream);
            actix::spawn(async move {
                if let Ok(Ok(stream)) = opened.await {
                    watcher.do_send(super::RecoveryStream(stream));
                }
            });
        }
        for swarm in self.swarms.values_mut() {
            swarm.connected(device, originated);
        }
        for (space_key, space) in &self.spaces {
            addr.do_send(OpenChannel {
                space_key: *space_key,
                space: space.addr.clone(),
            });
        }
        for waiter in self.awaited.remove(&device).unwrap_or_default() {
            let _ = waiter.send(Ok(addr.clone()));
        }
        self.conns.insert(
            device,
            Conn {
                id,
                addr,
                remote,
                originated,
            },
        );
    }
}

impl Actor for NetworkActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let endpoint = self.endpoint.clone();
        let me = ctx.address();
        actix::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let remote = incoming.remote_address();
                if !matches!(me.send(MayHandshake(remote)).await, Ok(true)) {
                    // A penalized address: refused before any TLS work.
                    tracing::debug!(%remote, "refusing a connection from a penalized address");
                    incoming.refuse();
                    continue;
                }
                let me = me.clone();
                actix::spawn(async move {
                    match accept(incoming).await {
                        Ok((conn, device)) => me.do_send(Accepted(conn, device)),
                        Err(e) => tracing::info!(error = %e, "incoming connection refused"),
                    }
                });
            }
        });
        self.directory
            .do_send(WatchSpaces(ctx.address().recipient()));
        if !self.config.signal_servers.is_empty() {
            self.start_signal(self.config.signal_servers.clone(), ctx);
        }
        // Channels that could not open yet (we did not know the peer as a member, or it did
        // not know us) are offered again as control states replicate.
        ctx.run_interval(REOFFER, |act, _| {
            for conn in act.conns.values() {
                for (space_key, space) in &act.spaces {
                    conn.addr.do_send(OpenChannel {
                        space_key: *space_key,
                        space: space.addr.clone(),
                    });
                }
            }
        });
        ctx.run_interval(super::network_identity::REFRESH_EVERY, |act, ctx| {
            act.refresh_identity_topics(ctx);
        });
        ctx.run_interval(TICK, |act, ctx| {
            let now = Instant::now();
            let due: Vec<SocketAddr> = act
                .statics
                .iter_mut()
                .filter(|s| {
                    !s.dialing
                        && s.retry_at <= now
                        && s.device.is_none_or(|d| !act.conns.contains_key(&d))
                })
                .map(|s| {
                    s.dialing = true;
                    s.addr
                })
                .collect();
            // Static peers are dialed once there is something to replicate with them.
            if act.device_auth.is_some() && act.spaces.values().any(|s| s.needs_peers) {
                for addr in due {
                    act.dial_static(addr, ctx);
                }
            } else {
                for s in &mut act.statics {
                    s.dialing = false;
                }
            }
            let dials: Vec<_> = act.swarms.values_mut().flat_map(|s| s.tick(now)).collect();
            let mut seen = BTreeSet::new();
            for d in dials {
                if act.conns.contains_key(&d.device) || !seen.insert(d.device) {
                    continue;
                }
                act.dial_any(d.addrs, d.device, ctx);
            }
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Accepted(quinn::Connection, PublicKey);

impl Handler<Accepted> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: Accepted, ctx: &mut Context<Self>) {
        let Accepted(conn, device) = msg;
        if self.device_auth.is_none() {
            // Connections are taken before any space opens (an invitation's guest has
            // none yet), as soon as there is an identity to answer with.
            self.fetch_device_auth(ctx)
                .map(move |(), act, ctx| {
                    if act.device_auth.is_some() {
                        act.handle(Accepted(conn, device), ctx);
                    } else {
                        conn.close(close::NOT_A_MEMBER.into(), b"no identity yet");
                    }
                })
                .wait(ctx);
            return;
        }
        let known = self.remembered(&device);
        if known
            || self.conns.contains_key(&device)
            || !matches!(self.slots.admit(false), Admission::Refuse(_))
        {
            self.admit(conn, device, known, ctx);
            return;
        }
        // Slots are contested and we have not met this device: the spaces say whether it
        // is a member's device.
        let spaces: Vec<Addr<SpaceActor>> = self.spaces.values().map(|s| s.addr.clone()).collect();
        async move {
            for space in spaces {
                if matches!(space.send(KnowsDevice(device)).await, Ok(true)) {
                    return true;
                }
            }
            false
        }
        .into_actor(self)
        .map(move |known, act, ctx| act.admit(conn, device, known, ctx))
        .spawn(ctx);
    }
}

/// May an incoming connection from this address start its TLS handshake?
#[derive(Message)]
#[rtype(result = "bool")]
struct MayHandshake(SocketAddr);

impl Handler<MayHandshake> for NetworkActor {
    type Result = bool;
    fn handle(&mut self, msg: MayHandshake, _: &mut Context<Self>) -> bool {
        self.slots.may_handshake(Instant::now(), msg.0)
    }
}

impl Handler<SpaceOpened> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: SpaceOpened, ctx: &mut Context<Self>) {
        let topic = space_topic(&msg.space_key);
        self.join_swarm(topic);
        self.spaces.insert(
            msg.space_key,
            Space {
                addr: msg.addr.clone(),
                peers: BTreeSet::new(),
                needs_peers: msg.needs_peers,
                identity_space_joining: msg.identity_space_joining,
            },
        );
        self.topics.insert(topic, msg.space_key);
        if self.device_auth.is_none() {
            // The first space (of a node whose identity was made after it started): fetch
            // our device credential before anything else, then connect.
            self.fetch_device_auth(ctx).wait(ctx);
        }
        for conn in self.conns.values() {
            conn.addr.do_send(OpenChannel {
                space_key: msg.space_key,
                space: msg.addr.clone(),
            });
        }
    }
}

impl Handler<LookupSpace> for NetworkActor {
    type Result = Option<(PublicKey, Addr<SpaceActor>)>;
    fn handle(&mut self, msg: LookupSpace, _: &mut Context<Self>) -> Self::Result {
        let key = self.topics.get(&msg.0)?;
        self.spaces.get(key).map(|s| (*key, s.addr.clone()))
    }
}

impl Handler<ConnectionEvent> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: ConnectionEvent, _: &mut Context<Self>) {
        let now = Instant::now();
        tracing::debug!(event = ?msg, current = ?self.conns.iter().map(|(d, c)| (d.short(), c.id)).collect::<Vec<_>>(), "connection event");
        match msg {
            // A connection that was replaced speaks no more for its device.
            ConnectionEvent::ChannelOpened { device, id, .. }
            | ConnectionEvent::ChannelClosed { device, id, .. }
                if self.conns.get(&device).is_none_or(|c| c.id != id) => {}
            ConnectionEvent::ChannelOpened {
                device, space_key, ..
            } => {
                if let Some(s) = self.spaces.get_mut(&space_key) {
                    s.peers.insert(device);
                }
                if let Some(swarm) = self.swarms.get_mut(&space_topic(&space_key)) {
                    swarm.channel_opened(&device);
                }
                self.slots.proven(&device);
                self.members_seen.insert(device);
                for s in self.statics.iter_mut().filter(|s| s.device == Some(device)) {
                    s.backoff.reset();
                }
            }
            ConnectionEvent::ChannelClosed {
                device, space_key, ..
            } => {
                if let Some(s) = self.spaces.get_mut(&space_key) {
                    s.peers.remove(&device);
                }
            }
            ConnectionEvent::Closed {
                device,
                id,
                stranger,
            } => {
                if let Some(remote) = self.slots.remove(id) {
                    if stranger {
                        self.slots.penalize(now, remote);
                    }
                }
                if self.conns.get(&device).is_some_and(|c| c.id == id) {
                    self.conns.remove(&device);
                    for s in self.spaces.values_mut() {
                        s.peers.remove(&device);
                    }
                    for swarm in self.swarms.values_mut() {
                        swarm.disconnected(&device, now);
                    }
                    for s in self.statics.iter_mut().filter(|s| s.device == Some(device)) {
                        s.retry_at = now + s.backoff.fail();
                    }
                }
            }
        }
    }
}

impl Handler<PeerEvent> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: PeerEvent, _: &mut Context<Self>) {
        let Some(swarm) = self.swarms.get_mut(&msg.topic) else {
            return;
        };
        if msg.available {
            swarm.available(msg.peer.device_key, msg.peer.addrs);
        } else {
            swarm.left(&msg.peer.device_key);
        }
    }
}

/// Peers with an open channel, per space (hex key), and our peer address.
#[derive(Message)]
#[rtype(result = "(Option<String>, BTreeMap<String, Vec<PeerStatus>>)")]
pub struct NetworkStatus;

impl Handler<NetworkStatus> for NetworkActor {
    type Result = MessageResult<NetworkStatus>;
    fn handle(&mut self, _: NetworkStatus, _: &mut Context<Self>) -> Self::Result {
        let peers = self
            .spaces
            .iter()
            .map(|(key, s)| {
                let list = s
                    .peers
                    .iter()
                    .map(|d| PeerStatus {
                        device_key: d.to_hex(),
                        address: self
                            .conns
                            .get(d)
                            .map(|c| c.remote.to_string())
                            .unwrap_or_default(),
                    })
                    .collect();
                (key.to_hex(), list)
            })
            .collect();
        MessageResult((
            self.endpoint.local_addr().ok().map(|a| a.to_string()),
            peers,
        ))
    }
}

/// Close every connection (node shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for NetworkActor {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        for conn in self.conns.values() {
            conn.addr.do_send(CloseConnection {
                code: close::SHUTDOWN,
                reason: "shutting down".into(),
            });
        }
        self.endpoint
            .close(close::SHUTDOWN.into(), b"shutting down");
        ctx.stop();
    }
}
