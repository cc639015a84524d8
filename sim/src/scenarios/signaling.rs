//! Signaling: 3-5 peers have no static peers, only the address of one signaling server (a
//! turmoil host running the library's `serve_signal` on the real transport, with a device
//! key drawn from the seed per incarnation). They form a space, finding each other only
//! through the server, and write while faults hit: the run's random faults, a two-way
//! partition that cuts one peer off from the server, a peer crash and restart, and one crash
//! and restart of the server itself (its state is in memory only, so every client must
//! re-join it). Liveness: heal, converge, and the server must list every live member under
//! the space's topic again.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use echo_actors::signal::{serve_signal, space_topic, GetStatus, ServerStatus};
use echo_actors::transport::{self, NetEnv, TransportConfig};
use echo_actors::types::{KeyPair, PublicKey};
use rand_core::RngCore;

use super::{cluster, Outcome, RunOptions, ADMIT_BOUND_MS, LIVENESS_BOUND_MS};
use crate::harness::host::{SIGNAL_HOST, SIGNAL_PORT};
use crate::harness::udp::TurmoilUdp;
use crate::harness::{Cluster, Topology};

/// How often the server host publishes its status to the driver (simulated).
const STATUS_EVERY_MS: u64 = 250;
/// How long, after convergence, the server may take to list every live member again.
const REJOIN_BOUND_MS: u64 = 30_000;

/// What the signaling host shares with the driver across restarts.
pub(crate) struct SignalHost {
    base_seed: [u8; 32],
    incarnation: Cell<u32>,
    /// The server's latest status (cleared on crash).
    status: RefCell<Option<ServerStatus>>,
    up: Cell<bool>,
}

