//! The space actor's side of the Yjs bridge: a raw-update subscription beside the rendered
//! JSON watch, sync step 2 material, and client updates made into local mutations.
//!
//! Contract:
//! * [`YjsSubscribe`] answers, atomically with respect to the mailbox, the document's state
//!   vector, whether our data feed may write now, and a receiver of every v1 update committed
//!   afterwards (local writes once durable, peer blocks once stored, other clients' updates),
//!   so nothing falls between the state vector and the stream. A subscriber more than
//!   [`YJS_CAPACITY`] updates behind is dropped (its receiver closes), never buffered
//!   without bound.
//! * [`YjsDiff`] answers what a client with a given state vector lacks.
//! * [`YjsApply`] runs a client's update through [`SpaceCore::client_update`] (object model
//!   checked on a trial copy, role checked), applies it and queues it for group commit as a
//!   *streamed* write (`commit.rs`: quick successive edits may share one block within the
//!   coalescing window). It answers once applied, with a [`Durable`] for the commit; on a
//!   failed commit the core is rebuilt from the store, so memory never runs ahead of feeds
//!   for longer than a commit, and the client's `Durable` reports the failure.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::actor::db_error;
use super::{SpaceActor, SpaceError};
use crate::db::{DbError, UpdateSink};

use super::commit::WriteKind;
use super::SpaceRequestError;

/// Capacity of one raw-update stream.
pub const YJS_CAPACITY: usize = 4096;

/// What a Yjs client's subscription carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A v1 update the document committed.
    Update(Arc<[u8]>),
    /// The space was rebuilt and took out what the client holds (`rebuild.rs`): the stream
    /// ends here, and the client must load the space into a new document.
    Retracted,
}

/// The raw-update subscribers of one space and the sink their updates come through.
#[derive(Default)]
pub struct Bridge {
    sink: UpdateSink,
    subscribers: Vec<mpsc::Sender<BridgeEvent>>,
}

