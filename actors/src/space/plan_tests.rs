//! `SpaceCore::plan` + quarantine, driven the way a peer's blocks arrive: whatever batches
//! and order a valid history is delivered in, the receiver ends with exactly the state of a
//! peer that applied it in order, rejects nothing, and keeps nothing in quarantine.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::core_tests::{admit, append, hand_built, update_adding, writer};
use super::*;
use crate::credentials::Role;
use crate::feed::{Block, Payload};

/// A valid history: genesis, an editor admitted, then `writes` data blocks alternating
/// between owner and editor, each written with the writer's view at that moment.
fn history(writes: usize) -> (SpaceRecord, Vec<Block>, serde_json::Value) {
    let mut hb = hand_built(21);
    let mut editor = writer(&mut hb.rng);
    let mut blocks = hb.blocks.clone();
    for b in admit(&hb.core, &mut hb.control, &hb.owner, &editor, Role::Editor) {
        hb.core.apply(&b).unwrap();
        blocks.push(b);
    }
    let mut owner_data = hb.owner.data.clone();
    for i in 0..writes {
        let tf = hb.core.timeframe().clone();
        let (feed, client) = if i % 2 == 0 {
            (&mut owner_data, 100)
        } else {
            (&mut editor.data, 200)
        };
        let b = append(
            feed,
            &tf,
            Payload::Mutation(update_adding(i as u128 + 1, client + i as u64)),
        );
        hb.core.apply(&b).unwrap();
        blocks.push(b);
    }
    (
        hb.core.record().clone(),
        blocks,
        hb.core.doc().canonical_state(),
    )
}

/// Delivers `batches` to a fresh core as a peer's blocks would arrive.
fn deliver(record: &SpaceRecord, batches: Vec<Vec<Block>>) -> SpaceCore {
    let mut core = SpaceCore::new(record.clone(), 99);
    let mut queue: std::collections::VecDeque<Vec<Block>> = batches.into();
    while let Some(batch) = queue.pop_front() {
        let plan = core.plan(batch);
        assert!(plan.rejected.is_empty(), "rejected: {:?}", plan.rejected);
        for b in &plan.accept {
            core.apply(b).unwrap();
        }
        for b in plan.hold {
            core.hold(b).unwrap();
        }
        let ready = core.take_ready();
        if !ready.is_empty() {
            queue.push_front(ready);
        }
    }
    core
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_delivery_order_gives_the_same_state(
        writes in 1usize..12,
        order in proptest::collection::vec(any::<u32>(), 40),
        cuts in proptest::collection::vec(1usize..5, 40),
    ) {
        let (record, blocks, expected) = history(writes);
        let mut shuffled: Vec<(u32, Block)> = blocks.into_iter().zip(order).map(|(b, k)| (k, b)).collect();
        shuffled.sort_by_key(|(k, _)| *k);
        let mut batches = Vec::new();
        let mut rest: Vec<Block> = shuffled.into_iter().map(|(_, b)| b).collect();
        for cut in cuts {
            if rest.is_empty() {
                break;
            }
            let n = cut.min(rest.len());
            batches.push(rest.drain(..n).collect());
        }
        if !rest.is_empty() {
            batches.push(rest);
        }
        let core = deliver(&record, batches);
        prop_assert_eq!(core.quarantined(), 0);
        prop_assert_eq!(core.doc().canonical_state(), expected);
    }
}

#[test]
fn a_block_with_a_broken_signature_is_rejected_not_held() {
    let (record, mut blocks, _) = history(2);
    let last = blocks.len() - 1;
    if let Payload::Mutation(bytes) = &mut blocks[last].payload {
        bytes.push(0);
    }
    let core = SpaceCore::new(record, 1);
    let plan = core.plan(blocks);
    assert_eq!(plan.rejected.len(), 1);
    assert!(plan.rejected[0].2.contains("signature"));
}

#[test]
fn a_peers_credentials_are_verified_once_though_planned_and_applied() {
    let (record, blocks, _) = history(4);
    let credentials = blocks
        .iter()
        .filter(|b| matches!(b.payload, Payload::Credential(_)))
        .count() as u64;
    assert!(credentials >= 5, "genesis and an admission: {credentials}");
    let core = deliver(&record, vec![blocks]);
    // Each credential was judged twice (planned on a trial copy, then applied), and its
    // signature and chain checked once.
    assert_eq!(core.control().verified().checks(), credentials);
}
