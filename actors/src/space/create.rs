//! Creating and joining spaces.
//!
//! Creating: new space and feed keys, the genesis credentials on our control feed, and every
//! record, secret and block written in one atomic, flushed batch, so that a crash leaves
//! either the whole space or nothing. Joining by key: our own (empty) feeds and the space
//! record, likewise in one batch; the genesis feed is learned from peers.
//!
//! The identity space (HALO) is created and joined the same way ([`halo_writes`]), with the
//! key derived from the identity secret, and its key under `Key::halo_space`; those writes
//! go into the identity record's batch (identity/actor.rs), so a node never has one without
//! the other.

use rand_core::CryptoRngCore;

use super::SpaceRequestError;
use super::{FeedRecord, SpaceRecord};
use crate::credentials::{space_genesis, Designation, Signer, SpaceGenesis};
use crate::feed::{FeedLog, Payload};
use crate::store::{Key, Store, WriteBatch};
use crate::types::{encode, KeyPair, PublicKey, Timeframe};

/// The new space's record (its blocks are in the store).
pub struct CreatedSpace {
    pub record: SpaceRecord,
}

fn internal(e: impl std::fmt::Display) -> SpaceRequestError {
    SpaceRequestError::Storage(e.to_string())
}

/// Creates a space owned by `signer`'s identity and makes it durable.
pub fn create_space(
    store: &dyn Store,
    signer: &Signer,
    name: Option<String>,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<CreatedSpace, SpaceRequestError> {
    let space = KeyPair::generate(rng);
    let (record, batch) = genesis_writes(signer, &space, name, rng, now_ms)?;
    write(store, batch)?;
    Ok(CreatedSpace { record })
}

/// The record and writes of a new space keyed `space`, owned by `signer`'s identity.
fn genesis_writes(
    signer: &Signer,
    space: &KeyPair,
    name: Option<String>,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<(SpaceRecord, WriteBatch), SpaceRequestError> {
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    let credentials = space_genesis(&SpaceGenesis {
        space,
        creator: signer,
        device_key: signer.key.public(),
        control_feed: control.public(),
        data_feed: data.public(),
        now_ms,
    });
    let record = SpaceRecord {
        space_key: space.public(),
        name,
        genesis_feed: Some(control.public()),
        control_feed: control.public(),
        data_feed: data.public(),
        created_ms: now_ms,
    };

    let mut batch = WriteBatch::new();
    let mut log = FeedLog::new(control.public());
    let mut timeframe = Timeframe::new();
    for credential in credentials {
        let payload = Payload::Credential(Box::new(credential));
        let block = log
            .next_block(&control, timeframe.clone(), payload)
            .map_err(internal)?;
        batch.put(
            Key::block(&block.feed_key, block.seq),
            encode(&block).map_err(internal)?,
        );
        timeframe.advance(block.feed_key, block.seq);
        log.commit(&block);
    }
    add_space(&mut batch, &record, &control, &data)?;
    Ok((record, batch))
}

/// Records a space we join by key; our feeds are admitted once we replicate our membership.
pub fn join_space(
    store: &dyn Store,
    space_key: PublicKey,
    name: Option<String>,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<SpaceRecord, SpaceRequestError> {
    let (record, batch) = join_writes(space_key, name, rng, now_ms)?;
    write(store, batch)?;
    Ok(record)
}

/// The record and writes of joining `space_key`.
fn join_writes(
    space_key: PublicKey,
    name: Option<String>,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<(SpaceRecord, WriteBatch), SpaceRequestError> {
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    let record = SpaceRecord {
        space_key,
        name,
        genesis_feed: None,
        control_feed: control.public(),
        data_feed: data.public(),
        created_ms: now_ms,
    };
    let mut batch = WriteBatch::new();
    add_space(&mut batch, &record, &control, &data)?;
    Ok((record, batch))
}

/// The writes that found the identity space (when `halo_secret` is given: `identity
/// create`) or join it by key (`identity recover`, `device join`), with its key under
/// `Key::halo_space`.
pub fn halo_writes(
    signer: &Signer,
    halo_secret: Option<&KeyPair>,
    halo_space_key: PublicKey,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<WriteBatch, SpaceRequestError> {
    let (_, mut batch) = match halo_secret {
        Some(space) => genesis_writes(signer, space, None, rng, now_ms)?,
        None => join_writes(halo_space_key, None, rng, now_ms)?,
    };
    batch.put(Key::halo_space(), halo_space_key.as_bytes().to_vec());
    Ok(batch)
}

/// [`halo_writes`] in the form the identity actor takes.
pub fn found_halo() -> crate::identity::FoundHalo {
    Box::new(|f: crate::identity::Founding<'_>| {
        halo_writes(&f.signer, f.halo_secret, f.halo_space_key, f.rng, f.now_ms)
            .map_err(|e| e.to_string())
    })
}

fn write(store: &dyn Store, batch: WriteBatch) -> Result<(), SpaceRequestError> {
    store.write(batch).map_err(internal)?;
    store.flush().map_err(internal)
}

/// Adds the space record and our two feeds (records + secrets) to `batch`.
fn add_space(
    batch: &mut WriteBatch,
    record: &SpaceRecord,
    control: &KeyPair,
    data: &KeyPair,
) -> Result<(), SpaceRequestError> {
    for (key, designation) in [(control, Designation::Control), (data, Designation::Data)] {
        let feed = FeedRecord {
            feed_key: key.public(),
            designation,
            own: true,
        };
        batch.put(
            Key::feed(&record.space_key, &key.public()),
            encode(&feed).map_err(internal)?,
        );
        batch.put(Key::feed_secret(&key.public()), key.secret_bytes().to_vec());
    }
    batch.put(
        Key::space(&record.space_key),
        encode(record).map_err(internal)?,
    );
    Ok(())
}
