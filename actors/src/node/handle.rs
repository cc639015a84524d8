//! [`Node::open`] and the cloneable [`NodeHandle`].

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use actix::{Actor, Addr};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{
    ChangeEvent, CreatedIdentity, IdentityInfo, MemberInfo, NodeError, NodeStatus, QueryRequest,
    RecoveredIdentity, SpaceInfo, SpaceVerdicts,
};
use crate::credentials::Role;
use crate::db::ObjectId;
use crate::identity::{
    load_identity, CreateIdentity, DeviceRecord, IdentityActor, IdentityLoadError, RecoverIdentity,
    ShowIdentity,
};
use crate::invitation::InvitationDirectory;
use crate::mesh::{MeshConfig, NetworkActor, NetworkStatus, Shutdown};
use crate::space::{
    parse_id, CreateSpace, DirectoryStatus, GetObject, GetVerdicts, JoinSpace, ListMembers,
    ListSpaces, LocalOp, Mutate, OpenHaloSpace, QueryObjects, ResolveSpace, SpaceActor,
    SpaceDirectory, TextGet, Watch,
};
use crate::store::{Key, Store};
use crate::transport::{self, NetEnv, TransportConfig};
use crate::types::{decode, encode, Clock, PublicKey};

/// How to build a node.
pub struct NodeConfig {
    /// Where everything durable lives.
    pub store: Arc<dyn Store>,
    /// Seed of the node's one RNG (keys, ULIDs, yrs client ids).
    pub rng_seed: [u8; 32],
    /// Wall clock for credential dates and ULID timestamps.
    pub clock: Arc<dyn Clock>,
    /// The peer listen address, reported by `status` when there is no network.
    pub listen: Option<String>,
    /// Peer-to-peer networking; `None` for a node that only serves local clients.
    pub network: Option<NetworkConfig>,
    /// How long a Yjs client's quick successive edits may wait to share one block
    /// (`space/commit.rs`; `space::DEFAULT_COALESCE`, capped at `space::MAX_COALESCE`, zero
    /// for none).
    pub coalesce: std::time::Duration,
}

impl NodeConfig {
    /// A node that serves only local clients (no network), with the default coalescing
    /// window: what tests and in-process benchmarks open.
    pub fn local(store: Arc<dyn Store>, rng_seed: [u8; 32], clock: Arc<dyn Clock>) -> Self {
        NodeConfig {
            store,
            rng_seed,
            clock,
            listen: None,
            network: None,
            coalesce: crate::space::DEFAULT_COALESCE,
        }
    }
}

/// How a node reaches its peers.
pub struct NetworkConfig {
    /// Where the QUIC endpoint's UDP socket comes from (a real bound socket, or the
    /// simulator's).
    pub net: NetEnv,
    pub mesh: MeshConfig,
}

/// Opens nodes.
pub struct Node;

fn storage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(e.to_string())
}

fn child_rng(rng: &mut ChaCha20Rng) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    ChaCha20Rng::from_seed(seed)
}

