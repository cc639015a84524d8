//! Our identity's devices as one space knows them (`OurDevices`), and revoking one of them
//! in this space (`RevokeOurDevice`): a `RevokeDevice` credential on our control feed whose
//! cut is the revoked device's feed lengths as we hold them (`credentials/revocation.rs`).
//! `NodeHandle::device_revoke` sends it to every space of the node.
//!
//! Device names (`OurDeviceNames`, `NameOurDevice`) are `DeviceProfile` credentials, each
//! signed by the device it names; the directory keeps this device's name in the identity
//! space (`directory_halo.rs`).

use std::collections::BTreeMap;

use actix::prelude::*;

use super::{SpaceActor, SpaceRequestError};
use crate::credentials::{Assertion, Subject};
use crate::types::PublicKey;

/// The devices of our identity that this space knows (they write admitted feeds, or a
/// revocation names them): device key -> revoked.
#[derive(Message)]
#[rtype(result = "BTreeMap<PublicKey, bool>")]
pub struct OurDevices;

impl Handler<OurDevices> for SpaceActor {
    type Result = MessageResult<OurDevices>;
    fn handle(&mut self, _: OurDevices, _: &mut Context<Self>) -> Self::Result {
        let me = self.signer.issuer;
        let revocations = self.core.revocations();
        let mut devices: BTreeMap<PublicKey, bool> = self
            .core
            .state()
            .feeds()
            .values()
            // The identity key itself admits the identity space's genesis feed: no device.
            .filter(|f| f.identity_key == me && f.device_key != me)
            .map(|f| (f.device_key, revocations.is_revoked(&me, &f.device_key)))
            .collect();
        for (identity, device) in revocations.revoked().keys() {
            if *identity == me {
                devices.insert(*device, true);
            }
        }
        MessageResult(devices)
    }
}

/// The names the devices of our identity gave themselves in this space: device -> name.
#[derive(Message)]
#[rtype(result = "BTreeMap<PublicKey, String>")]
pub struct OurDeviceNames;

impl Handler<OurDeviceNames> for SpaceActor {
    type Result = MessageResult<OurDeviceNames>;
    fn handle(&mut self, _: OurDeviceNames, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.state().device_names(&self.signer.issuer))
    }
}

/// Make `0` this device's name in this space: a `DeviceProfile` on our control feed, unless
/// the space already shows that name. Answers whether one was written. Refused while this
/// node is not an admitted member (the directory tries again later) and once this device is
/// revoked.
#[derive(Message)]
#[rtype(result = "Result<bool, SpaceRequestError>")]
pub struct NameOurDevice(pub String);

// Atomic, as for revocations: two requests are decided one after the other, so the second
// finds the first's name and writes nothing.
impl Handler<NameOurDevice> for SpaceActor {
    type Result = AtomicResponse<Self, Result<bool, SpaceRequestError>>;
    fn handle(&mut self, msg: NameOurDevice, _: &mut Context<Self>) -> Self::Result {
        let me = self.signer.issuer;
        let this_device = self.signer.key.public();
        let state = self.core.state();
        if state.device_names(&me).get(&this_device) == Some(&msg.0) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(false))));
        }
        if self.core.revocations().is_revoked(&me, &this_device) {
            return forbidden("this device was revoked".into());
        }
        if let Some(why) = self.not_admitted() {
            return forbidden(why);
        }
        let credential = self.signer.issue(
            Subject {
                id: this_device,
                assertion: Assertion::DeviceProfile {
                    display_name: msg.0,
                },
            },
            self.clock.now_ms(),
            vec![],
        );
        AtomicResponse::new(Box::pin(
            self.append_credentials(vec![credential])
                .map(|res, _, _| res.map(|()| true)),
        ))
    }
}

/// What [`RevokeOurDevice`] did in one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// A revocation was written; the device had this many blocks here (before the cut).
    Written { blocks_before_cut: u64 },
    /// The device was already revoked here; nothing was written.
    Already,
}

/// Revokes `0`, a device of our identity, in this space. Refused for this device itself
/// (revoke it from another one), from a revoked device, and while this node is not an
/// admitted member of the space (it could not write the credential).
#[derive(Message)]
#[rtype(result = "Result<Revoked, SpaceRequestError>")]
pub struct RevokeOurDevice(pub PublicKey);

// Atomic: two revocations of one device (the user's and one spread from the identity space)
// are decided one after the other, so the second finds the first and writes nothing.
impl Handler<RevokeOurDevice> for SpaceActor {
    type Result = AtomicResponse<Self, Result<Revoked, SpaceRequestError>>;
    fn handle(&mut self, msg: RevokeOurDevice, _: &mut Context<Self>) -> Self::Result {
        let me = self.signer.issuer;
        let this_device = self.signer.key.public();
        let device = msg.0;
        if device == this_device {
            return forbidden("this device cannot revoke itself; revoke it from another device of the identity, or recover the identity from its seed phrase on a fresh data dir".into());
        }
        let revocations = self.core.revocations();
        if revocations.is_revoked(&me, &this_device) {
            return forbidden("this device was revoked".into());
        }
        if revocations.is_revoked(&me, &device) {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(Revoked::Already))));
        }
        if let Some(why) = self.not_admitted() {
            return forbidden(why);
        }
        let state = self.core.state();
        let cut: Vec<(PublicKey, u64)> = state
            .feeds()
            .iter()
            .filter(|(_, f)| f.identity_key == me && f.device_key == device)
            .map(|(feed, _)| (*feed, self.core.timeframe().get(feed).map_or(0, |s| s + 1)))
            .collect();
        let blocks_before_cut = cut.iter().map(|(_, n)| n).sum();
        let credential = self.signer.issue(
            Subject {
                id: device,
                assertion: Assertion::RevokeDevice {
                    identity_key: me,
                    device_key: device,
                    cut,
                },
            },
            self.clock.now_ms(),
            vec![],
        );
        AtomicResponse::new(Box::pin(self.append_credentials(vec![credential]).map(
            move |res, act, _| {
                res?;
                if act.core.take_rebuild() {
                    act.rebuild_after_revocation();
                }
                Ok(Revoked::Written { blocks_before_cut })
            },
        )))
    }
}

impl SpaceActor {
    /// Why this node cannot write credentials here yet, if it cannot.
    pub(super) fn not_admitted(&self) -> Option<String> {
        self.admitted_role().is_none().then(|| {
            format!(
                "this node is not an admitted member of space {} yet",
                self.core.record().space_key.short()
            )
        })
    }
}

pub(super) fn forbidden<T: 'static>(
    why: String,
) -> AtomicResponse<SpaceActor, Result<T, SpaceRequestError>> {
    AtomicResponse::new(Box::pin(fut::ready(Err(SpaceRequestError::Forbidden(why)))))
}
