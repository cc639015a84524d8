//! Stable smoke versions of the cargo-fuzz targets in `fuzz/` (docs/fuzzing.md).
//!
//! Each target's test feeds the same `echo_actors::fuzzing` function the fuzzer drives with
//! random bytes, and with valid seed inputs (built here) mutated by random byte writes and
//! truncation, so the invariants those functions check run in every `cargo test`. The
//! regression tests hold the exact inputs of every crash found, and `write_seed_corpus`
//! (ignored; run it by name) writes the seeds as the fuzzers' starting corpus.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use echo_actors::credentials::{
    authorize_device, Assertion, Credential, Designation, Role, Signer, Subject, MAX_DECODED_CHAINS,
};
use echo_actors::db::{ObjectId, SpaceDoc};
use echo_actors::feed::{Block, Payload};
use echo_actors::fuzzing;
use echo_actors::invitation::{AuthMethod, AuthProof, GuestFrame, InvitationCode, InvitationKind};
use echo_actors::replication::{ReplMessage, WireEncoder};
use echo_actors::signal::{space_topic, PeerInfo, SignalEvent, SignalRequest};
use echo_actors::types::{decode, encode, Hash, KeyPair, Timeframe, MAX_FRAME_BYTES};
use proptest::prelude::*;
use serde_json::json;

fn key(n: u8) -> KeyPair {
    KeyPair::from_secret([n; 32])
}

fn sample_block(payload: Payload) -> Block {
    let mut timeframe = Timeframe::new();
    timeframe.advance(key(9).public(), 3);
    Block::sign(&key(1), 4, Hash([7; 32]), timeframe, payload).unwrap()
}

/// A device credential signed for its identity, carrying its chain.
fn chained_credential() -> Credential {
    let identity = key(2);
    let device = key(3);
    let auth = authorize_device(&identity, device.public(), 1_700_000_000_000);
    Signer::for_device(identity.public(), device, auth).issue(
        Subject {
            id: key(4).public(),
            assertion: Assertion::AdmittedFeed {
                space_key: key(5).public(),
                identity_key: key(2).public(),
                device_key: key(3).public(),
                designation: Designation::Data,
            },
        },
        1_700_000_000_001,
        vec![Hash([1; 32])],
    )
}

fn member_credential() -> Credential {
    Signer::direct(key(5)).issue(
        Subject {
            id: key(2).public(),
            assertion: Assertion::SpaceMember {
                space_key: key(5).public(),
                role: Role::Editor,
            },
        },
        1,
        vec![],
    )
}

fn repl_messages() -> Vec<ReplMessage> {
    vec![
        ReplMessage::Hello {
            topic: [8; 32],
            device_auth: Box::new(authorize_device(&key(2), key(3).public(), 5)),
        },
        ReplMessage::Heads([(key(1).public(), 5), (key(2).public(), 0)].into()),
        ReplMessage::Want {
            feed: key(1).public(),
            from: 2,
            to: 300,
        },
        ReplMessage::Blocks(vec![
            sample_block(Payload::Mutation(vec![1, 2, 3])),
            sample_block(Payload::Credential(Box::new(member_credential()))),
        ]),
    ]
}

fn signal_messages() -> Vec<Vec<u8>> {
    let addr = "192.0.2.1:4000".parse().unwrap();
    let v6 = "[2001:db8::1]:4001".parse().unwrap();
    vec![
        encode(&SignalRequest::Join {
            topic: [3; 32],
            addrs: vec![addr, v6],
        })
        .unwrap(),
        encode(&SignalRequest::Leave { topic: [3; 32] }).unwrap(),
        encode(&SignalEvent::PeerAvailable {
            topic: [3; 32],
            peer: PeerInfo {
                device_key: key(3).public(),
                addrs: vec![addr],
            },
        })
        .unwrap(),
        encode(&SignalEvent::PeerLeft {
            topic: [3; 32],
            device_key: key(3).public(),
        })
        .unwrap(),
        encode(&SignalEvent::Synced { topic: [3; 32] }).unwrap(),
    ]
}

fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for body in bodies {
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn json_objects() -> Vec<serde_json::Value> {
    let id = ObjectId::from_parts(1_700_000_000_000, 9).to_string();
    vec![
        json!({"@type": "Contact", "@meta": {"keys": [{"source": "x", "id": "1"}]},
               "name": "Zoë 👋", "age": 41, "score": -2.5, "ok": true, "none": null}),
        json!({"nested": {"a": {"b": [1, "two", 3.5, false, null, [[]], {"x": 1}]}},
               "big": 9007199254740993_i64, "huge": u64::MAX, "tiny": 1e-300,
               "ref": {"@ref": id}, "refs": [{"@ref": id}],
               "text": {"@text": "hello"}, "texts": [{"@text": "in an array"}]}),
        json!({}),
    ]
}

/// A v1 update made by another client: one new object, as a Yjs client would send it.
fn client_update() -> Vec<u8> {
    let mut other = SpaceDoc::new(77);
    let id = ObjectId::from_parts(1_700_000_000_000, 2);
    other
        .add(id, &json!({"title": "from a client", "n": [1, 2]}))
        .unwrap()
        .update
}

/// y-protocols frames: sync step 1, step 2, update, awareness, query-awareness.
fn yjs_frames() -> Vec<Vec<u8>> {
    let update = client_update();
    let var_buf = |tag: &[u8], body: &[u8]| {
        let mut out = tag.to_vec();
        out.push(u8::try_from(body.len()).unwrap());
        out.extend_from_slice(body);
        out
    };
    let sv = SpaceDoc::new(1).state_vector_v1();
    let mut long_update = vec![0, 2];
    long_update.extend_from_slice(&leb128(update.len()));
    long_update.extend_from_slice(&update);
    vec![
        var_buf(&[0, 0], &sv),
        long_update.clone(),
        [long_update.as_slice(), &[3]].concat(),
        var_buf(
            &[1],
            &[1, 5, 1, 7, b'{', b'"', b'a', b'"', b':', b'1', b'}'],
        ),
        vec![3],
    ]
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap();
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// An invitation code's text, wrapped over two lines as a pasted one may be.
fn invitation_code_text() -> Vec<u8> {
    let code = InvitationCode {
        kind: InvitationKind::Space,
        invitation_id: [6; 16],
        auth: AuthMethod::Pin,
        topic: space_topic(&key(5).public()),
        space_key: key(5).public(),
        created_ms: 1_700_000_000_000,
        lifetime_ms: 86_400_000,
        host_device: key(3).public(),
        addrs: vec![
            "192.168.1.20:4433".parse().unwrap(),
            "[2001:db8::1]:4433".parse().unwrap(),
        ],
        signal: vec!["203.0.113.7:7000".parse().unwrap()],
    };
    let text = code.encode();
    format!("{}\n{}", &text[..60], &text[60..]).into_bytes()
}

/// Valid inputs per fuzz target (the target names of `fuzz/Cargo.toml`).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    // As one stream carries them: blocks in compact form.
    let mut enc = WireEncoder::new();
    let repl: Vec<Vec<u8>> = repl_messages()
        .into_iter()
        .map(|m| encode(&enc.encode(m)).unwrap())
        .collect();
    match target {
        "frames" => vec![framed(&repl), framed(&signal_messages()), Vec::new()],
        "block" => vec![
            encode(&sample_block(Payload::Mutation(client_update()))).unwrap(),
            encode(&sample_block(Payload::Credential(Box::new(
                chained_credential(),
            ))))
            .unwrap(),
        ],
        "credential" => vec![
            encode(&chained_credential()).unwrap(),
            encode(&member_credential()).unwrap(),
        ],
        "repl_message" => repl,
        "signal" => signal_messages(),
        "invitation" => {
            vec![encode(&GuestFrame::Authenticate(AuthProof::Pin("123456".into()))).unwrap()]
        }
        "invitation_code" => vec![invitation_code_text()],
        "json_add" => json_objects()
            .iter()
            .map(|v| v.to_string().into_bytes())
            .collect(),
        "merge_patch" => vec![
            json!([json_objects()[0], {"name": null, "age": 42, "new": {"x": [1]}},
                   {"@type": null, "@meta": null, "@deleted": true}, {"@deleted": false}])
            .to_string()
            .into_bytes(),
            json!([json_objects()[1], {"text": "hullo", "nested": {"a": {"b": null}}},
                   {"nested": 5, "ref": {"@text": "now text"}, "texts": null}])
            .to_string()
            .into_bytes(),
        ],
        "yjs" => yjs_frames(),
        other => panic!("no fuzz target {other}"),
    }
}

/// A fuzz target's shared function.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 10] = [
    ("frames", fuzzing::frames),
    ("block", fuzzing::block),
    ("credential", fuzzing::credential),
    ("repl_message", fuzzing::repl_message),
    ("signal", fuzzing::signal),
    ("invitation", fuzzing::invitation),
    ("invitation_code", fuzzing::invitation_code),
    ("json_add", fuzzing::json_add),
    ("merge_patch", fuzzing::merge_patch),
    ("yjs", fuzzing::yjs),
];

