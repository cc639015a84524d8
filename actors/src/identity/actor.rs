//! `IdentityActor`: holds the device key and the identity of this node, creates (or
//! recovers) the identity once, and hands out the device's [`Signer`] to whoever issues
//! credentials. It never holds the identity secret: that exists only inside one
//! `CreateIdentity` or `RecoverIdentity` (`keys.rs`), and everything signed later is signed by
//! this device with its chain.
//!
//! Founding an identity on this device (create, recover, or adopt from a device
//! invitation) also founds or joins its identity space: the caller passes the writes that do
//! it ([`FoundHalo`]; the space layer builds them, this layer does not know spaces), and
//! they are written in one flushed batch with the identity record, so that a crash leaves
//! both or neither.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use rand_chacha::ChaCha20Rng;

use zeroize::Zeroizing;

use super::device_name::{load_device_name, store_device_name};
use super::keys::{adopted_record, HaloGenesis};
use super::{recover_identity, CreatedIdentity, IdentityInfo, IdentityRequestError};
use super::{IdentityRecord, NewIdentity, RecoveredIdentity};
use crate::credentials::{Credential, Signer};
use crate::store::{Key, Store, WriteBatch};
use crate::types::{check_name, encode, Clock, KeyPair, PublicKey, Signature};

/// The identity of this node.
pub struct IdentityActor {
    device: KeyPair,
    /// This device's name (`device_name.rs`).
    device_name: Option<String>,
    identity: Option<IdentityRecord>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: ChaCha20Rng,
}

impl IdentityActor {
    pub fn new(
        device: KeyPair,
        identity: Option<IdentityRecord>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: ChaCha20Rng,
    ) -> Self {
        let device_name = load_device_name(store.as_ref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read this device's name");
            None
        });
        IdentityActor {
            device,
            device_name,
            identity,
            store,
            clock,
            rng,
        }
    }

    /// Refuses a second identity; checks a display name.
    fn check_new(&self, name: Option<&str>, recover: bool) -> Result<(), IdentityRequestError> {
        if let Some(existing) = &self.identity {
            let key = existing.identity_key().to_hex();
            return Err(if recover {
                IdentityRequestError::RecoverOnExisting(key)
            } else {
                IdentityRequestError::IdentityExists(key)
            });
        }
        if let Some(name) = name {
            check_name(name).map_err(|e| {
                IdentityRequestError::Invalid(format!("identity display name: {e}"))
            })?;
        }
        Ok(())
    }

    /// Stores `record` durably, with the writes of `halo` for its identity space, and makes it
    /// this node's identity.
    fn keep(
        &mut self,
        record: IdentityRecord,
        halo: FoundHalo,
        genesis: Option<&HaloGenesis>,
        halo_space_key: PublicKey,
        recovering: bool,
    ) -> Result<IdentityInfo, IdentityRequestError> {
        let bytes = encode(&record).map_err(|e| IdentityRequestError::Invalid(e.to_string()))?;
        let mut batch = halo(Founding {
            signer: record.signer(&self.device),
            genesis,
            halo_space_key,
            recovering,
            now_ms: self.clock.now_ms(),
            rng: &mut self.rng,
        })
        .map_err(IdentityRequestError::Storage)?;
        batch.put(Key::identity(), bytes);
        self.store
            .write(batch)
            .map_err(|e| IdentityRequestError::Storage(e.to_string()))?;
        self.store
            .flush()
            .map_err(|e| IdentityRequestError::Storage(e.to_string()))?;
        let info = self.info(&record);
        self.identity = Some(record);
        Ok(info)
    }

    fn info(&self, record: &IdentityRecord) -> IdentityInfo {
        IdentityInfo {
            identity_key: record.identity_key().to_hex(),
            device_key: self.device.public().to_hex(),
            name: record.name.clone(),
            device_name: self.device_name.clone(),
        }
    }
}

impl Actor for IdentityActor {
    type Context = Context<Self>;
}

