//! `SpaceDirectory`: the actor that knows every space of this node. It creates spaces,
//! lists them, resolves a key or name to the space's actor, and starts the actors of a
//! loaded space (its `SpaceActor` and one `FeedActor` per feed).
//!
//! The identity space (HALO) is one of its spaces, started like every other, but never
//! shown: `space list`, `status` and every lookup by key or name leave it out, so nobody
//! writes into it by hand. `directory_halo.rs` keeps it and the node's spaces in step.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{create_space, join_space, load_space, SpaceActor, SpaceRecord, SpaceStatusRequest};
use super::{SpaceInfo, SpaceRequestError, SpaceStatus};
use crate::credentials::Signer;
use crate::feed::FeedActor;
use crate::identity::{CurrentSigner, IdentityActor};
use crate::store::{Key, Store};
use crate::types::{check_name, decode, Clock, PublicKey};

pub(super) struct Entry {
    pub(super) record: SpaceRecord,
    pub(super) addr: Addr<SpaceActor>,
}

/// Every space of this node.
pub struct SpaceDirectory {
    metrics: crate::metrics::Metrics,
    pub(super) spaces: BTreeMap<PublicKey, Entry>,
    /// This device signing for its identity; `None` until there is an identity.
    pub(super) signer: Option<Signer>,
    /// Told about every space that opens (the network joins its swarm).
    space_watchers: Vec<Recipient<SpaceOpened>>,
    pub(super) identity: Addr<IdentityActor>,
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    rng: ChaCha20Rng,
    /// The key of the identity space, once there is one.
    pub(super) halo: Option<PublicKey>,
    /// Spaces whose listing in the identity space is being written.
    pub(super) listing: std::collections::BTreeSet<PublicKey>,
    /// A reconciliation with the identity space's list is due (coalesced).
    pub(super) reconcile_due: bool,
    /// Revocations of the identity space are being spread (one round at a time, so that a
    /// space never gets the same revocation twice from us).
    pub(super) spreading: bool,
    /// A relay of other identities' revocations is under way (`relay.rs`).
    pub(super) relaying: bool,
    /// The coalescing window of every space's commits (`commit.rs`).
    coalesce: std::time::Duration,
    /// The presence intervals of every space (`crate::presence`).
    presence: crate::presence::PresenceConfig,
}

