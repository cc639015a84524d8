//! Durability: every write acknowledged to a client appears in the final state; a write not
//! acknowledged may be lost.
//!
//! - [`DurabilityModel`] (one node, one writer): applies each acknowledged operation to a
//!   plain JSON map (RFC 7386 for patches); compared with the node field by field. Writes
//!   left unanswered by a crash ([`Write`]s): after the restart each is found whole on
//!   the node (and then held to) or lost; nothing else may differ.
//! - [`AckedFacts`] (many nodes, concurrent writers): the set of acknowledged facts that
//!   must survive any crash, partition or offline period: acknowledged adds exist;
//!   acknowledged deletes hold; a field whose writes all came from one client (so no
//!   concurrent competitor) and whose last write was acknowledged holds that value; every
//!   acknowledged text token appears exactly once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::Violation;

/// One client write, as the single-node model tracks it. Sent but never answered (the node
/// crashed first), it may have become durable or not, but only whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// An add (its id was never told; the object must be unique among the adds).
    Add { object: Value },
    /// A merge patch.
    Patch { id: String, patch: Value },
    /// A soft delete.
    Delete { id: String },
    /// `token` inserted at the start of text field `field`.
    TextPrepend {
        id: String,
        field: String,
        token: String,
    },
}

impl Write {
    /// The object a surviving update targets (`None` for an add).
    fn target(&self) -> Option<&str> {
        match self {
            Write::Add { .. } => None,
            Write::Patch { id, .. } | Write::Delete { id } | Write::TextPrepend { id, .. } => {
                Some(id)
            }
        }
    }
}

/// What became of the unacknowledged writes after a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The node holds them whole (they are durable now, and held to that).
    pub survived: usize,
    /// The node does not hold them.
    pub lost: usize,
}

/// What the clients were told is stored (object id -> fields without `@id`/`@meta`), and
/// the writes sent but never answered since the last restart.
///
/// Exact for one node and one client: every acknowledged write must be on the node, an
/// unacknowledged one may be there (whole) or not, and nothing else may. At most one
/// unacknowledged write may target an object, and none an unacknowledged add, so that
/// each is decided on its own ([`DurabilityModel::resolve`]).
#[derive(Default)]
pub struct DurabilityModel {
    objects: BTreeMap<String, Map<String, Value>>,
    unacked: Vec<Write>,
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

/// A node object's fields as the model keeps them: without `@id` and `@meta`.
fn fields_of(object: &Value) -> Map<String, Value> {
    let mut fields = object.as_object().cloned().unwrap_or_default();
    fields.remove("@id");
    fields.remove("@meta");
    fields
}

fn added_fields(object: &Value) -> Map<String, Value> {
    let mut fields = object.as_object().cloned().unwrap_or_default();
    fields.insert("@deleted".into(), Value::Bool(false));
    fields
}

fn patched_fields(fields: &Map<String, Value>, patch: &Value) -> Map<String, Value> {
    let mut value = Value::Object(fields.clone());
    merge_patch(&mut value, patch);
    value.as_object().cloned().unwrap_or_default()
}

fn by_id(node_objects: &[Value]) -> BTreeMap<&str, &Value> {
    node_objects
        .iter()
        .filter_map(|o| o.get("@id").and_then(Value::as_str).map(|id| (id, o)))
        .collect()
}

impl DurabilityModel {
    /// An acknowledged add.
    pub fn added(&mut self, id: &str, object: &Value) {
        self.objects.insert(id.to_string(), added_fields(object));
    }

    /// An acknowledged merge patch.
    pub fn patched(&mut self, id: &str, patch: &Value) {
        if let Some(fields) = self.objects.get_mut(id) {
            *fields = patched_fields(fields, patch);
        }
    }

    /// An acknowledged soft delete.
    pub fn deleted(&mut self, id: &str) {
        if let Some(fields) = self.objects.get_mut(id) {
            fields.insert("@deleted".into(), Value::Bool(true));
        }
    }

    /// A write sent but not answered when the node crashed.
    pub fn unacknowledged(&mut self, write: Write) {
        self.unacked.push(write);
    }

    /// Unacknowledged writes not yet resolved.
    pub fn unresolved(&self) -> usize {
        self.unacked.len()
    }

    /// Objects an unacknowledged write targets (a later write must not, until resolved).
    pub fn in_doubt(&self) -> impl Iterator<Item = &str> {
        self.unacked.iter().filter_map(Write::target)
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }

