//! Rules of the space control state, one test per rule, and a proptest that no sequence of
//! credentials from non-admins ever changes membership.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::types::{KeyPair, PublicKey};

/// A member: identity key, one device, and the signer that device uses.
struct Person {
    identity: KeyPair,
    device: KeyPair,
    signer: Signer,
}

fn person(rng: &mut ChaCha20Rng) -> Person {
    let identity = KeyPair::generate(rng);
    let device = KeyPair::generate(rng);
    let auth = authorize_device(&identity, device.public(), 0);
    let signer = Signer::for_device(identity.public(), device.clone(), auth);
    Person {
        identity,
        device,
        signer,
    }
}

struct World {
    rng: ChaCha20Rng,
    space: KeyPair,
    owner: Person,
    state: SpaceState,
}

fn world() -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let space = KeyPair::generate(&mut rng);
    let owner = person(&mut rng);
    let control = KeyPair::generate(&mut rng).public();
    let data = KeyPair::generate(&mut rng).public();
    let mut state = SpaceState::new(space.public());
    for c in space_genesis(&SpaceGenesis {
        space: &space,
        creator: &owner.signer,
        device_key: owner.device.public(),
        control_feed: control,
        data_feed: data,
        now_ms: 1,
    }) {
        assert_eq!(state.apply(&c), Ok(Applied::Changed));
    }
    World {
        rng,
        space,
        owner,
        state,
    }
}

fn member(space: PublicKey, who: PublicKey, role: Role, by: &Signer) -> Credential {
    by.issue(
        Subject {
            id: who,
            assertion: Assertion::SpaceMember {
                space_key: space,
                role,
            },
        },
        2,
        vec![],
    )
}

fn feed(
    space: PublicKey,
    feed: PublicKey,
    p: &Person,
    designation: Designation,
    by: &Signer,
) -> Credential {
    by.issue(
        Subject {
            id: feed,
            assertion: Assertion::AdmittedFeed {
                space_key: space,
                identity_key: p.identity.public(),
                device_key: p.device.public(),
                designation,
            },
        },
        3,
        vec![],
    )
}

#[test]
fn genesis_makes_the_creator_owner_with_two_feeds() {
    let w = world();
    assert!(w.state.has_genesis());
    assert_eq!(w.state.role(&w.owner.identity.public()), Some(Role::Owner));
    assert_eq!(w.state.feeds().len(), 2);
}

#[test]
fn first_credential_must_be_genesis_and_only_once() {
    let mut w = world();
    let mut fresh = SpaceState::new(w.space.public());
    let c = member(
        w.space.public(),
        w.owner.identity.public(),
        Role::Admin,
        &Signer::direct(w.space.clone()),
    );
    assert_eq!(fresh.apply(&c), Err(RuleError::NoGenesis));
    let again = Signer::direct(w.space.clone()).issue(
        Subject {
            id: w.space.public(),
            assertion: Assertion::SpaceGenesis {
                space_key: w.space.public(),
            },
        },
        99,
        vec![],
    );
    assert_eq!(w.state.apply(&again), Err(RuleError::SecondGenesis));
    // Someone else's genesis for this space key is not accepted either.
    let stranger = KeyPair::generate(&mut w.rng);
    let forged = Signer::direct(stranger).issue(
        Subject {
            id: w.space.public(),
            assertion: Assertion::SpaceGenesis {
                space_key: w.space.public(),
            },
        },
        1,
        vec![],
    );
    assert!(matches!(
        fresh.apply(&forged),
        Err(RuleError::NotAllowed { .. })
    ));
}

