//! Device revocation under a partition: 6 peers by default (`--nodes`), one of them a
//! second device (the "phone") of the laptop's identity, recovered from its seed phrase on
//! its own host. Everyone writes, the phone too. Then the phone and one relay are cut off
//! from the rest; the laptop revokes the phone (`device_revoke`) on its side; the phone,
//! which does not know, keeps writing, and the relay stores those blocks first. The phone
//! is then switched off, the network heals, and it comes back (no longer counted as a
//! member) once everyone else knows of the revocation: nobody opens a channel to it then.
//!
//! Checked on top of the shared liveness phase (equal objects and verdicts on every live
//! member, durability of every acknowledged write, replay, authorization): every live
//! member holds the phone's whole data feed, has denied exactly its blocks at or past the
//! cut (what the laptop held of it when it revoked) as revoked, and nothing before it; the
//! phone's writes before the cut count as acknowledged writes and must survive. Apps on the
//! relay and the laptop that keep a view from their watch streams end showing what their
//! node holds (`checkers/watch_views.rs`): the relay's rebuild must tell them what it took
//! out. The phone
//! itself is told: within a bound its own `status` and `device list` say that it is
//! revoked, its writes are refused (403), and no member has it as a peer.

use std::collections::BTreeSet;

use echo_actors::node::ErrorKind;
use serde_json::json;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::{Cluster, Topology};

/// How long the relay may take to hold every block the phone wrote (their link is up).
const RELAY_BOUND_MS: u64 = 30_000;
/// How long the phone, back after the heal, may take to learn that it is revoked.
const TOLD_BOUND_MS: u64 = 10_000;

/// The key and length of `device`'s data feed in the shared space, as `node` holds it.
fn data_feed(c: &mut Cluster, node: usize, device: &str) -> Option<(String, u64)> {
    let space = c.space.clone()?;
    let device = device.to_string();
    let status = c.call(node, |h| async move { h.status().await.ok() })??;
    status
        .spaces
        .into_iter()
        .find(|s| s.space_key == space)?
        .feeds
        .into_iter()
        .find(|f| f.designation == "data" && f.device_key == device)
        .map(|f| (f.feed_key, f.length))
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("revocation", seed, opts, 6, Topology::Mesh);
    let n = c.nodes.len().max(4);
    let (laptop, relay, phone) = (1, 2, n - 1);
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
    let (objects, texts) = c.shared_objects(0, 3);
    // Apps on the relay (which applies the phone's late blocks before it learns of the
    // revocation, then rebuilds) and on the laptop keep views from their watch streams.
    let watched = [c.watch_view(relay), c.watch_view(laptop)];
    let everyone: Vec<usize> = (0..=phone).collect();
    for _ in 0..(5 + c.below(15)) {
        let node = c.pick(&everyone).unwrap_or(phone);
        c.random_write(node, &objects, &texts);
        let pause = c.below(800);
        c.run_for(pause);
    }
    let phone_key = c.call(phone, |h| async move { h.device_key().to_hex() });
    let Some(phone_key) = phone_key else {
        c.violation("setup", "the phone did not answer");
        return c.finish();
    };

    // The partition: the phone and its relay on one side.
    let rest: Vec<usize> = (0..phone).filter(|&i| i != relay).collect();
    c.partition(&[phone, relay], &rest);
    let settle = 1_000 + c.below(3_000);
    c.run_for(settle);
    let cut = data_feed(&mut c, laptop, &phone_key);
    let revoke_key = phone_key.clone();
    let revoked = c.call(laptop, move |h| async move {
        h.device_revoke(&revoke_key).await
    });
    c.event(format!("laptop revokes the phone -> {revoked:?}"));
    let (Some((feed, cut)), Some(Ok(revoked))) = (cut, revoked) else {
        c.violation("revocation", "the laptop could not revoke the phone");
        return c.finish();
    };
    // In the shared space and in the identity space (the phone joined it when it recovered
    // the identity, and the laptop holds it), nowhere else and skipping nothing.
    let shared_key = c.space.clone().unwrap_or_default();
    if revoked.revoked_in.len() != 2
        || !revoked.revoked_in.contains(&shared_key)
        || !revoked.skipped.is_empty()
    {
        c.violation("revocation", format!("revoked in {:?}", revoked.revoked_in));
    }

    // The phone keeps writing (not acknowledged writes anyone must keep: it is revoked),
    // others too; the relay takes the phone's blocks before it hears of the revocation.
    let space = c.space.clone().unwrap_or_default();
    for k in 0..(3 + c.below(6)) {
        let space = space.clone();
        let object = json!({"@type": "late", "from": "phone", "k": k});
        let answer = c.call(
            phone,
            move |h| async move { h.object_add(&space, object).await },
        );
        c.event(format!("phone writes after its revocation -> {answer:?}"));
        let node = c.pick(&rest).unwrap_or(0);
        c.random_write(node, &objects, &texts);
        let pause = c.below(500);
        c.run_for(pause);
    }
    let Some((_, written)) = data_feed(&mut c, phone, &phone_key) else {
        c.violation("revocation", "the phone lost its data feed");
        return c.finish();
    };
    let deadline = c.now() + RELAY_BOUND_MS;
    while data_feed(&mut c, relay, &phone_key).map(|(_, l)| l) != Some(written) {
        if c.now() > deadline {
            c.violation(
                "revocation",
                "the relay did not get the phone's late blocks",
            );
            return c.finish();
        }
        c.run_for(200);
    }
    c.event(format!(
        "phone wrote {written} blocks, cut at {cut}; the phone is switched off"
    ));
    c.stop(phone);
    c.nodes[phone].member = false;

    // The liveness phase heals the network and switches the phone back on.
    c.liveness(LIVENESS_BOUND_MS, &texts);
    check_denied(&mut c, &feed, cut, written);
    check_told(&mut c, phone, &phone_key, &rest);
    for w in &watched {
        c.check_watch_view(w);
    }
    c.finish()
}

