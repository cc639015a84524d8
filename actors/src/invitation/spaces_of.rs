//! Finding one's spaces after a recovery: a device whose identity space is still joining
//! (recovered from the seed phrase, perhaps with every other device lost) asks each peer it
//! connects to, on an invitation side stream, which of the peer's spaces its identity is a
//! member of (`GuestFrame::SpacesOf`, with its `AuthorizedDevice` chain), and joins them;
//! its feeds there are then self-admitted like any device's of a member.
//!
//! Contract, answering side: the chain must verify and authorise exactly the device at the
//! other end of the connection (its TLS key); the answer names only spaces where that
//! identity is a member (not REMOVED) and that device is not revoked, so it tells a device
//! nothing its identity could not already read, and a device of anyone else learns nothing
//! (an empty list). Asking side: only while the identity space knows no other device of the
//! identity (the recovered device re-founds it from the phrase, alone; once it replicates
//! from another device, its list is the better source), once per connection.

use std::time::Duration;

use actix::prelude::*;

use super::messages::{GuestFrame, HostFrame};
use crate::credentials::Credential;
use crate::identity::{CurrentSigner, IdentityActor};
use crate::mesh::SideStream;
use crate::space::{HaloSpace, JoinListed, OurDevices, SpaceDirectory, SpacesOfIdentity};
use crate::transport::{read_frame, write_frame};

/// How long a peer has to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// How long the asking side holds the stream after the answer, so that the joined spaces'
/// channels open on the connection before it could count as a stranger's.
const HOLD: Duration = Duration::from_secs(1);

/// Answers a peer's `SpacesOf` on its stream, then finishes it.
pub(super) fn answer(stream: SideStream, device_auth: Credential, spaces: Addr<SpaceDirectory>) {
    let SideStream {
        device,
        mut send,
        recv,
        guard,
    } = stream;
    actix::spawn(async move {
        let list = match device_auth.verify_device_authorization(None, device) {
            Ok(auth) => spaces
                .send(SpacesOfIdentity {
                    identity: auth.identity,
                    device,
                })
                .await
                .unwrap_or_default(),
            Err(e) => {
                tracing::info!(peer = %device.short(), error = %e, "a peer asked for its spaces with a credential that does not hold");
                Vec::new()
            }
        };
        tracing::info!(peer = %device.short(), spaces = list.len(), "told a peer the spaces its identity is a member of");
        let _ = write_frame(&mut send, &HostFrame::Spaces(list)).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(ANSWER_WAIT, send.stopped()).await;
        drop((recv, guard));
    });
}

/// On a side stream the network opened to a new peer while our identity space was
/// joining: if it still is, ask the peer which spaces our identity is a member of, and join
/// them. Dropping the stream (any other way out) ends it.
pub(super) fn ask_if_recovering(
    stream: SideStream,
    spaces: Addr<SpaceDirectory>,
    identity: Addr<IdentityActor>,
) {
    actix::spawn(async move {
        let Some(auth) = recovering(&spaces, &identity).await else {
            return;
        };
        let peer = stream.device;
        if let Err(e) = ask(stream, auth, &spaces).await {
            tracing::info!(peer = %peer.short(), error = %e, "could not ask a peer for our spaces");
        }
    });
}

/// Our device credential, if the identity space knows no other device of ours.
async fn recovering(
    spaces: &Addr<SpaceDirectory>,
    identity: &Addr<IdentityActor>,
) -> Option<Credential> {
    let (_, halo) = spaces.send(HaloSpace).await.ok()??;
    let signer = identity.send(CurrentSigner).await.ok()?.ok()?;
    let this_device = signer.key.public();
    let devices = halo.send(OurDevices).await.ok()?;
    if devices.keys().any(|d| *d != this_device) {
        return None;
    }
    signer.chain
}

async fn ask(
    stream: SideStream,
    device_auth: Credential,
    spaces: &Addr<SpaceDirectory>,
) -> Result<(), String> {
    let SideStream {
        device: peer,
        mut send,
        mut recv,
        guard,
    } = stream;
    let frame = GuestFrame::SpacesOf {
        device_auth: Box::new(device_auth),
    };
    write_frame(&mut send, &frame)
        .await
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(ANSWER_WAIT, read_frame::<HostFrame>(&mut recv))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())?;
    match answer {
        Some(HostFrame::Spaces(list)) => {
            tracing::info!(peer = %peer.short(), spaces = list.len(), "a peer named the spaces our identity is a member of");
            if !list.is_empty() {
                spaces
                    .send(JoinListed(list))
                    .await
                    .map_err(|_| "the node is shutting down".to_string())?;
            }
        }
        other => return Err(format!("the peer answered {other:?}")),
    }
    let _ = send.finish();
    tokio::time::sleep(HOLD).await;
    drop(guard);
    Ok(())
}