impl SpaceDirectory {
    /// Loads every stored space and starts its actors. Must run inside an actix context.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        signer: Option<Signer>,
        identity: Addr<IdentityActor>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: ChaCha20Rng,
        metrics: crate::metrics::Metrics,
        coalesce: std::time::Duration,
        presence: crate::presence::PresenceConfig,
    ) -> Result<Self, SpaceRequestError> {
        let mut dir = SpaceDirectory {
            coalesce,
            presence,
            metrics,
            spaces: BTreeMap::new(),
            signer,
            space_watchers: Vec::new(),
            identity,
            store,
            clock,
            rng,
            halo: None,
            listing: Default::default(),
            reconcile_due: false,
            spreading: false,
            relaying: false,
        };
        dir.halo = super::directory_halo::stored_halo_key(dir.store.as_ref())?;
        let records = dir
            .store
            .scan_prefix(&Key::spaces())
            .map_err(|e| SpaceRequestError::Storage(e.to_string()))?;
        for (_, value) in records {
            let record: SpaceRecord = decode(&value)
                .map_err(|e| SpaceRequestError::Corrupt(format!("space record: {e}")))?;
            dir.start_space(record)?;
        }
        Ok(dir)
    }

    pub(super) fn child_rng(&mut self) -> ChaCha20Rng {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        ChaCha20Rng::from_seed(seed)
    }

    pub(super) fn start_space(&mut self, record: SpaceRecord) -> Result<(), SpaceRequestError> {
        let signer = self.signer.clone().ok_or_else(|| {
            SpaceRequestError::Corrupt(format!(
                "space {} is stored but this node has no identity",
                record.space_key
            ))
        })?;
        let mut rng = self.child_rng();
        let client_id = rng.next_u64() & ((1 << 53) - 1);
        let loaded = load_space(self.store.as_ref(), &record, client_id)?;
        let feeds = loaded
            .feeds
            .into_iter()
            .map(|(key, (_, log, kp))| (key, FeedActor::new(log, kp, self.store.clone()).start()))
            .collect();
        let addr = SpaceActor::new(
            loaded.core,
            feeds,
            signer,
            self.store.clone(),
            self.clock.clone(),
            rng,
            self.metrics.clone(),
        )
        .with_coalesce(self.coalesce)
        .with_presence(self.presence)
        .start();
        tracing::info!(space = %record.space_key, name = ?record.name, "space open");
        let opened = SpaceOpened {
            space_key: record.space_key,
            addr: addr.clone(),
            needs_peers: needs_peers(&record, self.halo),
            identity_space_joining: identity_space_joining(&record, self.halo),
        };
        self.space_watchers.retain(|w| w.connected());
        for w in &self.space_watchers {
            w.do_send(opened.clone());
        }
        self.spaces.insert(record.space_key, Entry { record, addr });
        Ok(())
    }

    /// Validates `name`, fetches the device signer, runs `make` (which writes a new space
    /// record) and starts the space: the shared path of creating and joining.
    fn with_signer<F>(
        &mut self,
        name: Option<String>,
        make: F,
    ) -> AtomicResponse<Self, Result<SpaceInfo, SpaceRequestError>>
    where
        F: FnOnce(&mut Self, Signer, Option<String>) -> Result<SpaceRecord, SpaceRequestError>
            + 'static,
    {
        if let Some(Err(err)) = name.as_deref().map(|n| self.check_new_name(n)) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(err))));
        }
        AtomicResponse::new(Box::pin(
            self.identity
                .send(CurrentSigner)
                .into_actor(self)
                .map(move |signer, act, ctx| {
                    let signer = signer??;
                    act.signer = Some(signer.clone());
                    let record = make(act, signer, name)?;
                    let info = Self::info(&record);
                    act.start_space(record)?;
                    // List it in the identity space.
                    ctx.notify(super::directory_halo::ReconcileHalo);
                    Ok(info)
                }),
        ))
    }

    /// A name for a new space: [`check_name`]'s rule, and not the name of another space of
    /// this node (every script using the name would then fail with `ambiguous_space`).
    /// The check and the insert run in the same atomic handler, so two concurrent creates
    /// cannot both take a name.
    pub(super) fn check_new_name(&self, name: &str) -> Result<(), SpaceRequestError> {
        check_name(name).map_err(|e| SpaceRequestError::Invalid(format!("space name: {e}")))?;
        match self
            .spaces
            .values()
            .find(|e| e.record.name.as_deref() == Some(name))
        {
            Some(taken) => Err(SpaceRequestError::NameTaken(
                name.to_owned(),
                taken.record.space_key.to_hex(),
            )),
            None => Ok(()),
        }
    }

    /// Every space but the identity space.
    fn shown(&self) -> impl Iterator<Item = &Entry> {
        let halo = self.halo;
        self.spaces
            .iter()
            .filter(move |(k, _)| Some(**k) != halo)
            .map(|(_, e)| e)
    }

    pub(super) fn info(record: &SpaceRecord) -> SpaceInfo {
        SpaceInfo {
            space_key: record.space_key.to_hex(),
            name: record.name.clone(),
        }
    }
}

impl Actor for SpaceDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.follow_halo(ctx);
    }
}

/// Create a space owned by this node's identity.
#[derive(Message)]
#[rtype(result = "Result<SpaceInfo, SpaceRequestError>")]
pub struct CreateSpace {
    pub name: Option<String>,
}

impl Handler<CreateSpace> for SpaceDirectory {
    type Result = AtomicResponse<Self, Result<SpaceInfo, SpaceRequestError>>;
    fn handle(&mut self, msg: CreateSpace, _: &mut Context<Self>) -> Self::Result {
        self.with_signer(msg.name, |act, signer, name| {
            let mut rng = act.child_rng();
            let now = act.clock.now_ms();
            Ok(create_space(act.store.as_ref(), &signer, name, &mut rng, now)?.record)
        })
    }
}

/// All spaces, ordered by key.
#[derive(Message)]
#[rtype(result = "Vec<SpaceInfo>")]
pub struct ListSpaces;

impl Handler<ListSpaces> for SpaceDirectory {
    type Result = MessageResult<ListSpaces>;
    fn handle(&mut self, _: ListSpaces, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.shown().map(|e| Self::info(&e.record)).collect())
    }
}

/// Find a space by key (hex) or by unique name.
#[derive(Message)]
#[rtype(result = "Result<Addr<SpaceActor>, SpaceRequestError>")]
pub struct ResolveSpace(pub String);

