//! The invitation side of `NetworkActor`: where incoming invitation streams go
//! (`RouteInvitations`), a connection to a host's device for a guest (`ConnectDevice`), the
//! addresses to put in an invitation code (`ListenAddrs`), and offering a space's channel at
//! once to every connection (`OfferChannels`, for a guest just admitted), and the swarm of
//! an invitation's topic (`JoinInvitationTopic`, `LeaveInvitationTopic`): the host is in it
//! while the invitation is open, a guest while it looks for the host, so that signaling can
//! bring them together when the code's addresses do not reach the host (the guest starts a
//! signaling client for the code's servers if it has none).

use std::net::SocketAddr;

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::network::NetworkActor;
use super::side_stream::{IncomingInvitation, RouteInvitations};
use super::{ConnectionActor, OpenChannel};
use crate::signal::{LeaveTopic, Topic};
use crate::transport::{close, connect};
use crate::types::PublicKey;

/// How long `ConnectDevice` waits for the device to connect (a dial to an address nobody
/// answers at takes the 10 s idle timeout to fail).
const AWAIT_DEVICE: Duration = Duration::from_secs(12);

impl Handler<RouteInvitations> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: RouteInvitations, _: &mut Context<Self>) {
        self.invitations = Some(msg.0);
    }
}

impl Handler<super::WatchPeers> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: super::WatchPeers, _: &mut Context<Self>) {
        self.peer_watchers = Some(msg.0);
    }
}

impl Handler<IncomingInvitation> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: IncomingInvitation, _: &mut Context<Self>) {
        match &self.invitations {
            Some(route) => route.do_send(msg),
            // Nobody hosts invitations: dropping the stream ends it (its guard tells the
            // connection).
            None => {
                tracing::info!(peer = %msg.0.device.short(), "invitation stream, but no invitations here")
            }
        }
    }
}

/// Offer the channel of `0` on every connection now (a guest that was just admitted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OfferChannels(pub PublicKey);

impl Handler<OfferChannels> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: OfferChannels, _: &mut Context<Self>) {
        let Some(space) = self.spaces.get(&msg.0) else {
            return;
        };
        for conn in self.conns.values() {
            conn.addr.do_send(OpenChannel {
                space_key: msg.0,
                space: space.addr.clone(),
            });
        }
    }
}

/// The addresses a peer can reach this node at (for an invitation code): the listen
/// address, or, when bound to every interface, the advertised IPs with its port and then
/// loopback (a guest on the same machine); and the signaling servers.
#[derive(Message)]
#[rtype(result = "(Vec<SocketAddr>, Vec<SocketAddr>)")]
pub struct ListenAddrs;

impl Handler<ListenAddrs> for NetworkActor {
    type Result = MessageResult<ListenAddrs>;
    fn handle(&mut self, _: ListenAddrs, _: &mut Context<Self>) -> Self::Result {
        let addrs = match self.endpoint.local_addr() {
            Ok(a) if a.ip().is_unspecified() => {
                let loopback: std::net::IpAddr = if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                let mut addrs: Vec<SocketAddr> = self
                    .config
                    .advertise_ips
                    .iter()
                    .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
                    .map(|ip| SocketAddr::new(*ip, a.port()))
                    .collect();
                addrs.dedup();
                addrs.truncate(8);
                addrs.push(SocketAddr::new(loopback, a.port()));
                addrs
            }
            Ok(a) => vec![a],
            Err(_) => vec![],
        };
        MessageResult((addrs, self.config.signal_servers.clone()))
    }
}

/// Be in the swarm of an invitation's `topic`; `signal`: servers to use if this node has
/// no signaling client yet.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinInvitationTopic {
    pub topic: Topic,
    pub signal: Vec<SocketAddr>,
}

impl Handler<JoinInvitationTopic> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: JoinInvitationTopic, ctx: &mut Context<Self>) {
        if self.signal.is_none() && !msg.signal.is_empty() {
            self.start_signal(msg.signal, ctx);
        }
        self.join_swarm(msg.topic);
    }
}

