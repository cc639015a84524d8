//! `FeedActor`: one per feed. Owns the feed's [`FeedLog`] and, for our own feeds, its key
//! pair. Appends and ingests are durable (written and flushed) before they are answered;
//! range reads for peers are bounded in bytes as well as in blocks.
//!
//! The write is synchronous (it only reaches the store's memory); the flush is the store's
//! asynchronous one, so the actor thread serves other actors while the disk syncs. The log
//! advances at the write: a later append chains on the block even before it is durable, and
//! if the flush fails the caller is told so (the block may or may not survive a crash; it was
//! never acknowledged).

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, ResponseFuture};

use super::{Block, FeedError, FeedLog, Payload};
use crate::store::{Key, Store, WriteBatch};
use crate::types::{decode, encode, KeyPair, Timeframe};

/// The actor for one feed.
pub struct FeedActor {
    log: FeedLog,
    /// Present for our own feeds only.
    key: Option<KeyPair>,
    store: Arc<dyn Store>,
}

impl FeedActor {
    pub fn new(log: FeedLog, key: Option<KeyPair>, store: Arc<dyn Store>) -> Self {
        FeedActor { log, key, store }
    }

    /// Loads every stored block of `feed`, in order.
    pub fn load_blocks(
        store: &dyn Store,
        feed: &crate::types::PublicKey,
    ) -> Result<Vec<Block>, FeedError> {
        let entries = store
            .scan_prefix(&Key::blocks(feed))
            .map_err(|e| FeedError::Storage(e.to_string()))?;
        entries
            .iter()
            .map(|(k, v)| {
                decode::<Block>(v).map_err(|e| {
                    FeedError::Storage(format!("block {} is corrupt: {e}", hex_key(k)))
                })
            })
            .collect()
    }

    /// Writes the blocks, then answers `value` once the store's flush is done.
    fn durable<T: Send + 'static>(
        &self,
        written: Result<(), FeedError>,
        value: T,
    ) -> ResponseFuture<Result<T, FeedError>> {
        let flush = written.map(|()| self.store.flush_async());
        Box::pin(async move {
            flush?
                .await
                .map_err(|e| FeedError::Storage(e.to_string()))?;
            Ok(value)
        })
    }
}

fn hex_key(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

impl Actor for FeedActor {
    type Context = Context<Self>;
}

/// Append a block to one of our own feeds; answered once durable.
#[derive(Message)]
#[rtype(result = "Result<Block, FeedError>")]
pub struct Append {
    pub timeframe: Timeframe,
    pub payload: Payload,
}

impl Handler<Append> for FeedActor {
    type Result = ResponseFuture<Result<Block, FeedError>>;
    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) -> Self::Result {
        let mut many = self.handle(
            AppendMany {
                timeframe: msg.timeframe,
                payloads: vec![msg.payload],
            },
            ctx,
        );
        Box::pin(async move {
            let blocks = (&mut many).await?;
            blocks
                .into_iter()
                .next()
                .ok_or_else(|| FeedError::Storage("an append made no block".into()))
        })
    }
}

/// Append several blocks to one of our own feeds with one write and one flush; answered
/// once all are durable (or none is stored). Each block's timeframe is `timeframe` with
/// this feed advanced to the block before it, so that each has the ones before it in its
/// causal past.
#[derive(Message)]
#[rtype(result = "Result<Vec<Block>, FeedError>")]
pub struct AppendMany {
    pub timeframe: Timeframe,
    pub payloads: Vec<Payload>,
}

