//! Device invitations under loss and partitions: 8 peers by default (`--nodes`, at least 6).
//! Five identities share a space; one of them (the "laptop", n1) also has a private space
//! with large values. The last three hosts are fresh devices with no identity, and each
//! joins the laptop's identity through a device invitation, under the run's latency and
//! packet loss:
//!
//! 1. The first device with a single-use `pin` invitation.
//! 2. The second with a multi-use `pin` invitation: a wrong code first (told 2 attempts are
//!    left; nothing taken on), then the right one.
//! 3. The third while cut off from everyone: its join times out as "host unreachable" and
//!    it stays without an identity; then the network heals and it joins with a new
//!    invitation.
//!
//! Every device then writes in the shared and the private space, and the laptop creates a
//! third space, which every device must join through the identity's list, and write in.
//!
//! Checked on top of the shared liveness phase (every device is a member of the shared
//! space as the laptop's identity and must converge with the same verdicts; durability of
//! every acknowledged write): every joined device has the laptop's identity and exactly its
//! three spaces; in the private and third spaces every device and the laptop hold the same
//! objects, every acknowledged write among them; no host of another identity has either
//! space; a refused or timed-out join left the device without an identity; every device
//! lists every device of the identity by the name it gave itself (`device_rename`).

use std::collections::{BTreeMap, BTreeSet};

use echo_actors::invitation::{AuthMethod, InviteOptions};
use echo_actors::node::{DeviceJoined, NodeError};
use serde_json::json;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::{Cluster, Topology};

/// The join timeout of a device on the lossy network.
const JOIN_MS: u64 = 40_000;
/// The join of a device cut off from everyone.
const CUT_OFF_MS: u64 = 4_000;
/// How long after the liveness phase the identity's own spaces may take to agree.
const AGREE_BOUND_MS: u64 = 30_000;
/// A large value, as documents and pasted images make (20 KB).
const LARGE: usize = 20_000;
/// How long after the liveness phase every device may take to list every device's name.
const NAMES_BOUND_MS: u64 = 30_000;

/// A device invitation from `host`: its code and auth code.
fn invite(c: &mut Cluster, host: usize, multi_use: bool) -> Option<(String, Option<String>)> {
    let options = InviteOptions {
        auth: AuthMethod::Pin,
        multi_use,
        ..InviteOptions::default()
    };
    let created = c.call(host, move |h| async move { h.device_invite(options).await });
    c.event(format!(
        "device invitation (multi use {multi_use}) -> {}",
        created.as_ref().map_or("unanswered".into(), |r| match r {
            Ok(_) => "created".to_string(),
            Err(e) => e.to_string(),
        })
    ));
    match created {
        Some(Ok(created)) => Some((created.invitation_code, created.auth_code)),
        _ => {
            c.violation(
                "device-join",
                "the laptop could not create a device invitation",
            );
            None
        }
    }
}

/// `device_join` on `device` with the given code; its answer (`None`: unanswered).
fn join(
    c: &mut Cluster,
    device: usize,
    code: &str,
    pin: Option<String>,
    timeout_ms: u64,
) -> Option<Result<DeviceJoined, NodeError>> {
    let code = code.to_string();
    let answer = c.call(device, move |h| async move {
        h.device_join(&code, pin, timeout_ms, None).await
    });
    let name = c.nodes[device].name.clone();
    c.event(format!(
        "{name} device join -> {}",
        match &answer {
            Some(Ok(j)) => format!("ok, spaces {:?} pending {:?}", j.spaces, j.pending),
            Some(Err(e)) => e.to_string(),
            None => "unanswered".into(),
        }
    ));
    answer
}

/// Whether `device` has an identity now.
fn has_identity(c: &mut Cluster, device: usize) -> bool {
    c.call(device, |h| async move { h.identity_show().await.is_ok() })
        .unwrap_or(true)
}