impl Bridge {
    /// Sends what the document committed since the last call to every subscriber.
    pub(super) fn flush(&mut self) {
        let updates = std::mem::take(
            &mut *self
                .sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.send_local(&updates);
    }

    /// Sends updates this node committed itself (local writes, client updates) once their
    /// block is durable; the document's sink leaves them out.
    pub(super) fn send_local(&mut self, updates: &[Vec<u8>]) {
        if self.subscribers.is_empty() {
            return;
        }
        for update in updates {
            let update: Arc<[u8]> = update.as_slice().into();
            self.subscribers.retain(|tx| {
                match tx.try_send(BridgeEvent::Update(Arc::clone(&update))) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            "a Yjs client fell {YJS_CAPACITY} updates behind; dropping it"
                        );
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
    }

    fn attach(&self, core: &mut super::SpaceCore) {
        if let Err(e) = core.doc_mut().set_update_sink(Some(Arc::clone(&self.sink))) {
            tracing::error!(error = %e, "cannot attach the Yjs bridge to the document");
        }
    }

    /// Tells every subscriber that the space took out what it holds, and ends its stream (one
    /// too far behind to be told is dropped, which ends its stream all the same).
    pub(super) fn retract(&mut self) {
        for tx in std::mem::take(&mut self.subscribers) {
            let _ = tx.try_send(BridgeEvent::Retracted);
        }
    }

    /// After the core was rebuilt: forget what the old document committed and attach the
    /// sink to the new one if anybody listens.
    pub(super) fn reattach(&mut self, core: &mut super::SpaceCore) {
        self.sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        if !self.subscribers.is_empty() {
            self.attach(core);
        }
    }
}

/// What a Yjs client session starts from.
#[derive(Debug)]
pub struct YjsSubscription {
    /// The space key (hex).
    pub space_key: String,
    /// The document's v1 state vector when the stream started.
    pub state_vector: Vec<u8>,
    /// Whether our data feed may write now (false for a READER or a member not admitted yet).
    pub writable: bool,
    /// Every v1 update committed after `state_vector`, and a [`BridgeEvent::Retracted`]
    /// if the space takes back what the client was sent.
    pub updates: mpsc::Receiver<BridgeEvent>,
}

/// Subscribe to the raw updates of the space.
#[derive(Message)]
#[rtype(result = "YjsSubscription")]
pub struct YjsSubscribe;

impl Handler<YjsSubscribe> for SpaceActor {
    type Result = MessageResult<YjsSubscribe>;
    fn handle(&mut self, _: YjsSubscribe, _: &mut Context<Self>) -> Self::Result {
        self.bridge.flush();
        let (tx, rx) = mpsc::channel(YJS_CAPACITY);
        self.bridge.subscribers.retain(|s| !s.is_closed());
        if self.bridge.subscribers.is_empty() {
            self.bridge.attach(&mut self.core);
        }
        self.bridge.subscribers.push(tx);
        let record = self.core.record();
        MessageResult(YjsSubscription {
            space_key: record.space_key.to_hex(),
            state_vector: self.core.doc().state_vector_v1(),
            writable: self
                .core
                .state()
                .check_data_writer(&record.data_feed)
                .is_ok(),
            updates: rx,
        })
    }
}

/// What a client with this v1 state vector lacks (sync step 2).
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, SpaceRequestError>")]
pub struct YjsDiff(pub Vec<u8>);

impl Handler<YjsDiff> for SpaceActor {
    type Result = Result<Vec<u8>, SpaceRequestError>;
    fn handle(&mut self, msg: YjsDiff, _: &mut Context<Self>) -> Self::Result {
        self.core.doc().diff_v1(&msg.0).map_err(client_error)
    }
}

/// A Yjs client's v1 update, to become a local mutation. Answered as soon as it is
/// checked and applied in memory, with a [`Durable`] that resolves once its block is
/// durable: a client streams its edits without waiting for each flush (so they can share
/// blocks), and still learns of a failed commit. Updates are applied in the order sent.
#[derive(Message)]
#[rtype(result = "Result<Durable, SpaceRequestError>")]
pub struct YjsApply(pub Vec<u8>);

/// Resolves once the update's block is durable (or its commit failed and was rolled back).
pub struct Durable(Option<oneshot::Receiver<Result<(), SpaceRequestError>>>);

impl Durable {
    /// Waits for the commit (at once for an update that changed nothing).
    pub async fn wait(self) -> Result<(), SpaceRequestError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(SpaceRequestError::Unavailable)),
        }
    }
}

/// Errors of a client's update as the client should see them (bad bytes are its fault).
fn client_error(e: DbError) -> SpaceRequestError {
    match e {
        DbError::BadUpdate(m) => SpaceRequestError::Invalid(m),
        other => db_error(other),
    }
}

impl Handler<YjsApply> for SpaceActor {
    type Result = Result<Durable, SpaceRequestError>;

    fn handle(&mut self, msg: YjsApply, ctx: &mut Context<Self>) -> Self::Result {
        let mutation = match self.core.client_update(&msg.0) {
            Ok(m) => m,
            Err(SpaceError::Db(e)) => return Err(client_error(e)),
            Err(e @ SpaceError::Retracted) => {
                return Err(SpaceRequestError::Retracted(e.to_string()))
            }
            Err(SpaceError::Denied(d)) => {
                return Err(SpaceRequestError::Forbidden(format!(
                    "this node may not write to the space ({d}); its Yjs bridge is read-only"
                )))
            }
            Err(e) => return Err(SpaceRequestError::Invalid(e.to_string())),
        };
        if mutation.update.is_empty() {
            return Ok(Durable(None));
        }
        // A Yjs client goes on without waiting: its quick edits may share a block.
        Ok(Durable(Some(self.queue_mutation(
            mutation,
            WriteKind::Streamed,
            ctx,
        ))))
    }
}
