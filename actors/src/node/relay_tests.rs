//! A revoked device that joins a space afterwards, where no other device of its identity
//! is, is cut there by a relay (`space/relay.rs`): whole nodes on real QUIC.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::invitation::InviteOptions;
use crate::mesh::test_util::{eventually_within, open_node, real_node};
use crate::mesh::MeshConfig;
use crate::space::{ForeignRevocations, QueryRequest};
use crate::store::MemStore;
use crate::types::PublicKey;

use super::NodeHandle;

const ACCEPT_MS: u64 = 20_000;

/// Waits up to 30 s (relays run on the directory's reconciliation, every 5 s).
async fn within_30s<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(30), what, check).await;
}

/// The `feedkey:seq` entries `node` denies in `space`.
async fn denied(node: &NodeHandle, space: &str) -> Vec<String> {
    node.space_verdicts(space)
        .await
        .map(|v| v.denied.into_keys().collect())
        .unwrap_or_default()
}

/// Whether `node`'s space `space` holds a revocation of another identity's `device`.
async fn revokes(node: &NodeHandle, space: &str, device: &PublicKey) -> bool {
    let Ok(addr) = node.space_actor(space).await else {
        return false;
    };
    let revocations = addr.send(ForeignRevocations).await.unwrap_or_default();
    revocations.iter().any(|c| c.subject.id == *device)
}

async fn objects(node: &NodeHandle, space: &str) -> Vec<serde_json::Value> {
    node.query(space, QueryRequest::default())
        .await
        .unwrap_or_default()
}

#[actix::test]
async fn a_device_revoked_elsewhere_is_cut_by_a_relay_in_a_space_it_joined_later() {
    // Bob's laptop and phone; Carol shares the team space with Bob.
    let (laptop, _) = real_node(91, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let team = laptop.space_create(None).await.unwrap().space_key;
    let invitation = laptop
        .device_invite(InviteOptions::default())
        .await
        .unwrap();
    let phone = open_node(92, Arc::new(MemStore::new()), MeshConfig::default()).await;
    phone
        .device_join(
            &invitation.invitation_code,
            invitation.auth_code,
            ACCEPT_MS,
            None,
        )
        .await
        .unwrap();
    let (carol, _) = real_node(93, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let to_team = laptop
        .invite_create(&team, InviteOptions::default())
        .await
        .unwrap();
    carol
        .invite_accept(&to_team.invitation_code, to_team.auth_code, ACCEPT_MS, None)
        .await
        .unwrap();

    // The phone revokes the laptop; Carol's copy of the team space learns it.
    let laptop_key = laptop.device_key();
    phone.device_revoke(&laptop_key.to_hex()).await.unwrap();
    within_30s(
        "Carol to hold the laptop's revocation in the team space",
        || async { revokes(&carol, &team, &laptop_key).await },
    )
    .await;

    // Afterwards the laptop joins a space of Carol's, where no other device of Bob's is
    // (its listing in Bob's identity space is denied: the phone never joins), and writes.
    let shared = carol.space_create(None).await.unwrap().space_key;
    carol
        .object_add(&shared, json!({"from": "carol"}))
        .await
        .unwrap();
    let to_shared = carol
        .invite_create(&shared, InviteOptions::default())
        .await
        .unwrap();
    laptop
        .invite_accept(
            &to_shared.invitation_code,
            to_shared.auth_code,
            ACCEPT_MS,
            None,
        )
        .await
        .unwrap();
    let _ = laptop
        .object_add(&shared, json!({"from": "the revoked laptop"}))
        .await;

    // Carol's node relays the revocation into the shared space: the laptop's blocks there
    // are denied, on Carol's node and on the laptop's own.
    within_30s(
        "Carol to deny the laptop's work in the shared space",
        || async {
            let objects = objects(&carol, &shared).await;
            objects.len() == 1
                && objects[0]["from"] == "carol"
                && !denied(&carol, &shared).await.is_empty()
        },
    )
    .await;
    for reason in carol.space_verdicts(&shared).await.unwrap().denied.values() {
        assert!(reason.contains("was revoked"), "{reason}");
    }
    within_30s("the laptop to hold the relay", || async {
        denied(&laptop, &shared).await == denied(&carol, &shared).await
    })
    .await;
    assert!(
        !phone
            .space_list()
            .await
            .unwrap()
            .iter()
            .any(|s| s.space_key == shared),
        "the phone never joined the shared space"
    );
}
