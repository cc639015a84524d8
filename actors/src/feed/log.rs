//! `FeedLog`: the sans-IO core of one feed. It knows the feed's length and head hash,
//! builds the next block for its owner, and checks that a block from anywhere else is the
//! correct next one (key, seq, chain, signature). It stores nothing itself.

use thiserror::Error;

use super::block::block_len;
use super::{Block, Payload, MAX_BLOCK_BYTES};
use crate::types::{CodecError, Hash, KeyPair, PublicKey, Timeframe};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FeedError {
    #[error("block belongs to feed {got:?}, not {expected:?}")]
    WrongFeed { expected: PublicKey, got: PublicKey },
    #[error("feed {feed:?}: expected block {expected}, got {got}")]
    OutOfOrder {
        feed: PublicKey,
        expected: u64,
        got: u64,
    },
    #[error("feed {feed:?} block {seq}: previous hash does not match the chain")]
    BrokenChain { feed: PublicKey, seq: u64 },
    #[error("feed {feed:?} block {seq}: bad signature")]
    BadSignature { feed: PublicKey, seq: u64 },
    #[error("feed {0:?} is not ours to write")]
    NotWritable(PublicKey),
    #[error(
        "the change would make a block of {size} bytes, more than the {MAX_BLOCK_BYTES} bytes \
         a block may hold; split it into smaller writes"
    )]
    TooLarge { size: usize },
    #[error("block cannot be encoded: {0}")]
    Encoding(#[from] CodecError),
    #[error("storage: {0}")]
    Storage(String),
}

/// Length and head of one feed.
#[derive(Debug, Clone)]
pub struct FeedLog {
    key: PublicKey,
    len: u64,
    head: Hash,
}

impl FeedLog {
    /// An empty feed.
    pub fn new(key: PublicKey) -> Self {
        FeedLog {
            key,
            len: 0,
            head: Hash::default(),
        }
    }

    /// Rebuilds the log from stored blocks, checking that they chain. Signatures were checked
    /// when the blocks were first stored; `verify_signatures` re-checks them (slower).
    pub fn restore(
        key: PublicKey,
        blocks: &[Block],
        verify_signatures: bool,
    ) -> Result<Self, FeedError> {
        let mut log = FeedLog::new(key);
        for block in blocks {
            log.check(block, verify_signatures)?;
            log.commit(block);
        }
        Ok(log)
    }