/// `seed` with `writes` applied (positions modulo its length) and cut to `keep` bytes.
fn mutate(seed: &[u8], writes: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut out = seed.to_vec();
    if !out.is_empty() {
        for &(at, byte) in writes {
            let len = out.len();
            out[at % len] = byte;
        }
    }
    out.truncate(keep);
    out
}

fn run_mutated(target: &str, f: Target, seed: usize, writes: &[(usize, u8)], keep: usize) {
    let seeds = seeds(target);
    f(&mutate(&seeds[seed % seeds.len()], writes, keep));
}

fn writes() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)
}

/// One proptest per target: random bytes, and mutated seeds.
macro_rules! smoke {
    ($($name:ident),*) => {$(
        mod $name {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]
                #[test]
                fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                    fuzzing::$name(&bytes);
                }
                #[test]
                fn mutated_seeds_keep_the_invariants(
                    seed in any::<usize>(), writes in writes(), keep in 0usize..4096
                ) {
                    run_mutated(stringify!($name), fuzzing::$name, seed, &writes, keep);
                }
            }
        }
    )*};
}

smoke!(
    frames,
    block,
    credential,
    invitation,
    invitation_code,
    repl_message,
    signal,
    json_add,
    merge_patch,
    yjs
);

#[test]
fn every_seed_is_accepted_whole() {
    for (target, f) in TARGETS {
        for seed in seeds(target) {
            f(&seed);
        }
    }
    let code = String::from_utf8(invitation_code_text()).unwrap();
    assert!(InvitationCode::decode(&code).is_ok());
    assert!(decode::<Credential>(&seeds("credential")[0])
        .unwrap()
        .verify()
        .is_ok());
    let mut doc = SpaceDoc::new(1);
    assert!(doc.apply_client_update(&client_update()).is_ok());
}

/// Writes the seeds to `fuzz/corpus/<target>/seed-<n>`:
/// `cargo test -p echo-actors --test fuzz_smoke write_seed_corpus -- --ignored`.
#[test]
#[ignore = "writes files; run by name to seed the fuzz corpus"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, _) in TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, seed) in seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n}")), seed).unwrap();
        }
    }
}