fn derive(base: &[u8; 32], what: &str, incarnation: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("echo-sim signal server seed");
    hasher.update(base);
    hasher.update(what.as_bytes());
    hasher.update(&incarnation.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The server host's software: a fresh endpoint and `serve_signal` (a fresh device key per
/// incarnation, like `echo-node signal`), then its status for the driver, periodically.
async fn software(shared: Rc<SignalHost>) -> turmoil::Result {
    let incarnation = shared.incarnation.get();
    let socket = TurmoilUdp::bind(SIGNAL_PORT).await?;
    let device = KeyPair::from_secret(derive(&shared.base_seed, "device", incarnation));
    let config = TransportConfig::new(derive(&shared.base_seed, "transport", incarnation));
    let endpoint = transport::endpoint(NetEnv::Injected { socket }, &device, &config)?;
    let server = serve_signal(endpoint);
    loop {
        let status = server.send(GetStatus).await?;
        *shared.status.borrow_mut() = Some(status);
        tokio::time::sleep(Duration::from_millis(STATUS_EVERY_MS)).await;
    }
}

/// Starts the signaling server host of a `Topology::Signaling` cluster (its keys drawn
/// from `seed`), before any node starts.
pub(crate) fn start_signal_host(c: &mut Cluster, seed: u64) -> Rc<SignalHost> {
    let mut base_seed = [0u8; 32];
    crate::rng::stream(seed, crate::rng::SIGNAL).fill_bytes(&mut base_seed);
    let host = Rc::new(SignalHost {
        base_seed,
        incarnation: Cell::new(0),
        status: RefCell::new(None),
        up: Cell::new(true),
    });
    let software_host = host.clone();
    c.host(SIGNAL_HOST, move || software(software_host.clone()));
    host
}

fn crash_server(c: &mut Cluster, host: &SignalHost) {
    c.sim().crash(SIGNAL_HOST);
    host.up.set(false);
    *host.status.borrow_mut() = None;
    c.event(format!("crash {SIGNAL_HOST} (all signaling state lost)"));
}

fn restart_server(c: &mut Cluster, host: &SignalHost) {
    if host.up.get() {
        return;
    }
    host.incarnation.set(host.incarnation.get() + 1);
    c.sim().bounce(SIGNAL_HOST);
    host.up.set(true);
    c.event(format!("restart {SIGNAL_HOST}"));
}

/// The device keys the server lists under `topic` (`None` if it has not reported yet).
fn listed(host: &SignalHost, topic: &[u8; 32]) -> Option<BTreeSet<String>> {
    let status = host.status.borrow();
    let status = status.as_ref()?;
    Some(
        status
            .topics
            .get(topic)
            .map(|devices| devices.iter().map(|d| d.to_string()).collect())
            .unwrap_or_default(),
    )
}

/// After liveness: the server lists exactly the live members' devices under the space's
/// topic within `REJOIN_BOUND_MS` (every client re-joined the restarted server, and no
/// connection of a crashed incarnation lingers).
fn check_rejoined(c: &mut Cluster, host: &SignalHost) {
    let Some(space) = c.space.as_deref().and_then(|s| s.parse::<PublicKey>().ok()) else {
        return;
    };
    let topic = space_topic(&space);
    let members = c.live_members();
    let pending: Vec<_> = members
        .iter()
        .map(|&n| {
            c.submit(
                n,
                |h| async move { h.status().await.ok().map(|s| s.device_key) },
            )
        })
        .collect();
    let answers = c.wait_all(pending, 5_000);
    if answers.iter().any(|a| !matches!(a, Some(Some(_)))) {
        c.violation("liveness", "a live member did not report its device key");
        return;
    }
    let expected: BTreeSet<String> = answers.into_iter().flatten().flatten().collect();
    let until = c.now() + REJOIN_BOUND_MS;
    loop {
        let got = listed(host, &topic);
        if got.as_ref() == Some(&expected) {
            c.event(format!(
                "{SIGNAL_HOST} lists all {} live members",
                expected.len()
            ));
            return;
        }
        if c.now() >= until {
            let detail = format!(
                "{SIGNAL_HOST} lists {got:?} under the space topic, live members are {expected:?} \
                 ({REJOIN_BOUND_MS} ms after convergence)"
            );
            c.violation("liveness", detail);
            return;
        }
        c.run_for(250);
    }
}

pub fn run(seed: u64, opts: &RunOptions) -> Outcome {
    let default_nodes = 3 + (seed % 3) as usize;
    let mut c = cluster("signaling", seed, opts, default_nodes, Topology::Signaling);
    let host = start_signal_host(&mut c, seed);

    let all: Vec<usize> = (0..c.nodes.len()).collect();
    if !c.form_space(&all, ADMIT_BOUND_MS) {
        return c.finish();
    }
    let (objects, texts) = c.shared_objects(0, 2);

    let steps = 10 + c.below(10);
    let cut_at = c.below(steps);
    let server_crash_at = c.below(steps);
    // Half the runs crash the peer while the server is down: on restart it can find no one
    // until the server is back.
    let peer_crash_at = if c.below(2) == 0 {
        server_crash_at
    } else {
        c.below(steps)
    };
    let mut server_back_at = None;
    for step in 0..steps {
        c.chaos();
        if step == cut_at {
            if let Some(n) = c.pick(&c.live()) {
                let name = c.nodes[n].name.clone();
                c.partition_names(&[name], &[SIGNAL_HOST.to_string()]);
            }
        }
        if step == peer_crash_at {
            if let Some(n) = c.pick(&c.live()) {
                let offline = 1_000 + c.below(c.faults.offline_max_ms.min(20_000));
                c.crash(n);
                let back = c.now() + offline;
                c.active.restart_at.insert(n, back);
            }
        }
        if step == server_crash_at {
            let offline = 2_000 + c.below(15_000);
            crash_server(&mut c, &host);
            server_back_at = Some(c.now() + offline);
        }
        if server_back_at.is_some_and(|at| c.now() >= at) {
            restart_server(&mut c, &host);
            server_back_at = None;
        }
        let writes = 1 + c.below(3);
        for _ in 0..writes {
            if let Some(n) = c.pick(&c.live_members()) {
                c.random_write(n, &objects, &texts);
            }
            let pause = c.below(1_000);
            c.run_for(pause);
        }
    }
    restart_server(&mut c, &host);
    c.liveness(LIVENESS_BOUND_MS, &texts);
    check_rejoined(&mut c, &host);
    c.finish()
}
