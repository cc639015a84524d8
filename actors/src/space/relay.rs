//! Relaying device revocations between the spaces of one node (rule 3 of
//! `credentials/revocation.rs`).
//!
//! A revocation is written in each space by a live device of the revoked device's own
//! identity (`devices.rs`, spread through the identity space). A space that no live device
//! of that identity holds (one a stolen laptop joined after its revocation, say) would never
//! learn of it, and its other members would keep accepting the revoked device. So every node
//! passes what it knows on: the directory collects the revocations of other identities'
//! devices that take effect in each of its spaces ([`ForeignRevocations`]) and offers them
//! to its other spaces ([`RelayRevocations`]). A space copies an offered revocation, verbatim
//! inside a `RelayedRevocation` on its control feed, when [`to_relay`] says so:
//!
//! - the revoked device's identity is a member here, and is not ours (our own identity's
//!   devices revoke natively, with a cut that knows this space);
//! - the device is not revoked here yet;
//! - no other, non-revoked device of that identity has feeds here: such a device will write
//!   the native revocation, whose cut keeps the revoked device's earlier work, and a relay
//!   before it would deny that work for a while (a relay cuts at 0).
//!
//! What a relay denies does not depend on who relays or when: the cut is the revocation's
//! (none of this space's feeds, so 0), and a native revocation overrides it (rule 3).

use std::collections::BTreeSet;

use actix::prelude::*;

use super::devices::forbidden;
use super::{SpaceActor, SpaceRequestError};
use crate::credentials::{Assertion, Credential, Revocations, SpaceState, Subject};
use crate::types::PublicKey;

/// The `RevokeDevice` credentials, taking effect here, of devices of identities other than
/// ours: what this space can tell the node's other spaces.
#[derive(Message)]
#[rtype(result = "Vec<Credential>")]
pub struct ForeignRevocations;

impl Handler<ForeignRevocations> for SpaceActor {
    type Result = MessageResult<ForeignRevocations>;
    fn handle(&mut self, _: ForeignRevocations, _: &mut Context<Self>) -> Self::Result {
        let me = self.signer.issuer;
        MessageResult(
            self.core
                .revocations()
                .effective()
                .filter(|r| r.identity != me)
                .filter_map(|r| r.credential.as_deref().cloned())
                .collect(),
        )
    }
}

/// Relay into this space those of these revocations that [`to_relay`] picks; answers how
/// many were written. Refused (once there is something to relay) while this node is not an
/// admitted member, and from a revoked device.
#[derive(Message)]
#[rtype(result = "Result<usize, SpaceRequestError>")]
pub struct RelayRevocations(pub Vec<Credential>);

// Atomic: two offers are decided one after the other, so the second finds the first's
// relays and writes nothing again.
impl Handler<RelayRevocations> for SpaceActor {
    type Result = AtomicResponse<Self, Result<usize, SpaceRequestError>>;
    fn handle(&mut self, msg: RelayRevocations, _: &mut Context<Self>) -> Self::Result {
        let me = self.signer.issuer;
        let picked = to_relay(self.core.state(), self.core.revocations(), &me, msg.0);
        if picked.is_empty() {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(0))));
        }
        if self.shut_out() {
            return forbidden("this device was revoked or its identity removed".into());
        }
        if let Some(why) = self.not_admitted() {
            return forbidden(why);
        }
        let now = self.clock.now_ms();
        let relays: Vec<Credential> = picked
            .into_iter()
            .filter_map(|revocation| {
                let Assertion::RevokeDevice { device_key, .. } = revocation.subject.assertion
                else {
                    return None;
                };
                Some(self.signer.issue(
                    Subject {
                        id: device_key,
                        assertion: Assertion::RelayedRevocation {
                            revocation: Box::new(revocation),
                        },
                    },
                    now,
                    vec![],
                ))
            })
            .collect();
        let written = relays.len();
        AtomicResponse::new(Box::pin(self.append_credentials(relays).map(
            move |res, act, _| {
                res?;
                if act.core.take_rebuild() {
                    act.rebuild_after_revocation();
                }
                Ok(written)
            },
        )))
    }
}

/// Which of `offered` (revocations that take effect in another space of this node) this
/// space, whose member `me` is, should relay: see the module docs. At most one per revoked
/// device, in the order offered.
pub fn to_relay(
    state: &SpaceState,
    revocations: &Revocations,
    me: &PublicKey,
    offered: Vec<Credential>,
) -> Vec<Credential> {
    let mut chosen: BTreeSet<(PublicKey, PublicKey)> = BTreeSet::new();
    offered
        .into_iter()
        .filter(|c| {
            let Assertion::RevokeDevice {
                identity_key,
                device_key,
                ..
            } = &c.subject.assertion
            else {
                return false;
            };
            let (identity, device) = (*identity_key, *device_key);
            let live_sibling = state.feeds().values().any(|f| {
                f.identity_key == identity
                    && f.device_key != device
                    && !revocations.is_revoked(&identity, &f.device_key)
            });
            identity != *me
                && state.role(&identity).is_some()
                && !revocations.is_revoked(&identity, &device)
                && !live_sibling
                && chosen.insert((identity, device))
        })
        .collect()
}
