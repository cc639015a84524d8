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
//! the other. Its genesis is derived from the identity secret too
//! (`identity::HaloGenesis`), on a genesis feed of its own: `identity create` and `identity
//! recover` write the same blocks, and the device then admits its own feeds, so that a
//! device recovered after every other one is lost re-founds the very space (one that finds
//! the others holds nothing new: the same genesis).

use rand_core::CryptoRngCore;

use super::SpaceRequestError;
use super::{FeedRecord, SpaceRecord};
use crate::credentials::{space_genesis, Assertion, Designation, Signer, SpaceGenesis, Subject};
use crate::feed::{FeedLog, Payload};
use crate::identity::HaloGenesis;
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
    let payloads = credentials
        .into_iter()
        .map(|c| Payload::Credential(Box::new(c)));
    append_blocks(&mut batch, &control, Timeframe::new(), payloads)?;
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

/// The writes that found the identity space (when `genesis` is given: `identity create`,
/// `identity recover`) or join it by key (`device join`), with its key under
/// `Key::halo_space`. Founding stores the genesis blocks on their own feed (not ours: its
/// secret is not kept) and our own two feeds, each starting with its admission by this
/// device for the identity, the genesis in its past. A recovering device (`recovering`)
/// records no genesis feed, so that it seeks the identity's other devices and asks peers for
/// its spaces while it knows none of them (`SpaceOpened::identity_space_joining`).
pub fn halo_writes(
    signer: &Signer,
    genesis: Option<&HaloGenesis>,
    halo_space_key: PublicKey,
    recovering: bool,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<WriteBatch, SpaceRequestError> {
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    let mut record = SpaceRecord {
        space_key: halo_space_key,
        name: None,
        genesis_feed: None,
        control_feed: control.public(),
        data_feed: data.public(),
        created_ms: now_ms,
    };
    let mut batch = WriteBatch::new();
    if let Some(genesis) = genesis {
        let payloads = genesis
            .credentials
            .iter()
            .map(|c| Payload::Credential(Box::new(c.clone())));
        let seen = append_blocks(&mut batch, &genesis.feed, Timeframe::new(), payloads)?;
        let feed = FeedRecord {
            feed_key: genesis.feed.public(),
            designation: Designation::Control,
            own: false,
        };
        batch.put(
            Key::feed(&halo_space_key, &feed.feed_key),
            encode(&feed).map_err(internal)?,
        );
        let admissions = [
            (control.public(), Designation::Control),
            (data.public(), Designation::Data),
        ]
        .map(|(feed, designation)| {
            let admitted = Assertion::AdmittedFeed {
                space_key: halo_space_key,
                identity_key: signer.issuer,
                device_key: signer.key.public(),
                designation,
            };
            let subject = Subject {
                id: feed,
                assertion: admitted,
            };
            Payload::Credential(Box::new(signer.issue(subject, now_ms, vec![])))
        });
        append_blocks(&mut batch, &control, seen, admissions)?;
        if !recovering {
            record.genesis_feed = Some(genesis.feed.public());
        }
    }
    add_space(&mut batch, &record, &control, &data)?;
    batch.put(Key::halo_space(), halo_space_key.as_bytes().to_vec());
    Ok(batch)
}

/// Signs `payloads` as the next blocks of `key`'s (new) feed, each with the ones before it
/// in its past on top of `seen`, into `batch`; answers the timeframe after the last.
fn append_blocks(
    batch: &mut WriteBatch,
    key: &KeyPair,
    mut seen: Timeframe,
    payloads: impl IntoIterator<Item = Payload>,
) -> Result<Timeframe, SpaceRequestError> {
    let mut log = FeedLog::new(key.public());
    for payload in payloads {
        let block = log
            .next_block(key, seen.clone(), payload)
            .map_err(internal)?;
        batch.put(
            Key::block(&block.feed_key, block.seq),
            encode(&block).map_err(internal)?,
        );
        seen.advance(block.feed_key, block.seq);
        log.commit(&block);
    }
    Ok(seen)
}

/// [`halo_writes`] in the form the identity actor takes.
pub fn found_halo() -> crate::identity::FoundHalo {
    Box::new(|f: crate::identity::Founding<'_>| {
        halo_writes(
            &f.signer,
            f.genesis,
            f.halo_space_key,
            f.recovering,
            f.rng,
            f.now_ms,
        )
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