/// A join that must succeed: records the device as a member of the laptop's identity.
fn joined(
    c: &mut Cluster,
    device: usize,
    answer: Option<Result<DeviceJoined, NodeError>>,
    identity: &str,
) -> bool {
    match answer {
        Some(Ok(j)) if j.identity_key == identity => {
            c.nodes[device].identity = Some(j.identity_key);
            c.nodes[device].member = true;
            true
        }
        other => {
            let name = c.nodes[device].name.clone();
            c.violation(
                "device-join",
                format!("{name} did not join the identity: {other:?}"),
            );
            false
        }
    }
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let mut c = cluster("device-join", seed, opts, 8, Topology::Mesh);
    let n = c.nodes.len().max(6);
    let laptop = 1;
    let devices: Vec<usize> = (n - 3..n).collect();
    let members: Vec<usize> = (0..n - 3).collect();
    if !c.form_space(&members, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let Some(identity) = c.nodes[laptop].identity.clone() else {
        c.violation("setup", "the laptop has no identity");
        return c.finish();
    };
    let shared = c.space.clone().unwrap_or_default();
    let private = c.call(laptop, |h| async move {
        h.space_create(Some("private".into())).await
    });
    let Some(Ok(private)) = private else {
        c.violation("setup", "the laptop could not create its private space");
        return c.finish();
    };
    let private = private.space_key;
    let mut acknowledged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in 0..(2 + c.below(4)) {
        let size = if k % 2 == 0 { LARGE } else { 64 };
        let object = json!({"@type": "note", "k": k, "body": "x".repeat(size)});
        if let Some(id) = c.add_to("device-join", laptop, &private, object, 5_000) {
            acknowledged.entry(private.clone()).or_default().insert(id);
        }
    }
    let (objects, texts) = c.shared_objects(0, 3);

    // 1. A single-use pin invitation, under loss.
    let (first, second, third) = (devices[0], devices[1], devices[2]);
    let Some((code, pin)) = invite(&mut c, laptop, false) else {
        return c.finish();
    };
    let answer = join(&mut c, first, &code, pin, JOIN_MS);
    if !joined(&mut c, first, answer, &identity) {
        return c.finish();
    }

    // 2. A multi-use pin invitation: a wrong code, then the right one.
    let Some((code, pin)) = invite(&mut c, laptop, true) else {
        return c.finish();
    };
    let wrong = if pin.as_deref() == Some("000000") {
        "111111"
    } else {
        "000000"
    };
    match join(&mut c, second, &code, Some(wrong.into()), JOIN_MS) {
        Some(Err(e)) if e.to_string().contains("2 attempts left") => {}
        other => c.violation(
            "device-join",
            format!("a wrong code was answered {other:?}"),
        ),
    }
    if has_identity(&mut c, second) {
        c.violation(
            "device-join",
            "a wrong code left the device with an identity",
        );
    }
    let answer = join(&mut c, second, &code, pin, JOIN_MS);
    if !joined(&mut c, second, answer, &identity) {
        return c.finish();
    }

    // 3. Cut off from everyone: host unreachable; then healed, with a new invitation.
    let others: Vec<usize> = (0..n).filter(|&i| i != third).collect();
    c.partition(&[third], &others);
    let Some((code, pin)) = invite(&mut c, laptop, false) else {
        return c.finish();
    };
    match join(&mut c, third, &code, pin, CUT_OFF_MS) {
        Some(Err(e)) if e.to_string().contains("host unreachable") => {}
        other => c.violation(
            "device-join",
            format!("a cut-off join was answered {other:?}"),
        ),
    }
    if has_identity(&mut c, third) {
        c.violation(
            "device-join",
            "a timed-out join left the device with an identity",
        );
    }
    c.heal_network();
    let Some((code, pin)) = invite(&mut c, laptop, false) else {
        return c.finish();
    };
    let answer = join(&mut c, third, &code, pin, JOIN_MS);
    if !joined(&mut c, third, answer, &identity) {
        return c.finish();
    }

    // Each device of the identity names itself after its host (a DeviceProfile each, in the
    // identity space).
    let mut names = BTreeMap::new();
    for &d in std::iter::once(&laptop).chain(&devices) {
        let name = c.nodes[d].name.clone();
        let given = name.clone();
        let renamed = c.call(d, move |h| async move {
            let key = h.device_key().to_hex();
            h.device_rename(given).await.map(|_| key)
        });
        match renamed {
            Some(Ok(key)) => {
                names.insert(key, name);
            }
            other => c.violation("device-join", format!("{name}: rename -> {other:?}")),
        }
    }

    // Every device writes in the shared and the private space; the laptop makes a third.
    for &d in &devices {
        c.random_write(d, &objects, &texts);
        let object = json!({"@type": "note", "from": c.nodes[d].name, "body": "y".repeat(LARGE)});
        if let Some(id) = c.add_to("device-join", d, &private, object, ADMIT_BOUND_MS) {
            acknowledged.entry(private.clone()).or_default().insert(id);
        }
    }
    let third_space = c.call(laptop, |h| async move { h.space_create(None).await });
    let Some(Ok(third_space)) = third_space else {
        c.violation("setup", "the laptop could not create a third space");
        return c.finish();
    };
    let third_space = third_space.space_key;
    for &d in &devices {
        let object = json!({"@type": "note", "from": c.nodes[d].name});
        if let Some(id) = c.add_to("device-join", d, &third_space, object, ADMIT_BOUND_MS) {
            acknowledged
                .entry(third_space.clone())
                .or_default()
                .insert(id);
        }
    }

    c.liveness(LIVENESS_BOUND_MS, &texts);
    c.event("checking the identity's own spaces on every device");
    let want: BTreeSet<String> = [shared, private.clone(), third_space.clone()].into();
    check_identity_spaces(&mut c, laptop, &devices, &want, &acknowledged);
    check_names(&mut c, laptop, &devices, &names);
    for i in (0..n).filter(|i| *i != laptop && !devices.contains(i)) {
        let has = c.space_keys(i).unwrap_or_default();
        if has.contains(&private) || has.contains(&third_space) {
            let name = c.nodes[i].name.clone();
            c.violation(
                "device-join",
                format!("{name}, of another identity, has the laptop's own spaces"),
            );
        }
    }
    c.finish()
}

/// Every device of the identity lists every one by the name it gave itself, within
/// [`NAMES_BOUND_MS`] of the liveness phase.
fn check_names(
    c: &mut Cluster,
    laptop: usize,
    devices: &[usize],
    names: &BTreeMap<String, String>,
) {
    let all: Vec<usize> = std::iter::once(laptop)
        .chain(devices.iter().copied())
        .collect();
    let until = c.now() + NAMES_BOUND_MS;
    loop {
        let pending: Vec<_> = all
            .iter()
            .map(|&d| c.submit(d, |h| async move { h.device_list().await.ok() }))
            .collect();
        let lists = c.wait_all(pending, 5_000);
        let mut wrong = Vec::new();
        for (&d, list) in all.iter().zip(lists) {
            let name = c.nodes[d].name.clone();
            match list.flatten() {
                None => wrong.push(format!("{name}: no answer")),
                Some(list) => {
                    let shown: BTreeMap<String, String> = list
                        .into_iter()
                        .filter_map(|i| Some((i.device_key, i.name?)))
                        .collect();
                    if shown != *names {
                        wrong.push(format!("{name}: {shown:?}"));
                    }
                }
            }
        }
        if wrong.is_empty() {
            c.event(format!(
                "every device lists the {} devices by name",
                names.len()
            ));
            return;
        }
        if c.now() >= until {
            c.violation(
                "device-join",
                format!("device names: want {names:?}, got {wrong:?}"),
            );
            return;
        }
        c.run_for(500);
    }
}

/// Every device has exactly the identity's spaces, and holds in each of the laptop's own
/// spaces the same objects as the laptop, every acknowledged write among them.
fn check_identity_spaces(
    c: &mut Cluster,
    laptop: usize,
    devices: &[usize],
    want: &BTreeSet<String>,
    acknowledged: &BTreeMap<String, BTreeSet<String>>,
) {
    let deadline = c.now() + AGREE_BOUND_MS;
    while c.now() < deadline && !agree(c, laptop, devices, acknowledged) {
        c.run_for(500);
    }
    for (space, writes) in acknowledged {
        let Some(on_laptop) = c.object_ids(laptop, space) else {
            c.violation("device-join", format!("the laptop cannot read {space}"));
            continue;
        };
        if !writes.is_subset(&on_laptop) {
            c.violation(
                "device-join",
                format!("the laptop lost acknowledged writes in {space}"),
            );
        }
        for &d in devices {
            let name = c.nodes[d].name.clone();
            if c.object_ids(d, space).as_ref() != Some(&on_laptop) {
                c.violation(
                    "device-join",
                    format!("{name} differs from the laptop in {space}"),
                );
            }
        }
    }
    for &d in devices {
        let name = c.nodes[d].name.clone();
        match c.space_keys(d) {
            Some(has) if &has == want => {}
            other => c.violation(
                "device-join",
                format!("{name} has spaces {other:?}, not {want:?}"),
            ),
        }
    }
}

/// Whether every device holds what the laptop holds in each of its own spaces.
fn agree(
    c: &mut Cluster,
    laptop: usize,
    devices: &[usize],
    acknowledged: &BTreeMap<String, BTreeSet<String>>,
) -> bool {
    acknowledged.keys().all(|space| {
        let on_laptop = c.object_ids(laptop, space);
        on_laptop.is_some() && devices.iter().all(|&d| c.object_ids(d, space) == on_laptop)
    })
}
