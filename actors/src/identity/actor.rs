//! `IdentityActor`: holds the device key and the identity of this node, creates (or
//! recovers) the identity once, and hands out the device's [`Signer`] to whoever issues
//! credentials. It never holds the identity secret: that exists only inside one
//! `CreateIdentity` or `RecoverIdentity` (`keys.rs`), and everything signed later is signed by
//! this device with its chain.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use rand_chacha::ChaCha20Rng;

use zeroize::Zeroizing;

use super::{recover_identity, CreatedIdentity, IdentityInfo, IdentityRequestError};
use super::{IdentityRecord, NewIdentity, RecoveredIdentity};
use crate::credentials::{Credential, Signer};
use crate::store::{Key, Store};
use crate::types::{check_name, encode, Clock, KeyPair, Signature};

/// The identity of this node.
pub struct IdentityActor {
    device: KeyPair,
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
        IdentityActor {
            device,
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

    /// Stores `record` durably and makes it this node's identity.
    fn keep(&mut self, record: IdentityRecord) -> Result<IdentityInfo, IdentityRequestError> {
        let bytes = encode(&record).map_err(|e| IdentityRequestError::Invalid(e.to_string()))?;
        self.store
            .put(&Key::identity(), &bytes)
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
        }
    }
}

impl Actor for IdentityActor {
    type Context = Context<Self>;
}

/// Create the identity; fails if there is one.
#[derive(Message)]
#[rtype(result = "Result<CreatedIdentity, IdentityRequestError>")]
pub struct CreateIdentity {
    pub name: Option<String>,
}

impl Handler<CreateIdentity> for IdentityActor {
    type Result = Result<CreatedIdentity, IdentityRequestError>;
    fn handle(&mut self, msg: CreateIdentity, _: &mut Context<Self>) -> Self::Result {
        self.check_new(msg.name.as_deref(), false)?;
        let created =
            NewIdentity::create(&mut self.rng, &self.device, msg.name, self.clock.now_ms());
        let info = self.keep(created.record)?;
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
}

impl Handler<RecoverIdentity> for IdentityActor {
    type Result = Result<RecoveredIdentity, IdentityRequestError>;
    fn handle(&mut self, msg: RecoverIdentity, _: &mut Context<Self>) -> Self::Result {
        self.check_new(msg.name.as_deref(), true)?;
        let record = recover_identity(
            &msg.seed_phrase,
            &self.device,
            msg.name,
            self.clock.now_ms(),
        )?;
        drop(msg.seed_phrase);
        let info = self.keep(record)?;
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
