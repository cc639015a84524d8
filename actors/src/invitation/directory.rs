//! `InvitationDirectory`: the node's invitations. It creates invitations (a persisted
//! record, a [`HostInvitationActor`] for each, the invitation code), loads them again after
//! a restart, lists and cancels them, routes each incoming invitation stream to its
//! invitation by the id in the guest's first frame, and starts one [`GuestInvitationActor`]
//! per `invite accept`.
//!
//! An incoming stream must name a live invitation within [`INTRODUCE_WAIT`] (the stranger
//! deadline), or it is answered `no such invitation` and finished: a stream without the
//! invitation id cannot hold a connection open longer than a silent stranger could.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use super::code::{InvitationCode, InvitationKind};
use super::guest::GuestParams;
use super::guest_actor::{AcceptResult, GuestDeps, GuestInvitationActor};
use super::host::{InvitationRecord, MAX_ATTEMPTS};
use super::host_actor::{hex, CancelInvitation, GetRecord, HostInvitationActor, NewGuest};
use super::info::{CreatedInvitation, InvitationInfo, InvitationProgress, InviteOptions};
use super::messages::{AuthMethod, EndReason, GuestFrame, HostFrame, InvitationState};
use super::request_error::InvitationRequestError;
use crate::identity::{IdentityActor, ShowIdentity};
use crate::mesh::{
    IncomingInvitation, ListenAddrs, NetworkActor, RecoveryStream, RouteInvitations, SideStream,
    WatchPeers,
};
use crate::signal::Topic;
use crate::space::{
    HaloSpace, MayInvite, ResolveSpace, SpaceActor, SpaceDirectory, SpaceStatusRequest,
};
use crate::store::{Key, Store};
use crate::transport::{read_frame, write_frame};
use crate::types::{decode, Clock, PublicKey};

/// How long an incoming invitation stream has to name its invitation.
pub const INTRODUCE_WAIT: Duration = Duration::from_secs(2);

/// The swarm topic of an invitation (what a guest would look the host up by in signaling).
pub fn invitation_topic(id: &[u8; 16]) -> Topic {
    blake3::derive_key("echo-rs invitation topic v1", id)
}

/// A 6-digit code, uniform over 000000..=999999.
pub fn draw_pin(rng: &mut impl RngCore) -> String {
    // 4 294 000 000 is the largest multiple of 10^6 below 2^32: rejecting draws above it
    // leaves every code equally likely.
    loop {
        let x = rng.next_u32();
        if x < 4_294_000_000 {
            return format!("{:06}", x % 1_000_000);
        }
    }
}

struct Host {
    addr: Addr<HostInvitationActor>,
    space_key: PublicKey,
}

/// See the module docs.
pub struct InvitationDirectory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: ChaCha20Rng,
    spaces: Addr<SpaceDirectory>,
    identity: Addr<IdentityActor>,
    network: Option<Addr<NetworkActor>>,
    device_key: PublicKey,
    hosts: BTreeMap<[u8; 16], Host>,
}

impl InvitationDirectory {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: ChaCha20Rng,
        spaces: Addr<SpaceDirectory>,
        identity: Addr<IdentityActor>,
        network: Option<Addr<NetworkActor>>,
        device_key: PublicKey,
    ) -> Self {
        InvitationDirectory {
            store,
            clock,
            rng,
            spaces,
            identity,
            network,
            device_key,
            hosts: BTreeMap::new(),
        }
    }

    fn child_rng(&mut self) -> ChaCha20Rng {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        ChaCha20Rng::from_seed(seed)
    }

    /// The network an invitation's guest (`who`) reaches this node through, or why none can.
    fn reachable_by(&self, who: &str) -> Result<Addr<NetworkActor>, InvitationRequestError> {
        self.network.clone().ok_or_else(|| {
            InvitationRequestError::Invalid(format!(
                "this node has no network; {who} could never reach it"
            ))
        })
    }

    /// Starts the actor of a record whose space is open here (`device`: a device
    /// invitation, whose space is the identity space).
    fn host(&mut self, record: InvitationRecord, device: bool, space: Addr<SpaceActor>) {
        let id = record.id;
        let space_key = record.space_key;
        let rng = self.child_rng();
        let addr = HostInvitationActor::new(
            record,
            device,
            space,
            self.identity.clone(),
            self.spaces.clone(),
            self.store.clone(),
            self.clock.clone(),
            rng,
            self.network.clone(),
        )
        .start();
        self.hosts.insert(id, Host { addr, space_key });
    }
}