impl Node {
    /// Opens the node on its store: loads or creates the device key, loads the identity and
    /// rebuilds every space from its feeds. Must run inside an actix context.
    pub async fn open(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        let NodeConfig {
            store,
            rng_seed,
            clock,
            listen,
            network,
            coalesce,
        } = config;
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let metrics = crate::metrics::Metrics::new();
        let device = match store.get(&Key::device()).map_err(storage)? {
            Some(bytes) => decode::<DeviceRecord>(&bytes)
                .map_err(|e| NodeError::Corrupt(format!("device record: {e}")))?,
            None => {
                let record = DeviceRecord::generate(&mut rng);
                store
                    .put(&Key::device(), &encode(&record).map_err(storage)?)
                    .map_err(storage)?;
                store.flush().map_err(storage)?;
                record
            }
        };
        let device = device.key_pair();
        // Migrates a record that still holds the identity secret (identity/migrate.rs).
        let identity = load_identity(&*store).map_err(|e| match e {
            IdentityLoadError::Corrupt(_) => NodeError::Corrupt(e.to_string()),
            IdentityLoadError::Storage(_) | IdentityLoadError::Encoding(_) => storage(e),
        })?;
        let device_key = device.public();
        let endpoint = match &network {
            Some(net) => {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                let endpoint =
                    transport::endpoint(net.net.clone(), &device, &TransportConfig::new(seed))
                        .map_err(|e| NodeError::Network(e.to_string()))?;
                Some(endpoint)
            }
            None => None,
        };
        let signer = identity.as_ref().map(|r| r.signer(&device));
        let presence = network
            .as_ref()
            .map(|n| n.mesh.presence)
            .unwrap_or_default();
        let identity = IdentityActor::new(
            device,
            identity,
            store.clone(),
            clock.clone(),
            child_rng(&mut rng),
        )
        .start();
        let directory = SpaceDirectory::open(
            signer,
            identity.clone(),
            store.clone(),
            clock.clone(),
            child_rng(&mut rng),
            metrics.clone(),
            coalesce,
            presence,
        )?
        .start();
        let network = match (network, endpoint) {
            (Some(net), Some(endpoint)) => Some(
                NetworkActor::new(
                    endpoint,
                    device_key,
                    net.mesh,
                    identity.clone(),
                    directory.clone(),
                    child_rng(&mut rng),
                    metrics.clone(),
                )
                .start(),
            ),
            _ => None,
        };
        let invitations = InvitationDirectory::new(
            store.clone(),
            clock,
            child_rng(&mut rng),
            directory.clone(),
            identity.clone(),
            network.clone(),
            device_key,
        )
        .start();
        tracing::info!(device = %device_key, "node open");
        Ok(NodeHandle {
            identity,
            directory,
            invitations,
            metrics,
            store,
            device_key,
            listen,
            network,
        })
    }
}

/// Cloneable, `Send` handle to a running node. Every method is one typed request.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) identity: Addr<IdentityActor>,
    pub(super) directory: Addr<SpaceDirectory>,
    pub(super) invitations: Addr<InvitationDirectory>,
    metrics: crate::metrics::Metrics,
    store: Arc<dyn Store>,
    device_key: PublicKey,
    listen: Option<String>,
    network: Option<Addr<NetworkActor>>,
}

#[cfg(test)]
impl NodeHandle {
    /// The space directory, for tests outside `node/` that look at the identity space.
    pub(crate) fn directory_for_tests(&self) -> &Addr<SpaceDirectory> {
        &self.directory
    }

    /// This device's credential, as its Hello carries it.
    pub(crate) async fn device_auth_for_tests(&self) -> crate::credentials::Credential {
        let signer = self.identity.send(crate::identity::CurrentSigner).await;
        #[allow(clippy::unwrap_used)] // a test helper: a node with an identity has a chain
        signer.unwrap().unwrap().chain.unwrap()
    }
}

/// Parses a key a user typed: 64 hex characters of an ed25519 point that is not of small
/// order (`PublicKey::check_point`; the all-zero key is refused), else `400 invalid`.
pub(super) fn user_key(text: &str, what: &str) -> Result<PublicKey, NodeError> {
    let text = text.trim();
    let shown: String = text.chars().take(80).collect();
    let key: PublicKey = text
        .parse()
        .map_err(|_| NodeError::Invalid(format!("`{shown}` is not {what} (64 hex characters)")))?;
    key.check_point()
        .map_err(|e| NodeError::Invalid(format!("`{shown}` is not {what}: {e}")))?;
    Ok(key)
}

impl NodeHandle {
    pub(super) async fn space(&self, space: &str) -> Result<Addr<SpaceActor>, NodeError> {
        Ok(self
            .directory
            .send(ResolveSpace(space.to_string()))
            .await??)
    }

    /// The actor of a space (for the mesh and for tests that wire channels by hand).
    pub async fn space_actor(&self, space: &str) -> Result<Addr<SpaceActor>, NodeError> {
        self.space(space).await
    }

    /// Joins a space by key: our feeds are created now and admitted once a member has added
    /// our identity (`add_member`) and we have replicated that from a peer.
    pub async fn space_join(
        &self,
        space_key: &str,
        name: Option<String>,
    ) -> Result<SpaceInfo, NodeError> {
        let key = user_key(space_key, "a space key")?;
        Ok(self
            .directory
            .send(JoinSpace {
                space_key: key,
                name,
            })
            .await??)
    }

