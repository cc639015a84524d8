//! `HostInvitationActor`: one per invitation this node hosts. It runs a [`HostCore`] and
//! only carries out its outputs: it persists the record (durably, before the outputs after
//! it), writes frames to and reads frames from each guest's side stream, checks a guest's
//! device credential against the device at the other end of the connection, asks the space
//! to admit the guest (one durable batch) and sets the core's timers. For a device
//! invitation it authorises the guest's device into this node's identity instead (an
//! `AuthorizedDevice` signed by this device with its chain) and hands over the identity's
//! space list.
//!
//! A session is one guest's side stream. Its writer task owns the send half and the stream's
//! guard: dropping the session's sender finishes the stream after the frames already queued,
//! and the guard then gives the connection its stranger deadline back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;

use super::host::{HostCore, HostInput, HostOutput, InvitationRecord, SessionId};
use super::messages::{DeviceGrant, GuestFrame, HostFrame};
use super::stream_io::spawn_stream_io;
use crate::credentials::{Credential, Role};
use crate::identity::{CurrentSigner, IdentityActor, ShowIdentity};
use crate::mesh::{JoinInvitationTopic, LeaveInvitationTopic, NetworkActor, SideStream};
use crate::space::{
    listed_spaces, listing_query, AdmitMember, ListSpaces, QueryObjects, SpaceActor, SpaceDirectory,
};
use crate::store::{Key, Store};
use crate::types::{encode, Clock, PublicKey};

struct Session {
    device: PublicKey,
    frames: mpsc::UnboundedSender<HostFrame>,
}

/// See the module docs.
pub struct HostInvitationActor {
    core: HostCore,
    /// The invitation's space: the identity space for a device invitation.
    space: Addr<SpaceActor>,
    identity: Addr<IdentityActor>,
    /// This node's spaces (a device invitation's grant names them all).
    spaces: Addr<SpaceDirectory>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: ChaCha20Rng,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    /// For the invitation topic's swarm: joined while the invitation is open.
    network: Option<Addr<NetworkActor>>,
    in_topic: bool,
}

impl HostInvitationActor {
    /// `device`: a device invitation (`space` is the identity space).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        record: InvitationRecord,
        device: bool,
        space: Addr<SpaceActor>,
        identity: Addr<IdentityActor>,
        spaces: Addr<SpaceDirectory>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: ChaCha20Rng,
        network: Option<Addr<NetworkActor>>,
    ) -> Self {
        HostInvitationActor {
            core: if device {
                HostCore::for_device(record)
            } else {
                HostCore::new(record)
            },
            space,
            identity,
            spaces,
            store,
            clock,
            rng,
            sessions: BTreeMap::new(),
            next_session: 0,
            network,
            in_topic: false,
        }
    }

    fn feed(&mut self, input: HostInput, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        let outputs = self.core.handle(now, input, &mut self.rng);
        self.carry_out(outputs, ctx);
    }

    /// Leaves the invitation topic's swarm once the invitation has ended.
    fn follow_topic(&mut self) {
        let open = !self.core.state().is_terminal();
        if open == self.in_topic {
            return;
        }
        self.in_topic = open;
        let Some(network) = &self.network else {
            return;
        };
        let topic = super::directory::invitation_topic(&self.core.record().id);
        if open {
            network.do_send(JoinInvitationTopic {
                topic,
                signal: vec![],
            });
        } else {
            network.do_send(LeaveInvitationTopic(topic));
        }
    }

    fn carry_out(&mut self, outputs: Vec<HostOutput>, ctx: &mut Context<Self>) {
        self.follow_topic();
        for output in outputs {
            if let Err(e) = self.carry_out_one(output, ctx) {
                // The record could not be made durable: nothing after it may happen (an
                // answer to a wrong code must not go out before its count is stored).
                tracing::error!(error = %e, "cannot persist an invitation; ending its handshakes");
                self.sessions.clear();
                return;
            }
        }
    }

    fn carry_out_one(&mut self, output: HostOutput, ctx: &mut Context<Self>) -> Result<(), String> {
        match output {
            HostOutput::Persist(record) => persist(self.store.as_ref(), &record)?,
            HostOutput::Send(session, frame) => {
                if let Some(s) = self.sessions.get(&session) {
                    let _ = s.frames.send(frame);
                }
            }
            HostOutput::CloseSession(session) => {
                self.sessions.remove(&session);
            }
            HostOutput::Admit {
                session,
                identity_key,
                role,
                device_auth,
                feeds,
            } => self.admit(session, identity_key, role, *device_auth, feeds, ctx),
            HostOutput::AdmitDevice { session, device } => self.admit_device(session, device, ctx),
            HostOutput::SetTimer { at_ms, timer } => {
                let wait = Duration::from_millis(at_ms.saturating_sub(self.clock.now_ms()));
                ctx.run_later(wait, move |act, ctx| act.feed(HostInput::Timer(timer), ctx));
            }
            HostOutput::SessionState(session, state) => {
                let id = hex(&self.core.record().id);
                tracing::info!(invitation = %id, session, state = state.name(), "invitation handshake");
            }
        }
        Ok(())
    }

    fn admit(
        &mut self,
        session: SessionId,
        identity: PublicKey,
        role: Role,
        device_auth: Credential,
        feeds: Vec<PublicKey>,
        ctx: &mut Context<Self>,
    ) {
        let Some(device) = self.sessions.get(&session).map(|s| s.device) else {
            return;
        };
        let request = admission(identity, role, device, &device_auth, &feeds);
        let space = self.space.clone();
        async move {
            let request = request?;
            match space.send(request).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the space is shutting down".to_string()),
            }
        }
        .into_actor(self)
        .map(move |result, act, ctx| {
            if let Err(e) = &result {
                tracing::warn!(guest = %identity.short(), error = %e, "could not admit an invitation's guest");
            }
            act.feed(HostInput::Admitted { session, result }, ctx)
        })
        .spawn(ctx);
    }
}

