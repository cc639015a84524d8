//! The verdicts checker catches what it exists for: members that hold different blocks,
//! deny different blocks, or derive different members, roles or admitted feeds are
//! reported, block by block and member by member; a member that does not answer fails; and
//! a replay of a store reports exactly the blocks that store's space denies.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use echo_actors::credentials::{Assertion, Designation, Role, Signer, Subject};
use echo_actors::feed::{Block, Payload};
use echo_actors::space::{create_space, FeedRecord};
use echo_actors::store::{Key, MemStore, Store};
use echo_actors::types::{decode, encode, KeyPair, PublicKey, Timeframe};
use echo_sim::checkers::verdicts::{self, Verdicts};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000_000;
const FEED: &str = "f1f1f1f1f1f1f1f1f1f1";
const OTHER_FEED: &str = "f2f2f2f2f2f2f2f2f2f2";
const OWNER: &str = "a0a0a0a0a0a0a0a0a0a0";
const EDITOR: &str = "b0b0b0b0b0b0b0b0b0b0";

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}

/// What three agreeing members report.
fn agreed() -> Verdicts {
    Verdicts {
        heads: BTreeMap::from([(FEED.to_string(), 4), (OTHER_FEED.to_string(), 3)]),
        denied: BTreeMap::new(),
        members: BTreeMap::from([
            (OWNER.to_string(), "owner".to_string()),
            (EDITOR.to_string(), "editor".to_string()),
        ]),
        feeds: BTreeMap::from([(OTHER_FEED.to_string(), format!("{EDITOR}:data"))]),
    }
}

/// Compares `agreed()` on n0 and n1 with `odd` on n2.
fn with_odd_one(odd: Verdicts) -> Result<String, String> {
    verdicts::compare(&names(3), &[Some(agreed()), Some(agreed()), Some(odd)])
}

#[test]
fn identical_verdicts_agree() {
    let summary =
        verdicts::compare(&names(3), &[Some(agreed()), Some(agreed()), Some(agreed())]).unwrap();
    assert!(
        summary.contains("2 feeds, 7 blocks, 0 denied, 2 members"),
        "{summary}"
    );
    assert!(summary.contains(&verdicts::digest(&agreed())), "{summary}");
}

#[test]
fn a_member_that_lacks_a_block_is_named() {
    let mut odd = agreed();
    odd.heads.insert(OTHER_FEED.to_string(), 2);
    let err = with_odd_one(odd).unwrap_err();
    assert!(
        err.contains("blocks held differ between n0 and n2: f2f2f2f2: 3 vs 2"),
        "{err}"
    );
}

#[test]
fn a_block_that_only_one_member_denies_is_named() {
    let mut odd = agreed();
    let block = format!("{OTHER_FEED}:2");
    odd.denied.insert(block, "member is reader".to_string());
    let err = with_odd_one(odd).unwrap_err();
    assert!(
        err.contains("denied blocks differ between n0 and n2: f2f2f2f2:2: - vs member is reader"),
        "{err}"
    );
    // Heads agree, so nothing else is reported.
    assert!(!err.contains("blocks held"), "{err}");
}

#[test]
fn a_different_role_or_admission_is_named() {
    let mut odd = agreed();
    odd.members.insert(EDITOR.to_string(), "reader".to_string());
    odd.feeds.clear();
    let err = with_odd_one(odd).unwrap_err();
    assert!(
        err.contains("members differ between n0 and n2: b0b0b0b0: editor vs reader"),
        "{err}"
    );
    assert!(err.contains("admitted feeds differ"), "{err}");
}

#[test]
fn a_member_that_does_not_answer_fails() {
    let err = verdicts::compare(&names(2), &[Some(agreed()), None]).unwrap_err();
    assert!(err.contains("n1 did not report"), "{err}");
    assert!(verdicts::compare(&[], &[]).is_err());
}

fn store_block(store: &MemStore, space: &PublicKey, block: &Block, designation: Designation) {
    let record = FeedRecord {
        feed_key: block.feed_key,
        designation,
        own: false,
    };
    let feed = Key::feed(space, &block.feed_key);
    store.put(&feed, &encode(&record).unwrap()).unwrap();
    let key = Key::block(&block.feed_key, block.seq);
    store.put(&key, &encode(block).unwrap()).unwrap();
}

/// A space whose owner makes `reader` a READER and admits its data feed, followed by one
/// data block of that feed, which every peer must deny.
#[test]
fn a_replay_reports_the_blocks_its_store_denies() {
    let store = MemStore::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let owner = KeyPair::generate(&mut rng);
    let signer = Signer::direct(owner.clone());
    let record = create_space(&store, &signer, None, &mut rng, NOW)
        .unwrap()
        .record;
    let space = record.space_key;
    let genesis = record.genesis_feed.unwrap();
    let fresh = verdicts::replayed(&store, &space.to_hex()).unwrap();
    assert_eq!(fresh.heads, BTreeMap::from([(genesis.to_hex(), 4)]));
    assert_eq!(
        fresh.members,
        BTreeMap::from([(owner.public().to_hex(), "owner".to_string())])
    );
    assert!(fresh.denied.is_empty());

    let secret = store.get(&Key::feed_secret(&genesis)).unwrap().unwrap();
    let genesis_key = KeyPair::from_secret(secret.try_into().unwrap());
    let last: Block = decode(&store.get(&Key::block(&genesis, 3)).unwrap().unwrap()).unwrap();
    let (reader, reader_feed) = (KeyPair::generate(&mut rng), KeyPair::generate(&mut rng));
    let grants = [
        Subject {
            id: reader.public(),
            assertion: Assertion::SpaceMember {
                space_key: space,
                role: Role::Reader,
            },
        },
        Subject {
            id: reader_feed.public(),
            assertion: Assertion::AdmittedFeed {
                space_key: space,
                identity_key: reader.public(),
                device_key: reader.public(),
                designation: Designation::Data,
            },
        },
    ];
    let mut prev = last.hash();
    for (seq, subject) in (4..).zip(grants) {
        let credential = signer.issue(subject, NOW, vec![]);
        let payload = Payload::Credential(Box::new(credential));
        let block = Block::sign(&genesis_key, seq, prev, Timeframe::new(), payload).unwrap();
        prev = block.hash();
        store_block(&store, &space, &block, Designation::Control);
    }
    let mut past = Timeframe::new();
    past.advance(genesis, 5);
    let write = Block::sign(
        &reader_feed,
        0,
        Default::default(),
        past,
        Payload::Mutation(vec![0, 0]),
    )
    .unwrap();
    store_block(&store, &space, &write, Designation::Data);

    let replayed = verdicts::replayed(&store, &space.to_hex()).unwrap();
    let denied: Vec<&String> = replayed.denied.keys().collect();
    assert_eq!(
        denied,
        vec![&format!("{}:0", reader_feed.public().to_hex())]
    );
    assert_eq!(
        replayed
            .members
            .get(&reader.public().to_hex())
            .map(String::as_str),
        Some("reader")
    );
    assert_eq!(
        replayed.heads,
        BTreeMap::from([(genesis.to_hex(), 6), (reader_feed.public().to_hex(), 1)])
    );
    // A member that applied the block instead (no denial) is told apart from the replay.
    let mut applied = replayed.clone();
    applied.denied.clear();
    let found = verdicts::differ("n0", &applied, "n0 replayed", &replayed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("denied blocks differ"), "{found:?}");
}
