//! Forming the shared space the way users do: every node creates its identity, the owner
//! creates the space, adds each member by identity key as EDITOR, and the member joins by
//! space key. A joiner can write only once it has replicated its membership; until then
//! its writes fail and are retried.

use echo_actors::credentials::Role;
use serde_json::json;

use super::Cluster;

impl Cluster {
    /// Creates the node's identity; true on success.
    pub fn create_identity(&mut self, node: usize) -> bool {
        let name = self.nodes[node].name.clone();
        let answer = self.call(
            node,
            move |h| async move { h.identity_create(Some(name)).await },
        );
        let name = self.nodes[node].name.clone();
        match answer {
            Some(Ok(created)) => {
                self.event(format!("{name} identity {}", created.identity_key));
                self.nodes[node].identity = Some(created.identity_key);
                self.nodes[node].seed_phrase = Some(created.seed_phrase);
                true
            }
            other => {
                let detail = format!("{name}: identity_create failed: {other:?}");
                self.violation("setup", detail);
                false
            }
        }
    }

    /// `node` (a fresh host) recovers the identity of `from` from its seed phrase: a second
    /// device of that identity. True on success.
    pub fn recover_identity(&mut self, node: usize, from: usize) -> bool {
        let Some(phrase) = self.nodes[from].seed_phrase.clone() else {
            self.violation("setup", "no seed phrase to recover from");
            return false;
        };
        let answer = self.call(node, move |h| async move {
            h.identity_recover(phrase, None).await
        });
        let name = self.nodes[node].name.clone();
        match answer {
            Some(Ok(recovered)) => {
                let of = self.nodes[from].name.clone();
                self.event(format!("{name} recovered the identity of {of}"));
                self.nodes[node].identity = Some(recovered.identity_key);
                true
            }
            other => {
                self.violation(
                    "setup",
                    format!("{name}: identity_recover failed: {other:?}"),
                );
                false
            }
        }
    }

    /// The owner creates the shared space.
    pub fn create_space(&mut self, owner: usize) -> bool {
        let answer = self.call(owner, |h| async move {
            h.space_create(Some("sim".into())).await
        });
        match answer {
            Some(Ok(info)) => {
                self.event(format!(
                    "{} created space {}",
                    self.nodes[owner].name, info.space_key
                ));
                self.space = Some(info.space_key);
                self.nodes[owner].member = true;
                true
            }
            other => {
                self.violation("setup", format!("space_create failed: {other:?}"));
                false
            }
        }
    }

    /// `by` adds `node`'s identity as EDITOR; true once acknowledged.
    pub fn add_member(&mut self, by: usize, node: usize) -> bool {
        self.set_role(by, node, Role::Editor)
    }

    /// `by` adds `node`'s identity with `role`, or changes its role to `role` (a demotion,
    /// a removal or a promotion); true once acknowledged.
    pub fn set_role(&mut self, by: usize, node: usize, role: Role) -> bool {
        let (Some(space), Some(identity)) = (self.space.clone(), self.nodes[node].identity.clone())
        else {
            return false;
        };
        let answer = self.call(by, move |h| async move {
            h.space_add_member(&space, &identity, role).await
        });
        let ok = matches!(answer, Some(Ok(())));
        let detail = format!(
            "{} adds {} as {role} -> {answer:?}",
            self.nodes[by].name, self.nodes[node].name
        );
        self.event(detail);
        ok
    }

    /// `by` changes the role of `node`, already a member, the way users do: `space_set_role`
    /// (admin, editor, reader) or `space_remove_member` (`Role::Removed`), which refuse an
    /// identity `by` does not know as a member. True once acknowledged.
    pub fn change_role(&mut self, by: usize, node: usize, role: Role) -> bool {
        let (Some(space), Some(identity)) = (self.space.clone(), self.nodes[node].identity.clone())
        else {
            return false;
        };
        let answer = self.call(by, move |h| async move {
            if role == Role::Removed {
                h.space_remove_member(&space, &identity).await
            } else {
                h.space_set_role(&space, &identity, role).await
            }
        });
        let ok = matches!(answer, Some(Ok(())));
        let verb = if role == Role::Removed {
            "removes".to_string()
        } else {
            format!("sets role {role} of")
        };
        let result = match &answer {
            Some(Ok(())) => "ok".to_string(),
            Some(Err(e)) => e.code().to_string(),
            None => "unanswered".to_string(),
        };
        let detail = format!(
            "{} {verb} {} -> {result}",
            self.nodes[by].name, self.nodes[node].name
        );
        self.event(detail);
        ok
    }

