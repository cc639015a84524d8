//! `PresenceCore`: who of one space is online, as a sans-IO state machine. One per space,
//! owned by the space actor; its frames cross the space's replication channels only.
//!
//! Call [`PresenceCore::handle`] with the current time and one input, and carry out the
//! returned [`PresenceOutput`]s in order: `Send` puts a frame on one channel, `SetTimer`
//! asks for one `Timer` input at `at` (give it the wall clock then, for the seq), `Heard`
//! and `Refused` are for logs. Call `Start` once, then `Members` whenever the control state
//! changes, `ChannelOpened`/`ChannelClosed` as channels come and go, and `Received` for
//! every presence frame a channel reads. Queries ([`PresenceCore::online_devices`], ...)
//! take `now` too. The core reads no clock and does no I/O.
//!
//! Rules:
//! - **Announce.** Every `interval` (default 10 s) the core signs a fresh [`Announcement`]
//!   with this device's key and sends it on every *member channel*.
//! - **Online.** A device is online while the silence since its last accepted announcement
//!   (less the frame's `age_ms`) is at most `timeout` (default 20 s): exactly then, at any
//!   `now`. This device is always online. An identity is online if one of its devices is.
//! - **Only members.** A member channel is one whose peer proved (at the Hello) an identity
//!   that is a member (not REMOVED), or whose device writes admitted feeds of one. Nothing is
//!   sent on, and nothing is taken from, any other channel: a node still joining (no control
//!   state) sends and takes no presence. So presence tells nothing to a non-member.
//! - **Unforgeable.** An announcement is taken only if its device is one the space knows for
//!   a member (its admitted feeds, or the Hello of an open member channel), and its
//!   signature by that very device key over this space key verifies. A member can therefore
//!   announce only its own devices, whoever relays the frame. Signed rather than first-hand
//!   only, so that presence crosses hops (A-B-C: A sees C).
//! - **Relay, once.** A taken announcement is relayed at once to every other member channel
//!   (not back, and not to the device itself). Per device only a seq larger than the last
//!   taken one counts, and at most one per `interval / 2`; duplicates are dropped before the
//!   signature is checked. So each announcement crosses each channel at most once per
//!   direction: no storm, however the mesh is looped.
//! - **Catch-up.** A channel that becomes a member channel is sent our latest announcement
//!   and the latest of every device online, with their ages, so a new peer need not wait an
//!   interval.
//! - **Bounded.** State is kept per device the space knows (at most [`MAX_TRACKED`]) and
//!   per open channel. A device whose identity is no longer a member is forgotten (offline
//!   at once); one the space no longer knows is forgotten once offline.
//!
//! Limits: a member could relay a genuine announcement late (within the receiver's
//! memory it is a duplicate; after the receiver restarts, an old one counts as new), which
//! shows its device online for at most `timeout` longer. Seqs come from the announcing
//! device's wall clock, so a device whose clock jumps back is not heard again until it
//! passes its last seq or receivers forget it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::{Announcement, PresenceFrame};
use crate::types::{KeyPair, PublicKey};

/// Most devices whose presence one space keeps.
pub const MAX_TRACKED: usize = 4096;
/// Default time between two announcements.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default silence after which a device is offline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The two intervals of presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Between two announcements of this device.
    pub interval: Duration,
    /// Silence after which a device is offline (should be about twice `interval`).
    pub timeout: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl PresenceConfig {
    /// Longest interval taken (an hour); longer ones are cut to it.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
    /// Longest timeout taken (a day).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

    /// Within 1 ms ..= [`Self::MAX_INTERVAL`] / [`Self::MAX_TIMEOUT`], so that no time
    /// computed from them overflows.
    pub fn clamped(self) -> Self {
        let ms1 = Duration::from_millis(1);
        PresenceConfig {
            interval: self.interval.clamp(ms1, Self::MAX_INTERVAL),
            timeout: self.timeout.clamp(ms1, Self::MAX_TIMEOUT),
        }
    }
}

