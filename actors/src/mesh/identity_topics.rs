//! Identity topics: how a device recovered with every other device of its identity lost
//! finds, through signaling alone, the members of its identity's spaces.
//!
//! Such a device knows no space's topic (the list of its spaces was in its identity space,
//! which nobody holds any more), only its identity key. So:
//!
//! - Every node **listens** under the identity topic ([`identity_topic`]) of each identity
//!   that is a member (not REMOVED) of one of its spaces, its own identity excepted: it
//!   joins that topic at its signaling servers and never dials anyone it learns there.
//! - A device whose identity space is still being joined (recovered, `SpaceOpened::
//!   identity_space_joining`) **seeks** under its own identity's topic: a seeking
//!   [`SwarmCore`](super::SwarmCore) dials every device there, a few at a time, and each new
//!   connection of a recovering device asks the peer which of its spaces the identity is a
//!   member of (`invitation/spaces_of.rs`). It joins those, and their own topics from then
//!   on.
//!
//! At most [`MAX_LISTENED`] identities are listened for, fewer when the node's other topics
//! leave less room under the server's [`MAX_TOPICS_PER_CONN`]; the identities in the most
//! of this node's spaces come first, then the lower keys. What a signaling server learns
//! from it: that the nodes under an identity topic share a space with that identity (a
//! server that knows the identity key can compute its topic), never which space.
//!
//! [`IdentityTopics`] is the sans-IO plan: given the members of each space, it says which
//! topics to join and leave. `network_identity.rs` runs it in the network actor.

use std::collections::{BTreeMap, BTreeSet};

use crate::credentials::Role;
use crate::signal::{Topic, MAX_TOPICS_PER_CONN};
use crate::types::PublicKey;

/// The most identities a node listens for.
pub const MAX_LISTENED: usize = 64;

/// Topics left free under [`MAX_TOPICS_PER_CONN`] for invitations and new spaces.
pub const RESERVED_TOPICS: usize = 16;

/// The signaling topic of an identity: a keyed hash of its identity key.
pub fn identity_topic(identity: &PublicKey) -> Topic {
    blake3::derive_key("echo-rs identity topic v1", identity.as_bytes())
}

/// What to change at the signaling servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicChanges {
    /// Topics to listen under (join, and never dial from).
    pub listen: Vec<Topic>,
    /// Listened topics to leave.
    pub leave: Vec<Topic>,
    /// Our own identity's topic, to seek under (once).
    pub seek: Option<Topic>,
}

/// Which identity topics this node is in (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct IdentityTopics {
    listened: BTreeMap<Topic, PublicKey>,
    seeking: Option<Topic>,
}

/// What [`IdentityTopics::plan`] works from.
#[derive(Debug, Clone, Default)]
pub struct TopicInputs {
    /// Our identity, once known.
    pub own: Option<PublicKey>,
    /// The members of each space of this node, with their roles.
    pub members: Vec<Vec<(PublicKey, Role)>>,
    /// Whether our identity space is still being joined (a recovered device).
    pub recovering: bool,
    /// How many other topics (spaces, invitations, the one we seek under) this node is in.
    pub other_topics: usize,
}

impl IdentityTopics {
    /// The topics we listen under now.
    pub fn listened(&self) -> impl Iterator<Item = &Topic> {
        self.listened.keys()
    }

    /// The topic we seek under, if we do.
    pub fn seeking(&self) -> Option<Topic> {
        self.seeking
    }

    /// Whether `topic` is one we listen under (its peers are never dialed).
    pub fn is_listened(&self, topic: &Topic) -> bool {
        self.listened.contains_key(topic)
    }

