//! Recovery with every device lost: 8 peers by default (`--nodes`, at least 6). Bob has a
//! laptop (n1) and a phone (a second device recovered from his seed phrase). Bob is a
//! member of the shared space; he also owns a space of his own that one other member
//! (n3) holds, and a diary that only his devices hold. Everyone writes, large values
//! among them. Then both of Bob's devices crash for good, and the others keep writing.
//! Bob recovers his identity from the phrase on a new host: no peer holds his identity
//! space, so it must learn its spaces by asking its peers (`invitation/spaces_of.rs`). On
//! even seeds every node knows the others as static peers; on odd seeds nobody has a static
//! peer and everyone finds the others through one signaling server, so the new host knows
//! no topic of Bob's spaces: it must find their members under Bob's identity topic, where
//! every member of a space he is in listens for him (`mesh/identity_topics.rs`).
//!
//! Checked on top of the shared liveness phase (the new device converges with every live
//! member of the shared space, with the same verdicts; durability of every acknowledged
//! write): the new device gets the shared space and Bob's own space back, can write in
//! both, and holds in Bob's space exactly what n3 holds, every acknowledged write among it;
//! no peer told it of a space Bob is not a member of.

use std::collections::BTreeSet;

use echo_actors::credentials::Role;
use serde_json::json;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::Topology;

/// A large value (20 KB).
const LARGE: usize = 20_000;
/// How long the new device may take to agree with n3 on Bob's space after the liveness
/// phase.
const AGREE_BOUND_MS: u64 = 30_000;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let topology = if seed % 2 == 1 {
        Topology::Signaling
    } else {
        Topology::Mesh
    };
    let mut c = cluster("recovery", seed, opts, 8, topology);
    if topology == Topology::Signaling {
        super::signaling::start_signal_host(&mut c, seed);
    }
    let n = c.nodes.len().max(6);
    let (laptop, keeper, phone, restored) = (1, 3, n - 2, n - 1);
    let members: Vec<usize> = (0..phone).collect();
    if !c.form_space(&members, ADMIT_BOUND_MS) {
        return c.finish();
    }
    if !c.recover_identity(phone, laptop)
        || !c.join(phone)
        || !c.wait_writable(phone, ADMIT_BOUND_MS)
    {
        c.violation("setup", "the phone did not become a writer");
        return c.finish();
    }
    let shared = c.space.clone().unwrap_or_default();
    let Some(keeper_identity) = c.nodes[keeper].identity.clone() else {
        return c.finish();
    };
    // Bob's own space, which n3 holds too, and his diary, which only his devices hold.
    let created = c.call(laptop, |h| async move {
        let own = h.space_create(Some("bob".into())).await?;
        let diary = h.space_create(Some("diary".into())).await?;
        Ok::<_, echo_actors::node::NodeError>((own.space_key, diary.space_key))
    });
    let Some(Ok((own, diary))) = created else {
        c.violation("setup", "the laptop could not create its spaces");
        return c.finish();
    };
    let (space, who) = (own.clone(), keeper_identity.clone());
    let added = c.call(laptop, move |h| async move {
        h.space_add_member(&space, &who, Role::Editor).await
    });
    let space = own.clone();
    let joined = c.call(keeper, move |h| async move {
        h.space_join(&space, None).await?;
        h.space_wait_writable(&space, ADMIT_BOUND_MS).await
    });
    c.event(format!(
        "n3 added to Bob's space -> {added:?}, joined -> {joined:?}"
    ));
    if !matches!(joined, Some(Ok(_))) {
        c.violation("setup", "n3 could not join Bob's space");
        return c.finish();
    }

    let mut in_own = BTreeSet::new();
    let (objects, texts) = c.shared_objects(0, 3);
    let everyone: Vec<usize> = (0..=phone).collect();
    for k in 0..(4 + c.below(8)) {
        let node = c.pick(&everyone).unwrap_or(laptop);
        c.random_write(node, &objects, &texts);
        let writer = [laptop, phone, keeper][(k % 3) as usize];
        let body = if k % 2 == 0 {
            "z".repeat(LARGE)
        } else {
            format!("note {k}")
        };
        let object = json!({"@type": "note", "k": k, "body": body});
        if let Some(id) = c.add_to("recovery", writer, &own, object, 5_000) {
            in_own.insert(id);
        }
        c.add_to(
            "recovery",
            laptop,
            &diary,
            json!({"@type": "entry", "k": k}),
            5_000,
        );
        let pause = c.below(600);
        c.run_for(pause);
    }
    // Everything Bob wrote is on n3 before Bob's devices are lost.
    let deadline = c.now() + ADMIT_BOUND_MS;
    while c
        .object_ids(keeper, &own)
        .is_none_or(|ids| !in_own.is_subset(&ids))
    {
        if c.now() > deadline {
            c.violation("recovery", "n3 never held Bob's writes in his space");
            return c.finish();
        }
        c.run_for(250);
    }

    // Both of Bob's devices are lost for good; the others keep writing.
    for lost in [laptop, phone] {
        c.stop(lost);
        c.nodes[lost].member = false;
        c.nodes[lost].lost = true;
    }
    c.event("both of Bob's devices are lost");
    let rest: Vec<usize> = (0..phone).filter(|&i| i != laptop).collect();
    for k in 0..(2 + c.below(4)) {
        let node = c.pick(&rest).unwrap_or(0);
        c.random_write(node, &objects, &texts);
        if let Some(id) = c.add_to(
            "recovery",
            keeper,
            &own,
            json!({"@type": "note", "by": "n3", "k": k}),
            5_000,
        ) {
            in_own.insert(id);
        }
        let pause = c.below(2_000);
        c.run_for(pause);
    }

    // Bob, from paper, on a new host.
    if !c.recover_identity(restored, laptop) {
        return c.finish();
    }
    let deadline = c.now() + ADMIT_BOUND_MS;
    loop {
        let has = c.space_keys(restored).unwrap_or_default();
        if has.contains(&shared) && has.contains(&own) {
            c.event(format!(
                "the new device has its spaces back: {} spaces",
                has.len()
            ));
            if has.contains(&diary) {
                c.violation("recovery", "the new device has a space no peer holds");
            }
            break;
        }
        if c.now() > deadline {
            c.violation("recovery", format!("the new device has only {has:?}"));
            return c.finish();
        }
        c.run_for(250);
    }
    c.nodes[restored].member = true;
    c.nodes[restored].identity = c.nodes[laptop].identity.clone();
    if let Some(id) = c.add_to(
        "recovery",
        restored,
        &own,
        json!({"@type": "note", "by": "restored"}),
        ADMIT_BOUND_MS,
    ) {
        in_own.insert(id);
    }
    c.random_write(restored, &objects, &texts);

    c.liveness(LIVENESS_BOUND_MS, &texts);
    let deadline = c.now() + AGREE_BOUND_MS;
    loop {
        let on_keeper = c.object_ids(keeper, &own);
        let on_restored = c.object_ids(restored, &own);
        let agreed = on_keeper.is_some() && on_keeper == on_restored;
        if agreed || c.now() > deadline {
            match on_keeper {
                Some(ids) if agreed && in_own.is_subset(&ids) => {}
                other => c.violation(
                    "recovery",
                    format!("Bob's space: n3 {other:?}, the new device {on_restored:?}, acknowledged {in_own:?}"),
                ),
            }
            break;
        }
        c.run_for(500);
    }
    c.finish()
}
