//! The identity's space list, kept in its identity space (HALO).
//!
//! Contract: every space of this node but the identity space itself is listed there as an
//! object of type [`LISTING_TYPE`] (`space_key`, and the name it has here), written by the
//! device that created or joined it. Every device of the identity reads the list and joins
//! each listed space it does not have, so a device that joins the identity later (a device
//! invitation) or recovers it (the seed phrase) gets every space. Listings are ordinary
//! objects, so they replicate, are judged and cut by revocation like any other data block,
//! and only the identity's devices (its only member) can write them.
//!
//! [`reconcile`] is the whole rule, without I/O: the directory runs it whenever the list
//! may have changed and carries out its plan.
//!
//! Revocations spread the same way ([`to_revoke`]): a device revoked in the identity space
//! is revoked by this device in every other space of the node where it is not revoked yet,
//! so a revocation written where the revoker could write (the identity space, say, by a
//! device just recovered from the seed phrase and not yet admitted elsewhere) reaches every
//! space of the identity through whichever device is in it. Its cut there is what that
//! device holds of the revoked one when it writes; the verdict rule makes every peer of the
//! space deny the same blocks whatever the cut.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::types::PublicKey;

/// The `@type` of a listing object.
pub const LISTING_TYPE: &str = "echo.halo.space";

/// The listing object of a space.
pub fn listing(space_key: &PublicKey, name: Option<&str>) -> Value {
    json!({
        "@type": LISTING_TYPE,
        "space_key": space_key.to_hex(),
        "name": name,
    })
}

/// The query for every listing.
pub fn listing_query() -> crate::space::QueryRequest {
    crate::space::QueryRequest {
        type_name: Some(LISTING_TYPE.to_string()),
        where_eq: vec![],
        include_deleted: false,
    }
}

/// The spaces a query for [`LISTING_TYPE`] answered, with their listed names (the first
/// name seen for a space listed twice). An object that does not name a valid key is passed
/// over: the list is written by the identity's own devices, but a newer version may add
/// fields, and nothing here may panic on what a peer wrote.
pub fn listed_spaces(objects: &[Value]) -> BTreeMap<PublicKey, Option<String>> {
    let mut out = BTreeMap::new();
    for object in objects {
        let Some(key) = object
            .get("space_key")
            .and_then(Value::as_str)
            .and_then(|k| k.parse::<PublicKey>().ok())
        else {
            continue;
        };
        let name = object
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.entry(key).or_insert(name);
    }
    out
}

/// What to do to make this node and the list agree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Listed spaces this node does not have: join them (with their listed names).
    pub join: Vec<(PublicKey, Option<String>)>,
    /// Spaces of this node the list lacks: list them.
    pub list: Vec<PublicKey>,
}

/// Compares this node's spaces (`ours`, the identity space left out) with the list.
/// Spaces already being listed (`listing`) are not listed again.
pub fn reconcile(
    ours: &BTreeSet<PublicKey>,
    listed: &BTreeMap<PublicKey, Option<String>>,
    listing: &BTreeSet<PublicKey>,
    halo: PublicKey,
) -> Reconciled {
    Reconciled {
        join: listed
            .iter()
            .filter(|(k, _)| !ours.contains(k) && **k != halo)
            .map(|(k, n)| (*k, n.clone()))
            .collect(),
        list: ours
            .iter()
            .filter(|k| !listed.contains_key(k) && !listing.contains(k) && **k != halo)
            .copied()
            .collect(),
    }
}

/// The devices this device should revoke in a space: those the identity space says are
/// revoked (`halo`: device -> revoked, as `OurDevices` answers) that the space (`there`)
/// does not, this device itself excepted (a revoked device writes nothing).
pub fn to_revoke(
    halo: &BTreeMap<PublicKey, bool>,
    there: &BTreeMap<PublicKey, bool>,
    this_device: &PublicKey,
) -> Vec<PublicKey> {
    if halo.get(this_device) == Some(&true) {
        return vec![];
    }
    halo.iter()
        .filter(|(device, revoked)| **revoked && there.get(*device) != Some(&true))
        .map(|(device, _)| *device)
        .filter(|device| device != this_device)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        crate::types::KeyPair::from_secret([n; 32]).public()
    }

    #[test]
    fn listings_round_trip_and_junk_is_passed_over() {
        let a = key(1);
        let b = key(2);
        let objects = vec![
            listing(&a, Some("notes")),
            listing(&b, None),
            listing(&a, Some("again")),
            json!({"@type": LISTING_TYPE, "space_key": "not a key"}),
            json!({"@type": LISTING_TYPE, "space_key": 7}),
            json!({"@type": LISTING_TYPE}),
        ];
        let listed = listed_spaces(&objects);
        assert_eq!(
            listed,
            BTreeMap::from([(a, Some("notes".to_string())), (b, None)])
        );
    }

    #[test]
    fn revocations_of_the_identity_space_spread_to_spaces_that_lack_them() {
        let (me, phone, tablet, old) = (key(1), key(2), key(3), key(4));
        let halo = BTreeMap::from([(me, false), (phone, true), (tablet, false), (old, true)]);
        // The space knows the old device revoked already, the phone not (or not at all).
        let there = BTreeMap::from([(me, false), (phone, false), (old, true)]);
        assert_eq!(to_revoke(&halo, &there, &me), vec![phone]);
        assert_eq!(to_revoke(&halo, &BTreeMap::new(), &me), vec![phone, old]);
        // Nothing once the space has them all, and nothing from a revoked device.
        let done = BTreeMap::from([(phone, true), (old, true)]);
        assert_eq!(to_revoke(&halo, &done, &me), vec![]);
        assert_eq!(to_revoke(&halo, &BTreeMap::new(), &phone), vec![]);
        // Nothing revoked in the identity space: nothing to spread.
        let none = BTreeMap::from([(me, false), (phone, false)]);
        assert_eq!(to_revoke(&none, &BTreeMap::new(), &me), vec![]);
    }

    #[test]
    fn reconcile_joins_what_is_listed_and_lists_what_is_ours() {
        let (halo, a, b, c, d) = (key(9), key(1), key(2), key(3), key(4));
        let ours = BTreeSet::from([a, b, d]);
        let listed = BTreeMap::from([(a, None), (c, Some("c".to_string())), (halo, None)]);
        let plan = reconcile(&ours, &listed, &BTreeSet::from([d]), halo);
        assert_eq!(plan.join, vec![(c, Some("c".to_string()))]);
        // b is not listed; d is being listed already; the identity space never is.
        assert_eq!(plan.list, vec![b]);
        let all = BTreeSet::from([a, b, c, d]);
        let listed_all = all.iter().map(|k| (*k, None)).collect();
        assert_eq!(
            reconcile(&all, &listed_all, &BTreeSet::new(), halo),
            Reconciled::default()
        );
    }
}
