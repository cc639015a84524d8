//! Helpers shared by the mesh tests.

use std::time::Duration;

use crate::node::{NodeHandle, QueryRequest};

/// Polls `check` every 20 ms for up to 6 s; panics naming `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
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
