//! Durability: every write acknowledged to a client appears in the node's state after any
//! crash and restart. The model applies each acknowledged operation to a plain JSON map
//! (RFC 7386 for patches) and is compared with the node's objects field by field.

use std::collections::BTreeMap;

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
