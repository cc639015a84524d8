//! `SpaceActor`: one per space. Runs local mutations through [`SpaceCore`], makes them
//! durable in group commits (`commit.rs`: the writes that arrive while one commit is in
//! flight become the next block) on our data feed (via its `FeedActor`) before answering,
//! serves reads and queries, and feeds live subscriptions.
//!
//! A write is applied in memory at once, so reads on this node see it before it is durable
//! (and the next write builds on it); subscribers, Yjs clients and peers hear of it only once
//! its block is durable. If a commit fails, the database is rebuilt from the store and every
//! write not yet durable fails, so memory never runs ahead of the feeds across a failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use serde_json::Value;
use tokio::sync::mpsc;

use super::commit::{CommitQueue, Next, WriteKind};
use super::remote::HeadsChanged;
use super::{load_space, LocalOp, SpaceCore, SpaceError};
use super::{ChangeEvent, ChangeKind, FeedStatus, QueryRequest, SpaceRequestError, SpaceStatus};
use crate::credentials::Signer;
use crate::db::{ChangeKind as DbChangeKind, Changes, DbError, Mutation, ObjectId, Query};
use crate::feed::{Append, FeedActor, FeedError, Payload};
use crate::store::Store;
use crate::types::{Clock, PublicKey};

/// Capacity of one watch stream; a subscriber further behind than this is dropped.
pub const WATCH_CAPACITY: usize = 1024;

pub(super) struct Subscriber {
    type_name: Option<String>,
    tx: mpsc::Sender<ChangeEvent>,
}

/// The actor of one space.
pub struct SpaceActor {
    pub(super) core: SpaceCore,
    pub(super) feeds: BTreeMap<PublicKey, Addr<FeedActor>>,
    pub(super) subscribers: Vec<Subscriber>,
    /// Replication channels that want to hear when our heads change.
    pub(super) head_watchers: Vec<Recipient<HeadsChanged>>,
    /// Yjs bridge clients (raw updates).
    pub(super) bridge: super::bridge::Bridge,
    /// This device signing for its identity (spaces exist only once there is an identity).
    pub(super) signer: Signer,
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    /// Local writes on their way to a block.
    pub(super) commits: CommitQueue,
    /// The feed lengths the channels were last told of (`announce_heads` sends what grew).
    pub(super) announced_heads: crate::replication::Heads,
    pub(super) metrics: crate::metrics::Metrics,
    /// `WaitAdmitted` requests waiting for our membership and feeds.
    pub(super) admission_waiters: Vec<tokio::sync::oneshot::Sender<crate::credentials::Role>>,
    /// Who of the space is online (`presence.rs`).
    pub(super) presence: super::presence::Presence,
    /// A revocation took effect while local writes were between memory and disk: rebuild
    /// once they are stored (see [`SpaceActor::rebuild_after_revocation`]).
    pub(super) revocation_rebuild: bool,
    rng: ChaCha20Rng,
}

impl SpaceActor {
    pub fn new(
        core: SpaceCore,
        feeds: BTreeMap<PublicKey, Addr<FeedActor>>,
        signer: Signer,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: ChaCha20Rng,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        let presence = super::presence::Presence::new(crate::presence::PresenceCore::new(
            Default::default(),
            core.record().space_key,
            signer.key.clone(),
            signer.issuer,
        ));
        SpaceActor {
            metrics,
            presence,
            core,
            feeds,
            subscribers: Vec::new(),
            head_watchers: Vec::new(),
            bridge: Default::default(),
            signer,
            store,
            clock,
            admission_waiters: Vec::new(),
            commits: CommitQueue::default(),
            announced_heads: Default::default(),
            revocation_rebuild: false,
            rng,
        }
    }

    /// With this coalescing window for streamed writes (`commit.rs`; capped there).
    pub fn with_coalesce(mut self, window: std::time::Duration) -> Self {
        self.commits = CommitQueue::new(window);
        self
    }

    /// Yrs client ids are 53 bits.
    fn fresh_client_id(&mut self) -> u64 {
        self.rng.next_u64() & ((1 << 53) - 1)
    }

    fn new_object_id(&mut self) -> ObjectId {
        let random = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        ObjectId::from_parts(self.clock.now_ms(), random)
    }

