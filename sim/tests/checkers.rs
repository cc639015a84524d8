//! The checkers catch what they exist for: the authorization checker flags a stored block
//! from an unadmitted feed and a stored block with a bad signature, and finds nothing in a
//! freshly created space.

#![allow(clippy::unwrap_used)]

use echo_actors::credentials::{Designation, Signer};
use echo_actors::feed::{Block, Payload};
use echo_actors::space::{create_space, FeedRecord};
use echo_actors::store::{Key, MemStore, Store};
use echo_actors::types::{encode, Hash, KeyPair, Timeframe};
use echo_sim::checkers::AuthorizationChecker;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn space(store: &MemStore) -> echo_actors::types::PublicKey {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let identity = KeyPair::generate(&mut rng);
    let created = create_space(
        store,
        &Signer::direct(identity),
        None,
        &mut rng,
        1_700_000_000_000,
    )
    .unwrap();
    created.record.space_key
}

fn store_block(store: &MemStore, space: &echo_actors::types::PublicKey, block: &Block) {
    let record = FeedRecord {
        feed_key: block.feed_key,
        designation: Designation::Data,
        own: false,
    };
    store
        .put(
            &Key::feed(space, &block.feed_key),
            &encode(&record).unwrap(),
        )
        .unwrap();
    store
        .put(
            &Key::block(&block.feed_key, block.seq),
            &encode(block).unwrap(),
        )
        .unwrap();
}

#[test]
fn a_fresh_space_is_clean() {
    let store = MemStore::new();
    space(&store);
    assert!(AuthorizationChecker::default()
        .check("n0", &store)
        .is_empty());
}

#[test]
fn an_unadmitted_writer_is_caught() {
    let store = MemStore::new();
    let space_key = space(&store);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let stranger = KeyPair::generate(&mut rng);
    let block = Block::sign(
        &stranger,
        0,
        Hash::default(),
        Timeframe::new(),
        Payload::Mutation(vec![1]),
    )
    .unwrap();
    store_block(&store, &space_key, &block);
    let found = AuthorizationChecker::default().check("n0", &store);
    assert!(
        found
            .iter()
            .any(|v| v.detail.contains("not part of the space")),
        "{found:?}"
    );
}

#[test]
fn a_bad_signature_is_caught() {
    let store = MemStore::new();
    let space_key = space(&store);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (a, b) = (KeyPair::generate(&mut rng), KeyPair::generate(&mut rng));
    let mut block = Block::sign(
        &a,
        0,
        Hash::default(),
        Timeframe::new(),
        Payload::Mutation(vec![1]),
    )
    .unwrap();
    block.feed_key = b.public();
    store_block(&store, &space_key, &block);
    let found = AuthorizationChecker::default().check("n0", &store);
    assert!(
        found.iter().any(|v| v.detail.contains("bad signature")),
        "{found:?}"
    );
}