fn info(record: &InvitationRecord) -> InvitationInfo {
    InvitationInfo {
        invitation_id: hex(&record.id),
        space_key: record.space_key.to_hex(),
        state: record.state.name().to_string(),
        reason: record.reason.clone(),
        auth: record.auth.name().to_string(),
        role: record.role.as_str().to_string(),
        multi_use: record.multi_use,
        attempts_left: record.attempts_left,
        uses: record.uses,
        expires_at: record.expires_at_ms(),
    }
}

fn parse_id(text: &str) -> Result<[u8; 16], InvitationRequestError> {
    let text = text.trim();
    let bad = || {
        InvitationRequestError::Invalid(format!(
            "`{}` is not an invitation id (32 hex characters, see `echo-node invite list`)",
            text.chars().take(80).collect::<String>()
        ))
    };
    if text.len() != 32 || !text.is_ascii() {
        return Err(bad());
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(id)
}

impl Actor for InvitationDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(network) = &self.network {
            network.do_send(RouteInvitations(ctx.address().recipient()));
            network.do_send(WatchPeers(ctx.address().recipient()));
        }
        // Invitations outlive restarts until they expire: load every record and start the
        // actors of those whose space is open (an ended one answers every guest `Ended`).
        let records: Vec<InvitationRecord> = match self.store.scan_prefix(&Key::invitations()) {
            Ok(entries) => entries
                .iter()
                .filter_map(|(k, v)| match decode::<InvitationRecord>(v) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!(key = %hex(k), error = %e, "an invitation record is corrupt; passing over it");
                        None
                    }
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the invitations");
                vec![]
            }
        };
        for record in records {
            let spaces = self.spaces.clone();
            let space_key = record.space_key;
            async move { invitation_space(&spaces, space_key).await }
                .into_actor(self)
                .map(move |res, act, _| match res {
                    Some((device, space)) => act.host(record, device, space),
                    None => tracing::warn!(space = %space_key.short(), "an invitation's space is not open here"),
                })
                .wait(ctx);
        }
    }
}

/// The actor of an invitation's space, and whether it is the identity space (a device
/// invitation).
async fn invitation_space(
    spaces: &Addr<SpaceDirectory>,
    space_key: PublicKey,
) -> Option<(bool, Addr<SpaceActor>)> {
    if let Ok(Some((halo, addr))) = spaces.send(HaloSpace).await {
        if halo == space_key {
            return Some((true, addr));
        }
    }
    match spaces.send(ResolveSpace(space_key.to_hex())).await {
        Ok(Ok(addr)) => Some((false, addr)),
        _ => None,
    }
}

/// Create an invitation to a space.
#[derive(Message)]
#[rtype(result = "Result<CreatedInvitation, InvitationRequestError>")]
pub struct CreateInvitation {
    pub space: String,
    pub options: InviteOptions,
}

impl Handler<CreateInvitation> for InvitationDirectory {
    type Result = ResponseActFuture<Self, Result<CreatedInvitation, InvitationRequestError>>;
    fn handle(&mut self, msg: CreateInvitation, _: &mut Context<Self>) -> Self::Result {
        let CreateInvitation { space, options } = msg;
        let spaces = self.spaces.clone();
        let network = self.reachable_by("a guest");
        Box::pin(
            async move {
                let network = network?;
                let guest_key = check_options(&options)?;
                let space = spaces.send(ResolveSpace(space)).await??;
                let space_key = space.send(MayInvite { role: options.role }).await??;
                let (addrs, signal) = network.send(ListenAddrs).await?;
                Ok::<_, InvitationRequestError>((
                    space, space_key, guest_key, addrs, signal, options,
                ))
            }
            .into_actor(self)
            .map(|res, act, _| {
                let (space, space_key, guest_key, addrs, signal, options) = res?;
                let place = Place {
                    kind: InvitationKind::Space,
                    space,
                    space_key,
                    addrs,
                    signal,
                };
                act.open(place, guest_key, options)
            }),
        )
    }
}

/// Where an invitation is for, and where its host listens.
struct Place {
    kind: InvitationKind,
    space: Addr<SpaceActor>,
    space_key: PublicKey,
    addrs: Vec<std::net::SocketAddr>,
    signal: Vec<std::net::SocketAddr>,
}

