//! The directory's side of the identity space (HALO): opening it once the identity is
//! founded, and keeping this node's spaces and the identity's space list in step (the rule
//! is `halo.rs`).
//!
//! A reconciliation runs when the directory starts, after every space this node creates or
//! joins, whenever a listing arrives in the identity space (a watch on it), and every
//! [`RECONCILE_EVERY`] as a backstop (a listing written before this device's feeds in the
//! identity space were admitted failed, and is retried). Requests are coalesced: at most
//! one runs per [`RECONCILE_DELAY`].
//!
//! Each reconciliation also spreads the identity space's revocations to the node's other
//! spaces (`halo::to_revoke`): a revocation that could not be written in a space yet (this
//! device not admitted there) is written on a later round, once it is. And it shows this
//! device's name to the identity's other devices: a `DeviceProfile` in the identity space
//! when the name the identity actor keeps is not the one the space shows (written on a
//! later round while this device's feeds there are not admitted).

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use super::directory::SpaceDirectory;
use super::halo::{listed_spaces, listing, listing_query, reconcile, to_revoke, LISTING_TYPE};
use super::{join_space, Mutate, QueryObjects, SpaceActor, SpaceRequestError};
use super::{
    ForeignRevocations, NameOurDevice, OurDevices, RelayRevocations, RevokeOurDevice, Revoked,
};
use super::{MemberOf, SpaceRecord, Watch};
use crate::credentials::Credential;
use crate::identity::{CurrentSigner, DeviceName};
use crate::store::{Key, Store};
use crate::types::{decode, Hash, PublicKey};

/// How often the list is compared even when nothing announced a change.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How long a request for a reconciliation waits for others to join it.
pub const RECONCILE_DELAY: Duration = Duration::from_millis(50);

/// The identity space's key as stored, if this node has one.
pub(super) fn stored_halo_key(store: &dyn Store) -> Result<Option<PublicKey>, SpaceRequestError> {
    let Some(bytes) = store
        .get(&Key::halo_space())
        .map_err(|e| SpaceRequestError::Storage(e.to_string()))?
    else {
        return Ok(None);
    };
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        SpaceRequestError::Corrupt(format!(
            "the identity space's key is {} bytes, not 32",
            bytes.len()
        ))
    })?;
    Ok(Some(PublicKey::from_bytes(bytes)))
}

impl SpaceDirectory {
    fn halo_addr(&self) -> Option<(PublicKey, Addr<SpaceActor>)> {
        let key = self.halo?;
        self.spaces.get(&key).map(|e| (key, e.addr.clone()))
    }

    /// Starts following the identity space, if there is one: a reconciliation now, one on
    /// every listing that arrives, and one every [`RECONCILE_EVERY`].
    pub(super) fn follow_halo(&mut self, ctx: &mut Context<Self>) {
        let Some((_, halo)) = self.halo_addr() else {
            return;
        };
        ctx.notify(ReconcileHalo);
        ctx.run_interval(RECONCILE_EVERY, |_, ctx| ctx.notify(ReconcileHalo));
        let me = ctx.address();
        actix::spawn(async move {
            let watch = Watch {
                type_name: Some(LISTING_TYPE.to_string()),
            };
            let Ok(mut changes) = halo.send(watch).await else {
                return;
            };
            // The stream ends if it falls behind; the interval still reconciles then.
            while changes.recv().await.is_some() {
                me.do_send(ReconcileHalo);
            }
        });
    }

    /// Joins a space the identity's list names.
    fn join_listed(&mut self, space_key: PublicKey, name: Option<String>) {
        // A listed name already taken here is dropped: names are this node's own.
        let name = name.filter(|n| self.check_new_name(n).is_ok());
        let mut rng = self.child_rng();
        let now = self.clock.now_ms();
        let joined = join_space(self.store.as_ref(), space_key, name, &mut rng, now)
            .and_then(|record| self.start_space(record));
        match joined {
            Ok(()) => {
                tracing::info!(space = %space_key.short(), "joined a space the identity's list names")
            }
            Err(e) => {
                tracing::warn!(space = %space_key.short(), error = %e, "cannot join a listed space")
            }
        }
    }

    /// Writes the listing of one of our spaces into the identity space.
    fn list_space(
        &mut self,
        space_key: PublicKey,
        halo: Addr<SpaceActor>,
        ctx: &mut Context<Self>,
    ) {
        let Some(entry) = self.spaces.get(&space_key) else {
            return;
        };
        let object = listing(&space_key, entry.record.name.as_deref());
        self.listing.insert(space_key);
        async move { halo.send(Mutate::Add(object)).await }
            .into_actor(self)
            .map(move |res, act, _| {
                act.listing.remove(&space_key);
                match res {
                    Ok(Ok(_)) => {
                        tracing::debug!(space = %space_key.short(), "listed in the identity space")
                    }
                    // Most often: our feeds in the identity space are not admitted yet. The
                    // next reconciliation tries again.
                    Ok(Err(e)) => {
                        tracing::debug!(space = %space_key.short(), error = %e, "cannot list a space yet")
                    }
                    Err(_) => {}
                }
            })
            .spawn(ctx);
    }
}

