//! A feed block: `{ feed_key, seq, prev_hash, timeframe, payload, signature }`, signed by
//! the feed's own key. Its hash (blake3 over the signed bytes and the signature) is the
//! next block's `prev_hash`, which chains the feed.

use serde::{Deserialize, Serialize};

use crate::credentials::Credential;
use crate::types::{encode, CodecError, Hash, KeyPair, PublicKey, Signature, Timeframe};

/// What a block carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// On a control feed.
    Credential(Box<Credential>),
    /// On a data feed: one Yrs v1 update.
    Mutation(Vec<u8>),
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Credential(_) => "credential",
            Payload::Mutation(_) => "mutation",
        }
    }
}

/// One signed, chained entry of a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub feed_key: PublicKey,
    pub seq: u64,
    pub prev_hash: Hash,
    /// What the writer had applied when it wrote this block.
    pub timeframe: Timeframe,
    pub payload: Payload,
    pub signature: Signature,
}

#[derive(Serialize)]
struct Signed<'a> {
    domain: &'static str,
    feed_key: &'a PublicKey,
    seq: u64,
    prev_hash: &'a Hash,
    timeframe: &'a Timeframe,
    payload: &'a Payload,
}

fn signed_bytes(
    feed_key: &PublicKey,
    seq: u64,
    prev_hash: &Hash,
    timeframe: &Timeframe,
    payload: &Payload,
) -> Result<Vec<u8>, CodecError> {
    encode(&Signed {
        domain: "echo-rs/block/v1",
        feed_key,
        seq,
        prev_hash,
        timeframe,
        payload,
    })
}

impl Block {
    /// Builds and signs a block with the feed's key pair.
    pub fn sign(
        key: &KeyPair,
        seq: u64,
        prev_hash: Hash,
        timeframe: Timeframe,
        payload: Payload,
    ) -> Result<Block, CodecError> {
        let feed_key = key.public();
        let bytes = signed_bytes(&feed_key, seq, &prev_hash, &timeframe, &payload)?;
        let signature = key.sign(&bytes);
        Ok(Block {
            feed_key,
            seq,
            prev_hash,
            timeframe,
            payload,
            signature,
        })
    }

    fn bytes(&self) -> Result<Vec<u8>, CodecError> {
        signed_bytes(
            &self.feed_key,
            self.seq,
            &self.prev_hash,
            &self.timeframe,
            &self.payload,
        )
    }

    /// True if the feed key signed exactly these contents.
    pub fn signature_ok(&self) -> bool {
        self.bytes()
            .is_ok_and(|b| self.feed_key.verify(&b, &self.signature).is_ok())
    }

    /// The block's hash: the next block's `prev_hash`.
    pub fn hash(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        // A block that cannot be encoded cannot have been signed or stored either; hashing
        // the empty encoding then simply breaks the chain check.
        hasher.update(&self.bytes().unwrap_or_default());
        hasher.update(&self.signature.0);
        Hash(*hasher.finalize().as_bytes())
    }
}
