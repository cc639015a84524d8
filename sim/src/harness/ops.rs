//! Client requests as scenarios issue them: each is traced, and every acknowledged write
//! becomes a fact the durability checker holds the cluster to.
//!
//! Text edits insert unique tokens (`<n1.7>`) at a token boundary of the text the node
//! showed just before. Blocks from peers may be applied between that read and the insert,
//! so a token may land inside another (`<n1.19<n2.22>>`); every insert is one balanced
//! piece, so the durability checker reassembles tokens by bracket matching, and every
//! acknowledged token must appear once.

use echo_actors::node::{ErrorKind, NodeError};
use serde_json::{json, Value};

use super::{Cluster, REQUEST_TIMEOUT_MS};

/// Positions in `text` where a token may go: the start and after every `>`.
fn boundaries(text: &str) -> Vec<u32> {
    let mut out = vec![0];
    for (i, c) in text.chars().enumerate() {
        if c == '>' {
            out.push(i as u32 + 1);
        }
    }
    out
}

fn short(e: &NodeError) -> String {
    let s = e.to_string();
    s.chars().take(80).collect()
}

impl Cluster {
    fn space_key(&self) -> String {
        self.space.clone().unwrap_or_default()
    }

    /// Adds a probe object on `node`: the id if acknowledged (a fact from then on), else the
    /// kind of error (`None`: no answer).
    pub fn probe_add(&mut self, node: usize) -> Result<String, Option<ErrorKind>> {
        let space = self.space_key();
        let name = self.nodes[node].name.clone();
        let object = json!({"@type": "probe", "from": name});
        let sent = object.clone();
        let answer = self.call(
            node,
            move |h| async move { h.object_add(&space, sent).await },
        );
        match answer {
            Some(Ok(id)) => {
                self.event(format!("{name} probe add {id}"));
                self.facts.added(&id, &object);
                Ok(id)
            }
            Some(Err(e)) => {
                self.event(format!("{name} probe add refused: {}", e.code()));
                Err(Some(e.kind()))
            }
            None => {
                self.event(format!("{name} probe add unanswered"));
                Err(None)
            }
        }
    }

    /// Adds an object; `Some(id)` once acknowledged.
    pub fn add(&mut self, node: usize, object: Value) -> Option<String> {
        let space = self.space_key();
        let sent = object.clone();
        let answer = self.call(
            node,
            move |h| async move { h.object_add(&space, sent).await },
        );
        let name = self.nodes[node].name.clone();
        match answer {
            Some(Ok(id)) => {
                self.event(format!("{name} add {id} {object}"));
                self.facts.added(&id, &object);
                Some(id)
            }
            Some(Err(e)) => {
                self.event(format!("{name} add failed: {}", short(&e)));
                None
            }
            None => {
                self.event(format!("{name} add unanswered"));
                None
            }
        }
    }

    /// Adds an object, retrying while the node cannot write yet (e.g. its feeds are not
    /// admitted) until `within_ms` has passed.
    pub fn add_retry(&mut self, node: usize, object: Value, within_ms: u64) -> Option<String> {
        let until = self.now() + within_ms;
        loop {
            if !self.nodes[node].up {
                return None;
            }
            if let Some(id) = self.add(node, object.clone()) {
                return Some(id);
            }
            if self.now() >= until {
                return None;
            }
            self.run_for(250);
        }
    }

    /// Applies a merge patch of scalar fields; true once acknowledged.
    pub fn update(&mut self, node: usize, id: &str, patch: Value) -> bool {
        let ticket = self.facts.begin_update(node, id, &patch);
        let (space, oid, sent) = (self.space_key(), id.to_string(), patch.clone());
        let answer = self.call(node, move |h| async move {
            h.object_update(&space, &oid, sent).await.map(|_| ())
        });
        let name = self.nodes[node].name.clone();
        let ok = matches!(answer, Some(Ok(())));
        self.event(format!(
            "{name} update {id} {patch} -> {}",
            match &answer {
                Some(Ok(())) => "ok".to_string(),
                Some(Err(e)) => short(e),
                None => "unanswered".to_string(),
            }
        ));
        if ok {
            self.facts.acked_update(ticket, id, &patch);
        }
        ok
    }

    /// Soft-deletes an object; true once acknowledged.
    pub fn delete(&mut self, node: usize, id: &str) -> bool {
        let (space, oid) = (self.space_key(), id.to_string());
        let answer = self.call(
            node,
            move |h| async move { h.object_delete(&space, &oid).await },
        );
        let name = self.nodes[node].name.clone();
        let ok = matches!(answer, Some(Ok(())));
        self.event(format!(
            "{name} delete {id} -> {}",
            if ok { "ok" } else { "failed" }
        ));
        if ok {
            self.facts.deleted(id);
        }
        ok
    }

    /// Inserts a fresh token at a random token boundary of a text field.
    pub fn insert_text(&mut self, node: usize, id: &str, field: &str) -> bool {
        let token = format!("<{}.{}>", self.nodes[node].name, self.facts.next_token());
        let choice = self.rng_u32();
        let (space, oid, f, t) = (
            self.space_key(),
            id.to_string(),
            field.to_string(),
            token.clone(),
        );
        let p = self.submit(node, move |h| async move {
            let text = h.text_get(&space, &oid, &f).await?;
            let b = boundaries(&text);
            let at = b[choice as usize % b.len()];
            h.text_insert(&space, &oid, &f, at, t).await
        });
        let answer = self.wait_for(p, REQUEST_TIMEOUT_MS);
        let name = self.nodes[node].name.clone();
        let ok = matches!(answer, Some(Ok(_)));
        self.event(format!(
            "{name} text {id}.{field} += {token} -> {}",
            if ok { "ok" } else { "failed" }
        ));
        if ok {
            self.facts.text_inserted(id, field, &token);
        }
        ok
    }

    fn rng_u32(&mut self) -> u32 {
        rand_core::RngCore::next_u32(&mut self.rng)
    }

    /// One random write by `node` on the shared objects: a patch of a shared field, a
    /// patch of the node's own field, a text insert, or a new object.
    pub fn random_write(&mut self, node: usize, objects: &[String], texts: &[String]) {
        let roll = self.below(10);
        let name = self.nodes[node].name.clone();
        let value = self.below(1000);
        match (roll, self.pick_str(objects), self.pick_str(texts)) {
            (0..=2, Some(id), _) => {
                let patch = json!({ "shared": value, "by": name });
                self.update(node, &id, patch);
            }
            (3..=4, Some(id), _) => {
                let patch = json!({ format!("own_{name}"): value });
                self.update(node, &id, patch);
            }
            (5..=6, _, Some(id)) => {
                self.insert_text(node, &id, "body");
            }
            (7, Some(id), _) if self.below(4) == 0 => {
                self.delete(node, &id);
            }
            _ => {
                self.add(node, json!({"@type": "item", "n": value, "from": name}));
            }
        }
    }

    fn pick_str(&mut self, from: &[String]) -> Option<String> {
        (!from.is_empty()).then(|| from[self.below(from.len() as u64) as usize].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::boundaries;

    #[test]
    fn boundaries_fall_between_tokens() {
        assert_eq!(boundaries(""), vec![0]);
        assert_eq!(boundaries("<a.1><b.2>"), vec![0, 5, 10]);
    }
}
