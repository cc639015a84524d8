//! Identity recovery from the seed phrase and the migration of old data dirs, between real
//! processes: `identity recover` on a fresh data dir, wrong phrases, the phrase never on
//! disk or in the logs, and a data dir whose store still holds the identity secret.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use echo_actors::credentials::{authorize_device, Assertion, Credential, Signer, Subject};
use echo_actors::identity::{identity_from_phrase, DeviceRecord};
use echo_actors::store::{Key, SledStore, Store};
use echo_actors::types::{encode, KeyPair};
use echo_tests::{echo_node, is_key_hex, wait_bounded, Node, CLI_TIMEOUT};
use serde::Serialize;

/// A node with an identity: returns it and its seed phrase.
fn created() -> (Node, serde_json::Value) {
    let node = Node::started();
    let created = node.ok(&["identity", "create", "--name", "ada"]);
    (node, created)
}

fn phrase_of(created: &serde_json::Value) -> String {
    created["seed_phrase"].as_str().unwrap().to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, read whole (files that vanish meanwhile are skipped).
fn dir_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(dir_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

/// What must never appear where `bytes` came from: the phrase, any two of its words in a
/// row, and the identity secret it derives.
fn assert_phrase_absent(bytes: &[u8], phrase: &str, where_: &str) {
    assert!(
        !contains(bytes, phrase.as_bytes()),
        "the phrase is in {where_}"
    );
    let words: Vec<&str> = phrase.split_whitespace().collect();
    for pair in words.windows(2) {
        let pair = pair.join(" ");
        assert!(!contains(bytes, pair.as_bytes()), "`{pair}` is in {where_}");
    }
    let secret = identity_from_phrase(phrase).unwrap().secret_bytes();
    assert!(
        !contains(bytes, &secret),
        "the identity secret is in {where_}"
    );
}

/// `phrase` with word `i` (0-based) replaced.
fn with_word(phrase: &str, i: usize, word: &str) -> String {
    let mut words: Vec<&str> = phrase.split_whitespace().collect();
    words[i] = word;
    words.join(" ")
}

#[test]
fn recover_on_a_fresh_data_dir_gives_the_same_identity_key_and_a_new_device_key() {
    let (old, created) = created();
    let phrase = phrase_of(&created);
    let mut fresh = Node::started();
    let recovered = fresh.ok(&["identity", "recover", "--seed-phrase", &phrase]);
    assert_eq!(
        recovered["identity_key"], created["identity_key"],
        "{recovered}"
    );
    let device_key = recovered["device_key"].as_str().unwrap();
    assert!(is_key_hex(device_key), "{recovered}");
    assert_ne!(
        recovered["device_key"], created["device_key"],
        "{recovered}"
    );
    assert_eq!(device_key, fresh.device_key());
    assert!(recovered.get("seed_phrase").is_none(), "{recovered}");
    // The recovered device signs for the identity: it creates a space and writes in it.
    fresh.ok(&["space", "create", "--name", "notes"]);
    fresh.ok(&["object", "add", "notes", r#"{"title": "back"}"#]);
    // It survives a restart.
    fresh.stop();
    fresh.start();
    assert_eq!(fresh.identity_key(), created["identity_key"]);
    assert_eq!(fresh.device_key(), device_key);
    // The old device is untouched.
    assert_eq!(old.identity_key(), created["identity_key"]);
}

#[test]
fn recover_reads_the_phrase_from_stdin_for_a_dash() {
    let (_old, created) = created();
    let phrase = phrase_of(&created);
    let fresh = Node::started();
    let mut child = Command::new(echo_node())
        .args([
            "--data-dir",
            fresh.data_dir().to_str().unwrap(),
            "--json",
            "identity",
            "recover",
            "--seed-phrase",
            "-",
        ])
        .env_remove("ECHO_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{phrase}\n").as_bytes())
        .unwrap();
    let status = wait_bounded(&mut child, CLI_TIMEOUT).expect("recover finished");
    assert!(status.success(), "recover with the phrase on stdin failed");
    assert_eq!(fresh.identity_key(), created["identity_key"]);
}

#[test]
fn recover_takes_the_words_as_separate_arguments() {
    let (_old, created) = created();
    let phrase = phrase_of(&created);
    let fresh = Node::started();
    let mut args = vec!["identity", "recover", "--seed-phrase"];
    args.extend(phrase.split_whitespace());
    args.extend(["--name", "ada"]);
    let recovered = fresh.ok(&args);
    assert_eq!(recovered["identity_key"], created["identity_key"]);
    assert_eq!(recovered["name"], "ada");
}

#[test]
fn recover_on_a_data_dir_that_has_an_identity_is_refused() {
    let (node, created) = created();
    let out = node.fails(&["identity", "recover", "--seed-phrase", &phrase_of(&created)]);
    assert!(
        out.stderr.contains("already has an identity") && out.stderr.contains("fresh data dir"),
        "{out}"
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(node.identity_key(), created["identity_key"]);
}

#[test]
fn a_wrong_seed_phrase_is_refused_naming_what_is_wrong() {
    let (_old, created) = created();
    let phrase = phrase_of(&created);
    let fresh = Node::started();
    let twelve = phrase
        .split_whitespace()
        .take(12)
        .collect::<Vec<_>>()
        .join(" ");
    // A valid BIP39 word in place of the last that breaks the checksum (one of a few).
    let bad_checksum = ["abandon", "zoo", "ability", "able"]
        .iter()
        .map(|w| with_word(&phrase, 23, w))
        .find(|p| identity_from_phrase(p).is_err())
        .unwrap();
    for (wrong, says) in [
        (
            twelve,
            "has 12 words; an echo-rs seed phrase has exactly 24",
        ),
        (
            with_word(&phrase, 6, "qwertyuiop"),
            "word 7 of the seed phrase is not a BIP39 English word",
        ),
        (bad_checksum, "checksum does not match"),
    ] {
        let out = fresh.fails(&["identity", "recover", "--seed-phrase", &wrong]);
        assert!(out.stderr.contains(says), "expected `{says}`:\n{out}");
        assert_eq!(out.status.code(), Some(1), "{out}");
    }
    // Nothing was recovered.
    let out = fresh.fails(&["identity", "show"]);
    assert!(out.stderr.contains("no identity"), "{out}");
}

#[test]
fn the_seed_phrase_is_never_written_to_the_data_dir_or_the_logs() {
    let (_old, created) = created();
    let phrase = phrase_of(&created);
    let mut fresh = Node::new();
    fresh.start_with_env(&[], &[("RUST_LOG", "debug")]);
    fresh.ok(&["identity", "recover", "--seed-phrase", &phrase]);
    // A wrong phrase close to the right one is not logged either.
    fresh.fails(&[
        "identity",
        "recover",
        "--seed-phrase",
        &with_word(&phrase, 0, "zzz"),
    ]);
    fresh.ok(&["space", "create", "--name", "notes"]);
    fresh.stop();
    assert_phrase_absent(&dir_bytes(fresh.data_dir()), &phrase, "the data dir");
    assert_phrase_absent(fresh.logs().as_bytes(), &phrase, "the daemon's logs");
    assert!(
        fresh.logs().contains("identity recovered"),
        "the recovery is logged (without the phrase)"
    );
}

/// The identity record exactly as the code before the identity secret left the store wrote
/// it.
#[derive(Serialize)]
struct OldIdentityRecord {
    identity_secret: [u8; 32],
    name: Option<String>,
    device_credential: Credential,
    profile: Credential,
}

#[test]
fn an_old_data_dir_is_migrated_when_the_daemon_starts_and_the_secret_leaves_its_files() {
    let mut node = Node::new();
    let identity = KeyPair::from_secret([0x3C; 32]);
    let secret = identity.secret_bytes();
    let device_secret = [0x11; 32];
    {
        // The data dir as the old daemon left it: a device record and an identity record
        // with the secret.
        std::fs::create_dir_all(node.data_dir()).unwrap();
        let store = SledStore::open(&node.data_dir().join("store")).unwrap();
        let device = KeyPair::from_secret(device_secret);
        let device_credential = authorize_device(&identity, device.public(), 1_700_000_000_000);
        let profile = Signer::for_device(identity.public(), device, device_credential.clone())
            .issue(
                Subject {
                    id: identity.public(),
                    assertion: Assertion::IdentityProfile {
                        display_name: Some("old".into()),
                    },
                },
                1_700_000_000_000,
                vec![device_credential.id()],
            );
        let old = OldIdentityRecord {
            identity_secret: secret,
            name: Some("old".into()),
            device_credential,
            profile,
        };
        store
            .put(
                &Key::device(),
                &encode(&DeviceRecord {
                    secret: device_secret,
                })
                .unwrap(),
            )
            .unwrap();
        store.put(&Key::identity(), &encode(&old).unwrap()).unwrap();
        store.flush().unwrap();
    }
    assert!(contains(&dir_bytes(node.data_dir()), &secret));

    node.start();
    let shown = node.ok(&["identity", "show"]);
    assert_eq!(shown["identity_key"], identity.public().to_hex(), "{shown}");
    assert_eq!(shown["name"], "old", "{shown}");
    assert_eq!(
        node.device_key(),
        KeyPair::from_secret(device_secret).public().to_hex()
    );
    assert!(
        node.logs().contains("migrated the identity record"),
        "the migration is logged:\n{}",
        node.logs()
    );
    // The device still signs for the identity, with its chain.
    node.ok(&["space", "create", "--name", "after"]);
    node.stop();
    assert!(
        !contains(&dir_bytes(node.data_dir()), &secret),
        "the identity secret is still in the data dir after the migration"
    );
    // A second start has nothing to migrate.
    node.start();
    assert_eq!(node.identity_key(), identity.public().to_hex());
    node.stop();
    let logs = node.logs();
    let runs: Vec<&str> = logs.split("===== run #").collect();
    assert!(!runs
        .last()
        .unwrap()
        .contains("migrated the identity record"));
}