    pub fn key(&self) -> PublicKey {
        self.key
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn head_hash(&self) -> Hash {
        self.head
    }

    /// Builds the next block (not yet committed). A block whose encoding would exceed
    /// [`MAX_BLOCK_BYTES`] is refused ([`FeedError::TooLarge`]) before it is signed.
    pub fn next_block(
        &self,
        key: &KeyPair,
        timeframe: Timeframe,
        payload: Payload,
    ) -> Result<Block, FeedError> {
        if key.public() != self.key {
            return Err(FeedError::NotWritable(self.key));
        }
        let size = block_len(&self.key, self.len, &self.head, &timeframe, &payload)?;
        if size > MAX_BLOCK_BYTES {
            return Err(FeedError::TooLarge { size });
        }
        Ok(Block::sign(key, self.len, self.head, timeframe, payload)?)
    }

    /// Checks that `block` is exactly the next block of this feed.
    pub fn check_next(&self, block: &Block) -> Result<(), FeedError> {
        self.check(block, true)
    }

    /// Like [`Self::check_next`] for a block whose signature the caller has just verified
    /// (the space checks signatures before it decides what to store): key, seq and chain.
    pub fn check_next_presigned(&self, block: &Block) -> Result<(), FeedError> {
        self.check(block, false)
    }

    fn check(&self, block: &Block, verify_signature: bool) -> Result<(), FeedError> {
        if block.feed_key != self.key {
            return Err(FeedError::WrongFeed {
                expected: self.key,
                got: block.feed_key,
            });
        }
        if block.seq != self.len {
            return Err(FeedError::OutOfOrder {
                feed: self.key,
                expected: self.len,
                got: block.seq,
            });
        }
        if block.prev_hash != self.head {
            return Err(FeedError::BrokenChain {
                feed: self.key,
                seq: block.seq,
            });
        }
        if verify_signature && !block.signature_ok() {
            return Err(FeedError::BadSignature {
                feed: self.key,
                seq: block.seq,
            });
        }
        Ok(())
    }

    /// Records `block` (already checked) as the new head.
    pub fn commit(&mut self, block: &Block) {
        self.len = block.seq + 1;
        self.head = block.hash();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    fn key(seed: u64) -> KeyPair {
        KeyPair::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn build(kp: &KeyPair, n: usize) -> Vec<Block> {
        let mut log = FeedLog::new(kp.public());
        (0..n)
            .map(|i| {
                let b = log
                    .next_block(kp, Timeframe::new(), Payload::Mutation(vec![i as u8]))
                    .unwrap();
                log.check_next(&b).unwrap();
                log.commit(&b);
                b
            })
            .collect()
    }

    #[test]
    fn append_and_restore() {
        let kp = key(1);
        let blocks = build(&kp, 5);
        let log = FeedLog::restore(kp.public(), &blocks, true).unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(log.head_hash(), blocks[4].hash());
        assert!(matches!(
            FeedLog::new(kp.public()).next_block(
                &key(2),
                Timeframe::new(),
                Payload::Mutation(vec![])
            ),
            Err(FeedError::NotWritable(_))
        ));
    }

    #[test]
    fn each_kind_of_bad_block_is_named() {
        let kp = key(1);
        let blocks = build(&kp, 3);
        let log = FeedLog::restore(kp.public(), &blocks[..2], true).unwrap();
        let other = build(&key(2), 3);
        assert!(matches!(
            log.check_next(&other[2]),
            Err(FeedError::WrongFeed { .. })
        ));
        assert!(matches!(
            log.check_next(&blocks[1]),
            Err(FeedError::OutOfOrder { .. })
        ));
        let mut b = blocks[2].clone();
        b.prev_hash = Hash::default();
        assert!(matches!(
            log.check_next(&b),
            Err(FeedError::BrokenChain { .. })
        ));
        let mut b = blocks[2].clone();
        b.payload = Payload::Mutation(vec![99]);
        assert!(matches!(
            log.check_next(&b),
            Err(FeedError::BadSignature { .. })
        ));
        assert_eq!(log.check_next(&blocks[2]), Ok(()));
    }

    #[test]
    fn a_block_over_the_limit_is_refused_before_it_is_signed() {
        let kp = key(4);
        let mut log = FeedLog::new(kp.public());
        let first = log
            .next_block(&kp, Timeframe::new(), Payload::Mutation(vec![1; 10]))
            .unwrap();
        log.commit(&first);
        // The size is known exactly before signing: find the largest payload that fits.
        let fixed = first.encoded_len().unwrap() - 11;
        let fits = MAX_BLOCK_BYTES - fixed - 4;
        let at_limit = log
            .next_block(&kp, Timeframe::new(), Payload::Mutation(vec![7; fits]))
            .unwrap();
        assert_eq!(at_limit.encoded_len().unwrap(), MAX_BLOCK_BYTES);
        assert_eq!(
            crate::types::encode(&at_limit).unwrap().len(),
            MAX_BLOCK_BYTES
        );
        let over = log.next_block(&kp, Timeframe::new(), Payload::Mutation(vec![7; fits + 1]));
        assert_eq!(
            over,
            Err(FeedError::TooLarge {
                size: MAX_BLOCK_BYTES + 1
            })
        );
        assert!(over.unwrap_err().to_string().contains("split it"));
        // Nothing moved: the next block is still seq 1.
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn payload_bytes_encode_like_a_sequence_of_u8() {
        // The byte-string encoding of `Payload::Mutation` is the wire format blocks always
        // had: postcard writes a `Vec<u8>` and a byte string identically.
        #[derive(serde::Serialize)]
        enum Plain {
            _Credential(()),
            Mutation(Vec<u8>),
        }
        let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let ours = crate::types::encode(&Payload::Mutation(bytes.clone())).unwrap();
        assert_eq!(
            ours,
            crate::types::encode(&Plain::Mutation(bytes.clone())).unwrap()
        );
        let back: Payload = crate::types::decode(&ours).unwrap();
        assert_eq!(back, Payload::Mutation(bytes));
    }

    proptest! {
        /// Any single-byte change to any stored block breaks restore: contents are bound
        /// by the signature and every block is bound to its predecessor by the hash.
        #[test]
        fn any_tampering_is_detected(n in 1usize..6, which in 0usize..6, pos in 0usize..200, flip in 1u8..=255) {
            let kp = key(3);
            let mut blocks = build(&kp, n);
            let which = which % n;
            let mut bytes = crate::types::encode(&blocks[which]).unwrap();
            let pos = pos % bytes.len();
            bytes[pos] ^= flip;
            match crate::types::decode::<Block>(&bytes) {
                Err(_) => {} // undecodable: rejected before the log sees it
                Ok(tampered) => {
                    prop_assume!(tampered != blocks[which]);
                    blocks[which] = tampered;
                    prop_assert!(FeedLog::restore(kp.public(), &blocks, true).is_err());
                }
            }
        }
    }
}