impl Handler<AppendMany> for FeedActor {
    type Result = ResponseFuture<Result<Vec<Block>, FeedError>>;
    fn handle(&mut self, msg: AppendMany, _: &mut Context<Self>) -> Self::Result {
        let written = self.append_many(msg);
        match written {
            Ok(blocks) => self.durable(Ok(()), blocks),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl FeedActor {
    /// Signs and writes the blocks (not flushed) and advances the log.
    fn append_many(&mut self, msg: AppendMany) -> Result<Vec<Block>, FeedError> {
        let key = self
            .key
            .as_ref()
            .ok_or(FeedError::NotWritable(self.log.key()))?;
        let mut log = self.log.clone();
        let mut timeframe = msg.timeframe;
        let mut batch = WriteBatch::new();
        let mut blocks = Vec::with_capacity(msg.payloads.len());
        for payload in msg.payloads {
            let block = log.next_block(key, timeframe.clone(), payload)?;
            batch.put(Key::block(&block.feed_key, block.seq), encode(&block)?);
            log.commit(&block);
            timeframe.advance(block.feed_key, block.seq);
            blocks.push(block);
        }
        self.store
            .write(batch)
            .map_err(|e| FeedError::Storage(e.to_string()))?;
        self.log = log;
        Ok(blocks)
    }
}

impl FeedActor {
    /// True if the store holds exactly `block` at its seq.
    fn held(&self, block: &Block) -> Result<bool, FeedError> {
        let stored = self
            .store
            .get(&Key::block(&block.feed_key, block.seq))
            .map_err(|e| FeedError::Storage(e.to_string()))?;
        Ok(stored.is_some_and(|bytes| {
            decode::<Block>(&bytes).is_ok_and(|held| held.hash() == block.hash())
        }))
    }
}

/// Write several consecutive blocks from elsewhere, whose signatures the space has verified
/// (`SpaceCore::plan`), after checking key, order and hash chain, **without flushing**: the
/// space flushes the store once for all the feeds of a batch before it applies anything.
/// Answered with the blocks written (all of them, or those before the first bad one, with
/// its error), handed back rather than copied. A block the feed already holds, byte for byte,
/// counts as written.
#[derive(Message)]
#[rtype(result = "(Vec<Block>, Option<FeedError>)")]
pub struct IngestMany(pub Vec<Block>);

impl Handler<IngestMany> for FeedActor {
    type Result = MessageResult<IngestMany>;
    fn handle(&mut self, msg: IngestMany, _: &mut Context<Self>) -> Self::Result {
        let (count, error) = self.write_many(&msg.0);
        let mut blocks = msg.0;
        blocks.truncate(count);
        MessageResult((blocks, error))
    }
}

impl FeedActor {
    /// Checks and writes `blocks` in order; how many were written, and the first error.
    fn write_many(&mut self, blocks: &[Block]) -> (usize, Option<FeedError>) {
        let mut log = self.log.clone();
        let mut batch = WriteBatch::new();
        let mut error = None;
        let mut count = 0;
        for block in blocks {
            if block.seq < log.len() {
                // Already held: the space may ask to store a block it has not applied yet
                // (say, a copy that arrived from a second peer while the first was being
                // stored). The same block counts as stored; a different one is a fork.
                match self.held(block) {
                    Ok(true) => {
                        count += 1;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if let Err(e) = log.check_next_presigned(block) {
                error = Some(e);
                break;
            }
            match encode(block) {
                Ok(bytes) => {
                    batch.put(Key::block(&block.feed_key, block.seq), bytes);
                }
                Err(e) => {
                    error = Some(e.into());
                    break;
                }
            }
            log.commit(block);
            count += 1;
        }
        if count == 0 || batch.is_empty() {
            return (count, error);
        }
        if let Err(e) = self.store.write(batch) {
            return (0, Some(FeedError::Storage(e.to_string())));
        }
        self.log = log;
        (count, error)
    }
}

/// Blocks `from..to` (clamped to the feed's length), stopping before the block that would
/// take the total of their encoded sizes past `max_bytes` (the first block is always
/// included): what is read for one frame never holds more than it may carry.
#[derive(Message)]
#[rtype(result = "Result<Vec<Block>, FeedError>")]
pub struct ReadRange {
    pub from: u64,
    pub to: u64,
    pub max_bytes: usize,
}

impl Handler<ReadRange> for FeedActor {
    type Result = Result<Vec<Block>, FeedError>;
    fn handle(&mut self, msg: ReadRange, _: &mut Context<Self>) -> Self::Result {
        let feed = self.log.key();
        let mut blocks = Vec::new();
        let mut total = 0usize;
        for seq in msg.from..msg.to.min(self.log.len()) {
            let bytes = self
                .store
                .get(&Key::block(&feed, seq))
                .map_err(|e| FeedError::Storage(e.to_string()))?
                .ok_or_else(|| FeedError::Storage(format!("block {seq} of {feed:?} is missing")))?;
            // Stored values are exactly `encode(block)`.
            total = total.saturating_add(bytes.len());
            if total > msg.max_bytes && !blocks.is_empty() {
                break;
            }
            blocks.push(decode(&bytes).map_err(|e| FeedError::Storage(e.to_string()))?);
        }
        Ok(blocks)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::store::MemStore;

    fn chain(key: &KeyPair, n: usize, tag: u8) -> Vec<Block> {
        let mut log = FeedLog::new(key.public());
        (0..n)
            .map(|i| {
                let b = log
                    .next_block(key, Timeframe::new(), Payload::Mutation(vec![tag, i as u8]))
                    .unwrap();
                log.commit(&b);
                b
            })
            .collect()
    }

    /// A block the feed already holds counts as stored (the space may not have applied it
    /// yet); a different block at a held seq is refused.
    #[actix::test]
    async fn ingest_counts_held_blocks_and_refuses_forks() {
        let key = KeyPair::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let blocks = chain(&key, 3, 0);
        let store = Arc::new(MemStore::new());
        let feed = FeedActor::new(FeedLog::new(key.public()), None, store.clone()).start();
        let first = feed.send(IngestMany(blocks[..2].to_vec())).await.unwrap();
        assert_eq!((first.0, first.1.is_none()), (blocks[..2].to_vec(), true));
        let again = feed.send(IngestMany(blocks[1..].to_vec())).await.unwrap();
        assert_eq!(
            (again.0, again.1.is_none()),
            (blocks[1..].to_vec(), true),
            "{:?}",
            again.1
        );
        let read = feed
            .send(ReadRange {
                from: 0,
                to: 10,
                max_bytes: usize::MAX,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, blocks);
        let fork = chain(&key, 2, 9);
        let (written, err) = feed.send(IngestMany(fork[1..].to_vec())).await.unwrap();
        assert!(written.is_empty());
        assert!(matches!(err, Some(FeedError::OutOfOrder { .. })), "{err:?}");
    }
}
