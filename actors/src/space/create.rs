//! Creating and joining spaces.
//!
//! Creating: new space and feed keys, the genesis credentials on our control feed, and every
//! record, secret and block written in one atomic, flushed batch, so that a crash leaves
//! either the whole space or nothing. Joining by key: our own (empty) feeds and the space
//! record, likewise in one batch; the genesis feed is learned from peers.

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
    let control = KeyPair::generate(rng);
    let data = KeyPair::generate(rng);
    let credentials = space_genesis(&SpaceGenesis {
        space: &space,
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
    write_space(store, batch, &record, &control, &data)?;
    Ok(CreatedSpace { record })
}

/// Records a space we join by key; our feeds are admitted once we replicate our membership.
pub fn join_space(
    store: &dyn Store,
    space_key: PublicKey,
    name: Option<String>,
    rng: &mut impl CryptoRngCore,
    now_ms: u64,
) -> Result<SpaceRecord, SpaceRequestError> {
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
    write_space(store, WriteBatch::new(), &record, &control, &data)?;
    Ok(record)
}

/// Adds the space record and our two feeds (records + secrets) to `batch`, writes and
/// flushes it.
fn write_space(
    store: &dyn Store,
    mut batch: WriteBatch,
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
    store.write(batch).map_err(internal)?;
    store.flush().map_err(internal)
}
