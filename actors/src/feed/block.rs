//! A feed block: `{ feed_key, seq, prev_hash, timeframe, payload, signature }`, signed by
//! the feed's own key. Its hash (blake3 over the signed bytes and the signature) is the
//! next block's `prev_hash`, which chains the feed.

use serde::{Deserialize, Serialize};

use crate::credentials::Credential;
use crate::types::{
    encode, encoded_len, CodecError, Hash, KeyPair, PublicKey, Signature, Timeframe,
    MAX_FRAME_BYTES,
};

/// Largest encoded block (3 MiB). A block always travels in a frame of its own, with room
/// to spare under [`MAX_FRAME_BYTES`]; a local write that would make a larger block is
/// refused before anything is signed or stored.
pub const MAX_BLOCK_BYTES: usize = 3 << 20;
const _: () = assert!(MAX_BLOCK_BYTES + (64 << 10) <= MAX_FRAME_BYTES);

/// What a block carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// On a control feed.
    Credential(Box<Credential>),
    /// On a data feed: one Yrs v1 update. Serialized as a byte string, which postcard
    /// writes exactly like a sequence of `u8` (length, then the bytes), but in one copy
    /// rather than one serde call per byte.
    Mutation(#[serde(with = "byte_string")] Vec<u8>),
}

/// `Vec<u8>` as a serde byte string (the one place blocks carry large opaque bytes).
mod byte_string {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Bounded by what the input holds, never by a claimed length.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
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

/// A block's fields by reference, in [`Block`]'s order: serializes exactly like the block.
#[derive(Serialize)]
struct BlockRef<'a> {
    feed_key: &'a PublicKey,
    seq: u64,
    prev_hash: &'a Hash,
    timeframe: &'a Timeframe,
    payload: &'a Payload,
    signature: &'a Signature,
}

/// The encoded size of the block these fields would make, before it is signed (a
/// signature has a fixed size).
pub fn block_len(
    feed_key: &PublicKey,
    seq: u64,
    prev_hash: &Hash,
    timeframe: &Timeframe,
    payload: &Payload,
) -> Result<usize, CodecError> {
    encoded_len(&BlockRef {
        feed_key,
        seq,
        prev_hash,
        timeframe,
        payload,
        signature: &Signature([0; 64]),
    })
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

    /// The length of `encode(self)`.
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        encoded_len(self)
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
