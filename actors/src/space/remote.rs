//! The network-facing side of `SpaceActor`: heads, serving block ranges, ingesting blocks
//! from peers (verify -> store -> apply, with a bounded quarantine), authorising peers,
//! membership by key, and a member's own feed admission once it learns it was added.

use actix::prelude::*;

use super::members::EnsureAdmitted;
use super::SpaceRequestError;
use super::{FeedRecord, SpaceActor, SpaceError, Verdict};
use crate::credentials::{Credential, Designation, Role};
use crate::feed::{Block, FeedActor, FeedLog, IngestMany, ReadRange};
use crate::replication::Heads;
use crate::store::Key;
use crate::types::{encode, PublicKey};

/// Sent to every head watcher when the space's feeds grew.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct HeadsChanged {
    pub space_key: PublicKey,
    /// The feeds that grew since the last `HeadsChanged`, with their new lengths (may be
    /// empty when only the control state changed).
    pub heads: Heads,
    /// [`crate::credentials::ControlHistory::version`]: when it changes, channels re-check
    /// that their peer is still a member.
    pub control_version: u64,
}

impl SpaceActor {
    /// Feed lengths as stored and applied.
    pub(super) fn heads(&self) -> Heads {
        self.core
            .timeframe()
            .iter()
            .map(|(k, s)| (*k, s + 1))
            .collect()
    }

    /// Tells every channel which feeds grew since the last announcement (a partial map:
    /// channels merge it by maximum), so that a write costs each channel its own feed, not
    /// the space's every feed.
    pub(super) fn announce_heads(&mut self) {
        let heads = self.heads();
        let grown: Heads = heads
            .iter()
            .filter(|(feed, len)| self.announced_heads.get(feed) < Some(len))
            .map(|(f, l)| (*f, *l))
            .collect();
        self.announced_heads = heads;
        let msg = HeadsChanged {
            space_key: self.core.record().space_key,
            heads: grown,
            control_version: self.core.control().version(),
        };
        self.wake_admission_waiters();
        self.head_watchers.retain(|w| w.connected());
        for w in &self.head_watchers {
            w.do_send(msg.clone());
        }
    }

    /// The feed's actor, started (and its record written) if this is a feed new to us.
    fn feed_actor(&mut self, feed: PublicKey) -> Result<Addr<FeedActor>, SpaceRequestError> {
        if let Some(addr) = self.feeds.get(&feed) {
            return Ok(addr.clone());
        }
        let designation = self
            .core
            .state()
            .feed(&feed)
            .map_or(Designation::Control, |f| f.designation);
        let record = FeedRecord {
            feed_key: feed,
            designation,
            own: false,
        };
        let bytes = encode(&record).map_err(|e| SpaceRequestError::Storage(e.to_string()))?;
        self.store
            .put(&Key::feed(&self.core.record().space_key, &feed), &bytes)
            .map_err(|e| SpaceRequestError::Storage(e.to_string()))?;
        let addr = FeedActor::new(FeedLog::new(feed), None, self.store.clone()).start();
        self.feeds.insert(feed, addr.clone());
        Ok(addr)
    }
}

/// Our heads.
#[derive(Message)]
#[rtype(result = "Heads")]
pub struct GetHeads;

impl Handler<GetHeads> for SpaceActor {
    type Result = MessageResult<GetHeads>;
    fn handle(&mut self, _: GetHeads, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.heads())
    }
}

/// Tell `0` whenever our heads change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchHeads(pub Recipient<HeadsChanged>);

impl Handler<WatchHeads> for SpaceActor {
    type Result = ();
    fn handle(&mut self, msg: WatchHeads, _: &mut Context<Self>) {
        self.head_watchers.push(msg.0);
    }
}

/// Blocks `from..to` of `feed`, for a peer (empty if we do not hold the feed): at most
/// [`crate::replication::MAX_BLOCKS_BYTES`] of them by encoded size (always at least one),
/// so that one read fills at most one `Blocks` frame.
#[derive(Message)]
#[rtype(result = "Vec<Block>")]
pub struct ReadBlocks {
    pub feed: PublicKey,
    pub from: u64,
    pub to: u64,
}