impl InvitationDirectory {
    /// Creates the record (durable before anyone can use it) and the host actor, and
    /// answers the code.
    fn open(
        &mut self,
        place: Place,
        guest_key: Option<PublicKey>,
        options: InviteOptions,
    ) -> Result<CreatedInvitation, InvitationRequestError> {
        let Place {
            kind,
            space,
            space_key,
            addrs,
            signal,
        } = place;
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let pin = (options.auth == AuthMethod::Pin).then(|| draw_pin(&mut self.rng));
        let record = InvitationRecord {
            id,
            space_key,
            role: options.role,
            auth: options.auth,
            pin: pin.clone(),
            guest_key,
            multi_use: options.multi_use,
            created_ms: self.clock.now_ms(),
            lifetime_ms: options.lifetime_ms,
            handshake_timeout_ms: options.handshake_timeout_ms,
            attempts_left: MAX_ATTEMPTS,
            uses: 0,
            state: InvitationState::Init,
            reason: None,
        };
        let bytes = crate::types::encode(&record)
            .map_err(|e| InvitationRequestError::Storage(e.to_string()))?;
        self.store
            .put(&Key::invitation(&id), &bytes)
            .and_then(|()| self.store.flush())
            .map_err(|e| InvitationRequestError::Storage(e.to_string()))?;
        let code = InvitationCode {
            kind,
            invitation_id: id,
            auth: record.auth,
            topic: invitation_topic(&id),
            space_key,
            created_ms: record.created_ms,
            lifetime_ms: record.lifetime_ms,
            host_device: self.device_key,
            addrs,
            signal,
        };
        let expires_at = record.expires_at_ms();
        self.host(record, kind == InvitationKind::Device, space);
        tracing::info!(invitation = %hex(&id), space = %space_key.short(), kind = ?kind, "invitation created");
        Ok(CreatedInvitation {
            invitation_code: code.encode(),
            auth_code: pin,
            invitation_id: hex(&id),
            expires_at,
        })
    }
}

/// Create a device invitation: a new device joins this node's identity with it.
#[derive(Message)]
#[rtype(result = "Result<CreatedInvitation, InvitationRequestError>")]
pub struct CreateDeviceInvitation {
    /// The role is not used (a device has its identity's role everywhere); `key` auth is
    /// refused (a new device has no identity to prove).
    pub options: InviteOptions,
}

impl Handler<CreateDeviceInvitation> for InvitationDirectory {
    type Result = ResponseActFuture<Self, Result<CreatedInvitation, InvitationRequestError>>;
    fn handle(&mut self, msg: CreateDeviceInvitation, _: &mut Context<Self>) -> Self::Result {
        let CreateDeviceInvitation { options } = msg;
        let spaces = self.spaces.clone();
        let network = self.reachable_by("a new device");
        Box::pin(
            async move {
                let network = network?;
                if options.auth == AuthMethod::Key {
                    return Err(InvitationRequestError::Invalid(
                        "a device invitation takes `pin` or `none` auth: a new device has no \
                         identity to sign with"
                            .into(),
                    ));
                }
                check_options(&options)?;
                let (space_key, space) = spaces.send(HaloSpace).await?.ok_or_else(|| {
                    InvitationRequestError::Invalid(
                        "this identity has no identity space (it was created before echo-node \
                         had them), so it cannot invite devices; recover it from its seed \
                         phrase on a fresh data dir to use a new one"
                            .into(),
                    )
                })?;
                // A recovered device whose other devices are all lost never gets the
                // identity space's control state, and could admit nobody into it.
                if space.send(SpaceStatusRequest).await?.role.is_none() {
                    return Err(InvitationRequestError::Invalid(
                        "this device does not hold the identity space yet (recovered, and no \
                         other device of the identity reached since): it cannot admit a device. \
                         Reach another device of the identity (`run --peer`, signaling), or, \
                         if every other device is lost, set the new device up with `identity \
                         recover` instead"
                            .into(),
                    ));
                }
                let (addrs, signal) = network.send(ListenAddrs).await?;
                let place = Place {
                    kind: InvitationKind::Device,
                    space,
                    space_key,
                    addrs,
                    signal,
                };
                Ok::<_, InvitationRequestError>((place, options))
            }
            .into_actor(self)
            .map(|res, act, _| {
                let (place, options) = res?;
                act.open(place, None, options)
            }),
        )
    }
}

