//! A revocation that reaches only the identity space is spread by the identity's devices to
//! their other spaces (`space/halo.rs`, `to_revoke`), between whole nodes on real QUIC.

use std::sync::Arc;

use serde_json::json;

use crate::invitation::InviteOptions;
use crate::mesh::test_util::{eventually, open_node, real_node};
use crate::mesh::MeshConfig;
use crate::space::{AllSpaces, HaloSpace, OurDevices, RevokeOurDevice, Revoked};
use crate::store::MemStore;
use crate::types::PublicKey;

use super::NodeHandle;

/// Whether `node`'s space `space` (hex key) holds a revocation of `device`.
async fn revoked_in(node: &NodeHandle, space: &str, device: PublicKey) -> bool {
    let Ok(all) = node.directory.send(AllSpaces).await else {
        return false;
    };
    for (key, addr, _) in all {
        if key.to_hex() == space {
            let devices = addr.send(OurDevices).await.unwrap_or_default();
            return devices.get(&device) == Some(&true);
        }
    }
    false
}

#[actix::test]
async fn a_revocation_written_only_in_the_identity_space_reaches_every_other_space() {
    let (laptop, _) = real_node(81, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let team = laptop.space_create(None).await.unwrap().space_key;
    let notes = laptop.space_create(None).await.unwrap().space_key;
    let invitation = laptop
        .device_invite(InviteOptions::default())
        .await
        .unwrap();
    let phone = open_node(82, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let joined = phone
        .device_join(
            &invitation.invitation_code,
            invitation.auth_code,
            20_000,
            None,
        )
        .await
        .unwrap();
    assert_eq!(joined.spaces.len(), 2, "{joined:?}");
    let phone_key = phone.device_key();
    phone
        .object_add(&team, json!({"from": "phone"}))
        .await
        .unwrap();

    // The laptop revokes the phone in its identity space alone (as a device that is not
    // admitted anywhere else yet would).
    let (_, halo) = laptop.directory.send(HaloSpace).await.unwrap().unwrap();
    let written = halo
        .send(RevokeOurDevice(phone_key))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(written, Revoked::Written { .. }), "{written:?}");
    // (Not asserted: that the team space lacks it at this instant. A reconciliation may
    // run at any moment, which made that check fail 3 runs in 5 under load; with spreading
    // switched off, the waits below time out instead.)

    // The laptop's next reconciliation writes it into both other spaces, and the phone
    // learns of it there too.
    for space in [&team, &notes] {
        eventually("the laptop to revoke the phone in every space", || {
            revoked_in(&laptop, space, phone_key)
        })
        .await;
        eventually("the phone to hold that revocation", || {
            revoked_in(&phone, space, phone_key)
        })
        .await;
    }
    assert!(phone.this_device_revoked().await.unwrap());
    // Exactly one revocation per space: spreading again finds nothing to do.
    let before = laptop.status().await.unwrap();
    // (Reconciliations run every 5 s.)
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let after = laptop.status().await.unwrap();
    let control = |s: &super::NodeStatus| -> Vec<u64> {
        s.spaces
            .iter()
            .flat_map(|sp| sp.feeds.iter())
            .filter(|f| f.designation == "control" && f.device_key == laptop.device_key().to_hex())
            .map(|f| f.length)
            .collect()
    };
    assert_eq!(control(&before), control(&after));
}
