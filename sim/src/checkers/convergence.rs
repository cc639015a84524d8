//! Convergence: after the liveness phase every live member holds the same canonical state:
//! the same feeds at the same lengths, the same objects (deleted ones included, compared as
//! canonical JSON with sorted keys) and the same text in every text field.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::harness::NodeView;

/// JSON with object keys sorted, whatever map type serde_json was built with.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let keys: BTreeSet<&String> = map.keys().collect();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A digest of one view (blake3 of its canonical form).
pub fn digest(view: &NodeView) -> String {
    let mut h = blake3::Hasher::new();
    for (feed, len) in &view.heads {
        h.update(feed.as_bytes());
        h.update(&len.to_le_bytes());
    }
    for o in &view.objects {
        h.update(canonical(o).as_bytes());
    }
    for (k, t) in &view.texts {
        h.update(k.as_bytes());
        h.update(t.as_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

/// `Ok(digest)` if every view is present and all are identical; otherwise what differs.
pub fn compare(names: &[String], views: &[Option<NodeView>]) -> Result<String, String> {
    let mut first: Option<(&String, &NodeView)> = None;
    // The first view's canonical objects, computed once (large objects are costly).
    let mut a: Vec<String> = Vec::new();
    for (name, view) in names.iter().zip(views) {
        let Some(view) = view else {
            return Err(format!("{name} did not answer"));
        };
        let Some((first_name, first_view)) = first else {
            first = Some((name, view));
            a = view.objects.iter().map(canonical).collect();
            continue;
        };
        if view.heads != first_view.heads {
            return Err(format!(
                "feeds differ: {first_name} {:?} vs {name} {:?}",
                first_view.heads.values().collect::<Vec<_>>(),
                view.heads.values().collect::<Vec<_>>()
            ));
        }
        let b: Vec<String> = view.objects.iter().map(canonical).collect();
        if a != b {
            let mut detail = format!(
                "objects differ: {first_name} has {}, {name} has {}",
                a.len(),
                b.len()
            );
            if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
                let cut = |s: &String| s.chars().take(300).collect::<String>();
                let _ = write!(detail, "; first difference {} vs {}", cut(x), cut(y));
            }
            return Err(detail);
        }
        if view.texts != first_view.texts {
            return Err(format!(
                "texts differ: {first_name} {:?} vs {name} {:?}",
                first_view.texts, view.texts
            ));
        }
    }
    match first {
        Some((_, view)) => Ok(digest(view)),
        None => Err("no live member to compare".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn view(objects: Vec<Value>) -> NodeView {
        NodeView {
            heads: BTreeMap::from([("f".to_string(), 3)]),
            objects,
            texts: BTreeMap::new(),
        }
    }

    #[test]
    fn equal_views_converge_and_different_ones_do_not() {
        let names = vec!["a".to_string(), "b".to_string()];
        let same = vec![
            Some(view(vec![json!({"@id": "x", "n": 1, "m": 2})])),
            Some(view(vec![json!({"m": 2, "@id": "x", "n": 1})])),
        ];
        assert!(compare(&names, &same).is_ok());
        let differ = vec![
            Some(view(vec![json!({"@id": "x", "n": 1})])),
            Some(view(vec![json!({"@id": "x", "n": 2})])),
        ];
        assert!(compare(&names, &differ)
            .unwrap_err()
            .contains("objects differ"));
        assert!(compare(&names, &[same[0].clone(), None]).is_err());
    }
}
