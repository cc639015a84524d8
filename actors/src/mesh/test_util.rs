//! Helpers shared by the mesh tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::MeshConfig;
use crate::node::{NetworkConfig, Node, NodeConfig, NodeHandle, QueryRequest};
use crate::store::MemStore;
use crate::transport::NetEnv;
use crate::types::FixedClock;

/// The fixed wall clock of test nodes (ms since the Unix epoch).
pub const NOW_MS: u64 = 1_700_000_000_000;

/// Any free port on loopback.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Opens a node on real QUIC over loopback (with whatever identity `store` holds).
pub async fn open_node(seed: u8, store: Arc<MemStore>, mesh: MeshConfig) -> NodeHandle {
    Node::open(NodeConfig {
        store,
        rng_seed: [seed; 32],
        clock: Arc::new(FixedClock::new(NOW_MS)),
        listen: None,
        coalesce: crate::space::DEFAULT_COALESCE,
        network: Some(NetworkConfig {
            net: NetEnv::Real { bind: loopback() },
            mesh,
        }),
    })
    .await
    .unwrap()
}

/// A whole node with a new identity, on real QUIC over loopback, and the address it
/// listens on.
pub async fn real_node(
    seed: u8,
    store: Arc<MemStore>,
    mesh: MeshConfig,
) -> (NodeHandle, SocketAddr) {
    let node = open_node(seed, store, mesh).await;
    node.identity_create(None).await.unwrap();
    let addr = listen_addr(&node).await;
    (node, addr)
}

/// The address `node` listens on for peers.
pub async fn listen_addr(node: &NodeHandle) -> SocketAddr {
    node.status()
        .await
        .unwrap()
        .listen
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls `check` every 20 ms for up to 6 s; panics naming `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(6), what, check).await;
}

/// Polls `check` every 20 ms for up to `limit`; panics naming `what` if it never holds.
pub async fn eventually_within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let tries = limit.as_millis() / 20;
    for _ in 0..tries.max(1) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Number of live objects in `space` (0 if the query fails).
pub async fn count(node: &NodeHandle, space: &str) -> usize {
    node.query(space, QueryRequest::default())
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

/// The device keys (hex) `node`'s status lists as channel peers of `space`.
pub async fn channel_peers(node: &NodeHandle, space: &str) -> Vec<String> {
    let status = node
        .status()
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    status
        .spaces
        .into_iter()
        .find(|s| s.space_key == space)
        .map(|s| s.peers.into_iter().map(|p| p.device_key).collect())
        .unwrap_or_default()
}