impl HostInvitationActor {
    fn admit_device(&mut self, session: SessionId, device: PublicKey, ctx: &mut Context<Self>) {
        let Some(connected) = self.sessions.get(&session).map(|s| s.device) else {
            return;
        };
        let identity = self.identity.clone();
        let halo = self.space.clone();
        let spaces = self.spaces.clone();
        let halo_key = self.core.record().space_key;
        let now = self.clock.now_ms();
        async move {
            if connected != device {
                return Err(
                    "the guest introduced itself as another device than it connected with"
                        .to_string(),
                );
            }
            grant(identity, halo, spaces, halo_key, device, now).await
        }
        .into_actor(self)
        .map(move |result, act, ctx| {
            match &result {
                Ok(_) => tracing::info!(device = %device.short(), "authorised a new device of this identity"),
                Err(e) => tracing::warn!(device = %device.short(), error = %e, "could not authorise a new device"),
            }
            act.feed(HostInput::DeviceAdmitted { session, result }, ctx)
        })
        .spawn(ctx);
    }
}

/// What a new device gets: its `AuthorizedDevice`, signed by this device with its chain,
/// and the identity's spaces: those its list names and those this node has (a space
/// created a moment ago may not be listed yet).
async fn grant(
    identity: Addr<IdentityActor>,
    halo: Addr<SpaceActor>,
    spaces: Addr<SpaceDirectory>,
    halo_space_key: PublicKey,
    device: PublicKey,
    now_ms: u64,
) -> Result<Box<DeviceGrant>, String> {
    let gone = |_| "the node is shutting down".to_string();
    let signer = identity
        .send(CurrentSigner)
        .await
        .map_err(gone)?
        .map_err(|e| e.to_string())?;
    let name = identity
        .send(ShowIdentity)
        .await
        .map_err(gone)?
        .map_err(|e| e.to_string())?
        .name;
    let objects = halo
        .send(QueryObjects(listing_query()))
        .await
        .map_err(gone)?
        .map_err(|e| format!("cannot read the identity's space list: {e}"))?;
    let mut all: std::collections::BTreeSet<PublicKey> =
        listed_spaces(&objects).into_keys().collect();
    for info in spaces.send(ListSpaces).await.map_err(gone)? {
        if let Ok(key) = info.space_key.parse() {
            all.insert(key);
        }
    }
    Ok(Box::new(DeviceGrant {
        identity_key: signer.issuer,
        name,
        device_credential: signer.authorize_device(device, now_ms),
        halo_space_key,
        spaces: all.into_iter().collect(),
    }))
}