    /// Adds a member (or changes its role) by identity key; OWNER/ADMIN only.
    pub async fn space_add_member(
        &self,
        space: &str,
        identity_key: &str,
        role: Role,
    ) -> Result<(), NodeError> {
        if role == Role::Owner {
            return Err(NodeError::Invalid(
                "nobody can be made OWNER after genesis".into(),
            ));
        }
        self.membership(space, identity_key, role, false).await
    }

    /// The members of a space, their roles and whether they are online (a device of theirs
    /// was heard in the space within the presence timeout; ours always is), ordered by
    /// identity key.
    pub async fn space_members(&self, space: &str) -> Result<Vec<MemberInfo>, NodeError> {
        let addr = self.space(space).await?;
        let members = addr.send(ListMembers).await?;
        let online = addr.send(crate::space::OnlineIdentities).await?;
        Ok(members
            .into_iter()
            .map(|(k, role)| MemberInfo {
                identity_key: k.to_hex(),
                role: role.as_str().to_string(),
                online: role != Role::Removed && online.contains(&k),
            })
            .collect())
    }

    /// Heads, denied blocks and derived control state of a space (see [`SpaceVerdicts`]).
    pub async fn space_verdicts(&self, space: &str) -> Result<SpaceVerdicts, NodeError> {
        Ok(self.space(space).await?.send(GetVerdicts).await?)
    }

    async fn mutate(&self, space: &str, op: Mutate) -> Result<ObjectId, NodeError> {
        Ok(self.space(space).await?.send(op).await??)
    }

    /// The device key of this node.
    pub fn device_key(&self) -> PublicKey {
        self.device_key
    }

    /// Creates the identity (fails if one exists). The seed phrase is returned only here.
    pub async fn identity_create(
        &self,
        name: Option<String>,
    ) -> Result<CreatedIdentity, NodeError> {
        let halo = crate::space::found_halo();
        let created = self.identity.send(CreateIdentity { name, halo }).await??;
        self.directory.send(OpenHaloSpace).await??;
        Ok(created)
    }

    /// Recovers the identity of `seed_phrase` on this node, which must have none: the same
    /// identity key, and this device authorised by it. The phrase is wiped once used and
    /// never stored or logged. The identity space is joined by its key (derived from the
    /// phrase); once it replicates from another device of the identity, every space it
    /// lists is joined too.
    pub async fn identity_recover(
        &self,
        seed_phrase: String,
        name: Option<String>,
    ) -> Result<RecoveredIdentity, NodeError> {
        let seed_phrase = zeroize::Zeroizing::new(seed_phrase);
        let halo = crate::space::found_halo();
        let recovered = self
            .identity
            .send(RecoverIdentity {
                seed_phrase,
                name,
                halo,
            })
            .await??;
        self.directory.send(OpenHaloSpace).await??;
        Ok(recovered)
    }

    /// The identity, or [`NodeError::no_identity()`].
    pub async fn identity_show(&self) -> Result<IdentityInfo, NodeError> {
        Ok(self.identity.send(ShowIdentity).await??)
    }

    /// Creates a space owned by this identity.
    pub async fn space_create(&self, name: Option<String>) -> Result<SpaceInfo, NodeError> {
        Ok(self.directory.send(CreateSpace { name }).await??)
    }

    /// All spaces, ordered by key.
    pub async fn space_list(&self) -> Result<Vec<SpaceInfo>, NodeError> {
        Ok(self.directory.send(ListSpaces).await?)
    }

    /// Adds an object (a JSON object) and returns its new id, once durable.
    pub async fn object_add(&self, space: &str, object: Value) -> Result<String, NodeError> {
        Ok(self.mutate(space, Mutate::Add(object)).await?.to_string())
    }

    /// The object (also when soft-deleted; then `@deleted` is true).
    pub async fn object_get(&self, space: &str, id: &str) -> Result<Value, NodeError> {
        let id = parse_id(id)?;
        Ok(self.space(space).await?.send(GetObject(id)).await??)
    }

    /// Applies a JSON merge patch (RFC 7386) and returns the object after it, once durable.
    pub async fn object_update(
        &self,
        space: &str,
        id: &str,
        patch: Value,
    ) -> Result<Value, NodeError> {
        let id = parse_id(id)?;
        let addr = self.space(space).await?;
        addr.send(Mutate::Op(LocalOp::Update { id, patch }))
            .await??;
        Ok(addr.send(GetObject(id)).await??)
    }

