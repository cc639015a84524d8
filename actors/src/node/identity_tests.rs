//! The identity through `NodeHandle`: create and recover keep no secret in the store, recover
//! gives the same identity with a new device, and bad phrases are refused by name.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::identity::identity_from_phrase;
use crate::store::{MemStore, Store};
use crate::types::FixedClock;

async fn open(store: Arc<MemStore>, seed: u8) -> NodeHandle {
    Node::open(NodeConfig::local(
        store,
        [seed; 32],
        Arc::new(FixedClock::new(1_700_000_000_000)),
    ))
    .await
    .expect("node opens")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every key and value of the store, concatenated.
fn store_bytes(store: &MemStore) -> Vec<u8> {
    store
        .scan_prefix(&[])
        .unwrap()
        .into_iter()
        .flat_map(|(k, v)| k.into_iter().chain(v))
        .collect()
}

/// The secrets a store must never hold: the identity secret, the phrase, and any two of its
/// words in a row.
fn assert_no_identity_secret(store: &MemStore, phrase: &str) {
    let bytes = store_bytes(store);
    let secret = identity_from_phrase(phrase).unwrap().secret_bytes();
    assert!(!contains(&bytes, &secret), "the identity secret is stored");
    let words: Vec<&str> = phrase.split(' ').collect();
    for pair in words.windows(2) {
        let pair = pair.join(" ");
        assert!(!contains(&bytes, pair.as_bytes()), "`{pair}` is stored");
    }
}

/// A phrase with its first word replaced.
fn with_first_word(phrase: &str, word: &str) -> String {
    let mut words: Vec<&str> = phrase.split(' ').collect();
    words[0] = word;
    words.join(" ")
}

#[actix::test]
async fn create_keeps_no_identity_secret_in_the_store() {
    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 1).await;
    let created = node.identity_create(Some("Ada".into())).await.unwrap();
    node.space_create(Some("notes".into())).await.unwrap();
    assert_no_identity_secret(&store, &created.seed_phrase);
}

#[actix::test]
async fn recover_gives_the_same_identity_key_and_a_new_device_key_that_signs_for_it() {
    let old = open(Arc::new(MemStore::new()), 1).await;
    let created = old.identity_create(Some("Ada".into())).await.unwrap();

    let store = Arc::new(MemStore::new());
    let node = open(store.clone(), 2).await;
    let recovered = node
        .identity_recover(created.seed_phrase.clone(), Some("Ada".into()))
        .await
        .unwrap();
    assert_eq!(recovered.identity_key, created.identity_key);
    assert_ne!(recovered.device_key, created.device_key);
    assert_eq!(
        recovered.device_key,
        node.status().await.unwrap().device_key
    );
    assert_eq!(recovered.name.as_deref(), Some("Ada"));
    assert_no_identity_secret(&store, &created.seed_phrase);

    // The new device signs for the identity: it creates a space and writes in it.
    node.space_create(Some("notes".into())).await.unwrap();
    node.object_add("notes", json!({"title": "back"}))
        .await
        .unwrap();
    let members = node.space_members("notes").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].identity_key, created.identity_key);

    // The recovered identity survives a restart.
    drop(node);
    let node = open(store, 3).await;
    let shown = node.identity_show().await.unwrap();
    assert_eq!(shown.identity_key, created.identity_key);
    assert_eq!(shown.device_key, recovered.device_key);
}

#[actix::test]
async fn recover_is_refused_on_a_node_that_has_an_identity() {
    let node = open(Arc::new(MemStore::new()), 1).await;
    let created = node.identity_create(None).await.unwrap();
    for phrase in [created.seed_phrase.clone(), "not even a phrase".to_string()] {
        let err = node.identity_recover(phrase, None).await.unwrap_err();
        assert_eq!(err.code(), "identity_exists");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("fresh data dir"), "{err}");
    }
}

#[actix::test]
async fn recover_names_what_is_wrong_with_the_phrase_and_keeps_no_identity() {
    let phrase = open(Arc::new(MemStore::new()), 1)
        .await
        .identity_create(None)
        .await
        .unwrap()
        .seed_phrase;
    let node = open(Arc::new(MemStore::new()), 2).await;
    let twenty_three = phrase.split(' ').skip(1).collect::<Vec<_>>().join(" ");
    // A valid word at the first place that breaks the checksum (one of a few tried).
    let bad_checksum = ["abandon", "zoo", "ability"]
        .iter()
        .map(|w| with_first_word(&phrase, w))
        .find(|p| identity_from_phrase(p).is_err())
        .unwrap();
    for (phrase, code, says) in [
        (twenty_three, "wrong_word_count", "has 23 words"),
        (
            with_first_word(&phrase, "qwertyuiop"),
            "unknown_word",
            "word 1 ",
        ),
        (bad_checksum, "bad_checksum", "checksum"),
        (String::new(), "wrong_word_count", "has 0 words"),
    ] {
        let err = node.identity_recover(phrase, None).await.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(
        node.identity_show().await.unwrap_err().code(),
        "no_identity"
    );
}