/// Leave the swarm of an invitation's topic (it ended, or the guest found the host).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveInvitationTopic(pub Topic);

impl Handler<LeaveInvitationTopic> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: LeaveInvitationTopic, _: &mut Context<Self>) {
        if self.topics.contains_key(&msg.0) {
            // A space's topic, not an invitation's.
            return;
        }
        if self.swarms.remove(&msg.0).is_some() {
            if let Some(signal) = &self.signal {
                signal.do_send(LeaveTopic(msg.0));
            }
        }
    }
}

/// A connection to `device`: the one there is, or the first of a new one dialed at `addrs`
/// in turn and one that the invitation's swarm (signaling) brings meanwhile.
#[derive(Message)]
#[rtype(result = "Result<Addr<ConnectionActor>, String>")]
pub struct ConnectDevice {
    pub device: PublicKey,
    pub addrs: Vec<SocketAddr>,
    /// Whether a swarm may still bring the device when the addresses fail (the invitation
    /// names signaling servers): then the request waits, else it fails with the dial.
    pub via_signaling: bool,
}

impl Handler<ConnectDevice> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<Addr<ConnectionActor>, String>>;
    fn handle(&mut self, msg: ConnectDevice, ctx: &mut Context<Self>) -> Self::Result {
        let ConnectDevice {
            device,
            addrs,
            via_signaling,
        } = msg;
        let wait = via_signaling || self.signal.is_some();
        if let Some(conn) = self.conns.get(&device) {
            return Box::pin(fut::ready(Ok(conn.addr.clone())));
        }
        if device == self.me {
            return Box::pin(fut::ready(Err(
                "the invitation is hosted by this very node".to_string(),
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.awaited.entry(device).or_default().push(tx);
        // The dial runs on its own: a connection it makes wakes the waiter (add_connection),
        // as does one the swarm makes first.
        let endpoint = self.endpoint.clone();
        // A node without an identity dials too: a device invitation's guest has none yet.
        let dial = self.fetch_device_auth(ctx).then(move |(), act, _| {
            async move { dial_device(&endpoint, device, addrs).await }
            .into_actor(act)
            .map(move |result, act, ctx| match result {
                Ok(conn) => {
                    if !act.conns.contains_key(&device) {
                        act.add_connection(conn, device, true, true, ctx);
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %device.short(), error = %e, "cannot dial the invitation's host");
                    if wait {
                        act.dial_errors.insert(device, e);
                    } else if !act.conns.contains_key(&device) {
                        // Nothing else can bring it: fail now rather than at the deadline.
                        for waiter in act.awaited.remove(&device).unwrap_or_default() {
                            let _ = waiter.send(Err(e.clone()));
                        }
                    }
                }
            })
        });
        ctx.spawn(dial);
        Box::pin(
            async move { tokio::time::timeout(AWAIT_DEVICE, rx).await }
                .into_actor(self)
                .map(move |waited, act, _| match waited {
                    Ok(Ok(answer)) => answer,
                    _ => Err(act.dial_errors.remove(&device).unwrap_or_else(|| {
                        format!("the host's device did not connect within {AWAIT_DEVICE:?}")
                    })),
                }),
        )
    }
}

/// Dials `addrs` in turn until one is `device`.
async fn dial_device(
    endpoint: &quinn::Endpoint,
    device: PublicKey,
    addrs: Vec<SocketAddr>,
) -> Result<quinn::Connection, String> {
    let mut last = "no address to reach the host at".to_string();
    for addr in addrs {
        match connect(endpoint, addr).await {
            Ok((conn, found)) if found == device => return Ok(conn),
            Ok((conn, found)) => {
                conn.close(close::NORMAL.into(), b"not the device I meant");
                last = format!(
                    "{addr} is device {}, not the host's {}",
                    found.short(),
                    device.short()
                );
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}
