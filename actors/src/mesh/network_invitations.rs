//! The invitation side of `NetworkActor`: where incoming invitation streams go
//! (`RouteInvitations`), a connection to a host's device for a guest (`ConnectDevice`), the
//! addresses to put in an invitation code (`ListenAddrs`), and offering a space's channel at
//! once to every connection (`OfferChannels`, for a guest just admitted).

use std::net::SocketAddr;

use actix::prelude::*;

use super::network::NetworkActor;
use super::side_stream::{IncomingInvitation, RouteInvitations};
use super::{ConnectionActor, OpenChannel};
use crate::transport::{close, connect};
use crate::types::PublicKey;

impl Handler<RouteInvitations> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: RouteInvitations, _: &mut Context<Self>) {
        self.invitations = Some(msg.0);
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
/// address (loopback with its port when bound to every interface), and the signaling
/// servers.
#[derive(Message)]
#[rtype(result = "(Vec<SocketAddr>, Vec<SocketAddr>)")]
pub struct ListenAddrs;

impl Handler<ListenAddrs> for NetworkActor {
    type Result = MessageResult<ListenAddrs>;
    fn handle(&mut self, _: ListenAddrs, _: &mut Context<Self>) -> Self::Result {
        let addrs = match self.endpoint.local_addr() {
            Ok(a) if a.ip().is_unspecified() => {
                let ip: std::net::IpAddr = if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                vec![SocketAddr::new(ip, a.port())]
            }
            Ok(a) => vec![a],
            Err(_) => vec![],
        };
        MessageResult((addrs, self.config.signal_servers.clone()))
    }
}

/// A connection to `device`: the one there is, or a new one dialed at `addrs` in turn.
#[derive(Message)]
#[rtype(result = "Result<Addr<ConnectionActor>, String>")]
pub struct ConnectDevice {
    pub device: PublicKey,
    pub addrs: Vec<SocketAddr>,
}

impl Handler<ConnectDevice> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<Addr<ConnectionActor>, String>>;
    fn handle(&mut self, msg: ConnectDevice, ctx: &mut Context<Self>) -> Self::Result {
        let ConnectDevice { device, addrs } = msg;
        if let Some(conn) = self.conns.get(&device) {
            return Box::pin(fut::ready(Ok(conn.addr.clone())));
        }
        if device == self.me {
            return Box::pin(fut::ready(Err(
                "the invitation is hosted by this very node".to_string(),
            )));
        }
        let endpoint = self.endpoint.clone();
        Box::pin(
            self.fetch_device_auth(ctx)
                .then(move |(), act, _| {
                    let ready = act.device_auth.is_some();
                    async move {
                        if !ready {
                            return Err("this node has no identity yet".to_string());
                        }
                        let mut last = "no address to reach the host at".to_string();
                        for addr in addrs {
                            match connect(&endpoint, addr).await {
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
                    .into_actor(act)
                })
                .map(move |result, act, ctx| {
                    let conn = result?;
                    if !act.conns.contains_key(&device) {
                        act.add_connection(conn, device, true, true, ctx);
                    }
                    act.conns
                        .get(&device)
                        .map(|c| c.addr.clone())
                        .ok_or_else(|| "the connection closed at once".to_string())
                }),
        )
    }
}