/// A replication channel, as the space actor numbers them.
pub type ChannelId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PresenceTimer {
    Announce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceInput {
    /// Once, first. `wall_ms` is the wall clock (for the seq).
    Start {
        wall_ms: u64,
    },
    /// The control state: every admitted device of a member that is not REMOVED, with its
    /// identity, and those identities.
    Members {
        devices: BTreeMap<PublicKey, PublicKey>,
        identities: BTreeSet<PublicKey>,
    },
    /// A channel opened to `device`, which proved `identity` at its Hello (None: unknown).
    ChannelOpened {
        channel: ChannelId,
        device: PublicKey,
        identity: Option<PublicKey>,
    },
    ChannelClosed {
        channel: ChannelId,
    },
    /// A presence frame read from `channel`.
    Received {
        channel: ChannelId,
        frame: PresenceFrame,
    },
    /// A `SetTimer` came due.
    Timer {
        timer: PresenceTimer,
        wall_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceOutput {
    Send {
        channel: ChannelId,
        frame: PresenceFrame,
    },
    SetTimer {
        at: Instant,
        timer: PresenceTimer,
    },
    /// An announcement was taken: `device` (of `identity`) is online.
    Heard {
        device: PublicKey,
        identity: PublicKey,
    },
    /// A frame whose signature does not verify for its device: the sender (a member)
    /// forged it or relayed a forgery.
    Refused {
        channel: ChannelId,
        device: PublicKey,
    },
}

/// One device of the space, as heard.
#[derive(Debug, Clone)]
struct Heard {
    identity: PublicKey,
    /// The last taken announcement.
    latest: Announcement,
    /// When it was taken (for the one-per-half-interval rule).
    taken_at: Instant,
    /// Online until then (inclusive); None: heard only stale (its seq counts, it is offline).
    fresh_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Channel {
    device: PublicKey,
    identity: Option<PublicKey>,
    /// Sent the catch-up already.
    greeted: bool,
}

/// A device heard recently, as the queries report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub identity: PublicKey,
    /// Since the device was last heard (zero for this device).
    pub silent: Duration,
}

/// Presence of one space.
#[derive(Debug)]
pub struct PresenceCore {
    config: PresenceConfig,
    space_key: PublicKey,
    key: KeyPair,
    me: PublicKey,
    identity: PublicKey,
    /// Our latest announcement and when we made it.
    own: Option<(Announcement, Instant)>,
    devices: BTreeMap<PublicKey, PublicKey>,
    identities: BTreeSet<PublicKey>,
    channels: BTreeMap<ChannelId, Channel>,
    heard: BTreeMap<PublicKey, Heard>,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl PresenceCore {
    /// Presence of `space_key` for this device (`key`), which signs for `identity`.
    pub fn new(
        config: PresenceConfig,
        space_key: PublicKey,
        key: KeyPair,
        identity: PublicKey,
    ) -> Self {
        let me = key.public();
        PresenceCore {
            config: config.clamped(),
            space_key,
            key,
            me,
            identity,
            own: None,
            devices: BTreeMap::new(),
            identities: BTreeSet::new(),
            channels: BTreeMap::new(),
            heard: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> PresenceConfig {
        self.config
    }

    pub fn handle(&mut self, now: Instant, input: PresenceInput) -> Vec<PresenceOutput> {
        let mut out = Vec::new();
        match input {
            PresenceInput::Start { wall_ms } => {
                self.sign_own(now, wall_ms);
                self.set_timer(now, &mut out);
            }
            PresenceInput::Timer {
                timer: PresenceTimer::Announce,
                wall_ms,
            } => {
                let own = self.sign_own(now, wall_ms);
                let frame = PresenceFrame {
                    announcement: own,
                    age_ms: 0,
                };
                for id in self.member_channels() {
                    out.push(PresenceOutput::Send { channel: id, frame });
                }
                self.prune(now);
                self.set_timer(now, &mut out);
            }
            PresenceInput::Members {
                devices,
                identities,
            } => {
                self.devices = devices;
                self.identities = identities;
                self.prune(now);
                self.greet_all(now, &mut out);
            }
            PresenceInput::ChannelOpened {
                channel,
                device,
                identity,
            } => {
                self.channels.insert(
                    channel,
                    Channel {
                        device,
                        identity,
                        greeted: false,
                    },
                );
                self.greet_all(now, &mut out);
            }
            PresenceInput::ChannelClosed { channel } => {
                self.channels.remove(&channel);
            }
            PresenceInput::Received { channel, frame } => {
                self.received(now, channel, frame, &mut out)
            }
        }
        out
    }

    fn set_timer(&self, now: Instant, out: &mut Vec<PresenceOutput>) {
        out.push(PresenceOutput::SetTimer {
            at: now + self.config.interval,
            timer: PresenceTimer::Announce,
        });
    }

    fn sign_own(&mut self, now: Instant, wall_ms: u64) -> Announcement {
        let seq = match &self.own {
            Some((last, _)) => wall_ms.max(last.seq.saturating_add(1)),
            None => wall_ms,
        };
        let own = Announcement::sign(&self.space_key, &self.key, seq);
        self.own = Some((own, now));
        own
    }

    fn is_member_channel(&self, c: &Channel) -> bool {
        c.identity.is_some_and(|i| self.identities.contains(&i))
            || self.devices.contains_key(&c.device)
    }

    fn member_channels(&self) -> Vec<ChannelId> {
        self.channels
            .iter()
            .filter(|(_, c)| self.is_member_channel(c))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The member identity `device` belongs to, if the space knows the device.
    fn identity_of(&self, device: &PublicKey) -> Option<PublicKey> {
        if let Some(i) = self.devices.get(device) {
            return Some(*i);
        }
        self.channels
            .values()
            .filter(|c| c.device == *device)
            .find_map(|c| c.identity.filter(|i| self.identities.contains(i)))
    }

    /// Sends the catch-up to every member channel that has not had it.
    fn greet_all(&mut self, now: Instant, out: &mut Vec<PresenceOutput>) {
        let due: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| !c.greeted && self.is_member_channel(c))
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        let mut frames = Vec::new();
        if let Some((own, at)) = &self.own {
            frames.push((
                self.me,
                PresenceFrame {
                    announcement: *own,
                    age_ms: ms(now.saturating_duration_since(*at)),
                },
            ));
        }
        for (device, h) in &self.heard {
            if let Some(until) = h.fresh_until.filter(|f| *f >= now) {
                let left = until.saturating_duration_since(now);
                let age = self.config.timeout.saturating_sub(left);
                frames.push((
                    *device,
                    PresenceFrame {
                        announcement: h.latest,
                        age_ms: ms(age),
                    },
                ));
            }
        }
        for id in due {
            let Some(c) = self.channels.get_mut(&id) else {
                continue;
            };
            c.greeted = true;
            let peer = c.device;
            for (device, frame) in &frames {
                if *device != peer {
                    out.push(PresenceOutput::Send {
                        channel: id,
                        frame: *frame,
                    });
                }
            }
        }
    }

    fn received(
        &mut self,
        now: Instant,
        channel: ChannelId,
        frame: PresenceFrame,
        out: &mut Vec<PresenceOutput>,
    ) {
        let Some(from) = self.channels.get(&channel) else {
            return;
        };
        if !self.is_member_channel(from) {
            return;
        }
        let ann = frame.announcement;
        if ann.device == self.me {
            return;
        }
        let Some(identity) = self.identity_of(&ann.device) else {
            return;
        };
        let min_gap = self.config.interval / 2;
        if let Some(h) = self.heard.get(&ann.device) {
            if ann.seq <= h.latest.seq || now < h.taken_at + min_gap {
                return;
            }
        }
        if ann.verify(&self.space_key).is_err() {
            out.push(PresenceOutput::Refused {
                channel,
                device: ann.device,
            });
            return;
        }
        let age = Duration::from_millis(u64::from(frame.age_ms));
        let fresh = (age <= self.config.timeout).then(|| now + (self.config.timeout - age));
        if !self.heard.contains_key(&ann.device) && self.heard.len() >= MAX_TRACKED {
            self.evict_stalest();
        }
        // A stale frame (older than the timeout) is remembered for its seq only.
        let fresh_until = self
            .heard
            .get(&ann.device)
            .and_then(|h| h.fresh_until)
            .max(fresh);
        self.heard.insert(
            ann.device,
            Heard {
                identity,
                latest: ann,
                taken_at: now,
                fresh_until,
            },
        );
        if fresh.is_none() {
            return;
        }
        out.push(PresenceOutput::Heard {
            device: ann.device,
            identity,
        });
        for id in self.member_channels() {
            let Some(c) = self.channels.get(&id) else {
                continue;
            };
            if id != channel && c.device != ann.device {
                out.push(PresenceOutput::Send { channel: id, frame });
            }
        }
    }

    fn evict_stalest(&mut self) {
        if let Some(device) = self
            .heard
            .iter()
            .min_by_key(|(_, h)| h.fresh_until)
            .map(|(d, _)| *d)
        {
            self.heard.remove(&device);
        }
    }

    /// Forgets devices of identities that are no longer members, and devices the space no
    /// longer knows once they are offline.
    fn prune(&mut self, now: Instant) {
        let known: BTreeSet<PublicKey> = self
            .heard
            .keys()
            .filter(|d| self.identity_of(d).is_some())
            .copied()
            .collect();
        let identities = &self.identities;
        self.heard.retain(|d, h| {
            identities.contains(&h.identity)
                && (known.contains(d) || h.fresh_until.is_some_and(|f| f >= now))
        });
    }

    /// Is `device` online at `now`?
    pub fn is_online(&self, now: Instant, device: &PublicKey) -> bool {
        *device == self.me
            || self
                .heard
                .get(device)
                .and_then(|h| h.fresh_until)
                .is_some_and(|f| f >= now)
    }

    /// Every device online at `now`, this one included, with its identity and silence.
    pub fn online_devices(&self, now: Instant) -> BTreeMap<PublicKey, Seen> {
        let mut online: BTreeMap<PublicKey, Seen> = self
            .heard
            .iter()
            .filter_map(|(d, h)| {
                let until = h.fresh_until.filter(|f| *f >= now)?;
                let left = until.saturating_duration_since(now);
                let silent = self.config.timeout.saturating_sub(left);
                Some((
                    *d,
                    Seen {
                        identity: h.identity,
                        silent,
                    },
                ))
            })
            .collect();
        online.insert(
            self.me,
            Seen {
                identity: self.identity,
                silent: Duration::ZERO,
            },
        );
        online
    }

    /// Identities with a device online at `now` (ours included).
    pub fn online_identities(&self, now: Instant) -> BTreeSet<PublicKey> {
        self.online_devices(now)
            .into_values()
            .map(|s| s.identity)
            .collect()
    }

    /// Devices whose presence is remembered (for memory bounds).
    pub fn tracked(&self) -> usize {
        self.heard.len()
    }
}
