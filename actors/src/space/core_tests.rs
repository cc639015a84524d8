//! SpaceCore: causal readiness, admission and role checks on blocks from other writers,
//! quarantine, and `check` never changing state.

#![allow(clippy::unwrap_used)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::json;

use super::*;
use crate::credentials::{Assertion, Designation, Role, Signer, Subject};
use crate::db::{ObjectId, SpaceDoc};
use crate::feed::{Block, FeedLog, Payload};
use crate::identity::{DeviceRecord, NewIdentity};
use crate::store::MemStore;
use crate::types::{KeyPair, Timeframe};

pub(super) struct Writer {
    pub signer: Signer,
    pub control: (FeedLog, KeyPair),
    pub data: (FeedLog, KeyPair),
}

pub(super) fn writer(rng: &mut ChaCha20Rng) -> Writer {
    let device = DeviceRecord::generate(rng).key_pair();
    let id = NewIdentity::create(rng, &device, None, 1);
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    Writer {
        signer: id.record.signer(&device),
        control: (FeedLog::new(control.public()), control),
        data: (FeedLog::new(data.public()), data),
    }
}

pub(super) fn append(feed: &mut (FeedLog, KeyPair), tf: &Timeframe, payload: Payload) -> Block {
    let block = feed.0.next_block(&feed.1, tf.clone(), payload).unwrap();
    feed.0.commit(&block);
    block
}

/// A space created by `owner`, loaded into a core.
fn setup() -> (ChaCha20Rng, Writer, SpaceCore) {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let owner = writer(&mut rng);
    let store = MemStore::new();
    let created = create_space(&store, &owner.signer, None, &mut rng, 1).unwrap();
    let core = load_space(&store, &created.record, 42).unwrap().core;
    (rng, owner, core)
}

pub(super) fn update_adding(id: u128, client: u64) -> Vec<u8> {
    let mut doc = SpaceDoc::new(client);
    doc.add(ObjectId::from_parts(1, id), &json!({"k": 1}))
        .unwrap()
        .update
}

/// The owner's control feed admits `who` with `role` and `who`'s data feed; returns the
/// blocks the owner would have written, continuing from the owner's current feed.
pub(super) fn admit(
    core: &SpaceCore,
    owner_control: &mut (FeedLog, KeyPair),
    owner: &Writer,
    who: &Writer,
    role: Role,
) -> Vec<Block> {
    let space_key = core.record().space_key;
    let mut tf = core.timeframe().clone();
    let member = owner.signer.issue(
        Subject {
            id: who.signer.issuer,
            assertion: Assertion::SpaceMember { space_key, role },
        },
        2,
        vec![],
    );
    let feed = owner.signer.issue(
        Subject {
            id: who.data.1.public(),
            assertion: Assertion::AdmittedFeed {
                space_key,
                identity_key: who.signer.issuer,
                device_key: who.signer.key.public(),
                designation: Designation::Data,
            },
        },
        2,
        vec![],
    );
    let a = append(owner_control, &tf, Payload::Credential(Box::new(member)));
    tf.advance(a.feed_key, a.seq);
    let b = append(owner_control, &tf, Payload::Credential(Box::new(feed)));
    vec![a, b]
}

/// A space built by hand, so that the test holds the owner's control feed; `blocks` are
/// the genesis blocks, in order, already applied to `core`.
pub(super) struct HandBuilt {
    pub rng: ChaCha20Rng,
    pub owner: Writer,
    pub control: (FeedLog, KeyPair),
    pub core: SpaceCore,
    pub blocks: Vec<Block>,
}

pub(super) fn hand_built(seed: u64) -> HandBuilt {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let owner = writer(&mut rng);
    let space = KeyPair::generate(&mut rng);
    let mut control = (
        FeedLog::new(owner.control.1.public()),
        owner.control.1.clone(),
    );
    let record = SpaceRecord {
        space_key: space.public(),
        name: None,
        genesis_feed: Some(control.1.public()),
        control_feed: control.1.public(),
        data_feed: owner.data.1.public(),
        created_ms: 1,
    };
    let mut core = SpaceCore::new(record, 7);
    let mut blocks = Vec::new();
    for c in crate::credentials::space_genesis(&crate::credentials::SpaceGenesis {
        space: &space,
        creator: &owner.signer,
        device_key: owner.signer.key.public(),
        control_feed: control.1.public(),
        data_feed: owner.data.1.public(),
        now_ms: 1,
    }) {
        let tf = core.timeframe().clone();
        let b = append(&mut control, &tf, Payload::Credential(Box::new(c)));
        core.apply(&b).unwrap();
        blocks.push(b);
    }
    HandBuilt {
        rng,
        owner,
        control,
        core,
        blocks,
    }
}