/// A credential nesting `chains` device chains, encoded without building it (encoding a
/// deep value would itself recurse). Each level is the encoding of a chain-less credential
/// with its final `None` turned into `Some` of the next level.
fn nested_credential_bytes(chains: usize) -> Vec<u8> {
    let bytes = encode(&member_credential()).unwrap();
    let (version, body) = bytes.split_first().unwrap();
    let (none, level) = body.split_last().unwrap();
    assert_eq!(*none, 0, "a chain-less credential ends with None");
    let mut out = vec![*version];
    for _ in 0..chains {
        out.extend_from_slice(level);
        out.push(1);
    }
    out.extend_from_slice(level);
    out.push(0);
    out
}

/// Runs `f` on a thread with the 2 MiB stack of tokio's and actix's worker threads.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Finding 1: a frame-sized credential nesting ~25,000 device chains overflowed the stack
/// while decoding (an abort, not a panic: one Hello frame from a stranger killed the node).
#[test]
fn regression_deeply_nested_credential_chains_are_refused_not_a_stack_overflow() {
    let level = nested_credential_bytes(0).len() - 1;
    let chains = (MAX_FRAME_BYTES - 1) / level - 1;
    let input = nested_credential_bytes(chains);
    assert!(input.len() <= MAX_FRAME_BYTES);
    let hello = on_small_stack(move || {
        fuzzing::credential(&input);
        fuzzing::block(&input);
        decode::<Credential>(&input).is_err()
    });
    assert!(hello, "a credential nested {chains} deep decoded");
    // Every depth a credential could verify at still decodes; one past the limit does not.
    assert!(decode::<Credential>(&nested_credential_bytes(MAX_DECODED_CHAINS)).is_ok());
    assert!(decode::<Credential>(&nested_credential_bytes(MAX_DECODED_CHAINS + 1)).is_err());
    let chained = encode(&chained_credential()).unwrap();
    assert!(decode::<Credential>(&chained).unwrap().verify().is_ok());
}

/// A v1 update of one item at the root map `objects` whose content is one value nesting
/// `arrays` arrays around a null (2 bytes per level).
fn nested_any_update(arrays: usize) -> Vec<u8> {
    // 1 client, 1 struct, client 1, clock 0, info 8 (Any content, no origins), named parent.
    let mut update = vec![1u8, 1, 1, 0, 8, 1, 7];
    update.extend_from_slice(b"objects");
    update.push(1); // one value
    for _ in 0..arrays {
        update.extend_from_slice(&[117, 1]); // an array of one item
    }
    update.push(126); // null
    update.push(0); // empty delete set
    update
}

/// Finding 2: yrs decodes nested arrays and maps of an update recursively; a 200 KB update
/// nesting 100,000 arrays overflowed the stack (an abort `catch_unwind` cannot stop: one data
/// block from a member, or one Yjs bridge frame, killed every node that applied it).
#[test]
fn regression_deeply_nested_values_in_an_update_are_refused_not_a_stack_overflow() {
    let update = nested_any_update(100_000);
    let mut frame = vec![0, 2];
    frame.extend_from_slice(&leb128(update.len()));
    frame.extend_from_slice(&update);
    let (remote, client) = on_small_stack(move || {
        fuzzing::yjs(&frame);
        let mut doc = SpaceDoc::new(3);
        (
            doc.apply_update(&update).map_err(|e| e.to_string()),
            doc.apply_client_update(&update).map_err(|e| e.to_string()),
        )
    });
    assert!(remote.unwrap_err().contains("nests values"));
    assert!(client.unwrap_err().contains("nests values"));
    // Moderate nesting, written by yrs itself, still decodes: the scan reads what yrs reads.
    let source = yrs::Doc::with_client_id(9);
    let map = source.get_or_insert_map("objects");
    let mut value = yrs::Any::Null;
    for _ in 0..100 {
        value = yrs::Any::Array(vec![value, yrs::Any::from("x")].into());
    }
    let update = {
        use yrs::{Map, Transact};
        let mut txn = source.transact_mut();
        map.insert(&mut txn, "deep", value);
        txn.encode_update_v1()
    };
    assert!(SpaceDoc::new(3).apply_update(&update).is_ok());
    assert!(SpaceDoc::new(3)
        .apply_update(&nested_any_update(100))
        .is_ok());
}

