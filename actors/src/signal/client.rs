//! `SignalClient`: keeps this node joined to its topics at every configured signal server
//! and tells the swarm (one [`PeerEvent`] recipient) who is there.
//!
//! One [`SignalClientCore`] per server carries the logic; this actor only connects
//! ([`transport::connect`], then opens the one bi-stream), runs reader/writer tasks, arms
//! timers with `ctx.run_later` (tokio time, so simulated time under the sim) and merges the
//! servers' views ([`PeerMerge`]). Each connection attempt has a generation number, so
//! messages from an old connection are ignored. No threads, no system clock.

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;
// tokio's clock, not the OS clock: it is simulated (paused and advanced) under turmoil.
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::client_core::{ClientInput, ClientOutput, ConnState, PeerEvent, SignalClientCore};
use super::peer_merge::PeerMerge;
use super::wire::{SignalEvent, SignalRequest, Topic};
use crate::transport::{self, close, FrameError};

/// A connection attempt (handshake + stream) that takes longer than this has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The actor. Start it with `SignalClient::new(..).start()` inside a `LocalSet`.
pub struct SignalClient {
    endpoint: quinn::Endpoint,
    slots: Vec<Slot>,
    rng: ChaCha20Rng,
    subscriber: Recipient<PeerEvent>,
    merge: PeerMerge,
}

struct Slot {
    core: SignalClientCore,
    generation: u64,
    link: Option<Link>,
}

struct Link {
    conn: quinn::Connection,
    tx: mpsc::UnboundedSender<SignalRequest>,
}

impl SignalClient {
    /// A client of `servers` announcing `our_addrs`, reporting to `subscriber`. `rng` (from
    /// the node's seeded RNG) draws the reconnect jitter.
    pub fn new(
        endpoint: quinn::Endpoint,
        servers: Vec<SocketAddr>,
        our_addrs: Vec<SocketAddr>,
        rng: ChaCha20Rng,
        subscriber: Recipient<PeerEvent>,
    ) -> Self {
        let slots = servers
            .into_iter()
            .map(|server| Slot {
                core: SignalClientCore::new(server, &our_addrs),
                generation: 0,
                link: None,
            })
            .collect();
        SignalClient {
            endpoint,
            slots,
            rng,
            subscriber,
            merge: PeerMerge::new(),
        }
    }

    /// Feeds `input` to server `i`'s core and carries out its outputs.
    fn feed(&mut self, i: usize, input: ClientInput, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let outputs = slot.core.handle(Instant::now(), input, &mut self.rng);
        for output in outputs {
            match output {
                ClientOutput::Send(req) => {
                    if let Some(link) = &self.slots[i].link {
                        let _ = link.tx.send(req);
                    }
                }
                ClientOutput::Connect => self.connect(i, ctx),
                ClientOutput::SetTimer { at, kind } => {
                    let wait = at.saturating_duration_since(Instant::now());
                    ctx.run_later(wait, move |act, ctx| {
                        act.feed(i, ClientInput::Timer(kind), ctx)
                    });
                }
                ClientOutput::Peer(event) => {
                    if let Some(event) = self.merge.apply(i, event) {
                        self.subscriber.do_send(event);
                    }
                }
            }
        }
    }

    fn connect(&mut self, i: usize, ctx: &mut Context<Self>) {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        let generation = slot.generation;
        let server = slot.core.server();
        let endpoint = self.endpoint.clone();
        let attempt = async move {
            let connecting = async {
                let (conn, key) = transport::connect(&endpoint, server)
                    .await
                    .map_err(|e| e.to_string())?;
                let streams = conn.open_bi().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((conn, key, streams))
            };
            tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")))
        };
        ctx.spawn(attempt.into_actor(self).map(move |result, act, ctx| {
            if act.slots[i].generation != generation {
                if let Ok((conn, _, _)) = result {
                    conn.close(quinn::VarInt::from_u32(close::NORMAL), b"superseded");
                }
                return;
            }
            match result {
                Ok((conn, key, (send, recv))) => {
                    info!(%server, server_key = %key.short(), "signal client: connected");
                    act.start_link(i, generation, conn, send, recv, ctx);
                    act.feed(i, ClientInput::Connected, ctx);
                }
                Err(e) => {
                    debug!(%server, "signal client: cannot connect: {e}");
                    act.feed(i, ClientInput::Disconnected, ctx);
                }
            }
        }));
    }

