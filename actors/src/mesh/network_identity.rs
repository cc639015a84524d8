//! The network actor's side of identity topics (`identity_topics.rs`): every
//! [`REFRESH_EVERY`], and once the signaling client starts, it asks each open space for its
//! members, plans with [`IdentityTopics`], and tells the signaling client which topics to
//! join and leave. A node without a signaling client does none of it (topics mean nothing
//! without a server; one that starts later, for an invitation, is planned for at once). The
//! topic a recovering device seeks under gets a seeking swarm, which the ordinary swarm
//! paths (peer events, ticks, connections) then drive; listened topics get none, so
//! nothing learnt there is ever dialed.

use std::time::Duration;

use actix::prelude::*;

use super::identity_topics::TopicInputs;
use super::network::NetworkActor;
use super::swarm::SwarmCore;
use crate::signal::{JoinTopic, LeaveTopic};
use crate::space::{ListMembers, SpaceActor};

/// How often the identity topics are planned again.
pub(super) const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Dials a seeking swarm may have going at once.
const SEEK_IN_FLIGHT: usize = 4;

impl NetworkActor {
    /// Plans the identity topics from the spaces' members now, and applies the changes.
    pub(super) fn refresh_identity_topics(&mut self, ctx: &mut Context<Self>) {
        let own = self.device_auth.as_ref().map(|auth| auth.issuer);
        if own.is_none() || self.signal.is_none() {
            return;
        }
        let recovering = self.spaces.values().any(|s| s.identity_space_joining);
        // Not listening: no members to listen for (seeking for ourselves stays on).
        let spaces: Vec<Addr<SpaceActor>> = if self.config.listen_for_members {
            self.spaces.values().map(|s| s.addr.clone()).collect()
        } else {
            Vec::new()
        };
        async move {
            let mut members = Vec::with_capacity(spaces.len());
            for space in spaces {
                // A space that stopped meanwhile has no members to listen for.
                members.push(space.send(ListMembers).await.unwrap_or_default());
            }
            members
        }
        .into_actor(self)
        .map(move |members, act, _| {
            let inputs = TopicInputs {
                own,
                members,
                recovering,
                other_topics: act.swarms.len(),
            };
            let changes = act.identity_topics.plan(&inputs);
            if let Some(signal) = &act.signal {
                for topic in changes.leave {
                    signal.do_send(LeaveTopic(topic));
                }
                for topic in changes.listen {
                    signal.do_send(JoinTopic(topic));
                }
            }
            if let Some(topic) = changes.seek {
                tracing::info!(
                    "seeking the members of our identity's spaces under its identity topic"
                );
                let mut salt = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut act.rng, &mut salt);
                let swarm = SwarmCore::seeking(act.me, SEEK_IN_FLIGHT, salt);
                act.start_swarm(topic, swarm);
            }
        })
        .spawn(ctx);
    }
}