/// The revoked phone, back on, learns that it is revoked (from the credentials a member
/// serves it when it says Hello): its `status` and `device list` say so, its writes are
/// refused (403), and no member has it as a peer of the space.
fn check_told(c: &mut Cluster, phone: usize, phone_key: &str, members: &[usize]) {
    let until = c.now() + TOLD_BOUND_MS;
    loop {
        let view = c.call(phone, |h| async move {
            let status = h.status().await.ok()?;
            let devices = h.device_list().await.ok()?;
            Some((status.revoked, devices))
        });
        let Some(Some((revoked, devices))) = view else {
            c.violation(
                "revocation",
                "the phone did not answer status or device list",
            );
            return;
        };
        let listed = devices
            .iter()
            .find(|d| d.this_device)
            .is_some_and(|d| d.revoked && d.device_key == phone_key);
        if revoked && listed {
            c.event("the phone's status and device list say it is revoked");
            break;
        }
        if c.now() >= until {
            let detail = format!(
                "the phone was not told within {TOLD_BOUND_MS} ms that it is revoked (status \
                 revoked: {revoked}, device list says so: {listed})"
            );
            c.violation("revocation", detail);
            return;
        }
        c.run_for(250);
    }
    match c.probe_add(phone) {
        Err(Some(ErrorKind::Forbidden)) => {}
        other => {
            let detail = format!("the revoked phone's write gave {other:?}, not 403");
            c.violation("revocation", detail);
        }
    }
    // Whatever channel told it has ended by now (its grace is 2 s).
    c.run_for(3_000);
    c.check_shut_out("revocation", members, phone_key, "the revoked phone");
}

/// Every live member holds the phone's `written` blocks and denies exactly `cut..written`
/// of them, as revoked.
fn check_denied(c: &mut Cluster, feed: &str, cut: u64, written: u64) {
    let members = c.live_members();
    let verdicts = c.verdicts(&members);
    let want: BTreeSet<String> = (cut..written).map(|s| format!("{feed}:{s}")).collect();
    for (&i, v) in members.iter().zip(verdicts) {
        let name = c.nodes[i].name.clone();
        let Some(v) = v else {
            c.violation("revocation", format!("{name} gave no verdicts"));
            continue;
        };
        let held = v.heads.get(feed).copied().unwrap_or(0);
        let denied: BTreeSet<String> = v
            .denied
            .iter()
            .filter(|(k, _)| k.starts_with(feed))
            .map(|(k, _)| k.clone())
            .collect();
        let reasons_ok = v
            .denied
            .iter()
            .filter(|(k, _)| k.starts_with(feed))
            .all(|(_, why)| why.contains("was revoked"));
        if held != written || denied != want || !reasons_ok {
            c.violation(
                "revocation",
                format!(
                    "{name} holds {held} of the phone's {written} blocks and denied {denied:?}, want {want:?} as revoked"
                ),
            );
        }
    }
}
