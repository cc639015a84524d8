//! Device invitations and recovery between whole nodes on real QUIC over loopback: a fresh
//! node joins an identity, gets its identity space and every space it lists, and both
//! devices write; a space created on either device reaches the other through the list; a
//! node recovered from the seed phrase gets the spaces back from a live device.

use std::sync::Arc;

use serde_json::json;

use super::{AuthMethod, InvitationRequestError, InvitationState, InviteOptions};
use crate::mesh::test_util::{eventually, listen_addr, open_node, real_node};
use crate::mesh::MeshConfig;
use crate::node::{NodeError, NodeHandle};
use crate::store::MemStore;

const JOIN_MS: u64 = 20_000;

async fn fresh(seed: u8) -> NodeHandle {
    open_node(seed, Arc::new(MemStore::new()), MeshConfig::default()).await
}

async fn sees(node: &NodeHandle, space: &str, from: &str) -> bool {
    let Ok(objects) = node.query(space, Default::default()).await else {
        return false;
    };
    objects.iter().any(|o| o["from"] == from)
}

async fn space_keys(node: &NodeHandle) -> Vec<String> {
    node.space_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.space_key)
        .collect()
}

#[actix::test]
async fn a_new_device_joins_the_identity_gets_every_space_and_both_devices_write() {
    let (laptop, _) = real_node(71, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let notes = laptop.space_create(Some("notes".into())).await.unwrap();
    let work = laptop.space_create(None).await.unwrap().space_key;
    laptop
        .object_add(&notes.space_key, json!({"from": "laptop"}))
        .await
        .unwrap();
    // The identity space is not a space the user sees.
    let mut shown = vec![notes.space_key.clone(), work.clone()];
    shown.sort();
    assert_eq!(space_keys(&laptop).await, shown);

    let invitation = laptop
        .device_invite(InviteOptions::default())
        .await
        .unwrap();
    let pin = invitation.auth_code.clone().expect("pin auth by default");
    let phone = fresh(72).await;
    let joined = phone
        .device_join(&invitation.invitation_code, Some(pin), JOIN_MS, None)
        .await
        .unwrap();
    let me = laptop.identity_show().await.unwrap();
    assert_eq!(joined.identity_key, me.identity_key);
    assert_eq!(joined.device_key, phone.device_key().to_hex());
    assert_ne!(joined.device_key, me.device_key);
    assert_eq!(joined.spaces, shown, "every space of the identity");
    assert!(joined.pending.is_empty(), "{:?}", joined.pending);
    assert_eq!(
        phone.identity_show().await.unwrap().identity_key,
        me.identity_key
    );

    // Both devices write in a space; each sees the other's write.
    phone
        .object_add(&notes.space_key, json!({"from": "phone"}))
        .await
        .unwrap();
    laptop
        .object_add(&work, json!({"from": "laptop"}))
        .await
        .unwrap();
    eventually("the laptop sees the phone's write", || {
        sees(&laptop, &notes.space_key, "phone")
    })
    .await;
    eventually("the phone sees the laptop's writes", || async {
        sees(&phone, &notes.space_key, "laptop").await && sees(&phone, &work, "laptop").await
    })
    .await;

    // A space the phone creates reaches the laptop through the identity's list, and the
    // laptop can write in it without anyone adding it.
    let diary = phone.space_create(None).await.unwrap().space_key;
    phone
        .object_add(&diary, json!({"from": "phone"}))
        .await
        .unwrap();
    eventually("the laptop joins the phone's new space", || async {
        space_keys(&laptop).await.contains(&diary)
    })
    .await;
    laptop.space_wait_writable(&diary, JOIN_MS).await.unwrap();
    laptop
        .object_add(&diary, json!({"from": "laptop"}))
        .await
        .unwrap();
    eventually("both write in the phone's new space", || async {
        sees(&laptop, &diary, "phone").await && sees(&phone, &diary, "laptop").await
    })
    .await;

    // Each device lists the other as a device of the identity.
    let listed = |node: NodeHandle| async move {
        node.device_list()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.device_key)
            .collect::<Vec<_>>()
    };
    for node in [laptop.clone(), phone.clone()] {
        let devices = listed(node).await;
        assert!(devices.contains(&me.device_key), "{devices:?}");
        assert!(devices.contains(&joined.device_key), "{devices:?}");
    }
    // The invitation was single use: it is over.
    let invitations = laptop.invite_list(None).await.unwrap();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].state, "SUCCESS");
    assert_eq!(invitations[0].uses, 1);
}

