//! Durability: every write acknowledged to a client appears in the final state.
//!
//! - [`DurabilityModel`] (one node, one writer): applies each acknowledged operation to a
//!   plain JSON map (RFC 7386 for patches); compared with the node field by field.
//! - [`AckedFacts`] (many nodes, concurrent writers): the set of acknowledged facts that
//!   must survive any crash, partition or offline period: acknowledged adds exist;
//!   acknowledged deletes hold; a field whose writes all came from one client (so no
//!   concurrent competitor) and whose last write was acknowledged holds that value; every
//!   acknowledged text token appears exactly once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::Violation;

/// What the clients were told is stored: object id -> fields (without `@id`/`@meta`).
#[derive(Default)]
pub struct DurabilityModel {
    objects: BTreeMap<String, Map<String, Value>>,
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl DurabilityModel {
    /// An acknowledged add.
    pub fn added(&mut self, id: &str, object: &Value) {
        let mut fields = object.as_object().cloned().unwrap_or_default();
        fields.insert("@deleted".into(), Value::Bool(false));
        self.objects.insert(id.to_string(), fields);
    }

    /// An acknowledged merge patch.
    pub fn patched(&mut self, id: &str, patch: &Value) {
        if let Some(fields) = self.objects.get_mut(id) {
            let mut value = Value::Object(std::mem::take(fields));
            merge_patch(&mut value, patch);
            *fields = value.as_object().cloned().unwrap_or_default();
        }
    }

    /// An acknowledged soft delete.
    pub fn deleted(&mut self, id: &str) {
        if let Some(fields) = self.objects.get_mut(id) {
            fields.insert("@deleted".into(), Value::Bool(true));
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Compares the model with the node's objects (`include_deleted` query output).
    pub fn check(&self, node_objects: &[Value]) -> Vec<Violation> {
        let mut violations = Vec::new();
        let by_id: BTreeMap<&str, &Value> = node_objects
            .iter()
            .filter_map(|o| o.get("@id").and_then(Value::as_str).map(|id| (id, o)))
            .collect();
        for (id, fields) in &self.objects {
            let Some(object) = by_id.get(id.as_str()) else {
                violations.push(Violation {
                    checker: "durability",
                    detail: format!("acknowledged object {id} is missing"),
                });
                continue;
            };
            for (k, v) in fields {
                if object.get(k) != Some(v) {
                    violations.push(Violation {
                        checker: "durability",
                        detail: format!(
                            "object {id} field {k}: acknowledged {v}, node has {:?}",
                            object.get(k)
                        ),
                    });
                }
            }
        }
        if by_id.len() != self.objects.len() {
            violations.push(Violation {
                checker: "durability",
                detail: format!(
                    "node holds {} objects, clients were told of {}",
                    by_id.len(),
                    self.objects.len()
                ),
            });
        }
        violations
    }
}

/// What one field of one object must hold.
#[derive(Debug, Default)]
struct FieldFacts {
    /// Nodes that attempted updates of this field (the add is causally before them all).
    writers: BTreeSet<usize>,
    /// Ticket of the last attempted update.
    last_attempt: u64,
    /// The value if the last write was acknowledged (`Null`: removed).
    expected: Option<Value>,
    /// A text field (checked through its tokens).
    text: bool,
}

#[derive(Debug, Default)]
struct ObjectFacts {
    fields: BTreeMap<String, FieldFacts>,
    deleted: bool,
    tokens: BTreeMap<String, BTreeSet<String>>,
}

/// Acknowledged facts across a cluster.
#[derive(Debug, Default)]
pub struct AckedFacts {
    objects: BTreeMap<String, ObjectFacts>,
    tickets: u64,
}

impl AckedFacts {
    /// A fresh number (update tickets, text tokens).
    pub fn next_token(&mut self) -> u64 {
        self.tickets += 1;
        self.tickets
    }

    /// An acknowledged add.
    pub fn added(&mut self, id: &str, object: &Value) {
        let mut facts = ObjectFacts::default();
        for (k, v) in object.as_object().into_iter().flatten() {
            let text = v.get("@text").is_some();
            facts.fields.insert(
                k.clone(),
                FieldFacts {
                    expected: (!text).then(|| v.clone()),
                    text,
                    ..Default::default()
                },
            );
        }
        self.objects.insert(id.to_string(), facts);
    }

    /// An update is about to be sent by `node`; returns its ticket.
    pub fn begin_update(&mut self, node: usize, id: &str, patch: &Value) -> u64 {
        let ticket = self.next_token();
        if let Some(o) = self.objects.get_mut(id) {
            for k in patch.as_object().into_iter().flatten().map(|(k, _)| k) {
                let f = o.fields.entry(k.clone()).or_default();
                f.writers.insert(node);
                f.last_attempt = ticket;
                f.expected = None;
            }
        }
        ticket
    }

    /// The update with `ticket` was acknowledged.
    pub fn acked_update(&mut self, ticket: u64, id: &str, patch: &Value) {
        if let Some(o) = self.objects.get_mut(id) {
            for (k, v) in patch.as_object().into_iter().flatten() {
                if let Some(f) = o.fields.get_mut(k) {
                    if f.last_attempt == ticket {
                        f.expected = Some(v.clone());
                    }
                }
            }
        }
    }

    /// An acknowledged soft delete.
    pub fn deleted(&mut self, id: &str) {
        if let Some(o) = self.objects.get_mut(id) {
            o.deleted = true;
        }
    }

    /// An acknowledged text insert of a unique token.
    pub fn text_inserted(&mut self, id: &str, field: &str, token: &str) {
        if let Some(o) = self.objects.get_mut(id) {
            o.tokens
                .entry(field.to_string())
                .or_default()
                .insert(token.to_string());
        }
    }

    /// Number of acknowledged objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Checks one node's final view against every fact.
    pub fn check(&self, node: &str, view: &crate::harness::NodeView) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut fail = |detail: String| {
            out.push(Violation {
                checker: "durability",
                detail: format!("{node}: {detail}"),
            })
        };
        let by_id: BTreeMap<&str, &Value> = view
            .objects
            .iter()
            .filter_map(|o| o.get("@id").and_then(Value::as_str).map(|id| (id, o)))
            .collect();
        for (id, facts) in &self.objects {
            let Some(object) = by_id.get(id.as_str()) else {
                fail(format!("acknowledged object {id} is missing"));
                continue;
            };
            if facts.deleted && object.get("@deleted") != Some(&Value::Bool(true)) {
                fail(format!("acknowledged delete of {id} is undone"));
            }
            for (k, f) in &facts.fields {
                let Some(expected) = &f.expected else {
                    continue;
                };
                if f.text || f.writers.len() > 1 {
                    continue;
                }
                let actual = object.get(k).unwrap_or(&Value::Null);
                if actual != expected {
                    fail(format!(
                        "{id}.{k}: last acknowledged write was {expected}, found {actual}"
                    ));
                }
            }
            for (field, tokens) in &facts.tokens {
                let text = object
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for t in tokens {
                    let n = text.matches(t.as_str()).count();
                    if n != 1 {
                        fail(format!("{id}.{field}: token {t} appears {n} times"));
                    }
                }
            }
        }
        out
    }
}