/// What founding the identity space on this device is given.
pub struct Founding<'a> {
    /// This device, signing for the new identity.
    pub signer: Signer,
    /// The identity space's genesis, when this device makes it from the seed phrase
    /// (`identity create`, `identity recover`); `None` when it joins the space by key from
    /// the device that invited it.
    pub genesis: Option<&'a HaloGenesis>,
    pub halo_space_key: PublicKey,
    /// Recovered from the seed phrase: the other devices of the identity (if any are left)
    /// hold the space, so it is joined as well as founded (its peers are sought).
    pub recovering: bool,
    pub now_ms: u64,
    pub rng: &'a mut ChaCha20Rng,
}

/// Builds the writes that found or join the identity space (`space::halo_writes`).
pub type FoundHalo = Box<dyn FnOnce(Founding<'_>) -> Result<WriteBatch, String> + Send>;

/// Create the identity; fails if there is one.
#[derive(Message)]
#[rtype(result = "Result<CreatedIdentity, IdentityRequestError>")]
pub struct CreateIdentity {
    pub name: Option<String>,
    pub halo: FoundHalo,
}

impl Handler<CreateIdentity> for IdentityActor {
    type Result = Result<CreatedIdentity, IdentityRequestError>;
    fn handle(&mut self, msg: CreateIdentity, _: &mut Context<Self>) -> Self::Result {
        self.check_new(msg.name.as_deref(), false)?;
        let created =
            NewIdentity::create(&mut self.rng, &self.device, msg.name, self.clock.now_ms());
        let halo_key = created.halo.space_key;
        let info = self.keep(
            created.record,
            msg.halo,
            Some(&created.halo),
            halo_key,
            false,
        )?;
        Ok(CreatedIdentity {
            identity_key: info.identity_key,
            device_key: info.device_key,
            seed_phrase: created.seed_phrase.as_str().to_owned(),
            name: info.name,
        })
    }
}

/// Recover the identity of a seed phrase on this device (a fresh data dir): the same
/// identity key, and this device authorised by it. Fails if there is an identity already, or
/// with [`IdentityRequestError::BadSeedPhrase`] naming what is wrong with the phrase.
#[derive(Message)]
#[rtype(result = "Result<RecoveredIdentity, IdentityRequestError>")]
pub struct RecoverIdentity {
    /// Wiped when the request is done. Never logged (no `Debug`).
    pub seed_phrase: Zeroizing<String>,
    pub name: Option<String>,
    pub halo: FoundHalo,
}

impl Handler<RecoverIdentity> for IdentityActor {
    type Result = Result<RecoveredIdentity, IdentityRequestError>;
    fn handle(&mut self, msg: RecoverIdentity, _: &mut Context<Self>) -> Self::Result {
        self.check_new(msg.name.as_deref(), true)?;
        let recovered = recover_identity(
            &msg.seed_phrase,
            &self.device,
            msg.name,
            self.clock.now_ms(),
        )?;
        drop(msg.seed_phrase);
        let halo_key = recovered.halo.space_key;
        let info = self.keep(
            recovered.record,
            msg.halo,
            Some(&recovered.halo),
            halo_key,
            true,
        )?;
        tracing::info!(
            identity = %info.identity_key,
            device = %info.device_key,
            "identity recovered from its seed phrase on this new device"
        );
        Ok(RecoveredIdentity {
            identity_key: info.identity_key,
            device_key: info.device_key,
            name: info.name,
        })
    }
}

/// The identity, or [`IdentityRequestError::NoIdentity`].
#[derive(Message)]
#[rtype(result = "Result<IdentityInfo, IdentityRequestError>")]
pub struct ShowIdentity;

impl Handler<ShowIdentity> for IdentityActor {
    type Result = Result<IdentityInfo, IdentityRequestError>;
    fn handle(&mut self, _: ShowIdentity, _: &mut Context<Self>) -> Self::Result {
        let record = self
            .identity
            .as_ref()
            .ok_or(IdentityRequestError::NoIdentity)?;
        Ok(self.info(record))
    }
}

/// This device's signer for the identity, or [`IdentityRequestError::NoIdentity`].
#[derive(Message)]
#[rtype(result = "Result<Signer, IdentityRequestError>")]
pub struct CurrentSigner;

impl Handler<CurrentSigner> for IdentityActor {
    type Result = Result<Signer, IdentityRequestError>;
    fn handle(&mut self, _: CurrentSigner, _: &mut Context<Self>) -> Self::Result {
        let record = self
            .identity
            .as_ref()
            .ok_or(IdentityRequestError::NoIdentity)?;
        Ok(record.signer(&self.device))
    }
}

/// What this device signed, and the credential that makes it the identity's: its
/// `AuthorizedDevice` with its chain. A verifier checks
/// `device_auth.verify_device_authorization(Some(identity), device_auth.subject.id)` and the
/// signature by that device.
#[derive(Debug, Clone)]
pub struct DeviceSignature {
    pub signature: Signature,
    pub device_auth: Credential,
}

/// Sign `0` with this device's key, for the identity (the `key` auth of an invitation: the
/// guest proves it is a device of the identity the host named).
#[derive(Message)]
#[rtype(result = "Result<DeviceSignature, IdentityRequestError>")]
pub struct SignAsDevice(pub Vec<u8>);

impl Handler<SignAsDevice> for IdentityActor {
    type Result = Result<DeviceSignature, IdentityRequestError>;
    fn handle(&mut self, msg: SignAsDevice, _: &mut Context<Self>) -> Self::Result {
        let record = self
            .identity
            .as_ref()
            .ok_or(IdentityRequestError::NoIdentity)?;
        Ok(DeviceSignature {
            signature: self.device.sign(&msg.0),
            device_auth: record.device_credential.clone(),
        })
    }
}

/// Take on an identity another device of it authorised this device into (a device
/// invitation): `device_credential` is that device's `AuthorizedDevice` for this device,
/// checked here; this device signs the identity profile. Fails if there is an identity
/// already.
#[derive(Message)]
#[rtype(result = "Result<IdentityInfo, IdentityRequestError>")]
pub struct AdoptIdentity {
    pub identity_key: PublicKey,
    pub name: Option<String>,
    pub device_credential: Credential,
    pub halo_space_key: PublicKey,
    pub halo: FoundHalo,
}

impl Handler<AdoptIdentity> for IdentityActor {
    type Result = Result<IdentityInfo, IdentityRequestError>;
    fn handle(&mut self, msg: AdoptIdentity, _: &mut Context<Self>) -> Self::Result {
        self.check_new(msg.name.as_deref(), false)?;
        msg.device_credential
            .verify_device_authorization(Some(msg.identity_key), self.device.public())
            .map_err(|e| {
                IdentityRequestError::Invalid(format!(
                    "the device credential the host gave does not authorise this device: {e}"
                ))
            })?;
        let record = adopted_record(
            msg.identity_key,
            &self.device,
            msg.device_credential,
            msg.name,
            self.clock.now_ms(),
        );
        let info = self.keep(record, msg.halo, None, msg.halo_space_key, false)?;
        tracing::info!(identity = %info.identity_key, device = %info.device_key, "joined the identity as a new device");
        Ok(info)
    }
}

/// This device's name, if it has one.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct DeviceName;

impl Handler<DeviceName> for IdentityActor {
    type Result = Option<String>;
    fn handle(&mut self, _: DeviceName, _: &mut Context<Self>) -> Self::Result {
        self.device_name.clone()
    }
}

/// Name this device `0` (checked like every display name), durably.
#[derive(Message)]
#[rtype(result = "Result<(), IdentityRequestError>")]
pub struct RenameDevice(pub String);

impl Handler<RenameDevice> for IdentityActor {
    type Result = Result<(), IdentityRequestError>;
    fn handle(&mut self, msg: RenameDevice, _: &mut Context<Self>) -> Self::Result {
        store_device_name(self.store.as_ref(), &msg.0)?;
        self.device_name = Some(msg.0);
        Ok(())
    }
}
