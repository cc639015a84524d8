//! Side streams: streams of a peer connection that are not replication channels (today the
//! invitation handshake). The connection opens or accepts them (the preamble names their
//! kind) and hands them over whole; whoever holds a [`SideStream`] does its own framing.
//!
//! While a side stream is held its connection is not closed for showing no shared space
//! (`HelloCore`); the [`SideStreamGuard`] tells the connection when it is dropped, so a
//! handshake that ends (in any way, its actor stopping included) gives the deadline back.

use actix::prelude::*;

use super::connection::{ConnectionActor, SideStreamEnded, SideStreamVouched};
use super::hello::StreamId;
use crate::types::PublicKey;

/// One side stream, with the peer device it leads to.
pub struct SideStream {
    /// The peer's device key (from its TLS certificate).
    pub device: PublicKey,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    pub guard: SideStreamGuard,
}

/// Tells the connection that the side stream ended, when dropped.
pub struct SideStreamGuard {
    pub(super) conn: Addr<ConnectionActor>,
    pub(super) stream: StreamId,
}

impl SideStreamGuard {
    /// The stream's holder vouches for the peer (it named a live invitation): if the
    /// connection is closed later for showing no shared space, the peer's address is not
    /// penalized as a stranger's, so a guest that retries after a wrong code or a lost
    /// connection is not refused.
    pub fn vouch(&self) {
        self.conn.do_send(SideStreamVouched(self.stream));
    }
}

impl Drop for SideStreamGuard {
    fn drop(&mut self) {
        self.conn.do_send(SideStreamEnded(self.stream));
    }
}

/// An invitation stream a peer opened (the network actor passes it to whoever asked for
/// them with [`RouteInvitations`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingInvitation(pub SideStream);

/// Send every incoming invitation stream to this recipient.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteInvitations(pub Recipient<IncomingInvitation>);

/// A side stream opened to a newly connected peer while this node's identity space is
/// still joining (a recovered device): its holder asks the peer which spaces our identity is
/// a member of. Sent to whoever asked with [`WatchPeers`]. Opened before the connection's
/// channels are offered, so a refused Hello cannot close the connection first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecoveryStream(pub SideStream);

/// Send every [`RecoveryStream`] to this recipient.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchPeers(pub Recipient<RecoveryStream>);