    /// `node` joins the shared space by key; true once acknowledged.
    pub fn join(&mut self, node: usize) -> bool {
        let Some(space) = self.space.clone() else {
            return false;
        };
        // A second device of an identity may have joined already, from its identity space's
        // list of spaces: that counts as joined.
        let answer = self.call(node, move |h| async move {
            let listed = h.space_list().await.ok()?;
            if listed.iter().any(|s| s.space_key == space) {
                return Some(true);
            }
            Some(h.space_join(&space, None).await.is_ok())
        });
        let ok = matches!(answer, Some(Some(true)));
        let detail = format!(
            "{} joins -> {}",
            self.nodes[node].name,
            if ok { "ok" } else { "failed" }
        );
        self.event(detail);
        self.nodes[node].member |= ok;
        ok
    }

    /// Waits until `node` can write (its first object is acknowledged); false if it could
    /// not within `within_ms`.
    pub fn wait_writable(&mut self, node: usize, within_ms: u64) -> bool {
        let name = self.nodes[node].name.clone();
        self.add_retry(node, json!({"@type": "hello", "from": name}), within_ms)
            .is_some()
    }

    /// Identities on all `members`, the space on the first, the rest added and joined; waits
    /// until every member can write. Returns false (with a violation) if that fails.
    pub fn form_space(&mut self, members: &[usize], within_ms: u64) -> bool {
        let Some((&owner, others)) = members.split_first() else {
            return false;
        };
        for &m in members {
            if !self.create_identity(m) {
                return false;
            }
        }
        if !self.create_space(owner) {
            return false;
        }
        for &m in others {
            if !self.add_member(owner, m) || !self.join(m) {
                self.violation(
                    "setup",
                    format!("{} could not be added", self.nodes[m].name),
                );
                return false;
            }
        }
        for &m in members {
            if !self.wait_writable(m, within_ms) {
                let detail = format!(
                    "{} could not write within {within_ms} ms",
                    self.nodes[m].name
                );
                self.violation("liveness", detail);
                return false;
            }
        }
        true
    }

    /// The owner adds `items` shared objects and one text document (`body`, created here so
    /// that later concurrent edits never race to create it); waits until every live member
    /// holds them all. Returns `(items, texts)`.
    pub fn shared_objects(&mut self, owner: usize, items: usize) -> (Vec<String>, Vec<String>) {
        let mut objects = Vec::new();
        for k in 0..items {
            if let Some(id) = self.add(owner, json!({"@type": "item", "shared": k, "n": k})) {
                objects.push(id);
            }
        }
        let texts: Vec<String> = self
            .add(owner, json!({"@type": "doc", "body": {"@text": ""}}))
            .into_iter()
            .collect();
        let all: Vec<String> = objects.iter().chain(&texts).cloned().collect();
        self.wait_seen(&all, 30_000);
        (objects, texts)
    }

    /// Waits until every live member holds every object in `ids` (or `within_ms` passes).
    pub fn wait_seen(&mut self, ids: &[String], within_ms: u64) -> bool {
        let until = self.now() + within_ms;
        let space = self.space.clone().unwrap_or_default();
        loop {
            let members = self.live_members();
            let pending: Vec<_> = members
                .iter()
                .map(|&n| {
                    let (space, ids) = (space.clone(), ids.to_vec());
                    self.submit(n, move |h| async move {
                        for id in ids {
                            if h.object_get(&space, &id).await.is_err() {
                                return false;
                            }
                        }
                        true
                    })
                })
                .collect();
            let answers = self.wait_all(pending, 5_000);
            if answers.iter().all(|a| *a == Some(true)) {
                return true;
            }
            if self.now() >= until {
                self.event("objects not everywhere yet; going on");
                return false;
            }
            self.run_for(250);
        }
    }
}