#[test]
fn editor_blocks_apply_reader_blocks_are_denied_strangers_are_foreign() {
    let HandBuilt {
        mut rng,
        owner,
        mut control,
        mut core,
        ..
    } = hand_built(6);

    let mut editor = writer(&mut rng);
    let mut reader = writer(&mut rng);
    for b in admit(&core, &mut control, &owner, &editor, Role::Editor) {
        core.apply(&b).unwrap();
    }
    for b in admit(&core, &mut control, &owner, &reader, Role::Reader) {
        core.apply(&b).unwrap();
    }

    // An editor's data block applies and reports the object it added.
    let tf = core.timeframe().clone();
    let good = append(
        &mut editor.data,
        &tf,
        Payload::Mutation(update_adding(1, 100)),
    );
    match core.apply(&good).unwrap() {
        Verdict::Accepted(changes) => assert_eq!(changes.len(), 1),
        v => panic!("editor block not accepted: {v:?}"),
    }

    // A reader's data block is planned for storage as a denial, and applying it changes
    // the doc not at all but advances its feed (it is never asked for again).
    let bad = append(
        &mut reader.data,
        &tf,
        Payload::Mutation(update_adding(2, 200)),
    );
    let before = core.doc().canonical_state();
    let plan = core.plan(vec![bad.clone()]);
    assert!(
        plan.accept.len() == 1 && plan.denied == 1 && plan.rejected.is_empty(),
        "{plan:?}"
    );
    match core.apply(&bad).unwrap() {
        Verdict::Denied(reason) => assert!(reason.contains("reader"), "{reason}"),
        v => panic!("reader block not denied: {v:?}"),
    }
    assert_eq!(core.doc().canonical_state(), before);
    assert_eq!(core.timeframe().get(&bad.feed_key), Some(bad.seq));
    assert_eq!(
        core.denied().keys().collect::<Vec<_>>(),
        vec![&(bad.feed_key, bad.seq)]
    );

    // A block from a feed nobody admitted is not part of the space: rejected, not stored.
    let mut stranger = writer(&mut rng);
    let forged = append(
        &mut stranger.data,
        &tf,
        Payload::Mutation(update_adding(3, 300)),
    );
    let plan = core.plan(vec![forged.clone()]);
    assert!(
        plan.accept.is_empty() && plan.rejected.len() == 1,
        "{plan:?}"
    );
    assert!(matches!(
        core.apply(&forged),
        Err(SpaceError::Foreign { .. })
    ));
    assert_eq!(core.timeframe().get(&forged.feed_key), None);

    // A block whose writer had seen more than we have waits in quarantine, then applies.
    let mut ahead_tf = core.timeframe().clone();
    let first = append(
        &mut editor.data,
        &ahead_tf,
        Payload::Mutation(update_adding(4, 101)),
    );
    ahead_tf.advance(first.feed_key, first.seq);
    let second = append(
        &mut editor.data,
        &ahead_tf,
        Payload::Mutation(update_adding(5, 102)),
    );
    assert!(matches!(
        core.apply(&second),
        Err(SpaceError::NotNext { .. })
    ));
    core.hold(second).unwrap();
    assert!(core.take_ready().is_empty());
    core.apply(&first).unwrap();
    let ready = core.take_ready();
    assert_eq!(ready.len(), 1);
    core.apply(&ready[0]).unwrap();
    assert_eq!(core.quarantined(), 0);
    assert_eq!(
        core.doc()
            .query(&crate::db::Query {
                type_name: None,
                where_eq: vec![],
                include_deleted: false
            })
            .len(),
        3
    );
}

#[test]
fn local_writes_need_an_admitted_editor_feed() {
    let (_, _, mut core) = setup();
    let id = ObjectId::from_parts(1, 9);
    let m = core
        .local(LocalOp::Add {
            id,
            object: json!({"a": 1}),
        })
        .unwrap();
    assert_eq!(m.changes.len(), 1);
    assert!(matches!(
        core.local(LocalOp::Add {
            id: ObjectId::from_parts(1, 10),
            object: json!("no")
        }),
        Err(SpaceError::Db(_))
    ));
}