/// Open the identity space the identity actor just founded or joined (its record and key
/// are in the store, written with the identity record), and start following it.
#[derive(Message)]
#[rtype(result = "Result<(), SpaceRequestError>")]
pub struct OpenHaloSpace;

impl Handler<OpenHaloSpace> for SpaceDirectory {
    type Result = AtomicResponse<Self, Result<(), SpaceRequestError>>;
    fn handle(&mut self, _: OpenHaloSpace, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            self.identity
                .send(CurrentSigner)
                .into_actor(self)
                .map(|signer, act, ctx| {
                    act.signer = Some(signer??);
                    let key = stored_halo_key(act.store.as_ref())?.ok_or_else(|| {
                        SpaceRequestError::Corrupt("the identity has no identity space".into())
                    })?;
                    if act.spaces.contains_key(&key) {
                        return Ok(());
                    }
                    let bytes = act
                        .store
                        .get(&Key::space(&key))
                        .map_err(|e| SpaceRequestError::Storage(e.to_string()))?
                        .ok_or_else(|| {
                            SpaceRequestError::Corrupt("the identity space has no record".into())
                        })?;
                    let record: SpaceRecord = decode(&bytes)
                        .map_err(|e| SpaceRequestError::Corrupt(format!("space record: {e}")))?;
                    act.halo = Some(key);
                    act.start_space(record)?;
                    act.follow_halo(ctx);
                    Ok(())
                }),
        ))
    }
}

/// Compare this node's spaces with the identity's list, and act on the difference.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ReconcileHalo;

impl Handler<ReconcileHalo> for SpaceDirectory {
    type Result = ();
    fn handle(&mut self, _: ReconcileHalo, ctx: &mut Context<Self>) {
        if self.reconcile_due || self.halo.is_none() {
            return;
        }
        self.reconcile_due = true;
        ctx.run_later(RECONCILE_DELAY, |act, ctx| {
            act.reconcile_due = false;
            act.reconcile_now(ctx);
        });
    }
}

impl SpaceDirectory {
    fn reconcile_now(&mut self, ctx: &mut Context<Self>) {
        let Some((halo_key, halo)) = self.halo_addr() else {
            return;
        };
        let query = listing_query();
        let asked = halo.clone();
        async move { asked.send(QueryObjects(query)).await }
            .into_actor(self)
            .map(move |res, act, ctx| {
                let Ok(Ok(objects)) = res else {
                    return;
                };
                let listed = listed_spaces(&objects);
                let ours = act.spaces.keys().copied().collect();
                let plan = reconcile(&ours, &listed, &act.listing, halo_key);
                for (key, name) in plan.join {
                    act.join_listed(key, name);
                }
                for key in plan.list {
                    act.list_space(key, halo.clone(), ctx);
                }
                act.spread_revocations(halo_key, halo.clone(), ctx);
                act.relay_revocations(halo_key, ctx);
                act.show_device_name(halo, ctx);
            })
            .wait(ctx);
    }

    /// Writes this device's name into the identity space, if it is not shown there yet.
    fn show_device_name(&mut self, halo: Addr<SpaceActor>, ctx: &mut Context<Self>) {
        let identity = self.identity.clone();
        async move {
            let Ok(Some(name)) = identity.send(DeviceName).await else {
                return;
            };
            match halo.send(NameOurDevice(name)).await {
                Ok(Ok(true)) => tracing::info!("this device's name is shown in the identity space"),
                Ok(Ok(false)) | Err(_) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot show this device's name yet"),
            }
        }
        .into_actor(self)
        .spawn(ctx);
    }

    /// Revokes, in every other space of this node, the devices the identity space says are
    /// revoked and that space does not (see the module docs).
    fn spread_revocations(
        &mut self,
        halo_key: PublicKey,
        halo: Addr<SpaceActor>,
        ctx: &mut Context<Self>,
    ) {
        let Some(me) = self.signer.as_ref().map(|s| s.key.public()) else {
            return;
        };
        if self.spreading {
            return;
        }
        self.spreading = true;
        let others = self.spaces_but(halo_key);
        async move {
            let Ok(known) = halo.send(OurDevices).await else {
                return;
            };
            if !known.values().any(|revoked| *revoked) {
                return;
            }
            for (space, addr) in others {
                let Ok(there) = addr.send(OurDevices).await else {
                    continue;
                };
                for device in to_revoke(&known, &there, &me) {
                    match addr.send(RevokeOurDevice(device)).await {
                        Ok(Ok(Revoked::Written { blocks_before_cut })) => tracing::info!(
                            space = %space.short(), device = %device.short(), blocks_before_cut,
                            "revoked a device the identity space names as revoked"
                        ),
                        Ok(Ok(Revoked::Already)) | Err(_) => {}
                        // Not admitted there yet, say: the next round tries again.
                        Ok(Err(e)) => tracing::debug!(space = %space.short(),
                            device = %device.short(), error = %e, "cannot spread a revocation yet"),
                    }
                }
            }
        }
        .into_actor(self)
        .map(|(), act, _| act.spreading = false)
        .spawn(ctx);
    }
}

