//! `IdentityActor`: holds the device key and the identity of this node, creates the identity
//! once, and hands out the device's [`Signer`] to whoever issues credentials.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use rand_chacha::ChaCha20Rng;

use super::{CreatedIdentity, IdentityInfo, IdentityRequestError};
use super::{IdentityRecord, NewIdentity};
use crate::credentials::Signer;
use crate::store::{Key, Store};
use crate::types::{check_name, encode, Clock, KeyPair};

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
        if let Some(existing) = &self.identity {
            return Err(IdentityRequestError::IdentityExists(
                existing.identity_key().to_hex(),
            ));
        }
        if let Some(name) = &msg.name {
            check_name(name).map_err(|e| {
                IdentityRequestError::Invalid(format!("identity display name: {e}"))
            })?;
        }
        let created =
            NewIdentity::create(&mut self.rng, &self.device, msg.name, self.clock.now_ms());
        let bytes =
            encode(&created.record).map_err(|e| IdentityRequestError::Invalid(e.to_string()))?;
        self.store
            .put(&Key::identity(), &bytes)
            .map_err(|e| IdentityRequestError::Storage(e.to_string()))?;
        self.store
            .flush()
            .map_err(|e| IdentityRequestError::Storage(e.to_string()))?;
        let info = self.info(&created.record);
        self.identity = Some(created.record);
        Ok(CreatedIdentity {
            identity_key: info.identity_key,
            device_key: info.device_key,
            seed_phrase: created.seed_phrase,
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

/// Sign `0` with the identity key (the `key` auth of an invitation: the guest proves it
/// holds the identity the host named).
#[derive(Message)]
#[rtype(result = "Result<crate::types::Signature, IdentityRequestError>")]
pub struct SignAsIdentity(pub Vec<u8>);

impl Handler<SignAsIdentity> for IdentityActor {
    type Result = Result<crate::types::Signature, IdentityRequestError>;
    fn handle(&mut self, msg: SignAsIdentity, _: &mut Context<Self>) -> Self::Result {
        let record = self
            .identity
            .as_ref()
            .ok_or(IdentityRequestError::NoIdentity)?;
        Ok(KeyPair::from_secret(record.identity_secret).sign(&msg.0))
    }
}