/// Fuzzer input (yjs, crash-449b80c0): a custom message with tag 210. yrs reads the tag as a
/// varint but writes it back as one byte, so the message does not round-trip; the target's
/// invariant now leaves custom messages out (the node closes on them anyway).
#[test]
fn regression_a_custom_yjs_message_tag_above_127_is_not_a_finding() {
    let input = [
        210, 1, 3, 73, 36, 146, 73, 36, 146, 74, 229, 0, 0, 2, 177, 1, 7, 123, 34, 249, 1, 249,
        177, 0, 0, 7, 6, 50, 125,
    ];
    fuzzing::yjs(&input);
}

/// Fuzzer input (yjs, crash-93bb633f): an update whose item id carries a client id above 53
/// bits. The nesting scan of v1 updates read it with yrs' `read_left_id`, whose debug
/// assertion panicked outside the `catch_unwind` that guards yrs' decoder; the scan now runs
/// inside it.
#[test]
fn regression_the_update_nesting_scan_runs_under_catch_unwind() {
    let input = [
        0, 2, 111, 1, 48, 48, 64, 242, 242, 242, 242, 242, 242, 242, 242, 100, 101, 199, 101, 116,
        101, 100, 1, 121, 39, 0, 77, 0, 5, 64, 109, 101, 116, 97, 1, 39, 0, 77, 0, 1, 110, 0, 8, 0,
        77, 3, 2, 125, 1, 125, 2, 40, 0, 77, 0, 5, 116, 105, 116, 108, 101, 1, 119, 13, 102, 114,
        111, 109, 32, 97, 32, 99, 108, 105, 0, 1, 110, 0, 8, 0, 77, 3, 2, 125, 1, 125, 2, 40, 0,
        77, 0, 5, 116, 105, 116, 108, 101, 1, 119, 13, 102, 114, 60, 127, 255, 182, 32, 99, 108,
        105, 101, 110, 116, 0, 3,
    ];
    fuzzing::yjs(&input);
}