impl Handler<ResolveSpace> for SpaceDirectory {
    type Result = Result<Addr<SpaceActor>, SpaceRequestError>;
    fn handle(&mut self, msg: ResolveSpace, _: &mut Context<Self>) -> Self::Result {
        let wanted = msg.0.trim();
        if let Ok(key) = wanted.parse::<PublicKey>() {
            if Some(key) == self.halo {
                return Err(SpaceRequestError::Invalid(
                    "that is this identity's own identity space, which echo-node keeps \
                     itself (see `echo-node device --help`)"
                        .into(),
                ));
            }
            if let Some(entry) = self.spaces.get(&key) {
                return Ok(entry.addr.clone());
            }
        }
        let named: Vec<_> = self
            .shown()
            .filter(|e| e.record.name.as_deref() == Some(wanted))
            .collect();
        match named.as_slice() {
            [one] => Ok(one.addr.clone()),
            [] => Err(SpaceRequestError::SpaceNotFound(
                wanted.chars().take(80).collect(),
            )),
            many => Err(SpaceRequestError::AmbiguousSpace(
                wanted.to_string(),
                many.len(),
            )),
        }
    }
}

/// Status of every space.
#[derive(Message)]
#[rtype(result = "Result<Vec<SpaceStatus>, SpaceRequestError>")]
pub struct DirectoryStatus;

impl Handler<DirectoryStatus> for SpaceDirectory {
    type Result = ResponseFuture<Result<Vec<SpaceStatus>, SpaceRequestError>>;
    fn handle(&mut self, _: DirectoryStatus, _: &mut Context<Self>) -> Self::Result {
        let addrs: Vec<_> = self.shown().map(|e| e.addr.clone()).collect();
        Box::pin(async move {
            let mut out = Vec::with_capacity(addrs.len());
            for addr in addrs {
                out.push(addr.send(SpaceStatusRequest).await?);
            }
            Ok(out)
        })
    }
}

/// A space was opened (created, joined, or loaded at start).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct SpaceOpened {
    pub space_key: PublicKey,
    pub addr: Addr<SpaceActor>,
    /// A reason to dial the static peers: every space but an identity space this device
    /// founded (only the identity's other devices share that one, and a peer of another
    /// identity would take the connection for a stranger's). An identity space being
    /// joined (a recovered or new device) is one: its other devices are to be found.
    pub needs_peers: bool,
    /// Our identity space, joined by key and without a genesis when it was recorded (a
    /// recovered device): the network asks each new peer which spaces our identity is a
    /// member of (`invitation/spaces_of.rs`).
    pub identity_space_joining: bool,
}

/// See [`SpaceOpened::identity_space_joining`].
fn identity_space_joining(record: &SpaceRecord, halo: Option<PublicKey>) -> bool {
    Some(record.space_key) == halo && record.genesis_feed.is_none()
}

/// See [`SpaceOpened::needs_peers`].
fn needs_peers(record: &SpaceRecord, halo: Option<PublicKey>) -> bool {
    Some(record.space_key) != halo || record.genesis_feed.is_none()
}

/// Tell `0` about every open space now and every space opened later.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchSpaces(pub Recipient<SpaceOpened>);

impl Handler<WatchSpaces> for SpaceDirectory {
    type Result = ();
    fn handle(&mut self, msg: WatchSpaces, _: &mut Context<Self>) {
        for (key, entry) in &self.spaces {
            msg.0.do_send(SpaceOpened {
                space_key: *key,
                addr: entry.addr.clone(),
                needs_peers: needs_peers(&entry.record, self.halo),
                identity_space_joining: identity_space_joining(&entry.record, self.halo),
            });
        }
        self.space_watchers.push(msg.0);
    }
}

/// Join a space by key: make our own feeds for it and start replicating. Our feeds are
/// admitted once a member adds our identity and we have replicated that.
#[derive(Message)]
#[rtype(result = "Result<SpaceInfo, SpaceRequestError>")]
pub struct JoinSpace {
    pub space_key: PublicKey,
    pub name: Option<String>,
}

impl Handler<JoinSpace> for SpaceDirectory {
    type Result = AtomicResponse<Self, Result<SpaceInfo, SpaceRequestError>>;
    fn handle(&mut self, msg: JoinSpace, _: &mut Context<Self>) -> Self::Result {
        if self.spaces.contains_key(&msg.space_key) {
            let err = SpaceRequestError::Invalid(format!(
                "this node already has space {}",
                msg.space_key
            ));
            return AtomicResponse::new(Box::pin(fut::ready(Err(err))));
        }
        self.with_signer(msg.name, move |act, _, name| {
            let mut rng = act.child_rng();
            let now = act.clock.now_ms();
            join_space(act.store.as_ref(), msg.space_key, name, &mut rng, now)
        })
    }
}