    /// Rebuilds the core from the store (after a failed append, or a revocation that took
    /// effect), keeping the blocks that wait in the quarantine.
    pub(super) fn rebuild(&mut self) {
        let client_id = self.fresh_client_id();
        match load_space(self.store.as_ref(), self.core.record(), client_id) {
            Ok(loaded) => {
                let held = self.core.take_quarantine();
                self.core = loaded.core;
                for block in held {
                    // Cannot overflow: the old quarantine held them within the same limit.
                    let _ = self.core.hold(block);
                }
                self.bridge.reattach(&mut self.core);
            }
            Err(e) => {
                tracing::error!(space = %self.core.record().space_key, error = %e, "rebuild after failed write failed")
            }
        }
    }

    pub(super) fn notify(&mut self, changes: &Changes) {
        self.bridge.flush();
        if self.subscribers.is_empty() {
            return;
        }
        let events: Vec<(ObjectId, ChangeKind, Value)> = changes
            .iter()
            .filter_map(|(id, kind)| {
                let object = self.core.doc().get(&id)?;
                let kind = match kind {
                    DbChangeKind::Added => ChangeKind::Added,
                    DbChangeKind::Updated => ChangeKind::Updated,
                    DbChangeKind::Deleted => ChangeKind::Deleted,
                };
                Some((id, kind, object))
            })
            .collect();
        self.broadcast(events);
    }

    /// Sends `events` to every watch subscriber whose type filter they pass; a subscriber
    /// too far behind is dropped.
    pub(super) fn broadcast(&mut self, events: Vec<(ObjectId, ChangeKind, Value)>) {
        let space_key = self.core.record().space_key.to_hex();
        for (id, kind, object) in events {
            let event = ChangeEvent {
                space_key: space_key.clone(),
                id: id.to_string(),
                kind,
                object,
            };
            let type_of = event.object.get("@type").and_then(Value::as_str);
            self.subscribers.retain(|s| {
                if s.type_name.as_deref().is_some_and(|t| Some(t) != type_of) {
                    return !s.tx.is_closed();
                }
                match s.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!("watch subscriber fell {WATCH_CAPACITY} events behind; closing its stream");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
    }
}

impl Actor for SpaceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.presence_start(ctx);
    }
}

/// Maps database errors to what a caller sees.
pub(crate) fn db_error(e: DbError) -> SpaceRequestError {
    match e {
        DbError::NotFound(id) => SpaceRequestError::ObjectNotFound(id.to_string()),
        DbError::Deleted(id) => SpaceRequestError::ObjectDeleted(id.to_string()),
        DbError::TooLarge(m) => SpaceRequestError::TooLarge(m),
        DbError::BadUpdate(m) => SpaceRequestError::Corrupt(m),
        other => SpaceRequestError::Invalid(other.to_string()),
    }
}

fn space_error(e: SpaceError) -> SpaceRequestError {
    match e {
        SpaceError::Db(e) => db_error(e),
        SpaceError::Denied(d) => SpaceRequestError::Forbidden(d.to_string()),
        other => SpaceRequestError::Invalid(other.to_string()),
    }
}

/// Parses an object id given by a client.
pub(crate) fn parse_id(id: &str) -> Result<ObjectId, SpaceRequestError> {
    id.parse().map_err(|_| {
        SpaceRequestError::Invalid(format!(
            "`{}` is not an object id (a 26-character ULID)",
            id.chars().take(40).collect::<String>()
        ))
    })
}

/// A local mutation, answered with the id of the object once the block is durable.
#[derive(Message)]
#[rtype(result = "Result<ObjectId, SpaceRequestError>")]
pub enum Mutate {
    /// Add a new object (the actor assigns the id).
    Add(Value),
    Op(LocalOp),
}

impl Handler<Mutate> for SpaceActor {
    type Result = ResponseActFuture<Self, Result<ObjectId, SpaceRequestError>>;

    fn handle(&mut self, msg: Mutate, ctx: &mut Context<Self>) -> Self::Result {
        let op = match msg {
            Mutate::Add(object) => LocalOp::Add {
                id: self.new_object_id(),
                object,
            },
            Mutate::Op(op) => op,
        };
        let id = match &op {
            LocalOp::Add { id, .. }
            | LocalOp::Update { id, .. }
            | LocalOp::Delete { id }
            | LocalOp::TextInsert { id, .. }
            | LocalOp::TextDelete { id, .. } => *id,
        };
        let mutation = match self.core.local(op) {
            Ok(m) => m,
            Err(e) => return Box::pin(fut::ready(Err(space_error(e)))),
        };
        if mutation.changes.is_empty() {
            return Box::pin(fut::ready(Ok(id)));
        }
        Box::pin(
            self.commit_mutation(mutation, WriteKind::Awaited, ctx)
                .map(move |res, _, _| res.map(|()| id)),
        )
    }
}

impl SpaceActor {
    /// Queues `mutation` (already applied in memory) for the next group commit and answers
    /// once its block is durable (see the module docs and `commit.rs`).
    pub(super) fn commit_mutation(
        &mut self,
        mutation: Mutation,
        kind: WriteKind,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), SpaceRequestError>> {
        let rx = self.queue_mutation(mutation, kind, ctx);
        Box::pin(
            async move { rx.await.unwrap_or(Err(SpaceRequestError::Unavailable)) }.into_actor(self),
        )
    }

