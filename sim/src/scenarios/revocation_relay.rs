//! A stolen device joins a space after its revocation, where no other device of its
//! identity is: 6 peers by default (`--nodes`, at least 5). Bob's laptop has a second device
//! (the stolen one, recovered from the seed phrase on its own host) in the shared space.
//! Carol owns a second space with Dave in it. The stolen device and Carol are cut off from
//! the rest; Bob revokes the stolen device on his side; on theirs, Carol (who does not know)
//! invites Bob's identity into her space, the stolen device takes the invitation and writes
//! there, and Carol writes too. Then the network heals.
//!
//! Bob's identity never revokes the device in Carol's space (none of its live devices is a
//! member there: the stolen device's listing of it in Bob's identity space is past its cut,
//! so Bob's laptop never joins). Carol's and Dave's nodes hold the revocation from the shared
//! space and must relay it (`space/relay.rs`): within a bound, Carol, Dave and the stolen
//! device itself deny every block the stolen device wrote in Carol's space, as revoked, and
//! agree on every verdict and object there; Carol's objects stand and Bob's laptop is not a
//! member. The shared space then goes through the liveness phase without the stolen device.

use std::collections::BTreeMap;

use echo_actors::invitation::InviteOptions;
use echo_actors::space::SpaceVerdicts;
use serde_json::{json, Value};

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::{Cluster, Topology};

/// How long the relay may take, after the heal, to cut the device in Carol's space.
const RELAY_BOUND_MS: u64 = 30_000;
/// How long an invitation may take, from create to the guest's admission.
const ACCEPT_BOUND_MS: u64 = 40_000;

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("revocation-relay", seed, opts, 6, Topology::Mesh);
    let n = c.nodes.len();
    if n < 5 {
        c.violation("setup", "this scenario needs at least 5 nodes");
        return c.finish();
    }
    let (bob, carol, dave, stolen) = (1, 2, 3, n - 1);
    let members: Vec<usize> = (0..stolen).collect();
    if !c.form_space(&members, ADMIT_BOUND_MS) {
        return c.finish();
    }
    if !c.recover_identity(stolen, bob)
        || !c.join(stolen)
        || !c.wait_writable(stolen, ADMIT_BOUND_MS)
    {
        c.violation("setup", "the second device did not become a writer");
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 3);
    let everyone: Vec<usize> = (0..=stolen).collect();
    for _ in 0..(3 + c.below(8)) {
        let node = c.pick(&everyone).unwrap_or(0);
        c.random_write(node, &objects, &texts);
        let pause = c.below(600);
        c.run_for(pause);
    }
    // Carol's space, with Dave.
    let Some(theirs) = carol_space_with(&mut c, carol, dave) else {
        return c.finish();
    };
    let Some(stolen_key) = c.call(stolen, |h| async move { h.device_key().to_hex() }) else {
        c.violation("setup", "the second device did not answer");
        return c.finish();
    };

    // The partition, and the revocation on Bob's side.
    let rest: Vec<usize> = (0..stolen).filter(|&i| i != carol).collect();
    c.partition(&[stolen, carol], &rest);
    let settle = 500 + c.below(2_000);
    c.run_for(settle);
    let revoke = stolen_key.clone();
    let revoked = c.call(bob, move |h| async move { h.device_revoke(&revoke).await });
    c.event(format!("bob revokes the second device -> {revoked:?}"));
    if !matches!(revoked, Some(Ok(_))) {
        c.violation("revocation", "bob could not revoke the device");
        return c.finish();
    }

    // On the other side: Carol invites Bob's identity, the stolen device takes it and writes.
    if !admit(&mut c, carol, stolen, &theirs) {
        return c.finish();
    }
    let mut wrote = 0;
    for k in 0..(2 + c.below(5)) {
        let space = theirs.clone();
        let object = json!({"@type": "stolen", "k": k});
        let answer = c.call(stolen, move |h| async move {
            h.object_add(&space, object).await
        });
        c.event(format!(
            "the revoked device writes in carol's space -> {answer:?}"
        ));
        wrote += usize::from(matches!(answer, Some(Ok(_))));
        let space = theirs.clone();
        let object = json!({"@type": "carol", "k": k});
        let _ = c.call(
            carol,
            move |h| async move { h.object_add(&space, object).await },
        );
        let pause = c.below(400);
        c.run_for(pause);
    }
    if wrote == 0 {
        c.violation("setup", "the revoked device wrote nothing in carol's space");
        return c.finish();
    }

    c.heal_network();
    c.event("healed");
    check_relayed(&mut c, &[carol, dave, stolen], &theirs, &stolen_key);
    let listed = c.call(bob, |h| async move { h.space_list().await.ok() });
    if listed
        .flatten()
        .is_some_and(|l| l.iter().any(|s| s.space_key == theirs))
    {
        c.violation("revocation", "bob's laptop joined carol's space");
    }

    // The shared space converges without the revoked device.
    c.nodes[stolen].member = false;
    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.finish()
}

