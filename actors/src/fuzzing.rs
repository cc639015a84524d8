//! Fuzz entry points: one function per fuzz target, shared by the cargo-fuzz crate (`fuzz/`,
//! nightly) and the stable proptest smoke tests (`actors/tests/fuzz_smoke.rs`).
//!
//! Contract:
//! - Each function takes arbitrary bytes and drives one decoder of hostile input the way the
//!   node does: [`frames`] (QUIC stream framing), [`block`], [`credential`],
//!   [`repl_message`], [`signal`], [`invitation`] (the wire codec of each message type),
//!   [`invitation_code`] (the text a guest pastes), [`json_add`] (JSON
//!   into the object model), [`merge_patch`] (RFC 7386 patches on a stored object) and
//!   [`yjs`] (y-protocols sync/awareness messages of the Yjs bridge, and the updates they
//!   carry into a document).
//! - Bad input must give an error, never a panic. On input that is accepted, the function
//!   checks cheap invariants and **panics when one fails**: that is how a fuzzer reports a
//!   finding. Invariants: decode → encode → decode gives the same value and the encoding is
//!   canonical; lengths computed without encoding match; an accepted object renders as
//!   predicted and a replica fed the update bytes renders the same; a patch is idempotent.
//! - No clock, no randomness, no I/O: a run depends only on its input.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;

use crate::credentials::Credential;
use crate::db::{canonical_json, ObjectId, SpaceDoc};
use crate::feed::{block_len, Block};
use crate::invitation::{GuestFrame, HostFrame, InvitationCode};
use crate::replication::{ReplMessage, WireDecoder, WireEncoder, WireMessage};
use crate::signal::wire::announce_addrs;
use crate::signal::{SignalEvent, SignalRequest, MAX_ADDRS};
use crate::transport::decode_frames;
use crate::types::{decode, encode, encoded_len};

/// Decodes `data` as a `T`; if it decodes, checks that the value re-encodes canonically.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value: T = decode(data).ok()?;
    let bytes = match encode(&value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded value does not re-encode: {e}"),
    };
    assert_eq!(encoded_len(&value).ok(), Some(bytes.len()), "encoded_len");
    let again: T = match decode(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("a re-encoded value does not decode: {e}"),
    };
    assert_eq!(again, value, "decode(encode(v)) != v");
    assert_eq!(
        encode(&again).ok(),
        Some(bytes),
        "encoding is not canonical"
    );
    Some(value)
}

/// A stream of length-prefixed frames, decoded as each kind of message that travels framed.
pub fn frames(data: &[u8]) {
    frames_of::<WireMessage>(data);
    if let Ok(frames) = decode_frames::<WireMessage>(data) {
        repl_stream(frames);
    }
    frames_of::<SignalRequest>(data);
    frames_of::<SignalEvent>(data);
}

fn frames_of<T>(data: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(values) = decode_frames::<T>(data) else {
        return;
    };
    let mut stream = Vec::new();
    for value in &values {
        let body = encode(value).unwrap_or_default();
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        stream.extend_from_slice(&len.to_be_bytes());
        stream.extend_from_slice(&body);
    }
    match decode_frames::<T>(&stream) {
        Ok(again) => assert_eq!(again, values, "re-framed stream decodes differently"),
        Err(e) => panic!("a re-framed stream does not decode: {e}"),
    }
}

/// One feed block: codec round trip, hash, signature check and the pre-signing size.
pub fn block(data: &[u8]) {
    if let Some(b) = round_trip::<Block>(data) {
        check_block(&b);
    }
}

fn check_block(b: &Block) {
    let _ = b.hash();
    let _ = b.signature_ok();
    let predicted = block_len(&b.feed_key, b.seq, &b.prev_hash, &b.timeframe, &b.payload);
    assert_eq!(predicted.ok(), b.encoded_len().ok(), "block_len");
}

/// One credential: codec round trip, id and verification (signature and device chain).
pub fn credential(data: &[u8]) {
    if let Some(c) = round_trip::<Credential>(data) {
        let _ = c.id();
        let _ = c.verify();
    }
}

/// The frames of one replication stream, in order, as the reader decodes them: what comes
/// out of the compact form crosses again (a fresh encoder and decoder) unchanged.
fn repl_stream(frames: Vec<WireMessage>) {
    let mut decoder = WireDecoder::new();
    let (mut enc, mut dec) = (WireEncoder::new(), WireDecoder::new());
    for wire in frames {
        let _ = wire.kind();
        let Ok(message) = decoder.decode(wire) else {
            return;
        };
        check_repl_message(&message);
        match dec.decode(enc.encode(message.clone())) {
            Ok(again) => assert_eq!(again, message, "decode(encode(m)) != m"),
            Err(e) => panic!("an encoded message does not decode: {e}"),
        }
    }
}

/// One replication frame body, and what the node checks of it on receipt.
pub fn repl_message(data: &[u8]) {
    if let Some(wire) = round_trip::<WireMessage>(data) {
        repl_stream(vec![wire]);
    }
}

fn check_repl_message(message: &ReplMessage) {
    let _ = message.kind();
    match message {
        ReplMessage::Hello { device_auth, .. } => {
            let _ = device_auth.verify();
        }
        ReplMessage::Blocks(blocks) => blocks.iter().for_each(check_block),
        ReplMessage::Heads(_) | ReplMessage::Want { .. } | ReplMessage::Presence(_) => {}
    }
}

/// One signaling message, either direction; announced addresses stay capped.
pub fn signal(data: &[u8]) {
    if let Some(SignalRequest::Join { addrs, .. }) = round_trip::<SignalRequest>(data) {
        assert!(announce_addrs(None, &addrs).len() <= MAX_ADDRS);
    }
    let _ = round_trip::<SignalEvent>(data);
}

