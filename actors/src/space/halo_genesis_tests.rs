//! The identity space founded from the seed phrase (`create.rs`, `halo_writes`): a device
//! that re-founds it writes the very genesis blocks its identity's other devices hold, and an
//! identity space founded the older way (the genesis on the creating device's control feed)
//! merges with a re-founded one into one control state, the same on every peer whatever the
//! order, with no block denied.

#![allow(clippy::unwrap_used)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::core_tests::append;
use super::*;
use crate::credentials::{
    identity_space_genesis, space_genesis, Designation, Role, Signer, SpaceGenesis,
};
use crate::feed::{Block, FeedLog, Payload};
use crate::store::MemStore;
use crate::types::{KeyPair, PublicKey, Timeframe};

/// The blocks `halo_writes` stores for a device founding the identity space from `identity`
/// (derived keys stand in for the phrase's), read back from the store.
fn founded(
    device_seed: u64,
    identity: &KeyPair,
    space: &KeyPair,
    feed: &KeyPair,
    data: PublicKey,
) -> Vec<Block> {
    let mut rng = ChaCha20Rng::seed_from_u64(device_seed);
    let device = KeyPair::generate(&mut rng);
    let auth = crate::credentials::authorize_device(identity, device.public(), 5);
    let signer = Signer::for_device(identity.public(), device, auth);
    let genesis = crate::identity::HaloGenesis {
        space_key: space.public(),
        feed: feed.clone(),
        credentials: identity_space_genesis(space, identity, feed.public(), data),
    };
    let batch = halo_writes(&signer, Some(&genesis), space.public(), false, &mut rng, 7).unwrap();
    let store = MemStore::new();
    crate::store::Store::write(&store, batch).unwrap();
    let record: SpaceRecord = crate::types::decode(
        &crate::store::Store::get(&store, &crate::store::Key::space(&space.public()))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let loaded = load_space(&store, &record, 1).unwrap();
    assert!(loaded.replay.passed_over.is_empty(), "{:?}", loaded.replay);
    let mut blocks = Vec::new();
    for feed in loaded.feeds.keys() {
        for seq in 0.. {
            let Ok(Some(bytes)) =
                crate::store::Store::get(&store, &crate::store::Key::block(feed, seq))
            else {
                break;
            };
            blocks.push(crate::types::decode::<Block>(&bytes).unwrap());
        }
    }
    // The genesis first: the device's admissions have it in their past.
    blocks.sort_by_key(|b| (b.feed_key != feed.public(), b.feed_key, b.seq));
    blocks
}

#[test]
fn two_devices_founding_from_one_phrase_write_the_same_genesis_and_admit_themselves() {
    let identity = KeyPair::from_secret([21; 32]);
    let space = KeyPair::from_secret([22; 32]);
    let feed = KeyPair::from_secret([23; 32]);
    let data = KeyPair::from_secret([24; 32]).public();
    let one = founded(1, &identity, &space, &feed, data);
    let other = founded(2, &identity, &space, &feed, data);
    let genesis = |b: &[Block]| -> Vec<Block> {
        b.iter()
            .filter(|b| b.feed_key == feed.public())
            .cloned()
            .collect()
    };
    assert_eq!(genesis(&one).len(), 4);
    assert_eq!(genesis(&one), genesis(&other), "byte for byte");
    // Together: one space, the identity its owner, both devices admitted, nothing denied.
    let mut core = SpaceCore::new(
        SpaceRecord {
            space_key: space.public(),
            name: None,
            genesis_feed: None,
            control_feed: KeyPair::from_secret([25; 32]).public(),
            data_feed: KeyPair::from_secret([26; 32]).public(),
            created_ms: 1,
        },
        3,
    );
    let mut all = one.clone();
    all.extend(
        other
            .iter()
            .filter(|b| b.feed_key != feed.public())
            .cloned(),
    );
    for b in &all {
        assert!(
            matches!(core.apply(b).unwrap(), Verdict::Accepted(_)),
            "{}:{}",
            b.feed_key,
            b.seq
        );
    }
    assert_eq!(core.state().role(&identity.public()), Some(Role::Owner));
    let devices: std::collections::BTreeSet<PublicKey> = core
        .state()
        .feeds()
        .values()
        .map(|f| f.device_key)
        .filter(|d| *d != identity.public())
        .collect();
    assert_eq!(devices.len(), 2, "both devices' feeds are admitted");
}

#[test]
fn an_identity_space_of_the_old_kind_and_a_refounded_one_merge_in_any_order() {
    let identity = KeyPair::from_secret([33; 32]);
    let space = KeyPair::from_secret([32; 32]);
    // The old kind: the genesis on the creating device's control feed, at its own time.
    let device = KeyPair::from_secret([38; 32]);
    let auth = crate::credentials::authorize_device(&identity, device.public(), 5);
    let old = Signer::for_device(identity.public(), device.clone(), auth);
    let control = KeyPair::from_secret([39; 32]);
    let mut old_control = (FeedLog::new(control.public()), control.clone());
    let mut old_blocks = Vec::new();
    let mut tf = Timeframe::new();
    for c in space_genesis(&SpaceGenesis {
        space: &space,
        creator: &old,
        device_key: device.public(),
        control_feed: control.public(),
        data_feed: KeyPair::from_secret([40; 32]).public(),
        now_ms: 1_700_000_000_000,
    }) {
        let b = append(&mut old_control, &tf, Payload::Credential(Box::new(c)));
        tf.advance(b.feed_key, b.seq);
        old_blocks.push(b);
    }
    // A device recovered after the old one was lost re-founds it under the same key.
    let feed = KeyPair::from_secret([34; 32]);
    let new_blocks = founded(
        3,
        &identity,
        &space,
        &feed,
        KeyPair::from_secret([35; 32]).public(),
    );
    let record = SpaceRecord {
        space_key: space.public(),
        name: None,
        genesis_feed: None,
        control_feed: KeyPair::from_secret([36; 32]).public(),
        data_feed: KeyPair::from_secret([37; 32]).public(),
        created_ms: 1,
    };
    let mut outcomes = Vec::new();
    for first_old in [true, false] {
        let mut core = SpaceCore::new(record.clone(), 4);
        let order: Vec<&Block> = if first_old {
            old_blocks.iter().chain(new_blocks.iter()).collect()
        } else {
            new_blocks.iter().chain(old_blocks.iter()).collect()
        };
        for b in order {
            let v = core.apply(b).unwrap();
            assert!(
                matches!(v, Verdict::Accepted(_)),
                "{}:{} {v:?}",
                b.feed_key,
                b.seq
            );
        }
        assert!(core.denied().is_empty());
        assert!(core.state().has_genesis());
        assert_eq!(core.state().role(&identity.public()), Some(Role::Owner));
        assert_eq!(core.state().members().len(), 1);
        let mut feeds: Vec<(PublicKey, Designation, PublicKey)> = core
            .state()
            .feeds()
            .iter()
            .map(|(k, f)| (*k, f.designation, f.device_key))
            .collect();
        feeds.sort();
        // The old device's two feeds, the derived genesis pair, the new device's two.
        assert_eq!(feeds.len(), 6, "{feeds:?}");
        outcomes.push(feeds);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "the same state whatever came first"
    );
}