    /// The model's fields of one object.
    pub fn fields(&self, id: &str) -> Option<&Map<String, Value>> {
        self.objects.get(id)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// After a restart, before [`DurabilityModel::check`]: each unacknowledged write the
    /// node holds whole becomes part of the model (it survived a crash, so it is durable and
    /// must survive every later one); the others are lost, which is allowed. A write the node
    /// holds only in part is left out, so that `check` reports the difference.
    pub fn resolve(&mut self, node_objects: &[Value]) -> Resolution {
        let node = by_id(node_objects);
        let mut out = Resolution::default();
        for write in std::mem::take(&mut self.unacked) {
            let survived = match &write {
                Write::Add { object } => {
                    let expected = added_fields(object);
                    let found = node.iter().map(|(id, o)| (*id, *o)).find(|(id, o)| {
                        !self.objects.contains_key(*id) && fields_of(o) == expected
                    });
                    match found {
                        Some((id, _)) => {
                            self.objects.insert(id.to_string(), expected);
                            true
                        }
                        None => false,
                    }
                }
                Write::Patch { id, patch } => {
                    self.take_if_held(&node, id, |f| patched_fields(f, patch))
                }
                Write::Delete { id } => self.take_if_held(&node, id, |f| {
                    let mut f = f.clone();
                    f.insert("@deleted".into(), Value::Bool(true));
                    f
                }),
                Write::TextPrepend { id, field, token } => self.take_if_held(&node, id, |f| {
                    let before = f.get(field).and_then(Value::as_str).unwrap_or_default();
                    let mut f = f.clone();
                    f.insert(field.clone(), Value::String(format!("{token}{before}")));
                    f
                }),
            };
            if survived {
                out.survived += 1;
            } else {
                out.lost += 1;
            }
        }
        out
    }

    /// Takes the write into the model if the node holds the object exactly as the write
    /// would leave it.
    fn take_if_held(
        &mut self,
        node: &BTreeMap<&str, &Value>,
        id: &str,
        apply: impl Fn(&Map<String, Value>) -> Map<String, Value>,
    ) -> bool {
        let (Some(fields), Some(object)) = (self.objects.get_mut(id), node.get(id)) else {
            return false;
        };
        let after = apply(fields);
        if fields_of(object) == after {
            *fields = after;
            true
        } else {
            false
        }
    }

    /// Compares the model with the node's objects (`include_deleted` query output): every
    /// object the model holds must be on the node with exactly its fields, and the node
    /// must hold no other object. Call [`DurabilityModel::resolve`] first after a crash.
    pub fn check(&self, node_objects: &[Value]) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut fail = |detail: String| {
            violations.push(Violation {
                checker: "durability",
                detail,
            })
        };
        let node = by_id(node_objects);
        for (id, fields) in &self.objects {
            let Some(object) = node.get(id.as_str()) else {
                fail(format!("acknowledged object {id} is missing"));
                continue;
            };
            let held = fields_of(object);
            let keys: BTreeSet<&String> = fields.keys().chain(held.keys()).collect();
            for k in keys {
                if fields.get(k) != held.get(k) {
                    fail(format!(
                        "object {id} field {k}: acknowledged {:?}, node has {:?}",
                        fields.get(k),
                        held.get(k)
                    ));
                }
            }
        }
        for id in node.keys().filter(|id| !self.objects.contains_key(**id)) {
            fail(format!(
                "node holds object {id}, which no acknowledged write made"
            ));
        }
        if node.len() != node_objects.len() {
            fail(format!(
                "node lists {} objects under {} ids",
                node_objects.len(),
                node.len()
            ));
        }
        violations
    }
}

/// The bracketed tokens (`<n1.7>`) of a text and how often each occurs, reassembled by
/// bracket matching. A client inserts a whole token at a token boundary of the text it
/// read just before, but the text may change in between (remote blocks applied meanwhile),
/// so a token may land inside another (`<n1.1<n2.5>9>`). Every insert is one balanced
/// piece, so matching brackets always belong to the same token, and a token is its
/// brackets with what lies between them minus the tokens nested in it.
fn bracketed_tokens(text: &str) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    let mut open: Vec<String> = Vec::new();
    for c in text.chars() {
        match c {
            '<' => open.push(String::from('<')),
            '>' => {
                if let Some(mut token) = open.pop() {
                    token.push('>');
                    *found.entry(token).or_insert(0) += 1;
                }
            }
            _ => {
                if let Some(token) = open.last_mut() {
                    token.push(c);
                }
            }
        }
    }
    found
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
                let found = bracketed_tokens(text);
                for t in tokens {
                    let n = found.get(t.as_str()).copied().unwrap_or(0);
                    if n != 1 {
                        fail(format!(
                            "{id}.{field}: token {t} appears {n} times in {text:?}"
                        ));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_split_by_a_stale_insert_are_reassembled() {
        let found = bracketed_tokens("<n0.7><n1.20><n0.21><n1.19<n2.22>><n0.5>");
        let tokens: Vec<(&str, usize)> = found.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        assert_eq!(
            tokens,
            vec![
                ("<n0.21>", 1),
                ("<n0.5>", 1),
                ("<n0.7>", 1),
                ("<n1.19>", 1),
                ("<n1.20>", 1),
                ("<n2.22>", 1)
            ]
        );
        let found = bracketed_tokens("<a.1<b.2<c.3>>><a.1>");
        assert_eq!(found.get("<a.1>"), Some(&2));
        assert_eq!(found.get("<b.2>"), Some(&1));
        assert_eq!(found.get("<c.3>"), Some(&1));
    }

    /// A model of two acknowledged objects, A (patched) and B (deleted).
    fn model() -> DurabilityModel {
        let mut m = DurabilityModel::default();
        m.added("A", &json!({"@type": "item", "n": 1}));
        m.added("B", &json!({"@type": "item", "n": 2}));
        m.patched("A", &json!({"n": 5, "tags": {"a": 1}}));
        m.deleted("B");
        m
    }

    fn a() -> Value {
        json!({"@id": "A", "@meta": {}, "@type": "item", "@deleted": false, "n": 5, "tags": {"a": 1}})
    }

    fn b() -> Value {
        json!({"@id": "B", "@meta": {}, "@type": "item", "@deleted": true, "n": 2})
    }

    /// Three writes in flight at the crash, one per kind, on distinct objects.
    fn in_flight(m: &mut DurabilityModel) {
        m.unacknowledged(Write::Add {
            object: json!({"@type": "item", "k": 7}),
        });
        m.unacknowledged(Write::Patch {
            id: "A".into(),
            patch: json!({"n": null, "tags": {"b": 2}}),
        });
        m.unacknowledged(Write::TextPrepend {
            id: "B".into(),
            field: "body".into(),
            token: "s3 ".into(),
        });
    }

    #[test]
    fn an_acknowledged_write_missing_after_a_restart_is_a_violation() {
        let mut m = model();
        in_flight(&mut m);
        // B's add was acknowledged, yet the restarted node lacks it.
        let node = vec![a()];
        assert_eq!(
            m.resolve(&node),
            Resolution {
                survived: 0,
                lost: 3
            }
        );
        let found = m.check(&node);
        assert!(
            found
                .iter()
                .any(|v| v.detail == "acknowledged object B is missing"),
            "{found:?}"
        );
        // An acknowledged patch undone and an acknowledged delete undone.
        let mut m = model();
        in_flight(&mut m);
        let mut old_a = a();
        old_a["n"] = json!(1);
        let mut live_b = b();
        live_b["@deleted"] = json!(false);
        let node = vec![old_a, live_b];
        m.resolve(&node);
        let found = m.check(&node);
        assert!(found.iter().any(|v| v.detail.contains("object A field n")));
        assert!(found
            .iter()
            .any(|v| v.detail.contains("object B field @deleted")));
    }

    #[test]
    fn only_unacknowledged_writes_missing_passes() {
        let mut m = model();
        in_flight(&mut m);
        let node = vec![a(), b()];
        assert_eq!(
            m.resolve(&node),
            Resolution {
                survived: 0,
                lost: 3
            }
        );
        assert_eq!(m.check(&node), vec![]);
        assert_eq!(m.unresolved(), 0);
    }

    #[test]
    fn unacknowledged_writes_that_survived_are_held_to() {
        let mut m = model();
        in_flight(&mut m);
        assert_eq!(m.in_doubt().collect::<Vec<_>>(), vec!["A", "B"]);
        let new_a = json!({"@id": "A", "@meta": {}, "@type": "item", "@deleted": false, "tags": {"a": 1, "b": 2}});
        let mut new_b = b();
        new_b["body"] = json!("s3 ");
        let c = json!({"@id": "C", "@meta": {}, "@type": "item", "@deleted": false, "k": 7});
        let node = vec![new_a.clone(), new_b.clone(), c];
        assert_eq!(
            m.resolve(&node),
            Resolution {
                survived: 3,
                lost: 0
            }
        );
        assert_eq!(m.check(&node), vec![]);
        // Once it survived a crash, C is durable: a later restart must still show it.
        let later = vec![new_a, new_b];
        let found = m.check(&later);
        assert!(
            found
                .iter()
                .any(|v| v.detail == "acknowledged object C is missing"),
            "{found:?}"
        );
    }

    #[test]
    fn a_write_held_in_part_or_by_no_one_is_a_violation() {
        let mut m = model();
        in_flight(&mut m);
        // Half of A's unacknowledged patch (`n` removed, `tags.b` missing), and an object
        // that no client wrote.
        let half_a =
            json!({"@id": "A", "@meta": {}, "@type": "item", "@deleted": false, "tags": {"a": 1}});
        let stranger = json!({"@id": "Z", "@meta": {}, "@type": "item", "@deleted": false, "k": 8});
        let node = vec![half_a, b(), stranger];
        assert_eq!(m.resolve(&node).survived, 0);
        let found = m.check(&node);
        assert!(found.iter().any(|v| v.detail.contains("object A field n")));
        assert!(found
            .iter()
            .any(|v| v.detail.contains("node holds object Z")));
    }
}
