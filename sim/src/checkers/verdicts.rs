//! Verdicts: after the liveness phase every live member has reached the same verdict on
//! every block of the shared space. It holds the same blocks of every feed (heads), it
//! stored-but-denied the same blocks (signature-valid blocks whose payload is never
//! applied), and it derived the same control state (members and their roles).
//!
//! Convergence of objects alone can hide a split verdict (a denied block whose payload
//! happened to change nothing visible). A rule that depends on arrival order shows up here
//! as a difference between two members, named block by block. A rule that a restart would
//! flip shows up in [`replayed`]: the verdicts of the node's space rebuilt from its store
//! alone (the production load path) must equal what the running node reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use echo_actors::space::{load_space, verdicts_of, SpaceRecord};
use echo_actors::store::{Key, MemStore, Store};
use echo_actors::types::{decode, PublicKey};

/// What one member decided about the shared space: heads (feed key -> blocks held),
/// denied blocks (`feedkey:seq` -> why), members (identity key -> role) and admitted feeds
/// (feed key -> `identity:designation`), as `NodeHandle::space_verdicts` reports them.
pub use echo_actors::node::SpaceVerdicts as Verdicts;

/// At most this many differing entries are named in a report.
const SHOWN: usize = 4;

/// A key as reports show it: its first 8 characters, and for `feedkey:seq` the seq too.
fn short(key: &str) -> String {
    let head = key.get(..8).unwrap_or(key);
    match key.rsplit_once(':') {
        Some((feed, rest)) if feed.len() > 8 => format!("{head}:{rest}"),
        _ => head.to_string(),
    }
}

/// The entries of two maps that differ, as `key: a=.. b=..` (`-` for a missing entry).
fn differences<V: Display + PartialEq>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&V>| v.map_or_else(|| "-".to_string(), ToString::to_string);
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{}: {} vs {}", short(k), show(a.get(k)), show(b.get(k))))
        .collect()
}

fn describe(what: &str, first: &str, name: &str, diffs: &[String]) -> String {
    let shown: Vec<&str> = diffs.iter().take(SHOWN).map(String::as_str).collect();
    let more = diffs.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "{what} differ between {first} and {name}: {}{tail}",
        shown.join("; ")
    )
}

/// A digest of one member's verdicts (for the trace).
pub fn digest(v: &Verdicts) -> String {
    let mut h = blake3::Hasher::new_derive_key("echo-sim verdicts digest");
    let mut section = |tag: &str, entries: Vec<(&String, String)>| {
        h.update(tag.as_bytes());
        h.update(&(entries.len() as u64).to_le_bytes());
        for (k, val) in entries {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(val.as_bytes());
            h.update(b";");
        }
    };
    section(
        "heads",
        v.heads.iter().map(|(k, n)| (k, n.to_string())).collect(),
    );
    section(
        "denied",
        v.denied.iter().map(|(k, r)| (k, r.clone())).collect(),
    );
    section(
        "members",
        v.members.iter().map(|(k, r)| (k, r.clone())).collect(),
    );
    h.finalize().to_hex()[..16].to_string()
}

/// Every way in which `b` (of member `name`) differs from `a` (of member `first`).
pub fn differ(first: &str, a: &Verdicts, name: &str, b: &Verdicts) -> Vec<String> {
    let mut found = Vec::new();
    let sections = [
        ("blocks held", differences(&a.heads, &b.heads)),
        ("denied blocks", differences(&a.denied, &b.denied)),
        ("members", differences(&a.members, &b.members)),
        ("admitted feeds", differences(&a.feeds, &b.feeds)),
    ];
    for (what, diffs) in sections {
        if !diffs.is_empty() {
            found.push(describe(what, first, name, &diffs));
        }
    }
    found
}

/// `Ok(summary)` if every member answered and all reached the same verdicts; otherwise
/// every way in which the first member that differs differs from the first one.
pub fn compare(names: &[String], verdicts: &[Option<Verdicts>]) -> Result<String, String> {
    let mut first: Option<(&String, &Verdicts)> = None;
    for (name, v) in names.iter().zip(verdicts) {
        let Some(v) = v else {
            return Err(format!("{name} did not report its verdicts"));
        };
        let Some((first_name, f)) = first else {
            first = Some((name, v));
            continue;
        };
        let found = differ(first_name, f, name, v);
        if !found.is_empty() {
            return Err(found.join(" | "));
        }
    }
    match first {
        Some((_, v)) => Ok(format!(
            "{} feeds, {} blocks, {} denied, {} members, verdicts {}",
            v.heads.len(),
            v.heads.values().sum::<u64>(),
            v.denied.len(),
            v.members.len(),
            digest(v)
        )),
        None => Err("no live member to compare".into()),
    }
}

/// The verdicts a restart would reach: the space `space_key` rebuilt from `store` alone by
/// the production load path (replay in causal order through a fresh `SpaceCore`).
pub fn replayed(store: &MemStore, space_key: &str) -> Result<Verdicts, String> {
    let key: PublicKey = space_key
        .parse()
        .map_err(|_| format!("`{space_key}` is not a space key"))?;
    let raw = store
        .get(&Key::space(&key))
        .map_err(|e| format!("store cannot be read: {e}"))?
        .ok_or_else(|| format!("no record of space {}", short(space_key)))?;
    let record: SpaceRecord = decode(&raw).map_err(|e| format!("corrupt space record: {e}"))?;
    let loaded = load_space(store, &record, 1).map_err(|e| format!("space does not load: {e}"))?;
    Ok(verdicts_of(&loaded.core))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn verdicts(len: u64) -> Verdicts {
        Verdicts {
            heads: BTreeMap::from([("aaaaaaaaaa".to_string(), len)]),
            members: BTreeMap::from([("bbbbbbbbbb".to_string(), "owner".to_string())]),
            ..Default::default()
        }
    }

    #[test]
    fn differences_name_both_sides() {
        let a = BTreeMap::from([("k1".to_string(), 1u64), ("k2".to_string(), 2)]);
        let b = BTreeMap::from([("k1".to_string(), 1u64), ("k3".to_string(), 3)]);
        assert_eq!(differences(&a, &b), vec!["k2: 2 vs -", "k3: - vs 3"]);
    }

    #[test]
    fn equal_verdicts_agree_and_digests_follow_content() {
        let names = vec!["a".to_string(), "b".to_string()];
        let ok = compare(&names, &[Some(verdicts(3)), Some(verdicts(3))]).unwrap();
        assert!(
            ok.contains("1 feeds, 3 blocks, 0 denied, 1 members"),
            "{ok}"
        );
        assert_ne!(digest(&verdicts(3)), digest(&verdicts(4)));
        let err = compare(&names, &[Some(verdicts(3)), Some(verdicts(4))]).unwrap_err();
        assert!(
            err.contains("blocks held differ between a and b: aaaaaaaa: 3 vs 4"),
            "{err}"
        );
    }
}