fn invalid<T: std::fmt::Debug>(r: Result<T, NodeError>) -> String {
    match r {
        Err(NodeError::Invitation(InvitationRequestError::Invalid(m))) => m,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[actix::test]
async fn device_join_refuses_a_node_with_an_identity_and_each_command_the_other_kind() {
    let (laptop, _) = real_node(73, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let space = laptop.space_create(None).await.unwrap().space_key;
    let device_code = laptop
        .device_invite(InviteOptions {
            auth: AuthMethod::None,
            ..InviteOptions::default()
        })
        .await
        .unwrap()
        .invitation_code;
    let space_code = laptop
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap()
        .invitation_code;
    let (other, _) = real_node(74, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let m = invalid(other.device_join(&device_code, None, JOIN_MS, None).await);
    assert!(m.contains("already has an identity"), "{m}");
    assert!(m.contains("fresh data dir"), "{m}");
    let m = invalid(other.invite_accept(&device_code, None, JOIN_MS, None).await);
    assert!(m.contains("device invitation"), "{m}");
    let fresh_node = fresh(75).await;
    let m = invalid(
        fresh_node
            .device_join(&space_code, None, JOIN_MS, None)
            .await,
    );
    assert!(m.contains("space invitation"), "{m}");
    // Key auth makes no sense for a device without an identity.
    let keyed = laptop
        .device_invite(InviteOptions {
            auth: AuthMethod::Key,
            guest_key: Some(laptop.identity_show().await.unwrap().identity_key),
            ..InviteOptions::default()
        })
        .await;
    assert!(invalid(keyed).contains("`pin` or `none`"));
    // Nothing was joined or taken on by the refused attempts.
    assert!(fresh_node.identity_show().await.is_err());
    // A wrong code fails with the attempts left, and the right one still works.
    let invitation = laptop
        .device_invite(InviteOptions::default())
        .await
        .unwrap();
    let wrong = fresh_node
        .device_join(
            &invitation.invitation_code,
            Some("000000".into()),
            JOIN_MS,
            None,
        )
        .await;
    match wrong {
        Err(NodeError::Invitation(InvitationRequestError::Failed { state, reason })) => {
            assert_eq!(state, InvitationState::Error);
            assert!(reason.contains("2 attempts left"), "{reason}");
        }
        other => panic!("expected a failed join, got {other:?}"),
    }
    assert!(fresh_node.identity_show().await.is_err());
}

#[actix::test]
async fn a_recovered_device_gets_every_space_from_a_live_device_of_the_identity() {
    let laptop = fresh(76).await;
    let created = laptop.identity_create(Some("Bob".into())).await.unwrap();
    let a = laptop.space_create(None).await.unwrap().space_key;
    let b = laptop.space_create(None).await.unwrap().space_key;
    laptop
        .object_add(&a, json!({"from": "laptop"}))
        .await
        .unwrap();
    let addr = listen_addr(&laptop).await;
    // The new machine knows the laptop only as a peer address.
    let mesh = MeshConfig {
        static_peers: vec![addr],
        ..MeshConfig::default()
    };
    let restored = open_node(77, Arc::new(MemStore::new()), mesh).await;
    let recovered = restored
        .identity_recover(created.seed_phrase.clone(), None)
        .await
        .unwrap();
    assert_eq!(recovered.identity_key, created.identity_key);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    eventually("the recovered device joins every listed space", || async {
        space_keys(&restored).await == both
    })
    .await;
    restored.space_wait_writable(&a, JOIN_MS).await.unwrap();
    restored
        .object_add(&a, json!({"from": "restored"}))
        .await
        .unwrap();
    eventually("writes cross both ways", || async {
        sees(&restored, &a, "laptop").await && sees(&laptop, &a, "restored").await
    })
    .await;
    // The recovered device founded the identity space again from the phrase: the very same
    // genesis as the laptop's, so the two are one space, and each lists both devices.
    eventually("each device lists both", || async {
        let both = |l: Vec<crate::node::DeviceInfo>| l.len() == 2;
        both(laptop.device_list().await.unwrap()) && both(restored.device_list().await.unwrap())
    })
    .await;
    // Each identity space holds both devices' feeds (the laptop's learned the restored
    // device's admission of itself, which rests on the shared genesis), and denies nothing.
    let halo = |n: &NodeHandle| {
        let n = n.clone();
        async move {
            let Ok(Some((_, addr))) = n.directory_for_tests().send(crate::space::HaloSpace).await
            else {
                return None;
            };
            let devices = addr.send(crate::space::OurDevices).await.ok()?;
            let verdicts = addr.send(crate::space::GetVerdicts).await.ok()?;
            Some((devices, verdicts.denied.len()))
        }
    };
    let want = [laptop.device_key(), restored.device_key()];
    let has_both = |h: Option<(
        std::collections::BTreeMap<crate::types::PublicKey, bool>,
        usize,
    )>| {
        h.is_some_and(|(d, denied)| {
            d.len() == 2 && want.iter().all(|k| d.contains_key(k)) && denied == 0
        })
    };
    eventually("each identity space holds both devices", || async {
        has_both(halo(&laptop).await) && has_both(halo(&restored).await)
    })
    .await;
}

#[actix::test]
async fn with_every_device_lost_a_recovered_device_learns_its_spaces_from_a_member_peer() {
    let (alice, alice_addr) = real_node(78, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let shared = alice.space_create(None).await.unwrap().space_key;
    let not_bobs = alice.space_create(None).await.unwrap().space_key;
    alice
        .object_add(&shared, json!({"from": "alice"}))
        .await
        .unwrap();
    let mesh = MeshConfig {
        static_peers: vec![alice_addr],
        ..MeshConfig::default()
    };
    let laptop = open_node(79, Arc::new(MemStore::new()), mesh.clone()).await;
    let created = laptop.identity_create(Some("Bob".into())).await.unwrap();
    let bobs_own = laptop.space_create(None).await.unwrap().space_key;
    alice
        .space_add_member(
            &shared,
            &created.identity_key,
            crate::credentials::Role::Editor,
        )
        .await
        .unwrap();
    laptop.space_join(&shared, None).await.unwrap();
    laptop.space_wait_writable(&shared, JOIN_MS).await.unwrap();
    laptop
        .object_add(&shared, json!({"from": "laptop"}))
        .await
        .unwrap();
    eventually("alice has the laptop's write", || {
        sees(&alice, &shared, "laptop")
    })
    .await;
    // The laptop is lost: its node goes, and nothing of it is left anywhere but on alice.
    laptop.shutdown().await.unwrap();
    drop(laptop);

    let restored = open_node(80, Arc::new(MemStore::new()), mesh).await;
    restored
        .identity_recover(created.seed_phrase.clone(), None)
        .await
        .unwrap();
    // Alice told it the one space of hers Bob is a member of, not her other one; Bob's own
    // space, which only the lost laptop held, is gone.
    eventually("the recovered device joins the shared space", || async {
        space_keys(&restored).await == vec![shared.clone()]
    })
    .await;
    assert!(!space_keys(&restored).await.contains(&not_bobs));
    assert!(!space_keys(&restored).await.contains(&bobs_own));
    restored
        .space_wait_writable(&shared, JOIN_MS)
        .await
        .unwrap();
    restored
        .object_add(&shared, json!({"from": "restored"}))
        .await
        .unwrap();
    eventually("writes cross both ways", || async {
        sees(&alice, &shared, "restored").await
            && sees(&restored, &shared, "laptop").await
            && sees(&restored, &shared, "alice").await
    })
    .await;
    // Nobody held Bob's identity space: the recovered device founded it again from the
    // phrase, lists the shared space there, and brings in a new device, which gets it.
    let invitation = restored
        .device_invite(InviteOptions::default())
        .await
        .unwrap();
    let phone = fresh(84).await;
    let joined = phone
        .device_join(
            &invitation.invitation_code,
            invitation.auth_code,
            JOIN_MS,
            None,
        )
        .await
        .unwrap();
    assert_eq!(joined.identity_key, created.identity_key);
    eventually(
        "the new device gets the shared space from the list",
        || async { space_keys(&phone).await == vec![shared.clone()] },
    )
    .await;
}

#[actix::test]
async fn a_peer_names_to_a_device_only_the_spaces_its_identity_is_a_member_of() {
    let (alice, _) = real_node(81, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let (bob, _) = real_node(82, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let (carol, _) = real_node(83, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let shared = alice.space_create(None).await.unwrap().space_key;
    let _alone = alice.space_create(None).await.unwrap().space_key;
    let bob_identity = bob.identity_show().await.unwrap().identity_key;
    alice
        .space_add_member(&shared, &bob_identity, crate::credentials::Role::Reader)
        .await
        .unwrap();
    let bob_id: crate::types::PublicKey = bob_identity.parse().unwrap();
    let carol_id: crate::types::PublicKey = carol
        .identity_show()
        .await
        .unwrap()
        .identity_key
        .parse()
        .unwrap();
    assert_eq!(
        alice
            .spaces_of_identity(bob_id, bob.device_key())
            .await
            .unwrap(),
        vec![shared.parse::<crate::types::PublicKey>().unwrap()]
    );
    assert!(alice
        .spaces_of_identity(carol_id, carol.device_key())
        .await
        .unwrap()
        .is_empty());
    // Removed: nothing.
    alice
        .space_remove_member(&shared, &bob_identity)
        .await
        .unwrap();
    assert!(alice
        .spaces_of_identity(bob_id, bob.device_key())
        .await
        .unwrap()
        .is_empty());
}