    /// Soft-deletes the object, once durable.
    pub async fn object_delete(&self, space: &str, id: &str) -> Result<(), NodeError> {
        let id = parse_id(id)?;
        self.mutate(space, Mutate::Op(LocalOp::Delete { id }))
            .await
            .map(|_| ())
    }

    /// Objects matching the query, ordered by id. A value with a number the object model
    /// cannot store exactly is refused: it could only match nothing, or a rounded value.
    pub async fn query(&self, space: &str, query: QueryRequest) -> Result<Vec<Value>, NodeError> {
        for w in &query.where_eq {
            crate::db::check_numbers(&w.value, &w.path)
                .map_err(|e| NodeError::Invalid(format!("query value: {e}")))?;
        }
        Ok(self.space(space).await?.send(QueryObjects(query)).await??)
    }

    /// Inserts `text` at `index` (in characters) of a collaborative text field; returns the
    /// text after, once durable.
    pub async fn text_insert(
        &self,
        space: &str,
        id: &str,
        field: &str,
        index: u32,
        text: String,
    ) -> Result<String, NodeError> {
        let id = parse_id(id)?;
        let addr = self.space(space).await?;
        let field = field.to_string();
        addr.send(Mutate::Op(LocalOp::TextInsert {
            id,
            field: field.clone(),
            index,
            text,
        }))
        .await??;
        Ok(addr.send(TextGet { id, field }).await??)
    }

    /// Deletes `len` characters at `index`; returns the text after, once durable.
    pub async fn text_delete(
        &self,
        space: &str,
        id: &str,
        field: &str,
        index: u32,
        len: u32,
    ) -> Result<String, NodeError> {
        let id = parse_id(id)?;
        let addr = self.space(space).await?;
        let field = field.to_string();
        addr.send(Mutate::Op(LocalOp::TextDelete {
            id,
            field: field.clone(),
            index,
            len,
        }))
        .await??;
        Ok(addr.send(TextGet { id, field }).await??)
    }

    /// The current content of a text field.
    pub async fn text_get(&self, space: &str, id: &str, field: &str) -> Result<String, NodeError> {
        let id = parse_id(id)?;
        Ok(self
            .space(space)
            .await?
            .send(TextGet {
                id,
                field: field.to_string(),
            })
            .await??)
    }

    /// A live stream of changes to objects (optionally of one `@type`). The stream ends when
    /// the node stops or when the receiver falls more than its capacity behind.
    pub async fn watch(
        &self,
        space: &str,
        type_name: Option<String>,
    ) -> Result<mpsc::Receiver<ChangeEvent>, NodeError> {
        Ok(self.space(space).await?.send(Watch { type_name }).await?)
    }

    /// Device key, listen address, spaces with their feed heads.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        let identity_key = match self.identity_show().await {
            Ok(info) => Some(info.identity_key),
            Err(NodeError::Identity(crate::identity::IdentityRequestError::NoIdentity)) => None,
            Err(e) => return Err(e),
        };
        let mut spaces = self.directory.send(DirectoryStatus).await??;
        let mut listen = self.listen.clone();
        if let Some(network) = &self.network {
            let (addr, mut peers) = network.send(NetworkStatus).await?;
            listen = addr.or(listen);
            for space in &mut spaces {
                space.peers = peers.remove(&space.space_key).unwrap_or_default();
            }
        }
        let revoked = identity_key.is_some() && self.this_device_revoked().await?;
        Ok(NodeStatus {
            device_key: self.device_key.to_hex(),
            identity_key,
            listen,
            revoked,
            spaces,
            counters: self.metrics.snapshot(),
        })
    }

    /// The node's counters in the Prometheus text format (see [`crate::metrics`]).
    pub fn metrics_text(&self) -> String {
        self.metrics.prometheus()
    }

    /// Closes peer connections and flushes the store. Actors stop with the runtime that
    /// hosts them.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        if let Some(network) = &self.network {
            let _ = network.send(Shutdown).await;
        }
        self.store.flush().map_err(storage)
    }
}