/// One invitation handshake frame, either direction: codec round trip.
pub fn invitation(data: &[u8]) {
    let _ = round_trip::<GuestFrame>(data);
    let _ = round_trip::<HostFrame>(data);
}

/// An invitation code's text (the bytes as lossy UTF-8): a text that decodes is canonical,
/// so the code encodes back to it with its whitespace removed.
pub fn invitation_code(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(code) = InvitationCode::decode(&text) else {
        return;
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let encoded = code.encode();
    assert_eq!(encoded, compact, "a decoded code encodes to another text");
    assert_eq!(
        InvitationCode::decode(&encoded).ok(),
        Some(code),
        "re-decode"
    );
}

/// The id every fuzzed object is stored under.
fn fuzz_id() -> ObjectId {
    ObjectId::from_parts(1_700_000_000_000, 1)
}

/// `value` without its reserved `@` keys (an object), as a rendered object shows them.
fn user_fields(value: &Value) -> Value {
    let mut map = value.as_object().cloned().unwrap_or_default();
    map.retain(|k, _| !k.starts_with('@'));
    Value::Object(map)
}

/// A second document holding exactly what `update` carries; panics if it refuses it.
fn replica(update: &[u8]) -> SpaceDoc {
    let mut doc = SpaceDoc::new(2);
    if let Err(e) = doc.apply_update(update) {
        panic!("a replica refuses the node's own update: {e}");
    }
    doc
}

/// JSON bytes given to `add` on an empty document. An accepted object renders as
/// `canonical_json` predicts, and a replica fed the update bytes renders it the same.
pub fn json_add(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut doc = SpaceDoc::new(1);
    let Ok(mutation) = doc.add(fuzz_id(), &value) else {
        assert!(
            doc.get(&fuzz_id()).is_none(),
            "a refused add left an object"
        );
        return;
    };
    let Some(got) = doc.get(&fuzz_id()) else {
        panic!("an added object cannot be read back");
    };
    assert_eq!(user_fields(&got), canonical_json(&user_fields(&value)));
    let meta = value
        .get("@meta")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    assert_eq!(got["@meta"], canonical_json(&meta), "@meta");
    let type_name = value.get("@type").filter(|t| t.is_string());
    assert_eq!(
        Some(&got["@type"]),
        type_name.or(Some(&Value::Null)),
        "@type"
    );
    assert_eq!(replica(&mutation.update).get(&fuzz_id()), Some(got));
}

/// A JSON array `[object, patch, patch, ...]`: the object is added, then each patch applied
/// with `update`. An accepted patch applied again changes nothing (RFC 7386 is idempotent),
/// and a replica fed every update renders what the node renders.
pub fn merge_patch(data: &[u8]) {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some((object, patches)) = items.split_first() else {
        return;
    };
    let mut doc = SpaceDoc::new(1);
    let Ok(added) = doc.add(fuzz_id(), object) else {
        return;
    };
    let mut updates = vec![added.update];
    for patch in patches {
        let before = doc.get(&fuzz_id());
        let Ok(mutation) = doc.update(&fuzz_id(), patch) else {
            assert_eq!(
                doc.get(&fuzz_id()),
                before,
                "a refused patch changed the object"
            );
            continue;
        };
        updates.push(mutation.update);
        if doc
            .get(&fuzz_id())
            .is_some_and(|o| o["@deleted"] == Value::Bool(true))
        {
            continue; // a deleted object refuses patches that do not restore it
        }
        match doc.update(&fuzz_id(), patch) {
            Ok(again) => assert!(again.is_empty(), "a patch applied twice wrote again"),
            Err(e) => panic!("a patch accepted once is refused the second time: {e}"),
        }
    }
    let mut copy = SpaceDoc::new(2);
    for update in &updates {
        if let Err(e) = copy.apply_update(update) {
            panic!("a replica refuses the node's own update: {e}");
        }
    }
    assert_eq!(copy.get(&fuzz_id()), doc.get(&fuzz_id()), "replica differs");
}

/// One binary frame of the Yjs bridge, decoded as the node's `YjsSession` decodes it (yrs'
/// `MessageReader`, whose panics the node catches), each message then handled as the space
/// does: step 1 answered with a diff, step 2 and updates admitted with
/// `apply_client_update` on a document holding one object. Messages (but custom ones)
/// re-encode to themselves;
/// an admitted update leaves a document that a replica rebuilt from its snapshot matches.
pub fn yjs(data: &[u8]) {
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let mut decoder = DecoderV1::from(data);
        // As the session: decoding stops at the first malformed message.
        MessageReader::new(&mut decoder)
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    }));
    let Ok(messages) = decoded else {
        return;
    };
    let mut doc = SpaceDoc::new(1);
    if doc
        .add(fuzz_id(), &Value::Object(Default::default()))
        .is_err()
    {
        panic!("an empty object is refused");
    }
    for message in messages {
        // yrs reads a custom tag as a varint but writes it as one byte, so custom tags of 128
        // and up do not round-trip (harmless: the node closes on any custom message).
        if !matches!(message, Message::Custom(..)) {
            let again = Message::decode_v1(&message.encode_v1()).ok();
            assert_eq!(again.as_ref(), Some(&message), "message round trip");
        }
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                assert!(doc.diff_v1(&sv.encode_v1()).is_ok(), "diff of a decoded sv");
            }
            Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))
                if doc.apply_client_update(&u).is_ok() =>
            {
                let state = doc.canonical_state();
                assert_eq!(replica(&doc.snapshot()).canonical_state(), state);
            }
            _ => {}
        }
    }
}
