//! What a node shows its clients about the shared space (feed heads, every object with
//! deleted ones, text fields; its verdicts on blocks and its members), and the liveness
//! phase: heal every fault, restart every crashed node, and require that all live members
//! converge, and reach the same verdicts, within a bound.

use std::collections::BTreeMap;

use echo_actors::node::QueryRequest;
use serde_json::Value;

use super::Cluster;
use crate::checkers::verdicts::{self, Verdicts};
use crate::checkers::{convergence, Violation};

/// One node's view of the shared space.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// Feed key -> length.
    pub heads: BTreeMap<String, u64>,
    /// `query` with `include_deleted`, ordered by id.
    pub objects: Vec<Value>,
    /// `id.field` -> text, for the scenario's text fields.
    pub texts: BTreeMap<String, String>,
}

impl Cluster {
    /// Views of `nodes` (`None` for a node that did not answer).
    pub fn views(&mut self, nodes: &[usize], texts: &[String]) -> Vec<Option<NodeView>> {
        let space = self.space.clone().unwrap_or_default();
        let pending: Vec<_> = nodes
            .iter()
            .map(|&n| {
                let (space, texts) = (space.clone(), texts.to_vec());
                self.submit(n, move |h| async move {
                    let status = h.status().await.ok()?;
                    let heads = status
                        .spaces
                        .iter()
                        .find(|s| s.space_key == space)?
                        .feeds
                        .iter()
                        .map(|f| (f.feed_key.clone(), f.length))
                        .collect();
                    let query = QueryRequest {
                        include_deleted: true,
                        ..Default::default()
                    };
                    let objects = h.query(&space, query).await.ok()?;
                    let mut text = BTreeMap::new();
                    for id in texts {
                        let body = h.text_get(&space, &id, "body").await.unwrap_or_default();
                        text.insert(format!("{id}.body"), body);
                    }
                    Some(NodeView {
                        heads,
                        objects,
                        texts: text,
                    })
                })
            })
            .collect();
        self.wait_all(pending, 5_000)
            .into_iter()
            .map(Option::flatten)
            .collect()
    }

    /// Verdicts of `nodes` on the shared space (`None` for a node that did not answer).
    pub fn verdicts(&mut self, nodes: &[usize]) -> Vec<Option<Verdicts>> {
        let space = self.space.clone().unwrap_or_default();
        let pending: Vec<_> = nodes
            .iter()
            .map(|&n| {
                let space = space.clone();
                self.submit(
                    n,
                    move |h| async move { h.space_verdicts(&space).await.ok() },
                )
            })
            .collect();
        self.wait_all(pending, 5_000)
            .into_iter()
            .map(Option::flatten)
            .collect()
    }

    /// Every member's verdicts survive a restart: its space rebuilt from its store alone
    /// reaches exactly the verdicts the running node reports.
    fn check_replay(&mut self, members: &[usize], decided: &[Option<Verdicts>]) {
        let space = self.space.clone().unwrap_or_default();
        for (&i, live) in members.iter().zip(decided) {
            let Some(live) = live else { continue };
            let name = self.nodes[i].name.clone();
            let found = match verdicts::replayed(&self.nodes[i].shared.store, &space) {
                Ok(replayed) => {
                    let restarted = format!("{name} replayed from its store");
                    verdicts::differ(&name, live, &restarted, &replayed)
                }
                Err(e) => vec![e],
            };
            if !found.is_empty() {
                let detail = format!(
                    "a restart would change {name}'s verdicts: {}",
                    found.join(" | ")
                );
                self.violation("verdicts", detail);
            }
        }
    }

    /// Live members of the shared space.
    pub fn live_members(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && self.nodes[i].member)
            .collect()
    }

    /// Every node of `nodes` that has `device` (a device key) as a channel peer of the
    /// shared space is a `checker` violation: a former member (`what`) is served only the
    /// leaving channel that tells it, which no peer counts. Call it after that channel's
    /// grace (2 s) has passed.
    pub fn check_shut_out(
        &mut self,
        checker: &'static str,
        nodes: &[usize],
        device: &str,
        what: &str,
    ) {
        let space = self.space.clone().unwrap_or_default();
        for &n in nodes {
            let (key, space) = (device.to_string(), space.clone());
            let peer = self.call(n, move |h| async move {
                let status = h.status().await.ok()?;
                let s = status.spaces.into_iter().find(|s| s.space_key == space)?;
                Some(s.peers.iter().any(|p| p.device_key == key))
            });
            if peer.flatten() == Some(true) {
                let detail = format!("{} has {what} as a peer", self.nodes[n].name);
                self.violation(checker, detail);
            }
        }
    }

    /// The liveness phase: heal the network, restart every node that is down (crashed, or
    /// stopped: a member that left comes back, so that the writes it took away count), then
    /// all live members must show identical state and identical verdicts within `bound_ms`.
    /// Afterwards the durability checker runs, every member's verdicts are compared with a
    /// replay of its store, and the authorization checker runs on the final state.
    pub fn liveness(&mut self, bound_ms: u64, texts: &[String]) {
        self.event("liveness: heal all faults, restart crashed nodes");
        self.heal_network();
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up && !self.nodes[i].lost {
                self.restart(i);
            }
        }
        let start = self.now();
        let members = self.live_members();
        let names: Vec<String> = members
            .iter()
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        loop {
            self.run_for(500);
            let views = self.views(&members, texts);
            let decided = self.verdicts(&members);
            let converged = convergence::compare(&names, &views);
            let agreed = verdicts::compare(&names, &decided);
            if let (Ok(digest), Ok(summary)) = (&converged, &agreed) {
                let took = self.now() - start;
                self.event(format!("converged after {took} ms: state {digest}"));
                self.event(format!("verdicts agree: {summary}"));
                for (i, view) in members.iter().zip(&views) {
                    if let Some(view) = view {
                        let name = self.nodes[*i].name.clone();
                        let found = self.facts.check(&name, view);
                        for v in found {
                            self.violation(v.checker, v.detail);
                        }
                    }
                }
                self.check_replay(&members, &decided);
                break;
            }
            let last: Vec<Violation> = [
                ("convergence", "no convergence", converged),
                ("verdicts", "no agreement on verdicts", agreed),
            ]
            .into_iter()
            .filter_map(|(checker, what, r)| {
                r.err().map(|diff| Violation {
                    checker,
                    detail: format!("{what} within {bound_ms} ms: {diff}"),
                })
            })
            .collect();
            if self.now() - start > bound_ms {
                for v in last {
                    self.violation(v.checker, v.detail);
                }
                break;
            }
        }
        self.safety_check();
    }
}
