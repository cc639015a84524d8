//! The credentials that create a space, in the order the reference prescribes:
//! SpaceGenesis -> SpaceMember OWNER -> AdmittedFeed (control) -> AdmittedFeed (data).

use super::{Assertion, Credential, Designation, Role, Signer, Subject};
use crate::types::{KeyPair, PublicKey};

/// Inputs of [`space_genesis`].
pub struct SpaceGenesis<'a> {
    /// The new space's key pair; the caller drops it after genesis.
    pub space: &'a KeyPair,
    /// The creating device, signing for its identity.
    pub creator: &'a Signer,
    pub device_key: PublicKey,
    pub control_feed: PublicKey,
    pub data_feed: PublicKey,
    pub now_ms: u64,
}

/// The identity space's genesis: the same credentials, byte for byte, whoever makes them
/// from the identity's seed phrase (`identity create`, and `identity recover` after every
/// device is lost), so that a re-founded identity space is the space it was. Issued at time
/// 0; the feed admissions are signed by the identity key itself, for itself as the writer of
/// `control_feed` (derived from the identity secret, never stored, so never written again).
pub fn identity_space_genesis(
    space: &KeyPair,
    identity: &KeyPair,
    control_feed: PublicKey,
    data_feed: PublicKey,
) -> Vec<Credential> {
    space_genesis(&SpaceGenesis {
        space,
        creator: &Signer::direct(identity.clone()),
        device_key: identity.public(),
        control_feed,
        data_feed,
        now_ms: 0,
    })
}

/// How many credentials [`space_genesis`] makes: the first blocks of the genesis feed.
pub const GENESIS_CREDENTIALS: u64 = 4;

/// The four genesis credentials, to be written in order to the creator's control feed.
pub fn space_genesis(g: &SpaceGenesis<'_>) -> Vec<Credential> {
    let space_key = g.space.public();
    let by_space = Signer::direct(g.space.clone());
    let genesis = by_space.issue(
        Subject {
            id: space_key,
            assertion: Assertion::SpaceGenesis { space_key },
        },
        g.now_ms,
        vec![],
    );
    let owner = by_space.issue(
        Subject {
            id: g.creator.issuer,
            assertion: Assertion::SpaceMember {
                space_key,
                role: Role::Owner,
            },
        },
        g.now_ms,
        vec![genesis.id()],
    );
    let admit = |feed: PublicKey, designation: Designation, parent: &Credential| {
        g.creator.issue(
            Subject {
                id: feed,
                assertion: Assertion::AdmittedFeed {
                    space_key,
                    identity_key: g.creator.issuer,
                    device_key: g.device_key,
                    designation,
                },
            },
            g.now_ms,
            vec![parent.id()],
        )
    };
    let control = admit(g.control_feed, Designation::Control, &owner);
    let data = admit(g.data_feed, Designation::Data, &control);
    vec![genesis, owner, control, data]
}
