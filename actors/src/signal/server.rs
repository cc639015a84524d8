//! `SignalServer`: the actor around [`SignalServerCore`], and [`serve_signal`], the accept
//! loop that feeds it from a QUIC endpoint. This is all `echo-node signal` runs.
//!
//! Per connection: the device key comes from the TLS handshake ([`transport::accept`]); the
//! client opens one bi-stream; a reader task turns its frames into actor messages, and a
//! writer task sends the events the actor queues for it (at most [`SEND_QUEUE`] pending;
//! a client that stops reading is closed). A malformed frame closes only that connection
//! with `BAD_FRAME`. Tasks run on the current `LocalSet` (no threads), so the server also
//! runs inside a simulated host.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use actix::prelude::*;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::server_core::{ConnId, ServerInput, ServerOutput, SignalServerCore};
use super::wire::{SignalEvent, SignalRequest, Topic};
use crate::transport::{self, close, FrameError};
use crate::types::PublicKey;

/// Events queued for one connection before it counts as not reading.
pub const SEND_QUEUE: usize = 1024;

/// Starts a signaling server on `endpoint`: the actor plus its accept loop. Call it inside
/// a `LocalSet` (an actix system or a simulated host). Runs until [`StopServer`].
pub fn serve_signal(endpoint: quinn::Endpoint) -> Addr<SignalServer> {
    let addr = SignalServer {
        core: SignalServerCore::new(),
        links: BTreeMap::new(),
        next_conn: 0,
        endpoint: endpoint.clone(),
    }
    .start();
    let server = addr.clone();
    actix::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            actix::spawn(serve_connection(server.clone(), incoming));
        }
        debug!("signal server: endpoint closed, accept loop ends");
    });
    addr
}

/// The actor. Create it with [`serve_signal`].
pub struct SignalServer {
    core: SignalServerCore,
    links: BTreeMap<ConnId, Link>,
    next_conn: ConnId,
    endpoint: quinn::Endpoint,
}

struct Link {
    conn: quinn::Connection,
    device: PublicKey,
    tx: mpsc::Sender<SignalEvent>,
}

impl Actor for SignalServer {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        for link in self.links.values() {
            link.conn.close(
                quinn::VarInt::from_u32(close::SHUTDOWN),
                b"signal server stopping",
            );
        }
        self.endpoint.close(
            quinn::VarInt::from_u32(close::SHUTDOWN),
            b"signal server stopping",
        );
    }
}

impl SignalServer {
    fn apply(&mut self, input: ServerInput) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for output in self.core.handle(input) {
                match output {
                    ServerOutput::Send { conn, event } => {
                        let Some(link) = self.links.get(&conn) else {
                            continue;
                        };
                        if link.tx.try_send(event).is_err() {
                            warn!(
                                device = %link.device.short(),
                                "signal server: client is not reading its events; closing"
                            );
                            self.close(conn, close::PROTOCOL, "not reading signal events");
                            queue.push(ServerInput::Disconnected { conn });
                        }
                    }
                    ServerOutput::Close { conn, code, reason } => self.close(conn, code, &reason),
                }
            }
        }
    }

    fn close(&mut self, conn: ConnId, code: u32, reason: &str) {
        if let Some(link) = self.links.remove(&conn) {
            info!(device = %link.device.short(), code, reason, "signal server: closing connection");
            link.conn
                .close(quinn::VarInt::from_u32(code), reason.as_bytes());
        }
    }
}

/// A connection finished its handshake and opened its stream. Replies with its id.
struct Register {
    conn: quinn::Connection,
    device: PublicKey,
    remote: SocketAddr,
    tx: mpsc::Sender<SignalEvent>,
}

impl Message for Register {
    type Result = ConnId;
}

impl Handler<Register> for SignalServer {
    type Result = ConnId;
    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> ConnId {
        self.next_conn += 1;
        let conn = self.next_conn;
        debug!(device = %msg.device.short(), remote = %msg.remote, conn, "signal server: connected");
        self.links.insert(
            conn,
            Link {
                conn: msg.conn,
                device: msg.device,
                tx: msg.tx,
            },
        );
        self.apply(ServerInput::Connected {
            conn,
            device: msg.device,
            remote: msg.remote,
        });
        conn
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct FromClient {
    conn: ConnId,
    req: SignalRequest,
}

impl Handler<FromClient> for SignalServer {
    type Result = ();
    fn handle(&mut self, msg: FromClient, _: &mut Self::Context) {
        self.apply(ServerInput::Request {
            conn: msg.conn,
            req: msg.req,
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Gone {
    conn: ConnId,
}

impl Handler<Gone> for SignalServer {
    type Result = ();
    fn handle(&mut self, msg: Gone, _: &mut Self::Context) {
        self.links.remove(&msg.conn);
        self.apply(ServerInput::Disconnected { conn: msg.conn });
    }
}

/// Live connections and the members of each topic, for status output and tests.
#[derive(Message)]
#[rtype(result = "ServerStatus")]
pub struct GetStatus;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    pub connections: usize,
    pub topics: BTreeMap<Topic, Vec<PublicKey>>,
}

impl Handler<GetStatus> for SignalServer {
    type Result = MessageResult<GetStatus>;
    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        let topics = self
            .core
            .topics()
            .into_iter()
            .map(|t| (t, self.core.members(&t)))
            .collect();
        MessageResult(ServerStatus {
            connections: self.core.connections(),
            topics,
        })
    }
}

/// Closes every connection and the endpoint, and stops the server.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopServer;

impl Handler<StopServer> for SignalServer {
    type Result = ();
    fn handle(&mut self, _: StopServer, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Serves one incoming connection until it ends.
async fn serve_connection(server: Addr<SignalServer>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let (conn, device) = match transport::accept(incoming).await {
        Ok(ok) => ok,
        Err(e) => {
            debug!(%remote, "signal server: handshake failed: {e}");
            return;
        }
    };
    let (mut send, mut recv) = match conn.accept_bi().await {
        Ok(streams) => streams,
        Err(e) => {
            debug!(device = %device.short(), "signal server: no stream opened: {e}");
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<SignalEvent>(SEND_QUEUE);
    let register = Register {
        conn: conn.clone(),
        device,
        remote: conn.remote_address(),
        tx,
    };
    let Ok(id) = server.send(register).await else {
        conn.close(
            quinn::VarInt::from_u32(close::SHUTDOWN),
            b"signal server stopping",
        );
        return;
    };
    actix::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let Err(e) = transport::write_frame(&mut send, &event).await {
                debug!("signal server: write failed: {e}");
                return;
            }
        }
        let _ = send.finish();
    });
    loop {
        match transport::read_frame::<SignalRequest>(&mut recv).await {
            Ok(Some(req)) => server.do_send(FromClient { conn: id, req }),
            Ok(None) => {
                conn.close(quinn::VarInt::from_u32(close::NORMAL), b"stream finished");
                break;
            }
            Err(FrameError::Io(e)) => {
                debug!(device = %device.short(), "signal server: connection ended: {e}");
                break;
            }
            Err(e) => {
                warn!(device = %device.short(), %remote, "signal server: bad frame, closing: {e}");
                conn.close(quinn::VarInt::from_u32(close::BAD_FRAME), b"bad frame");
                break;
            }
        }
    }
    server.do_send(Gone { conn: id });
}