/// The admission a guest asked for, once its device credential checks out: it must be the
/// guest identity's `AuthorizedDevice` for the device at the other end of the connection,
/// and name exactly two distinct feeds (control, data).
fn admission(
    identity: PublicKey,
    role: Role,
    device: PublicKey,
    device_auth: &Credential,
    feeds: &[PublicKey],
) -> Result<AdmitMember, String> {
    device_auth
        .verify_device_authorization(Some(identity), device)
        .map_err(|e| {
            format!(
                "the guest's device credential is not a valid AuthorizedDevice of its identity \
                 for the device it connected with: {e}"
            )
        })?;
    let [control_feed, data_feed] = feeds else {
        return Err(format!(
            "the guest named {} feeds; it must name two (control, data)",
            feeds.len()
        ));
    };
    Ok(AdmitMember {
        identity,
        role,
        device,
        control_feed: *control_feed,
        data_feed: *data_feed,
    })
}

fn persist(store: &dyn Store, record: &InvitationRecord) -> Result<(), String> {
    let bytes = encode(record).map_err(|e| e.to_string())?;
    store
        .put(&Key::invitation(&record.id), &bytes)
        .and_then(|()| store.flush())
        .map_err(|e| e.to_string())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Actor for HostInvitationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let outputs = self.core.start(self.clock.now_ms());
        self.carry_out(outputs, ctx);
    }
}

/// A guest's side stream, with the first frame already read from it (the directory read it
/// to find this invitation).
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewGuest {
    pub stream: SideStream,
    pub first: GuestFrame,
}

impl Handler<NewGuest> for HostInvitationActor {
    type Result = ();
    fn handle(&mut self, msg: NewGuest, ctx: &mut Context<Self>) {
        self.next_session += 1;
        let session = self.next_session;
        let SideStream {
            device,
            send,
            recv,
            guard,
        } = msg.stream;
        if !self.core.state().is_terminal() {
            guard.vouch();
        }
        let me = ctx.address();
        let gone = ctx.address();
        let frames = spawn_stream_io::<HostFrame, GuestFrame, _, _, _>(
            send,
            recv,
            guard,
            "guest",
            move |frame| {
                let me = me.clone();
                async move { me.send(SessionFrame(session, frame)).await.is_ok() }
            },
            move || gone.do_send(SessionGone(session)),
        );
        self.sessions.insert(session, Session { device, frames });
        self.feed(HostInput::GuestConnected(session), ctx);
        self.feed(HostInput::Frame(session, msg.first), ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct SessionFrame(SessionId, GuestFrame);

impl Handler<SessionFrame> for HostInvitationActor {
    type Result = ();
    fn handle(&mut self, msg: SessionFrame, ctx: &mut Context<Self>) {
        if self.sessions.contains_key(&msg.0) {
            self.feed(HostInput::Frame(msg.0, msg.1), ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct SessionGone(SessionId);

impl Handler<SessionGone> for HostInvitationActor {
    type Result = ();
    fn handle(&mut self, msg: SessionGone, ctx: &mut Context<Self>) {
        self.sessions.remove(&msg.0);
        self.feed(HostInput::GuestGone(msg.0), ctx);
    }
}

/// The invitation's record as it stands.
#[derive(Message)]
#[rtype(result = "InvitationRecord")]
pub struct GetRecord;

impl Handler<GetRecord> for HostInvitationActor {
    type Result = MessageResult<GetRecord>;
    fn handle(&mut self, _: GetRecord, ctx: &mut Context<Self>) -> Self::Result {
        // A lifetime that ran out shows as EXPIRED even before its timer fires.
        if self.clock.now_ms() >= self.core.record().expires_at_ms() {
            self.feed(HostInput::Timer(super::host::HostTimer::Expiry), ctx);
        }
        MessageResult(self.core.record().clone())
    }
}

/// Cancel the invitation; answers its record after.
#[derive(Message)]
#[rtype(result = "InvitationRecord")]
pub struct CancelInvitation;

impl Handler<CancelInvitation> for HostInvitationActor {
    type Result = MessageResult<CancelInvitation>;
    fn handle(&mut self, _: CancelInvitation, ctx: &mut Context<Self>) -> Self::Result {
        self.feed(HostInput::Cancel, ctx);
        MessageResult(self.core.record().clone())
    }
}