    /// Queues `mutation` (already applied in memory) for the next group commit; the
    /// receiver hears once its block is durable.
    pub(super) fn queue_mutation(
        &mut self,
        mutation: Mutation,
        kind: WriteKind,
        ctx: &mut Context<Self>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), SpaceRequestError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // tokio's clock: simulated under turmoil.
        let now = tokio::time::Instant::now();
        let next = self
            .commits
            .push(now, kind, mutation.update, mutation.changes, tx);
        self.commit_next(next, ctx);
        rx
    }

    /// Carries out what the commit queue said.
    fn commit_next(&mut self, next: Next, ctx: &mut Context<Self>) {
        match next {
            Next::Start => self.start_commit(ctx),
            Next::Hold(at) => {
                let wait = at.saturating_duration_since(tokio::time::Instant::now());
                ctx.run_later(wait, |act, ctx| {
                    let next = act.commits.timer(tokio::time::Instant::now());
                    act.commit_next(next, ctx);
                });
            }
            Next::Wait => {}
        }
    }

    /// Commits the next batch, if there is one and none is in flight: one merged update,
    /// one block, one store write and flush. Then the next.
    fn start_commit(&mut self, ctx: &mut Context<Self>) {
        let Some(batch) = self.commits.start(tokio::time::Instant::now()) else {
            return;
        };
        let feed = self.feeds.get(&self.core.record().data_feed).cloned();
        let update = batch.merged_update();
        let (Some(feed), Ok(update)) = (feed, update) else {
            let err = SpaceRequestError::Corrupt(
                "our data feed has no actor, or the batch's updates do not merge".into(),
            );
            self.fail_commits(batch, err);
            let next = self.commits.finished(tokio::time::Instant::now());
            self.commit_next(next, ctx);
            return;
        };
        let append = Append {
            timeframe: self.core.timeframe().clone(),
            payload: Payload::Mutation(update),
        };
        // tokio's clock (simulated under turmoil); only for the counters.
        let started = tokio::time::Instant::now();
        feed.send(append)
            .into_actor(self)
            .map(move |res, act, ctx| {
                match res {
                    Ok(Ok(block)) => {
                        let m = &act.metrics;
                        let micros = started.elapsed().as_micros() as u64;
                        m.add("echo_commits_total", &[], 1);
                        m.add("echo_commit_writes_total", &[], batch.len() as u64);
                        m.max("echo_commit_writes_max", &[], batch.len() as u64);
                        m.add("echo_commit_micros_sum", &[], micros);
                        m.add("echo_flushes_total", &[], 1);
                        act.core.record_local(&block);
                        act.bridge.send_local(&batch.updates);
                        act.notify(&batch.changes);
                        act.announce_heads();
                        batch.answer(&Ok(()));
                    }
                    Ok(Err(e)) => act.fail_commits(batch, append_error(e, "write")),
                    Err(_) => act.fail_commits(batch, SpaceRequestError::Unavailable),
                }
                let next = act.commits.finished(tokio::time::Instant::now());
                if act.revocation_rebuild && act.commits.is_idle() {
                    act.rebuild_after_revocation();
                }
                act.commit_next(next, ctx);
            })
            .spawn(ctx);
    }

    /// A commit failed: nothing of it (nor of the batches queued behind it, which may build
    /// on it) is stored, so memory is rebuilt from the store and all of them fail.
    fn fail_commits(&mut self, batch: super::commit::Batch, err: SpaceRequestError) {
        tracing::warn!(error = %err, writes = batch.len(), "a commit failed; rolling back");
        self.rebuild();
        batch.answer(&Err(err.clone_for_waiters()));
        self.commits.fail_all(&err);
    }
}

