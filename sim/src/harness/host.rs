//! The software of one simulated echo-rs host: it binds the turmoil UDP socket, opens a
//! `Node` exactly as echo-node does (same `NodeConfig`, with the simulator's store, clock,
//! RNG seed and injected socket), then runs the jobs the driver sends it. Turmoil runs it
//! on the host's current-thread runtime + `LocalSet`; a crash drops all of it, and a
//! restart runs it again on the same `Arc<MemStore>`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use echo_actors::mesh::MeshConfig;
use echo_actors::node::{NetworkConfig, Node, NodeConfig, NodeHandle};
use echo_actors::store::MemStore;
use echo_actors::transport::NetEnv;
use echo_actors::types::Clock;
use tokio::sync::mpsc;

use super::udp::TurmoilUdp;

/// The UDP port every simulated peer listens on.
pub const PEER_PORT: u16 = 4433;

/// The turmoil host name of the signaling server (`Topology::Signaling`).
pub const SIGNAL_HOST: &str = "signal";

/// The UDP port the signaling server listens on.
pub const SIGNAL_PORT: u16 = 4434;

/// Unix time (ms) at which every simulation starts (turmoil's `Builder::epoch`).
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// Wall clock of a simulated host: turmoil's simulated time since the fixed epoch.
#[derive(Debug, Default)]
pub struct SimClock;

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        turmoil::since_epoch().map_or(EPOCH_MS, |d| d.as_millis() as u64)
    }
}

/// Work for a node, run on its host.
pub type Job = Box<dyn FnOnce(NodeHandle) -> Pin<Box<dyn Future<Output = ()>>>>;

/// What a host's software shares with the driver across restarts.
pub struct HostShared {
    pub store: Arc<MemStore>,
    pub mesh: MeshConfig,
    /// Seed of the node's RNG for each incarnation (a restart takes a fresh one).
    pub base_seed: [u8; 32],
    pub incarnation: Cell<u32>,
    /// The job queue of the current incarnation (replaced before every restart).
    pub jobs: RefCell<Option<mpsc::UnboundedReceiver<Job>>>,
    /// Set when the node is open; cleared by the driver on crash.
    pub open: Cell<bool>,
    /// Why the node failed to open, if it did.
    pub failure: RefCell<Option<String>>,
}

fn incarnation_seed(base: &[u8; 32], incarnation: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("echo-sim node incarnation seed");
    hasher.update(base);
    hasher.update(&incarnation.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The host software: open the node, then serve jobs until the host is crashed.
pub async fn software(shared: Rc<HostShared>) -> turmoil::Result {
    let socket = TurmoilUdp::bind(PEER_PORT).await?;
    let config = NodeConfig {
        store: shared.store.clone(),
        rng_seed: incarnation_seed(&shared.base_seed, shared.incarnation.get()),
        clock: Arc::new(SimClock),
        listen: None,
        coalesce: echo_actors::space::DEFAULT_COALESCE,
        network: Some(NetworkConfig {
            net: NetEnv::Injected { socket },
            mesh: shared.mesh.clone(),
        }),
    };
    let node = match Node::open(config).await {
        Ok(node) => node,
        Err(e) => {
            *shared.failure.borrow_mut() = Some(e.to_string());
            return Err(format!("node failed to open: {e}").into());
        }
    };
    shared.open.set(true);
    let jobs = shared.jobs.borrow_mut().take();
    let Some(mut jobs) = jobs else {
        return Err("host started without a job queue".into());
    };
    while let Some(job) = jobs.recv().await {
        tokio::task::spawn_local(job(node.clone()));
    }
    std::future::pending::<()>().await;
    Ok(())
}