impl SpaceDirectory {
    /// Every space of this node but `left_out` (the identity space), with its actor, by key.
    fn spaces_but(&self, left_out: PublicKey) -> Vec<(PublicKey, Addr<SpaceActor>)> {
        self.spaces
            .iter()
            .filter(|(key, _)| **key != left_out)
            .map(|(key, e)| (*key, e.addr.clone()))
            .collect()
    }

    /// Offers every space of this node the revocations of other identities' devices that
    /// take effect in its other spaces (`relay.rs`). The identity space is left out: it holds
    /// only our identity's devices.
    fn relay_revocations(&mut self, halo_key: PublicKey, ctx: &mut Context<Self>) {
        if self.relaying {
            return;
        }
        self.relaying = true;
        let spaces = self.spaces_but(halo_key);
        async move {
            let mut known: BTreeMap<Hash, Credential> = BTreeMap::new();
            for (_, addr) in &spaces {
                if let Ok(revocations) = addr.send(ForeignRevocations).await {
                    known.extend(revocations.into_iter().map(|c| (c.id(), c)));
                }
            }
            if known.is_empty() {
                return;
            }
            let offered: Vec<Credential> = known.into_values().collect();
            for (space, addr) in spaces {
                match addr.send(RelayRevocations(offered.clone())).await {
                    Ok(Ok(0)) | Err(_) => {}
                    Ok(Ok(relayed)) => tracing::info!(space = %space.short(), relayed,
                        "relayed revocations of another identity's devices that no device of theirs wrote here"),
                    Ok(Err(e)) => tracing::debug!(space = %space.short(), error = %e,
                        "cannot relay a revocation yet"),
                }
            }
        }
        .into_actor(self)
        .map(|(), act, _| act.relaying = false)
        .spawn(ctx);
    }
}

/// The identity space's key and actor, if this node has one.
#[derive(Message)]
#[rtype(result = "Option<(PublicKey, Addr<SpaceActor>)>")]
pub struct HaloSpace;

impl Handler<HaloSpace> for SpaceDirectory {
    type Result = Option<(PublicKey, Addr<SpaceActor>)>;
    fn handle(&mut self, _: HaloSpace, _: &mut Context<Self>) -> Self::Result {
        self.halo_addr()
    }
}

/// Every space of this node with its actor, the identity space included (flagged), ordered
/// by key: for what concerns the identity everywhere (its devices, their revocation).
#[derive(Message)]
#[rtype(result = "Vec<(PublicKey, Addr<SpaceActor>, bool)>")]
pub struct AllSpaces;

impl Handler<AllSpaces> for SpaceDirectory {
    type Result = MessageResult<AllSpaces>;
    fn handle(&mut self, _: AllSpaces, _: &mut Context<Self>) -> Self::Result {
        let halo = self.halo;
        MessageResult(
            self.spaces
                .iter()
                .map(|(k, e)| (*k, e.addr.clone(), Some(*k) == halo))
                .collect(),
        )
    }
}

/// The spaces of this node (the identity space left out) whose member `identity` is, with
/// `device` not revoked there, by key: what a recovered device of that identity may join.
#[derive(Message)]
#[rtype(result = "Vec<PublicKey>")]
pub struct SpacesOfIdentity {
    pub identity: PublicKey,
    pub device: PublicKey,
}

impl Handler<SpacesOfIdentity> for SpaceDirectory {
    type Result = ResponseFuture<Vec<PublicKey>>;
    fn handle(&mut self, msg: SpacesOfIdentity, _: &mut Context<Self>) -> Self::Result {
        let halo = self.halo;
        let spaces: Vec<(PublicKey, Addr<SpaceActor>)> = self
            .spaces
            .iter()
            .filter(|(k, _)| Some(**k) != halo)
            .map(|(k, e)| (*k, e.addr.clone()))
            .collect();
        Box::pin(async move {
            let mut out = Vec::new();
            for (key, addr) in spaces {
                let asked = MemberOf {
                    identity: msg.identity,
                    device: msg.device,
                };
                if matches!(addr.send(asked).await, Ok(true)) {
                    out.push(key);
                }
            }
            out
        })
    }
}

/// Join these spaces (a peer said our identity is a member of them), those this node lacks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinListed(pub Vec<PublicKey>);

impl Handler<JoinListed> for SpaceDirectory {
    type Result = ();
    fn handle(&mut self, msg: JoinListed, ctx: &mut Context<Self>) {
        if self.signer.is_none() {
            return;
        }
        for key in msg.0 {
            if !self.spaces.contains_key(&key) {
                self.join_listed(key, None);
            }
        }
        ctx.notify(ReconcileHalo);
    }
}