/// What the caller of a mutation sees when its block could not be appended: a block over
/// the limit is "too large" (413; a Yjs client's socket closes 4413), anything else a
/// storage error.
pub(super) fn append_error(e: FeedError, what: &str) -> SpaceRequestError {
    match e {
        FeedError::TooLarge { .. } => SpaceRequestError::TooLarge(e.to_string()),
        other => SpaceRequestError::Storage(format!("{what} not saved: {other}")),
    }
}

/// One object, also when soft-deleted.
#[derive(Message)]
#[rtype(result = "Result<Value, SpaceRequestError>")]
pub struct GetObject(pub ObjectId);

impl Handler<GetObject> for SpaceActor {
    type Result = Result<Value, SpaceRequestError>;
    fn handle(&mut self, msg: GetObject, _: &mut Context<Self>) -> Self::Result {
        self.core
            .doc()
            .get(&msg.0)
            .ok_or_else(|| SpaceRequestError::ObjectNotFound(msg.0.to_string()))
    }
}

/// The objects matching a query, ordered by id.
#[derive(Message)]
#[rtype(result = "Result<Vec<Value>, SpaceRequestError>")]
pub struct QueryObjects(pub QueryRequest);

impl Handler<QueryObjects> for SpaceActor {
    type Result = Result<Vec<Value>, SpaceRequestError>;
    fn handle(&mut self, msg: QueryObjects, _: &mut Context<Self>) -> Self::Result {
        let q = msg.0;
        for w in &q.where_eq {
            if w.path.is_empty() || w.path.split('.').any(str::is_empty) {
                return Err(SpaceRequestError::Invalid(format!(
                    "bad property path `{}`: use dotted names like `address.city`",
                    w.path
                )));
            }
        }
        let query = Query {
            type_name: q.type_name,
            where_eq: q.where_eq.into_iter().map(|w| (w.path, w.value)).collect(),
            include_deleted: q.include_deleted,
        };
        Ok(self.core.doc().query(&query))
    }
}

/// The content of a text field.
#[derive(Message)]
#[rtype(result = "Result<String, SpaceRequestError>")]
pub struct TextGet {
    pub id: ObjectId,
    pub field: String,
}

impl Handler<TextGet> for SpaceActor {
    type Result = Result<String, SpaceRequestError>;
    fn handle(&mut self, msg: TextGet, _: &mut Context<Self>) -> Self::Result {
        self.core
            .doc()
            .text_get(&msg.id, &msg.field)
            .map_err(db_error)
    }
}

/// Subscribe to changes (optionally of one `@type`).
#[derive(Message)]
#[rtype(result = "mpsc::Receiver<ChangeEvent>")]
pub struct Watch {
    pub type_name: Option<String>,
}

impl Handler<Watch> for SpaceActor {
    type Result = MessageResult<Watch>;
    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = mpsc::channel(WATCH_CAPACITY);
        self.subscribers.retain(|s| !s.tx.is_closed());
        self.subscribers.push(Subscriber {
            type_name: msg.type_name,
            tx,
        });
        MessageResult(rx)
    }
}

/// Status of this space: feeds and their lengths.
#[derive(Message)]
#[rtype(result = "SpaceStatus")]
pub struct SpaceStatusRequest;

impl Handler<SpaceStatusRequest> for SpaceActor {
    type Result = MessageResult<SpaceStatusRequest>;
    fn handle(&mut self, _: SpaceStatusRequest, _: &mut Context<Self>) -> Self::Result {
        let record = self.core.record();
        let state = self.core.state();
        let feeds = state
            .feeds()
            .iter()
            .map(|(key, info)| FeedStatus {
                feed_key: key.to_hex(),
                designation: info.designation.as_str().to_string(),
                device_key: info.device_key.to_hex(),
                length: self.core.timeframe().get(key).map_or(0, |s| s + 1),
            })
            .collect();
        MessageResult(SpaceStatus {
            space_key: record.space_key.to_hex(),
            name: record.name.clone(),
            role: state
                .role(&self.signer.issuer)
                .map(|r| r.as_str().to_string()),
            feeds,
            peers: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_over_the_limit_is_a_too_large_error() {
        let e = append_error(FeedError::TooLarge { size: 4 << 20 }, "write");
        assert!(matches!(e, SpaceRequestError::TooLarge(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("4194304") && text.contains("split it"),
            "{text}"
        );
        let e = append_error(FeedError::Storage("disk full".into()), "write");
        assert!(matches!(e, SpaceRequestError::Storage(_)), "{e:?}");
    }
}
