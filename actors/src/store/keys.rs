//! The layout of the keyspace. Every key starts with a one-byte table tag so that tables
//! never overlap and a prefix scan reads exactly one table (or one feed).

use crate::types::PublicKey;

/// Builders for every key the node stores.
pub struct Key;

const DEVICE: u8 = b'd';
const IDENTITY: u8 = b'i';
const SPACE: u8 = b's';
const SECRET: u8 = b'k';
const FEED: u8 = b'f';
const BLOCK: u8 = b'b';
const INVITATION: u8 = b'n';
const HALO_SPACE: u8 = b'h';
const DEVICE_NAME: u8 = b'p';

impl Key {
    /// The device record (device key pair).
    pub fn device() -> Vec<u8> {
        vec![DEVICE]
    }
    /// The identity record.
    pub fn identity() -> Vec<u8> {
        vec![IDENTITY]
    }
    /// The key of the identity space (HALO) of this node's identity; its space record is
    /// stored as every space's is.
    pub fn halo_space() -> Vec<u8> {
        vec![HALO_SPACE]
    }
    /// This device's name (UTF-8), as `device rename` set it.
    pub fn device_name() -> Vec<u8> {
        vec![DEVICE_NAME]
    }
    /// Prefix of all space records.
    pub fn spaces() -> Vec<u8> {
        vec![SPACE]
    }
    /// A space record: name, own feeds.
    pub fn space(space: &PublicKey) -> Vec<u8> {
        tagged(SPACE, space)
    }
    /// Secret key of one of our own feeds.
    pub fn feed_secret(feed: &PublicKey) -> Vec<u8> {
        tagged(SECRET, feed)
    }
    /// Prefix of the feed records of one space.
    pub fn feeds(space: &PublicKey) -> Vec<u8> {
        tagged(FEED, space)
    }
    /// A feed record (which space, whose, which designation) under its space.
    pub fn feed(space: &PublicKey, feed: &PublicKey) -> Vec<u8> {
        let mut k = tagged(FEED, space);
        k.extend_from_slice(feed.as_bytes());
        k
    }
    /// Prefix of all blocks of one feed.
    pub fn blocks(feed: &PublicKey) -> Vec<u8> {
        tagged(BLOCK, feed)
    }
    /// Prefix of all invitations this node hosts.
    pub fn invitations() -> Vec<u8> {
        vec![INVITATION]
    }
    /// The record of one invitation this node hosts (its id is 16 bytes).
    pub fn invitation(id: &[u8; 16]) -> Vec<u8> {
        let mut k = vec![INVITATION];
        k.extend_from_slice(id);
        k
    }
    /// One block; big-endian seq keeps them in order under a prefix scan.
    pub fn block(feed: &PublicKey, seq: u64) -> Vec<u8> {
        let mut k = tagged(BLOCK, feed);
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }
}

fn tagged(tag: u8, key: &PublicKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(tag);
    k.extend_from_slice(key.as_bytes());
    k
}