    /// Decides the identity topics for `inputs`, remembers them, and returns the changes.
    pub fn plan(&mut self, inputs: &TopicInputs) -> TopicChanges {
        let budget = MAX_LISTENED
            .min(MAX_TOPICS_PER_CONN.saturating_sub(inputs.other_topics + RESERVED_TOPICS));
        let wanted: BTreeMap<Topic, PublicKey> = listened_identities(inputs, budget)
            .into_iter()
            .map(|id| (identity_topic(&id), id))
            .collect();
        let leave: Vec<Topic> = self
            .listened
            .keys()
            .filter(|t| !wanted.contains_key(*t))
            .copied()
            .collect();
        let listen: Vec<Topic> = wanted
            .keys()
            .filter(|t| !self.listened.contains_key(*t))
            .copied()
            .collect();
        self.listened = wanted;
        let seek = match (inputs.recovering, inputs.own, self.seeking) {
            (true, Some(own), None) => {
                let topic = identity_topic(&own);
                self.seeking = Some(topic);
                Some(topic)
            }
            _ => None,
        };
        TopicChanges {
            listen,
            leave,
            seek,
        }
    }
}

/// The identities to listen for: members (not REMOVED) of our spaces other than us, those
/// in the most spaces first, then by key; at most `budget`.
fn listened_identities(inputs: &TopicInputs, budget: usize) -> Vec<PublicKey> {
    let Some(own) = inputs.own else {
        return Vec::new();
    };
    let mut spaces_of: BTreeMap<PublicKey, usize> = BTreeMap::new();
    for members in &inputs.members {
        let in_space: BTreeSet<PublicKey> = members
            .iter()
            .filter(|(id, role)| *id != own && *role != Role::Removed)
            .map(|(id, _)| *id)
            .collect();
        for id in in_space {
            *spaces_of.entry(id).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, PublicKey)> =
        spaces_of.into_iter().map(|(id, n)| (n, id)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().take(budget).map(|(_, id)| id).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    fn inputs(own: u8, members: &[&[(u8, Role)]]) -> TopicInputs {
        TopicInputs {
            own: Some(key(own)),
            members: members
                .iter()
                .map(|m| m.iter().map(|(k, r)| (key(*k), *r)).collect())
                .collect(),
            recovering: false,
            other_topics: members.len(),
        }
    }

    #[test]
    fn identity_topics_are_keyed_hashes_unlike_space_topics() {
        assert_eq!(identity_topic(&key(1)), identity_topic(&key(1)));
        assert_ne!(identity_topic(&key(1)), identity_topic(&key(2)));
        assert_ne!(identity_topic(&key(1)), crate::signal::space_topic(&key(1)));
        assert_ne!(
            identity_topic(&key(1)).as_slice(),
            key(1).as_bytes().as_slice()
        );
    }

    #[test]
    fn a_node_listens_for_the_other_members_of_its_spaces_and_follows_their_changes() {
        let mut topics = IdentityTopics::default();
        let owner = Role::Owner;
        let editor = Role::Editor;
        let first = topics.plan(&inputs(
            1,
            &[&[(1, owner), (2, editor), (3, Role::Removed)]],
        ));
        assert_eq!(
            first.listen,
            vec![identity_topic(&key(2))],
            "not us, not REMOVED"
        );
        assert!(first.leave.is_empty() && first.seek.is_none());
        // Planning again changes nothing.
        let again = topics.plan(&inputs(
            1,
            &[&[(1, owner), (2, editor), (3, Role::Removed)]],
        ));
        assert_eq!(again, TopicChanges::default());
        // 2 is removed, 4 joins another space: leave 2's topic, listen under 4's.
        let next = topics.plan(&inputs(
            1,
            &[
                &[(1, owner), (2, Role::Removed)],
                &[(4, editor), (1, editor)],
            ],
        ));
        assert_eq!(next.listen, vec![identity_topic(&key(4))]);
        assert_eq!(next.leave, vec![identity_topic(&key(2))]);
        assert!(topics.is_listened(&identity_topic(&key(4))));
        assert!(!topics.is_listened(&identity_topic(&key(2))));
        // Without an identity nothing is listened for.
        let mut none = IdentityTopics::default();
        let mut no_identity = inputs(1, &[&[(2, editor)]]);
        no_identity.own = None;
        assert_eq!(none.plan(&no_identity), TopicChanges::default());
    }

    #[test]
    fn a_recovering_device_seeks_under_its_own_topic_once() {
        let mut topics = IdentityTopics::default();
        let mut i = inputs(1, &[]);
        i.recovering = true;
        i.own = None;
        assert_eq!(topics.plan(&i).seek, None, "identity not known yet");
        i.own = Some(key(1));
        assert_eq!(topics.plan(&i).seek, Some(identity_topic(&key(1))));
        assert_eq!(topics.plan(&i).seek, None, "already seeking");
        assert_eq!(topics.seeking(), Some(identity_topic(&key(1))));
        assert_eq!(
            topics.listened().count(),
            0,
            "its own topic is not listened under"
        );
    }

    #[test]
    fn the_budget_keeps_room_for_other_topics_and_prefers_identities_in_more_spaces() {
        // 100 identities, one space each; identity 200 in three spaces.
        let mut spaces: Vec<Vec<(PublicKey, Role)>> = (0..100u8)
            .map(|b| vec![(key(b + 2), Role::Editor)])
            .collect();
        for s in spaces.iter_mut().take(3) {
            s.push((key(200), Role::Reader));
        }
        let mut i = TopicInputs {
            own: Some(key(1)),
            members: spaces,
            recovering: false,
            other_topics: 100,
        };
        let mut topics = IdentityTopics::default();
        let plan = topics.plan(&i);
        assert_eq!(plan.listen.len(), MAX_LISTENED);
        assert!(
            topics.is_listened(&identity_topic(&key(200))),
            "in the most spaces"
        );
        assert!(
            topics.is_listened(&identity_topic(&key(2))),
            "then the lowest keys"
        );
        assert!(!topics.is_listened(&identity_topic(&key(101))));
        // Many other topics: only what fits under the server's limit.
        i.other_topics = MAX_TOPICS_PER_CONN - RESERVED_TOPICS - 10;
        let plan = topics.plan(&i);
        assert_eq!(topics.listened().count(), 10);
        assert_eq!(plan.leave.len(), MAX_LISTENED - 10);
        assert!(topics.is_listened(&identity_topic(&key(200))));
        i.other_topics = MAX_TOPICS_PER_CONN;
        topics.plan(&i);
        assert_eq!(topics.listened().count(), 0);
    }

    proptest! {
        /// Whatever the spaces hold: never us, never a REMOVED-only member, never more than
        /// fits, and the topics joined minus those left are exactly the ones listened under.
        #[test]
        fn plans_stay_within_their_rules(
            rounds in proptest::collection::vec(
                (proptest::collection::vec(proptest::collection::vec((0u8..12, 0usize..4), 0..6), 0..5), 0usize..260),
                1..6,
            ),
        ) {
            let roles = [Role::Owner, Role::Editor, Role::Reader, Role::Removed];
            let mut topics = IdentityTopics::default();
            let mut joined: BTreeSet<Topic> = BTreeSet::new();
            for (spaces, other_topics) in rounds {
                let members: Vec<Vec<(PublicKey, Role)>> = spaces
                    .iter()
                    .map(|m| m.iter().map(|(k, r)| (key(*k), roles[*r])).collect())
                    .collect();
                let i = TopicInputs { own: Some(key(0)), members: members.clone(), recovering: false, other_topics };
                let changes = topics.plan(&i);
                for t in &changes.leave {
                    prop_assert!(joined.remove(t));
                }
                for t in &changes.listen {
                    prop_assert!(joined.insert(*t));
                }
                let listened: BTreeSet<Topic> = topics.listened().copied().collect();
                prop_assert_eq!(&listened, &joined);
                prop_assert!(listened.len() + other_topics + RESERVED_TOPICS <= MAX_TOPICS_PER_CONN || listened.is_empty());
                prop_assert!(!listened.contains(&identity_topic(&key(0))));
                for t in &listened {
                    let live = members.iter().flatten().any(|(k, r)| identity_topic(k) == *t && *r != Role::Removed && *k != key(0));
                    prop_assert!(live);
                }
            }
        }
    }
}