#[test]
fn admins_manage_members_within_limits() {
    let mut w = world();
    let space = w.space.public();
    let bob = person(&mut w.rng);
    let carol = person(&mut w.rng);
    // Owner makes Bob an admin; Bob adds Carol as editor.
    assert_eq!(
        w.state.apply(&member(
            space,
            bob.identity.public(),
            Role::Admin,
            &w.owner.signer
        )),
        Ok(Applied::Changed)
    );
    assert_eq!(
        w.state.apply(&member(
            space,
            carol.identity.public(),
            Role::Editor,
            &bob.signer
        )),
        Ok(Applied::Changed)
    );
    // Carol (editor) cannot add or promote anyone.
    let dave = person(&mut w.rng);
    assert!(matches!(
        w.state.apply(&member(
            space,
            dave.identity.public(),
            Role::Reader,
            &carol.signer
        )),
        Err(RuleError::NotAllowed { .. })
    ));
    // Bob cannot grant OWNER, change his own role, or touch the owner.
    assert!(w
        .state
        .apply(&member(
            space,
            carol.identity.public(),
            Role::Owner,
            &bob.signer
        ))
        .is_err());
    assert!(w
        .state
        .apply(&member(
            space,
            bob.identity.public(),
            Role::Editor,
            &bob.signer
        ))
        .is_err());
    assert!(w
        .state
        .apply(&member(
            space,
            w.owner.identity.public(),
            Role::Removed,
            &bob.signer
        ))
        .is_err());
    // Bob removes Carol; a removed member cannot admit feeds.
    assert_eq!(
        w.state.apply(&member(
            space,
            carol.identity.public(),
            Role::Removed,
            &bob.signer
        )),
        Ok(Applied::Changed)
    );
    let f = KeyPair::generate(&mut w.rng).public();
    assert!(w
        .state
        .apply(&feed(space, f, &carol, Designation::Data, &carol.signer))
        .is_err());
    // Duplicates are ignored.
    let c = member(space, dave.identity.public(), Role::Reader, &w.owner.signer);
    assert_eq!(w.state.apply(&c), Ok(Applied::Changed));
    assert_eq!(w.state.apply(&c), Ok(Applied::Duplicate));
}

#[test]
fn feeds_are_admitted_by_their_member_or_an_admin_and_writers_are_checked() {
    let mut w = world();
    let space = w.space.public();
    let reader = person(&mut w.rng);
    let editor = person(&mut w.rng);
    w.state
        .apply(&member(
            space,
            reader.identity.public(),
            Role::Reader,
            &w.owner.signer,
        ))
        .unwrap();
    w.state
        .apply(&member(
            space,
            editor.identity.public(),
            Role::Editor,
            &w.owner.signer,
        ))
        .unwrap();
    let reader_data = KeyPair::generate(&mut w.rng).public();
    let editor_data = KeyPair::generate(&mut w.rng).public();
    // Editor cannot admit the reader's feed; the reader can, and so can the owner.
    assert!(w
        .state
        .apply(&feed(
            space,
            reader_data,
            &reader,
            Designation::Data,
            &editor.signer
        ))
        .is_err());
    w.state
        .apply(&feed(
            space,
            reader_data,
            &reader,
            Designation::Data,
            &reader.signer,
        ))
        .unwrap();
    w.state
        .apply(&feed(
            space,
            editor_data,
            &editor,
            Designation::Data,
            &w.owner.signer,
        ))
        .unwrap();
    // Re-admitting the same feed for someone else conflicts.
    assert!(matches!(
        w.state.apply(&feed(
            space,
            editor_data,
            &reader,
            Designation::Data,
            &w.owner.signer
        )),
        Err(RuleError::FeedConflict(_))
    ));
    assert!(w.state.check_data_writer(&editor_data).is_ok());
    assert!(matches!(
        w.state.check_data_writer(&reader_data),
        Err(WriteDenied::Role {
            role: Role::Reader,
            ..
        })
    ));
    let unknown = KeyPair::generate(&mut w.rng).public();
    assert!(matches!(
        w.state.check_data_writer(&unknown),
        Err(WriteDenied::FeedNotAdmitted(_))
    ));
}