impl Handler<ReadBlocks> for SpaceActor {
    type Result = ResponseFuture<Vec<Block>>;
    fn handle(&mut self, msg: ReadBlocks, _: &mut Context<Self>) -> Self::Result {
        let feed = self.feeds.get(&msg.feed).cloned();
        Box::pin(async move {
            match feed {
                Some(addr) => addr
                    .send(ReadRange {
                        from: msg.from,
                        to: msg.to,
                        max_bytes: crate::replication::MAX_BLOCKS_BYTES,
                    })
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        })
    }
}

/// What happened to a batch of blocks from a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Stored, whatever their verdict.
    pub stored: usize,
    /// Of `stored`, denied (their writer was not allowed to write them in their causal
    /// past): kept and passed over, as on every peer. No fault of the peer that sent them.
    pub denied: usize,
    pub duplicates: usize,
    pub held: usize,
    /// `feed:seq reason` of every rejected block: a bad signature, or not part of the space.
    /// An honest peer never sends these.
    pub rejected: Vec<String>,
}

/// Verify, store and apply blocks from a peer.
#[derive(Message)]
#[rtype(result = "IngestReport")]
pub struct IngestBlocks(pub Vec<Block>);

impl Handler<IngestBlocks> for SpaceActor {
    type Result = AtomicResponse<Self, IngestReport>;
    fn handle(&mut self, msg: IngestBlocks, _: &mut Context<Self>) -> Self::Result {
        let plan = self.core.plan(msg.0);
        let mut report = IngestReport {
            duplicates: plan.duplicates,
            rejected: plan
                .rejected
                .iter()
                .map(|(f, s, r)| format!("{}:{s} {r}", f.short()))
                .collect(),
            ..Default::default()
        };
        for (feed, seq, reason) in &plan.rejected {
            tracing::warn!(space = %self.core.record().space_key.short(), feed = %feed.short(), seq, %reason, "block rejected");
        }
        for block in plan.hold {
            if self.core.hold(block).is_ok() {
                report.held += 1;
            }
        }
        // Consecutive runs of one feed go to its actor as one batch (one flush each).
        let mut runs: Vec<(Addr<FeedActor>, Vec<Block>)> = Vec::new();
        for block in plan.accept {
            match runs.last_mut() {
                Some((_, run)) if run.last().is_some_and(|b| b.feed_key == block.feed_key) => {
                    run.push(block)
                }
                _ => match self.feed_actor(block.feed_key) {
                    Ok(addr) => runs.push((addr, vec![block])),
                    Err(e) => {
                        report.rejected.push(format!(
                            "{}:{} {e}",
                            block.feed_key.short(),
                            block.seq
                        ));
                        break;
                    }
                },
            }
        }
        // Every run is written first, then the store is flushed once for the whole batch;
        // only then is anything applied (nothing is applied that is not durable).
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let store = async move {
            let mut stored = Vec::new();
            for (addr, run) in runs {
                match addr.send(IngestMany(run)).await {
                    Ok((written, err)) => {
                        stored.extend(written);
                        if let Some(e) = err {
                            tracing::warn!(error = %e, "peer block not stored");
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            if !stored.is_empty() {
                let started = tokio::time::Instant::now();
                if let Err(e) = store.flush_async().await {
                    tracing::warn!(error = %e, blocks = stored.len(), "peer blocks not flushed; not applied");
                    stored.clear();
                }
                metrics.add("echo_flushes_total", &[], 1);
                metrics.add(
                    "echo_flush_micros_sum",
                    &[],
                    started.elapsed().as_micros() as u64,
                );
                let bytes: usize = stored.iter().filter_map(|b| b.encoded_len().ok()).sum();
                metrics.add("echo_blocks_ingested_total", &[], stored.len() as u64);
                metrics.add("echo_block_bytes_ingested_total", &[], bytes as u64);
            }
            stored
        };
        AtomicResponse::new(Box::pin(store.into_actor(self).map(move |stored, act, ctx| {
            let mut changes = crate::db::Changes::default();
            for block in &stored {
                match act.core.apply(block) {
                    Ok(Verdict::Accepted(c)) => changes.extend(c),
                    Ok(Verdict::Denied(reason)) => {
                        report.denied += 1;
                        tracing::info!(space = %act.core.record().space_key.short(), feed = %block.feed_key.short(),
                            seq = block.seq, %reason, "block denied (kept, never applied)");
                    }
                    // Applied meanwhile (a copy stored by an earlier batch): nothing to do.
                    Err(SpaceError::NotNext {
                        applied: Some(a), ..
                    }) if block.seq <= a => {}
                    Err(e) => {
                        tracing::warn!(feed = %block.feed_key.short(), seq = block.seq, error = %e, "stored block does not apply; passing over it");
                        act.core.skip(block);
                    }
                }
            }
            report.stored = stored.len();
            if act.core.take_rebuild() {
                act.rebuild_after_revocation();
            }
            // Through the mailbox, not `ctx.notify`: actix runs notified items in the same
            // poll as a mailbox message whose atomic future it has not yet started waiting
            // on, so a notified `IngestBlocks` could plan against a state that another batch
            // is about to change (seen in a 32-peer simulation: two batches storing the same
            // block). Mailbox messages wait for every atomic handler before them.
            let me = ctx.address();
            if !stored.is_empty() {
                act.notify(&changes);
                act.announce_heads();
                me.do_send(EnsureAdmitted);
            }
            let ready = act.core.take_ready();
            if !ready.is_empty() {
                me.do_send(IngestBlocks(ready));
            }
            report
        })))
    }
}

/// Is the device on the other end of a connection, proving its identity with `auth`, a
/// member of this space? Answers the member's role, or `None` while we are still joining
/// (no control state yet): then every block the peer sends is verified all the same.
#[derive(Message)]
#[rtype(result = "Result<Option<Role>, PeerRefused>")]
pub struct AuthorizePeer {
    pub device: PublicKey,
    pub auth: Credential,
}

/// Why `AuthorizePeer` said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRefused {
    pub reason: String,
    /// The credential is valid and its identity was never a member: a newcomer (not a
    /// forger, not a REMOVED member).
    pub newcomer: bool,
    /// The credential is valid and its identity was removed from the space, or the device
    /// was revoked: the peer is to be told so (a serving-only channel hands it the
    /// credentials that say so; `mesh/hello.rs`).
    pub former_member: bool,
}

impl From<String> for PeerRefused {
    fn from(reason: String) -> Self {
        PeerRefused {
            reason,
            newcomer: false,
            former_member: false,
        }
    }
}

impl From<&str> for PeerRefused {
    fn from(reason: &str) -> Self {
        reason.to_string().into()
    }
}

impl std::fmt::Display for PeerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Handler<AuthorizePeer> for SpaceActor {
    type Result = Result<Option<Role>, PeerRefused>;
    fn handle(&mut self, msg: AuthorizePeer, _: &mut Context<Self>) -> Self::Result {
        let refused = |reason: String, newcomer| PeerRefused {
            reason,
            newcomer,
            former_member: false,
        };
        let former = |reason: String| PeerRefused {
            reason,
            newcomer: false,
            former_member: true,
        };
        // The identity's AuthorizedDevice for exactly this device, with a chain that
        // verifies link by link (credentials/chain.rs).
        let identity = msg
            .auth
            .verify_device_authorization(None, msg.device)
            .map_err(|e| refused(format!("device credential: {e}"), false))?
            .identity;
        if !self.core.state().has_genesis() {
            return Ok(None);
        }
        if self.core.revocations().is_revoked(&identity, &msg.device) {
            return Err(former(format!(
                "device {} was revoked by its identity",
                msg.device.short()
            )));
        }
        match self.core.state().role(&identity) {
            Some(Role::Removed) => Err(former(format!(
                "identity {} was removed from the space",
                identity.short()
            ))),
            None => Err(refused(
                format!("identity {} is not a member", identity.short()),
                true,
            )),
            Some(role) => Ok(Some(role)),
        }
    }
}

/// May we open a channel for this space to `0` (a device key)? Yes if that device writes
/// admitted feeds of a member that is not REMOVED, or if we are still joining (no control
/// state yet, so we know nobody), or if this is the identity space a recovered device
/// founded again from the seed phrase and it knows no other device of the identity yet
/// (the others, if any are left, hold it: the peer decides, as for a space still joining);
/// never once our own identity was removed from the space or this device revoked (nobody
/// would serve us; a member that re-admits us opens to us).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct MayOpenTo(pub PublicKey);

impl Handler<MayOpenTo> for SpaceActor {
    type Result = bool;
    fn handle(&mut self, msg: MayOpenTo, _: &mut Context<Self>) -> bool {
        !self.core.state().has_genesis()
            || (!self.shut_out() && (member_device(&self.core, &msg.0) || self.recovered_alone()))
    }
}

impl SpaceActor {
    /// This is an identity space a recovered device founded from the seed phrase (its
    /// record names no genesis feed, and the identity key itself writes one of its feeds:
    /// the derived genesis feed, which only identity spaces have), and it knows no device of
    /// the identity but this one.
    fn recovered_alone(&self) -> bool {
        let this_device = self.signer.key.public();
        let feeds = self.core.state().feeds();
        self.core.record().genesis_feed.is_none()
            && feeds.values().any(|f| f.device_key == f.identity_key)
            && feeds
                .values()
                .all(|f| f.device_key == f.identity_key || f.device_key == this_device)
    }
}

/// Is `0` (a device key) the device of a member (not REMOVED) of this space, as far as its
/// control state tells? A space still joining knows nobody.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KnowsDevice(pub PublicKey);

impl Handler<KnowsDevice> for SpaceActor {
    type Result = bool;
    fn handle(&mut self, msg: KnowsDevice, _: &mut Context<Self>) -> bool {
        member_device(&self.core, &msg.0)
    }
}

/// Is `identity` a member (not REMOVED) of this space, with `device` not revoked? (A
/// recovered device asks which spaces to join: `SpacesOfIdentity`.)
#[derive(Message)]
#[rtype(result = "bool")]
pub struct MemberOf {
    pub identity: PublicKey,
    pub device: PublicKey,
}

impl Handler<MemberOf> for SpaceActor {
    type Result = bool;
    fn handle(&mut self, msg: MemberOf, _: &mut Context<Self>) -> bool {
        self.core
            .state()
            .role(&msg.identity)
            .is_some_and(|r| r != Role::Removed)
            && !self
                .core
                .revocations()
                .is_revoked(&msg.identity, &msg.device)
    }
}

/// What a leaving channel serves a former member so that it learns of its removal or
/// revocation: feed key -> most blocks to serve. Every control feed whole (where every
/// credential is), and of the other feeds only the causal past of the accepted credentials
/// (a credential is applied only once its writer's timeframe is): no data written since.
#[derive(Message)]
#[rtype(result = "crate::replication::Heads")]
pub struct CredentialsPast;

impl Handler<CredentialsPast> for SpaceActor {
    type Result = MessageResult<CredentialsPast>;
    fn handle(&mut self, _: CredentialsPast, _: &mut Context<Self>) -> Self::Result {
        let mut limits = self.core.control().causal_past();
        for (key, f) in self.core.state().feeds() {
            if f.designation == Designation::Control {
                limits.insert(*key, u64::MAX);
            }
        }
        MessageResult(limits)
    }
}

/// Whether `device` writes an admitted feed of a member that is not REMOVED.
fn member_device(core: &super::SpaceCore, device: &PublicKey) -> bool {
    let state = core.state();
    state.feeds().values().any(|f| {
        f.device_key == *device
            && state
                .role(&f.identity_key)
                .is_some_and(|r| r != Role::Removed)
            && !core.revocations().is_revoked(&f.identity_key, device)
    })
}

/// Heads, denied blocks and derived control state, for checkers and `space verdicts`.
#[derive(Message)]
#[rtype(result = "super::SpaceVerdicts")]
pub struct GetVerdicts;

impl Handler<GetVerdicts> for SpaceActor {
    type Result = MessageResult<GetVerdicts>;
    fn handle(&mut self, _: GetVerdicts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(verdicts_of(&self.core))
    }
}

/// A core's verdicts in their plain form (the live actor and a replay use the same).
pub fn verdicts_of(core: &super::SpaceCore) -> super::SpaceVerdicts {
    let state = core.state();
    super::SpaceVerdicts {
        heads: core
            .timeframe()
            .iter()
            .map(|(k, s)| (k.to_hex(), s + 1))
            .collect(),
        denied: core
            .denied()
            .iter()
            .map(|((f, s), r)| (format!("{}:{s}", f.to_hex()), r.clone()))
            .collect(),
        members: state
            .members()
            .iter()
            .map(|(k, m)| (k.to_hex(), m.role.as_str().to_string()))
            .collect(),
        feeds: state
            .feeds()
            .iter()
            .map(|(k, f)| {
                let who = format!("{}:{}", f.identity_key.to_hex(), f.designation.as_str());
                (k.to_hex(), who)
            })
            .collect(),
    }
}

/// The members and their roles.
#[derive(Message)]
#[rtype(result = "Vec<(PublicKey, Role)>")]
pub struct ListMembers;

impl Handler<ListMembers> for SpaceActor {
    type Result = MessageResult<ListMembers>;
    fn handle(&mut self, _: ListMembers, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .state()
                .members()
                .iter()
                .map(|(k, m)| (*k, m.role))
                .collect(),
        )
    }
}