/// Checks what `invite create` was asked; answers the `key` auth's guest identity.
fn check_options(options: &InviteOptions) -> Result<Option<PublicKey>, InvitationRequestError> {
    let invalid = |m: &str| Err(InvitationRequestError::Invalid(m.to_string()));
    if options.lifetime_ms == 0 || options.handshake_timeout_ms == 0 {
        return invalid("the lifetime and the handshake timeout must be more than 0");
    }
    match (options.auth, &options.guest_key) {
        (AuthMethod::Key, None) => invalid("`key` auth needs the guest's identity key"),
        (AuthMethod::Key, Some(text)) => {
            let key: PublicKey = text.trim().parse().map_err(|_| {
                InvitationRequestError::Invalid(format!(
                    "`{}` is not an identity key (64 hex characters)",
                    text.chars().take(80).collect::<String>()
                ))
            })?;
            key.check_point()
                .map_err(|e| InvitationRequestError::Invalid(format!("the guest key: {e}")))?;
            Ok(Some(key))
        }
        (_, Some(_)) => invalid("a guest key is only for `key` auth"),
        (_, None) => Ok(None),
    }
}

/// The invitations this node hosts, of one space or all, ordered by id.
#[derive(Message)]
#[rtype(result = "Result<Vec<InvitationInfo>, InvitationRequestError>")]
pub struct ListInvitations {
    pub space: Option<String>,
}

impl Handler<ListInvitations> for InvitationDirectory {
    type Result = ResponseFuture<Result<Vec<InvitationInfo>, InvitationRequestError>>;
    fn handle(&mut self, msg: ListInvitations, _: &mut Context<Self>) -> Self::Result {
        let hosts: Vec<(PublicKey, Addr<HostInvitationActor>)> = self
            .hosts
            .values()
            .map(|h| (h.space_key, h.addr.clone()))
            .collect();
        let spaces = self.spaces.clone();
        Box::pin(async move {
            let only = match msg.space {
                Some(space) => {
                    let addr = spaces.send(ResolveSpace(space)).await??;
                    Some(
                        addr.send(MayInvite {
                            role: crate::credentials::Role::Reader,
                        })
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .ok_or_else(|| {
                            InvitationRequestError::Forbidden(
                                "only an OWNER or ADMIN of the space hosts its invitations".into(),
                            )
                        })?,
                    )
                }
                None => None,
            };
            let mut out = vec![];
            for (space_key, addr) in hosts {
                if only.is_some_and(|k| k != space_key) {
                    continue;
                }
                out.push(info(&addr.send(GetRecord).await?));
            }
            Ok(out)
        })
    }
}

/// Cancel an invitation this node hosts.
#[derive(Message)]
#[rtype(result = "Result<InvitationInfo, InvitationRequestError>")]
pub struct CancelById(pub String);

impl Handler<CancelById> for InvitationDirectory {
    type Result = ResponseFuture<Result<InvitationInfo, InvitationRequestError>>;
    fn handle(&mut self, msg: CancelById, _: &mut Context<Self>) -> Self::Result {
        let found = parse_id(&msg.0).and_then(|id| {
            self.hosts
                .get(&id)
                .map(|h| h.addr.clone())
                .ok_or_else(|| InvitationRequestError::NotFound(hex(&id)))
        });
        Box::pin(async move {
            let record = found?.send(CancelInvitation).await?;
            Ok(info(&record))
        })
    }
}

/// Accept an invitation (see `NodeHandle::invite_accept`).
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<AcceptResult>, InvitationRequestError>")]
pub struct AcceptInvitation {
    /// What the caller expects: `invite accept` takes space invitations, `device join`
    /// device invitations.
    pub kind: InvitationKind,
    pub code: String,
    pub auth_code: Option<String>,
    pub timeout_ms: u64,
    pub progress: Option<mpsc::UnboundedSender<InvitationProgress>>,
}

impl Handler<AcceptInvitation> for InvitationDirectory {
    type Result =
        ResponseActFuture<Self, Result<oneshot::Receiver<AcceptResult>, InvitationRequestError>>;
    fn handle(&mut self, msg: AcceptInvitation, _: &mut Context<Self>) -> Self::Result {
        let parsed = InvitationCode::decode(&msg.code)
            .map_err(|e| InvitationRequestError::BadCode(e.to_string()));
        let identity = self.identity.clone();
        let device_key = self.device_key;
        let expected = msg.kind;
        Box::pin(
            async move {
                let code = parsed?;
                let me = identity.send(ShowIdentity).await?;
                let key = guest_key(expected, &code, me, device_key)?;
                Ok::<_, InvitationRequestError>((code, key))
            }
            .into_actor(self)
            .map(move |res, act, _| {
                let (code, identity_key) = res?;
                if act.hosts.contains_key(&code.invitation_id) || code.host_device == act.device_key
                {
                    return Err(InvitationRequestError::Invalid(
                        "this node hosts that invitation itself; accept it on the guest's node"
                            .into(),
                    ));
                }
                let network = act.network.clone().ok_or_else(|| {
                    InvitationRequestError::Invalid(
                        "this node has no network; it cannot reach the host".into(),
                    )
                })?;
                let params = GuestParams {
                    invitation_id: code.invitation_id,
                    space_key: code.space_key,
                    auth: code.auth,
                    expires_at_ms: code.expires_ms(),
                    kind: code.kind,
                    identity_key,
                    pin: msg.auth_code.map(|c| c.trim().to_string()),
                    timeout_ms: msg.timeout_ms,
                };
                let deps = GuestDeps {
                    network,
                    spaces: act.spaces.clone(),
                    identity: act.identity.clone(),
                    clock: act.clock.clone(),
                };
                let (tx, rx) = oneshot::channel();
                GuestInvitationActor::new(code, params, deps, msg.progress, tx).start();
                Ok(rx)
            }),
        )
    }
}