    fn start_link(
        &mut self,
        i: usize,
        generation: u64,
        conn: quinn::Connection,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        ctx: &mut Context<Self>,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel::<SignalRequest>();
        actix::spawn(async move {
            while let Some(req) = rx.recv().await {
                if let Err(e) = transport::write_frame(&mut send, &req).await {
                    debug!("signal client: write failed: {e}");
                    return;
                }
            }
            let _ = send.finish();
        });
        let me = ctx.address().downgrade();
        let reader_conn = conn.clone();
        let server = self.slots[i].core.server();
        actix::spawn(async move {
            loop {
                let event = match transport::read_frame::<SignalEvent>(&mut recv).await {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(FrameError::Io(e)) => {
                        debug!(%server, "signal client: connection ended: {e}");
                        break;
                    }
                    Err(e) => {
                        warn!(%server, "signal client: bad frame from server, closing: {e}");
                        reader_conn.close(quinn::VarInt::from_u32(close::BAD_FRAME), b"bad frame");
                        break;
                    }
                };
                let Some(addr) = me.upgrade() else { return };
                addr.do_send(FromServer {
                    server: i,
                    generation,
                    event,
                });
            }
            if let Some(addr) = me.upgrade() {
                addr.do_send(Lost {
                    server: i,
                    generation,
                });
            }
        });
        self.slots[i].link = Some(Link { conn, tx });
    }
}

impl Actor for SignalClient {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        for slot in &mut self.slots {
            if let Some(link) = slot.link.take() {
                link.conn.close(
                    quinn::VarInt::from_u32(close::NORMAL),
                    b"signal client stopping",
                );
            }
        }
    }
}

/// Be in `topic` (at every server).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct JoinTopic(pub Topic);

/// Leave `topic`; its peers are dropped without `PeerEvent`s.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct LeaveTopic(pub Topic);

impl Handler<JoinTopic> for SignalClient {
    type Result = ();
    fn handle(&mut self, msg: JoinTopic, ctx: &mut Self::Context) {
        for i in 0..self.slots.len() {
            self.feed(i, ClientInput::Join(msg.0), ctx);
        }
    }
}

impl Handler<LeaveTopic> for SignalClient {
    type Result = ();
    fn handle(&mut self, msg: LeaveTopic, ctx: &mut Self::Context) {
        for i in 0..self.slots.len() {
            self.feed(i, ClientInput::Leave(msg.0), ctx);
        }
        self.merge.forget_topic(&msg.0);
    }
}

/// Closes every server connection and stops the client (no `PeerEvent`s follow).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopClient;

impl Handler<StopClient> for SignalClient {
    type Result = ();
    fn handle(&mut self, _: StopClient, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Where each server connection stands, in configuration order.
#[derive(Message)]
#[rtype(result = "Vec<(SocketAddr, ConnState)>")]
pub struct GetServers;

impl Handler<GetServers> for SignalClient {
    type Result = MessageResult<GetServers>;
    fn handle(&mut self, _: GetServers, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.slots
                .iter()
                .map(|s| (s.core.server(), s.core.state()))
                .collect(),
        )
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct FromServer {
    server: usize,
    generation: u64,
    event: SignalEvent,
}

impl Handler<FromServer> for SignalClient {
    type Result = ();
    fn handle(&mut self, msg: FromServer, ctx: &mut Self::Context) {
        if self.slots.get(msg.server).map(|s| s.generation) == Some(msg.generation) {
            self.feed(msg.server, ClientInput::Event(msg.event), ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Lost {
    server: usize,
    generation: u64,
}

impl Handler<Lost> for SignalClient {
    type Result = ();
    fn handle(&mut self, msg: Lost, ctx: &mut Self::Context) {
        let Some(slot) = self.slots.get_mut(msg.server) else {
            return;
        };
        if slot.generation != msg.generation {
            return;
        }
        if let Some(link) = slot.link.take() {
            link.conn
                .close(quinn::VarInt::from_u32(close::NORMAL), b"stream ended");
        }
        info!(server = %slot.core.server(), "signal client: disconnected; will reconnect");
        self.feed(msg.server, ClientInput::Disconnected, ctx);
    }
}