#[test]
fn credentials_for_another_space_or_of_identity_kinds_are_rejected() {
    let mut w = world();
    let other_space = KeyPair::generate(&mut w.rng).public();
    let bob = person(&mut w.rng);
    assert!(matches!(
        w.state.apply(&member(
            other_space,
            bob.identity.public(),
            Role::Editor,
            &w.owner.signer
        )),
        Err(RuleError::WrongSpace(_))
    ));
    let profile = w.owner.signer.issue(
        Subject {
            id: w.owner.identity.public(),
            assertion: Assertion::IdentityProfile { display_name: None },
        },
        1,
        vec![],
    );
    assert!(matches!(
        w.state.apply(&profile),
        Err(RuleError::WrongKind(_))
    ));
}

fn device_profile(name: &str, device: PublicKey, by: &Signer) -> Credential {
    by.issue(
        Subject {
            id: device,
            assertion: Assertion::DeviceProfile {
                display_name: name.into(),
            },
        },
        3,
        vec![],
    )
}

#[test]
fn a_device_names_only_itself_with_a_valid_name_and_the_latest_name_counts() {
    let mut w = world();
    let me = w.owner.identity.public();
    let laptop = w.owner.device.public();
    let phone = KeyPair::generate(&mut w.rng);
    let phone_signer = Signer::for_device(
        me,
        phone.clone(),
        authorize_device(&w.owner.identity, phone.public(), 0),
    );

    // The laptop names itself; the phone names itself.
    let named = device_profile("laptop", laptop, &w.owner.signer);
    assert_eq!(w.state.apply(&named), Ok(Applied::Changed));
    assert_eq!(
        w.state
            .apply(&device_profile("phone", phone.public(), &phone_signer)),
        Ok(Applied::Changed)
    );
    assert_eq!(
        w.state.device_names(&me),
        BTreeMap::from([(laptop, "laptop".into()), (phone.public(), "phone".into())])
    );

    // A device cannot name another device, even of its own identity.
    assert!(matches!(
        w.state.apply(&device_profile("stolen", laptop, &phone_signer)),
        Err(RuleError::NotAllowed { issuer, .. }) if issuer == me
    ));
    // A name that is not a display name is refused.
    for bad in ["", " pad", "a\u{0}b"] {
        assert!(
            matches!(
                w.state.apply(&device_profile(bad, laptop, &w.owner.signer)),
                Err(RuleError::NotAllowed { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(w.state.device_names(&me)[&laptop], "laptop");

    // A later profile replaces the earlier one; a replay changes nothing.
    let renamed = device_profile("work laptop", laptop, &w.owner.signer);
    assert_eq!(w.state.apply(&renamed), Ok(Applied::Changed));
    assert_eq!(w.state.device_names(&me)[&laptop], "work laptop");
    assert_eq!(w.state.apply(&renamed), Ok(Applied::Duplicate));

    // Another identity's names are its own.
    let bob = person(&mut w.rng);
    assert!(w.state.device_names(&bob.identity.public()).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever non-admins issue, in whatever order, membership and feeds do not change.
    #[test]
    fn non_admins_never_change_membership(ops in proptest::collection::vec((0usize..3, 0usize..3, 0usize..5, any::<bool>()), 1..20)) {
        let mut w = world();
        let space = w.space.public();
        let people: Vec<Person> = (0..3).map(|_| person(&mut w.rng)).collect();
        w.state.apply(&member(space, people[0].identity.public(), Role::Editor, &w.owner.signer)).unwrap();
        w.state.apply(&member(space, people[1].identity.public(), Role::Reader, &w.owner.signer)).unwrap();
        // people[2] is a stranger.
        let members_before = w.state.members().clone();
        let feeds_before = w.state.feeds().clone();
        for (issuer, subject, role, as_feed) in ops {
            let role = [Role::Owner, Role::Admin, Role::Editor, Role::Reader, Role::Removed][role];
            let by = &people[issuer].signer;
            let c = if as_feed {
                let f = KeyPair::generate(&mut w.rng).public();
                // Admitting a feed for someone else.
                feed(space, f, &people[subject], Designation::Data, by)
            } else {
                member(space, people[subject].identity.public(), role, by)
            };
            let self_feed = as_feed && issuer == subject && issuer < 2;
            let result = w.state.apply(&c);
            if !self_feed {
                prop_assert!(result.is_err(), "non-admin credential accepted: issuer {issuer} subject {subject}");
            }
        }
        prop_assert_eq!(w.state.members(), &members_before);
        for (k, v) in &feeds_before {
            prop_assert_eq!(w.state.feed(k), Some(v));
        }
    }
}

fn revoke(identity: PublicKey, device: PublicKey, by: &Signer) -> Credential {
    by.issue(
        Subject {
            id: device,
            assertion: Assertion::RevokeDevice {
                identity_key: identity,
                device_key: device,
                cut: vec![],
            },
        },
        3,
        vec![],
    )
}

fn relay(subject: PublicKey, revocation: Credential, by: &Signer) -> Credential {
    by.issue(
        Subject {
            id: subject,
            assertion: Assertion::RelayedRevocation {
                revocation: Box::new(revocation),
            },
        },
        4,
        vec![],
    )
}

#[test]
fn a_member_relays_only_another_identitys_well_formed_revocation_of_the_subject_device() {
    let mut w = world();
    let bob = person(&mut w.rng);
    let bob_phone = KeyPair::generate(&mut w.rng);
    let theirs = revoke(bob.identity.public(), bob.device.public(), &bob.signer);
    // Alice relays Bob's revocation of his device.
    let good = relay(bob.device.public(), theirs.clone(), &w.owner.signer);
    assert_eq!(w.state.apply(&good), Ok(Applied::Changed));
    let refused = |state: &mut SpaceState, c: &Credential, what: &str| match state.apply(c) {
        Err(RuleError::NotAllowed { action, .. }) => assert!(action.contains(what), "{action}"),
        other => panic!("{what}: {other:?}"),
    };
    // Naming another device than the revocation's.
    let elsewhere = relay(bob_phone.public(), theirs.clone(), &w.owner.signer);
    refused(
        &mut w.state,
        &elsewhere,
        "other than the credential's subject",
    );
    // A relay of one's own identity's revocation.
    let own = relay(bob.device.public(), theirs, &bob.signer);
    refused(&mut w.state, &own, "one's own device");
    // A relay of anything but a revocation.
    let not_one = relay(
        bob.device.public(),
        member(
            w.space.public(),
            bob.identity.public(),
            Role::Owner,
            &bob.signer,
        ),
        &w.owner.signer,
    );
    refused(&mut w.state, &not_one, "anything but a device revocation");
    // A relayed revocation of another identity's device (malformed inside).
    let foreign = revoke(w.owner.identity.public(), bob.device.public(), &bob.signer);
    let bad = relay(bob.device.public(), foreign, &w.owner.signer);
    refused(&mut w.state, &bad, "revoke another identity's device");
}

#[test]
fn relays_nested_past_the_decoding_bound_do_not_decode() {
    let mut w = world();
    let bob = person(&mut w.rng);
    let device = bob.device.public();
    let mut c = revoke(bob.identity.public(), device, &bob.signer);
    let one = relay(device, c.clone(), &w.owner.signer);
    let bytes = crate::types::encode(&one).unwrap();
    assert_eq!(crate::types::decode::<Credential>(&bytes).unwrap(), one);
    // Well within the bound (each relay and each device chain is one level): decodes.
    for _ in 0..8 {
        c = relay(device, c, &w.owner.signer);
    }
    let bytes = crate::types::encode(&c).unwrap();
    assert_eq!(crate::types::decode::<Credential>(&bytes).unwrap(), c);
    // Past it: a decoding error, not a deep recursion.
    for _ in 0..MAX_DECODED_CHAINS {
        c = relay(device, c, &w.owner.signer);
    }
    let bytes = crate::types::encode(&c).unwrap();
    assert!(crate::types::decode::<Credential>(&bytes).is_err());
}