/// Fuzzer input (yjs, slow-unit-422cea30, 13 s): a custom message, a sync message with an
/// unknown sub-type, then an awareness update declaring 331 million states. yrs' reader
/// resumes after a malformed message, so the declared count was reserved although nothing
/// after the first malformed message is acted on; decoding now stops there.
#[test]
fn regression_nothing_after_a_malformed_yjs_message_is_decoded() {
    let input = [
        61, 0, 0, 3, 0, 211, 3, 3, 1, 11, 158, 158, 158, 158, 1, 0, 0, 0, 0, 0, 0, 4, 158, 158,
        158, 150, 3, 74, 158, 0, 58, 0, 0, 0, 0, 0, 0, 38, 9, 53, 125,
    ];
    let started = std::time::Instant::now();
    fuzzing::yjs(&input);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// Finding (yjs, crash-fcbce9d8): a client update of overlapping garbage-collected ranges
/// of an unknown client (`gc(0..=111), gc(1..=40)` of client 59) was admitted, and left a
/// document whose `snapshot()` starts that client at clock 1: a fresh replica holds it back
/// forever and renders no objects. `check_client_update` now refuses an update after which
/// the document's own state would not rebuild on an empty replica.
#[test]
fn an_update_that_leaves_an_unreplicable_document_is_refused() {
    let input = [
        3, 0, 1, 149, 0, 3, 0, 2, 111, 1, 59, 0, 0, 111, 1, 59, 0, 0, 240, 36, 255, 255, 255, 255,
        255, 255, 127, 39, 0, 122, 39, 0, 122, 1, 0, 1, 149, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 1, 6,
        77, 0, 1, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 149, 0, 3, 0, 2, 111, 1, 59,
        0, 0, 111, 1, 59, 1, 0, 39, 0, 122, 39, 0, 122, 1, 0,
    ];
    fuzzing::yjs(&input);
    // The update itself (the payload of the input's last sync step 2), against a document
    // with one object: refused, and the document is unchanged.
    let update = [
        3, 0, 2, 111, 1, 59, 0, 0, 111, 1, 59, 1, 0, 39, 0, 122, 39, 0, 122, 1, 0,
    ];
    let mut doc = echo_actors::db::SpaceDoc::new(1);
    let id = echo_actors::db::ObjectId::from_parts(1_700_000_000_000, 7);
    doc.add(id, &serde_json::json!({})).unwrap();
    let before = doc.canonical_state();
    let refused = doc.apply_client_update(&update).unwrap_err();
    assert!(refused.to_string().contains("cannot rebuild"), "{refused}");
    assert_eq!(doc.canonical_state(), before);
}

/// Finding (yjs, crash-65368d9b): a forged client update was admitted, after which the
/// node rendered a field (`ti4le`) that a replica rebuilt from the node's own state did not:
/// a Yjs client syncing from scratch would see another object than the node and its peers.
/// `check_client_update` now refuses an update unless a replica rebuilt from the resulting
/// state renders the same.
#[test]
fn an_update_after_which_a_rebuilt_replica_renders_otherwise_is_refused() {
    let input = [
        102, 0, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0, 110, 1, 1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0,
        110, 1, 1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 1, 111, 1, 6, 77, 0, 39, 1, 7, 111, 98, 106, 101, 99,
        116, 115, 26, 48, 48, 72, 70, 55, 89, 65, 84, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
        48, 48, 48, 48, 48, 48, 49, 1, 40, 0, 77, 0, 8, 33, 100, 101, 108, 101, 116, 101, 100, 1,
        121, 39, 16, 77, 0, 5, 64, 109, 101, 116, 97, 1, 39, 0, 77, 0, 1, 110, 0, 8, 0, 77, 3, 2,
        125, 1, 125, 2, 40, 0, 77, 0, 5, 116, 105, 52, 108, 101, 1, 119, 13, 102, 114, 111, 109,
        32, 56, 32, 99, 108, 105, 101, 2, 0, 0, 110, 1, 1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0,
        0, 1, 6, 0, 0, 110, 1, 254, 255, 248, 1, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0, 2, 0, 0, 0, 1, 18,
        1, 0, 0, 1, 2, 0, 0, 110, 1, 1, 0, 0, 1, 0, 0, 1, 2, 0, 0, 1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 1,
        2, 0, 0, 0, 1, 2, 0, 0, 147, 1, 1, 0, 0, 1, 4, 1, 2, 0, 0, 0, 1, 111, 1, 6, 77, 2, 39, 1,
        7, 111, 98, 106, 101, 99, 116, 115, 26, 49, 53, 72, 70, 55, 89, 65, 84, 48, 48, 48, 48, 56,
        48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 49, 1, 40, 0, 77, 0, 8, 33, 100, 91, 108,
        101, 116, 101, 100, 1, 121, 39, 16, 77, 0, 5, 64, 109, 101, 116, 97, 1, 39, 0, 77, 0, 1,
        110, 0, 8, 0, 77, 3, 2, 125, 1, 125, 2, 0, 40, 0, 5, 77, 116, 105, 52, 108, 101, 1, 119,
        13, 102, 114, 111, 109, 32, 56, 32, 99, 108, 105, 101, 2, 0, 0, 110, 1, 1, 0, 0, 1, 0, 0,
        1, 0, 110, 1, 1, 0, 0, 1, 0, 0, 1, 2, 0, 0, 0, 1, 2, 0, 0, 0, 1, 6, 0, 0, 110, 1, 254, 255,
        248, 1, 0, 1, 0, 0, 1, 0, 3, 0, 1, 1, 111, 0, 1, 101,
    ];
    fuzzing::yjs(&input);
}