/// Who the guest introduces itself as: its identity (a space invitation, which needs one)
/// or its device (a device invitation, which needs a node without one). A code of the other
/// kind than the command expects is refused with the command to use.
fn guest_key(
    expected: InvitationKind,
    code: &InvitationCode,
    me: Result<crate::identity::IdentityInfo, crate::identity::IdentityRequestError>,
    device_key: PublicKey,
) -> Result<PublicKey, InvitationRequestError> {
    let invalid = |m: String| Err(InvitationRequestError::Invalid(m));
    match (expected, code.kind) {
        (InvitationKind::Space, InvitationKind::Device) => {
            return invalid(
                "this is a device invitation (it adds a device to an identity): use \
                 `echo-node device join` on a fresh data dir"
                    .into(),
            )
        }
        (InvitationKind::Device, InvitationKind::Space) => {
            return invalid(
                "this is a space invitation: use `echo-node invite accept` on a node with an \
                 identity"
                    .into(),
            )
        }
        _ => {}
    }
    match (code.kind, me) {
        (InvitationKind::Space, Ok(me)) => me
            .identity_key
            .parse()
            .map_err(|_| InvitationRequestError::Invalid("bad identity key".into())),
        (InvitationKind::Space, Err(e)) => invalid(format!("{e}: create one before accepting")),
        (InvitationKind::Device, Ok(me)) => invalid(format!(
            "this node already has an identity ({}); `device join` needs a fresh data dir \
             (`echo-node --data-dir NEW_DIR run`, then `device join` there)",
            me.identity_key
        )),
        (InvitationKind::Device, Err(_)) => Ok(device_key),
    }
}

impl Handler<IncomingInvitation> for InvitationDirectory {
    type Result = ();
    fn handle(&mut self, msg: IncomingInvitation, ctx: &mut Context<Self>) {
        let SideStream {
            device,
            send,
            mut recv,
            guard,
        } = msg.0;
        async move {
            let first = tokio::time::timeout(INTRODUCE_WAIT, read_frame::<GuestFrame>(&mut recv)).await;
            (first, send, recv, guard)
        }
        .into_actor(self)
        .map(move |(first, mut send, recv, guard), act, _| {
            let first = match first {
                Ok(Ok(Some(frame))) => frame,
                _ => {
                    tracing::info!(peer = %device.short(), "an invitation stream named no invitation in time");
                    return;
                }
            };
            if let GuestFrame::SpacesOf { device_auth } = first {
                let stream = SideStream { device, send, recv, guard };
                return super::spaces_of::answer(stream, *device_auth, act.spaces.clone());
            }
            let host = match &first {
                GuestFrame::Introduce { invitation_id, .. } => act.hosts.get(invitation_id),
                _ => None,
            };
            match host {
                Some(host) => host.addr.do_send(NewGuest {
                    stream: SideStream {
                        device,
                        send,
                        recv,
                        guard,
                    },
                    first,
                }),
                None => {
                    tracing::info!(peer = %device.short(), "a guest named no invitation hosted here");
                    actix::spawn(async move {
                        let ended = HostFrame::Ended(EndReason::Error("no such invitation".into()));
                        let _ = write_frame(&mut send, &ended).await;
                        let _ = send.finish();
                        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
                        drop((recv, guard));
                    });
                }
            }
        })
        .spawn(ctx);
    }
}

impl Handler<RecoveryStream> for InvitationDirectory {
    type Result = ();
    fn handle(&mut self, msg: RecoveryStream, _: &mut Context<Self>) {
        super::spaces_of::ask_if_recovering(msg.0, self.spaces.clone(), self.identity.clone());
    }
}