/// Carol creates a space and admits Dave to it; its key.
fn carol_space_with(c: &mut Cluster, carol: usize, dave: usize) -> Option<String> {
    let created = c.call(carol, |h| async move {
        h.space_create(Some("carol".into())).await
    });
    let Some(Ok(info)) = created else {
        c.violation("setup", format!("carol cannot create a space: {created:?}"));
        return None;
    };
    let space = info.space_key;
    let object = json!({"@type": "carol", "k": "first"});
    let first = space.clone();
    let _ = c.call(
        carol,
        move |h| async move { h.object_add(&first, object).await },
    );
    admit(c, carol, dave, &space).then_some(space)
}

/// `host` invites `guest`'s identity to `space` and `guest` takes it: false (a violation)
/// if that does not end in an admission within [`ACCEPT_BOUND_MS`].
fn admit(c: &mut Cluster, host: usize, guest: usize, space: &str) -> bool {
    let at = space.to_string();
    let created = c.call(host, move |h| async move {
        h.invite_create(&at, InviteOptions::default()).await
    });
    let Some(Ok(invitation)) = created else {
        c.violation("setup", format!("cannot create an invitation: {created:?}"));
        return false;
    };
    let p = c.submit(guest, move |h| async move {
        h.invite_accept(
            &invitation.invitation_code,
            invitation.auth_code,
            ACCEPT_BOUND_MS,
            None,
        )
        .await
    });
    let answer = c.wait_for(p, ACCEPT_BOUND_MS + 5_000);
    let (g, h) = (c.nodes[guest].name.clone(), c.nodes[host].name.clone());
    c.event(format!("{g} accepts {h}'s invitation -> {answer:?}"));
    if !matches!(answer, Some(Ok(_))) {
        c.violation("setup", format!("{g} was not admitted to {h}'s space"));
        return false;
    }
    true
}

/// Within [`RELAY_BOUND_MS`], every one of `nodes` denies every block of `device`'s feeds in
/// `space`, as revoked, all with the same verdicts and objects, and none of `device`'s
/// objects stands.
fn check_relayed(c: &mut Cluster, nodes: &[usize], space: &str, device: &str) {
    let until = c.now() + RELAY_BOUND_MS;
    loop {
        c.run_for(500);
        let mut seen: Vec<(SpaceVerdicts, Vec<Value>, BTreeMap<String, u64>)> = Vec::new();
        for &i in nodes {
            let (at, who) = (space.to_string(), device.to_string());
            let view = c.call(i, move |h| async move {
                let verdicts = h.space_verdicts(&at).await.ok()?;
                let objects = h.query(&at, Default::default()).await.ok()?;
                let status = h.status().await.ok()?;
                let feeds: BTreeMap<String, u64> = status
                    .spaces
                    .into_iter()
                    .find(|s| s.space_key == at)?
                    .feeds
                    .into_iter()
                    .filter(|f| f.device_key == who)
                    .map(|f| (f.feed_key, f.length))
                    .collect();
                Some((verdicts, objects, feeds))
            });
            if let Some(Some(v)) = view {
                seen.push(v);
            }
        }
        let why = match judge(&seen, nodes.len()) {
            Ok(summary) => {
                c.event(format!("relayed: {summary}"));
                return;
            }
            Err(why) => why,
        };
        if c.now() >= until {
            let detail = format!("within {RELAY_BOUND_MS} ms after the heal: {why}");
            c.violation("revocation-relay", detail);
            return;
        }
    }
}

/// `Ok` with a summary once every view denies all of the device's blocks, as revoked, and
/// the views agree; else why not.
fn judge(
    seen: &[(SpaceVerdicts, Vec<Value>, BTreeMap<String, u64>)],
    want: usize,
) -> Result<String, String> {
    if seen.len() != want {
        return Err(format!("{} of {want} nodes answered", seen.len()));
    }
    let (first_verdicts, first_objects, _) = &seen[0];
    let mut blocks = 0;
    for (k, (verdicts, objects, feeds)) in seen.iter().enumerate() {
        for (feed, length) in feeds {
            for seq in 0..*length {
                match verdicts.denied.get(&format!("{feed}:{seq}")) {
                    Some(why) if why.contains("was revoked") => {}
                    other => {
                        return Err(format!(
                            "view {k}: block {seq} of the revoked device's feed {feed} is {other:?}"
                        ))
                    }
                }
            }
            blocks = blocks.max(*length);
        }
        if objects.iter().any(|o| o["@type"] == "stolen") {
            return Err(format!("view {k} shows an object of the revoked device"));
        }
        if !objects.iter().any(|o| o["@type"] == "carol") {
            return Err(format!("view {k} lost carol's objects"));
        }
        if verdicts.denied != first_verdicts.denied || verdicts.heads != first_verdicts.heads {
            return Err(format!("view {k} disagrees on verdicts"));
        }
        if objects != first_objects {
            return Err(format!("view {k} disagrees on objects"));
        }
    }
    if blocks == 0 {
        return Err("no view holds a block of the revoked device".into());
    }
    Ok(format!(
        "{} views deny the revoked device's blocks ({} denied), {} objects",
        seen.len(),
        first_verdicts.denied.len(),
        first_objects.len()
    ))
}
