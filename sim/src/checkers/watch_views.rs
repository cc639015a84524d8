//! Watch views: an app that keeps a view of a space from its watch stream must end up
//! showing what the node holds.
//!
//! A view starts from a query of every object (deleted ones too) taken just after
//! subscribing, so nothing falls between, and sets each event's object in order (every
//! event carries the whole object). At the end, judged against what the node then holds:
//! every object the node holds is in the view exactly as the node renders it, and every
//! object in the view that the node no longer holds at all is marked `@deleted` (a rebuild
//! after a revocation took it out: the stream must say so). A stream that ended while its
//! node kept running is a violation too (only a node stopping, or a subscriber too far
//! behind, ends one, and the view drains its stream at once).

use std::collections::BTreeMap;

use serde_json::Value;

/// What a watch stream told one app (`harness/watch.rs` fills it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchView {
    /// Object id -> the object as the stream last showed it.
    pub objects: BTreeMap<String, Value>,
    /// Events received.
    pub events: usize,
    /// The first query has arrived (the view is live).
    pub started: bool,
    /// The stream ended.
    pub ended: bool,
}

impl WatchView {
    /// Takes in the query of every object made just after subscribing.
    pub fn start(&mut self, objects: Vec<Value>) {
        for object in objects {
            if let Some(id) = object.get("@id").and_then(Value::as_str) {
                self.objects.insert(id.to_string(), object);
            }
        }
        self.started = true;
    }

    /// One event: the object as it is now.
    pub fn event(&mut self, id: String, object: Value) {
        self.objects.insert(id, object);
        self.events += 1;
    }
}

/// What is wrong with `view` against `held` (every object the node holds, deleted ones
/// too), if anything.
pub fn judge(view: &WatchView, held: &[Value]) -> Option<String> {
    if !view.started {
        return Some("the watch view never started".into());
    }
    if view.ended {
        return Some(format!(
            "the watch stream ended after {} events while its node ran",
            view.events
        ));
    }
    let held: BTreeMap<&str, &Value> = held
        .iter()
        .filter_map(|o| Some((o.get("@id")?.as_str()?, o)))
        .collect();
    for (id, object) in &held {
        match view.objects.get(*id) {
            Some(shown) if shown == *object => {}
            Some(shown) => {
                return Some(format!(
                    "the watch view shows {id} as {shown}, the node holds {object}"
                ))
            }
            None => return Some(format!("the watch view never showed {id}")),
        }
    }
    for (id, shown) in &view.objects {
        let deleted = shown.get("@deleted") == Some(&Value::Bool(true));
        if !held.contains_key(id.as_str()) && !deleted {
            return Some(format!(
                "the watch view still shows {id}, which the node no longer holds: {shown}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn o(id: &str, deleted: bool, n: i64) -> Value {
        json!({"@id": id, "@deleted": deleted, "n": n})
    }

    #[test]
    fn a_view_must_show_what_the_node_holds_and_mark_what_it_lost() {
        let mut view = WatchView::default();
        assert!(judge(&view, &[]).unwrap().contains("never started"));
        view.start(vec![o("a", false, 1)]);
        view.event("b".into(), o("b", false, 1));
        view.event("a".into(), o("a", false, 2));
        assert_eq!(judge(&view, &[o("a", false, 2), o("b", false, 1)]), None);
        // A stale object, a missing one, and one the node lost without the view being told.
        assert!(judge(&view, &[o("a", false, 3), o("b", false, 1)])
            .unwrap()
            .contains("shows a"));
        assert!(judge(
            &view,
            &[o("a", false, 2), o("b", false, 1), o("c", false, 1)]
        )
        .unwrap()
        .contains("never showed c"));
        assert!(judge(&view, &[o("a", false, 2)])
            .unwrap()
            .contains("still shows b"));
        // Told: b was taken out.
        view.event("b".into(), o("b", true, 1));
        assert_eq!(judge(&view, &[o("a", false, 2)]), None);
        view.ended = true;
        assert!(judge(&view, &[o("a", false, 2)]).unwrap().contains("ended"));
    }
}
