//! Spaces other than the cluster's shared one (an identity's own spaces, in the device and
//! recovery scenarios): writing into one, listing a node's spaces, reading a space's object
//! ids.

use std::collections::BTreeSet;

use echo_actors::node::QueryRequest;
use serde_json::Value;

use super::Cluster;

impl Cluster {
    /// Adds an object to `space` on `node`, retrying while it cannot write yet, until
    /// `within_ms`; its id once acknowledged, or a violation of `checker`.
    pub fn add_to(
        &mut self,
        checker: &'static str,
        node: usize,
        space: &str,
        object: Value,
        within_ms: u64,
    ) -> Option<String> {
        let until = self.now() + within_ms;
        loop {
            let target = space.to_string();
            let sent = object.clone();
            let answer = self.call(
                node,
                move |h| async move { h.object_add(&target, sent).await },
            );
            let name = self.nodes[node].name.clone();
            match answer {
                Some(Ok(id)) => {
                    self.event(format!(
                        "{name} add {id} to {}",
                        &space[..8.min(space.len())]
                    ));
                    return Some(id);
                }
                other if self.now() >= until => {
                    self.violation(
                        checker,
                        format!("{name} cannot write in {space}: {other:?}"),
                    );
                    return None;
                }
                _ => self.run_for(250),
            }
        }
    }

    /// The keys of `node`'s spaces (`None`: it did not answer).
    pub fn space_keys(&mut self, node: usize) -> Option<BTreeSet<String>> {
        self.call(node, |h| async move {
            h.space_list()
                .await
                .map(|l| l.into_iter().map(|s| s.space_key).collect::<BTreeSet<_>>())
        })?
        .ok()
    }

    /// The ids of the objects of `space` on `node` (`None`: no such space there, or no
    /// answer).
    pub fn object_ids(&mut self, node: usize, space: &str) -> Option<BTreeSet<String>> {
        let space = space.to_string();
        self.call(node, move |h| async move {
            h.query(&space, QueryRequest::default())
                .await
                .ok()
                .map(|objects| {
                    objects
                        .iter()
                        .filter_map(|o| o["@id"].as_str().map(str::to_owned))
                        .collect::<BTreeSet<_>>()
                })
        })?
    }
}
