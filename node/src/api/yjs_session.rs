//! `YjsSession`: the sans-IO core of one y-websocket connection. It decodes the client's
//! binary frames with yrs' own `sync` module and says what to do; the socket loop in
//! `yjs.rs` does it. No runtime, no clock (the caller passes milliseconds), no I/O.
//!
//! Contract:
//! * [`YjsSession::greeting`] is the server's first message: sync step 1 with the space's
//!   state vector (as the y-websocket server does), so the client answers with what the
//!   node lacks.
//! * [`YjsSession::on_binary`] turns one frame (one or more y-protocols messages) into
//!   [`Action`]s: sync step 1 -> [`Action::Diff`] (answer with step 2); step 2 and update ->
//!   [`Action::Apply`]; awareness -> [`Action::Awareness`]; query-awareness ->
//!   [`Action::QueryAwareness`]. A malformed frame, an unknown message type, an auth message
//!   from the client, or more messages than the rate allows end in [`Action::Close`] with a
//!   WebSocket close code and a reason (at most 123 bytes, as a close frame allows); so
//!   does a frame whose last message is cut short;
//!   nothing after it in the frame is acted on. A state vector or awareness update that
//!   declares more entries than its bytes hold is refused (close) before anything is
//!   decoded: yrs reserves memory for a declared count first.
//! * [`refusal`] maps a refused update to what the client is told: a y-protocols
//!   permission-denied message (the provider logs its reason) and a close.

use std::panic::{catch_unwind, AssertUnwindSafe};

use echo_actors::node::{ErrorKind, NodeError};
use yrs::encoding::read::Read;
use yrs::sync::{AwarenessUpdate, Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::StateVector;

/// Largest frame (or reassembled message) a client may send, in bytes.
pub const MAX_MESSAGE: usize = 2 * 1024 * 1024;
/// Messages a client may send in a burst, and per second after it.
pub const BURST: f64 = 1000.0;
pub const PER_SECOND: f64 = 500.0;

/// Close codes (RFC 6455 and the 4000-4999 application range).
pub mod close {
    /// Text frame or unknown message type.
    pub const UNSUPPORTED: u16 = 1003;
    /// Bytes that are not y-protocols messages.
    pub const MALFORMED: u16 = 1007;
    /// Too many messages.
    pub const POLICY: u16 = 1008;
    /// Frame larger than [`super::MAX_MESSAGE`].
    pub const TOO_BIG: u16 = 1009;
    /// Storage failed or the node is stopping.
    pub const INTERNAL: u16 = 1011;
    /// The client fell behind the space's updates; reconnecting resyncs it.
    pub const TRY_AGAIN: u16 = 1013;
    /// The update breaks the object model; nothing was stored.
    pub const INVALID: u16 = 4400;
    /// This node may not write to the space (READER, or not admitted yet).
    pub const FORBIDDEN: u16 = 4403;
    /// The update would make a block over the limit.
    pub const TOO_LARGE: u16 = 4413;
    /// The space was rebuilt after a device revocation, or the client offered back what it
    /// took out: the client must discard its document and load the space again.
    pub const RETRACTED: u16 = 4409;
}

/// What the socket loop should do.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Answer a sync step 1 with what a client with this v1 state vector lacks.
    Diff(Vec<u8>),
    /// Make this v1 update a local mutation.
    Apply(Vec<u8>),
    /// Relay an awareness update to the other clients of the space on this node.
    Awareness(AwarenessUpdate),
    /// Send the client every known awareness state.
    QueryAwareness,
    /// Send these bytes to the client.
    Send(Vec<u8>),
    /// Close the socket with this code and reason.
    Close(u16, String),
}

/// One connection's protocol state: the message-rate budget.
#[derive(Debug)]
pub struct YjsSession {
    tokens: f64,
    last_ms: u64,
}

impl YjsSession {
    pub fn new(now_ms: u64) -> Self {
        YjsSession {
            tokens: BURST,
            last_ms: now_ms,
        }
    }

    /// Sync step 1 with the space's v1 state vector.
    pub fn greeting(state_vector_v1: &[u8]) -> Vec<u8> {
        let sv = StateVector::decode_v1(state_vector_v1).unwrap_or_default();
        Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()
    }

    /// Sync step 2 carrying a v1 update.
    pub fn step2(update_v1: &[u8]) -> Vec<u8> {
        Message::Sync(SyncMessage::SyncStep2(update_v1.to_vec())).encode_v1()
    }

    /// A sync update message carrying a v1 update.
    pub fn update(update_v1: &[u8]) -> Vec<u8> {
        Message::Sync(SyncMessage::Update(update_v1.to_vec())).encode_v1()
    }

    /// An awareness message.
    pub fn awareness(update: AwarenessUpdate) -> Vec<u8> {
        Message::Awareness(update).encode_v1()
    }

    /// What to do with one binary frame received at `now_ms`.
    pub fn on_binary(&mut self, frame: &[u8], now_ms: u64) -> Vec<Action> {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = now_ms.max(self.last_ms);
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        if let Some(why) = implausible_count(frame) {
            return vec![closing(close::MALFORMED, &why)];
        }
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            // Nothing after the first malformed message is acted on, so nothing after it is
            // decoded either (yrs' reader would resume mid-message, past the count check).
            let mut decoder = DecoderV1::from(frame);
            let mut messages = Vec::new();
            for message in MessageReader::new(&mut decoder) {
                let malformed = message.is_err();
                messages.push(message);
                if malformed {
                    break;
                }
            }
            messages
        }));
        let Ok(messages) = decoded else {
            return vec![closing(close::MALFORMED, "the frame could not be decoded")];
        };
        // The reader stops quietly at a message cut short; what it decoded must re-encode
        // to the whole frame, or the frame ends in a truncated message.
        let consumed: usize = messages
            .iter()
            .map(|m| m.as_ref().map_or(0, |m| m.encode_v1().len()))
            .sum();
        if messages.iter().all(Result::is_ok) && consumed != frame.len() {
            return vec![closing(
                close::MALFORMED,
                "the frame ends in a truncated y-protocols message",
            )];
        }
        let mut actions = Vec::with_capacity(messages.len());
        for message in messages {
            self.tokens -= 1.0;
            if self.tokens < 0.0 {
                actions.push(closing(
                    close::POLICY,
                    &format!("too many messages: more than {PER_SECOND} per second"),
                ));
                return actions;
            }
            let action = match message {
                Err(e) => closing(
                    close::MALFORMED,
                    &format!("malformed y-protocols message: {e}"),
                ),
                Ok(Message::Sync(SyncMessage::SyncStep1(sv))) => Action::Diff(sv.encode_v1()),
                Ok(Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))) => {
                    Action::Apply(u)
                }
                Ok(Message::Awareness(update)) => Action::Awareness(update),
                Ok(Message::AwarenessQuery) => Action::QueryAwareness,
                Ok(Message::Auth(_)) => closing(
                    close::UNSUPPORTED,
                    "auth messages are sent by the server only; authenticate with the token",
                ),
                Ok(Message::Custom(tag, _)) => closing(
                    close::UNSUPPORTED,
                    &format!("unknown message type {tag} (0 sync, 1 awareness, 3 query-awareness)"),
                ),
            };
            let done = matches!(action, Action::Close(..));
            actions.push(action);
            if done {
                break;
            }
        }
        actions
    }
}

/// The first message of `frame` whose state vector or awareness update declares more entries
/// than its bytes could hold (each takes at least 2 or 3 bytes), described for a close reason.
/// yrs reserves memory for a declared count before reading it: 12 bytes declaring 300 million
/// awareness states made it initialise about 0.5 GB, per message (fuzzing finding,
/// docs/fuzzing.md). Bytes that are not y-protocols messages are left to the decoder.
fn implausible_count(frame: &[u8]) -> Option<String> {
    let mut decoder = DecoderV1::from(frame);
    loop {
        let (buf, min_entry, what) = match decoder.read_var::<u8>().ok()? {
            0 => match decoder.read_var::<u8>().ok()? {
                0 => (decoder.read_buf().ok()?, 2, "state vector"),
                _ => {
                    decoder.read_buf().ok()?;
                    continue;
                }
            },
            1 => (decoder.read_buf().ok()?, 3, "awareness update"),
            2 => {
                if decoder.read_var::<u8>().ok()? == 0 {
                    decoder.read_string().ok()?;
                }
                continue;
            }
            3 => continue,
            _ => {
                decoder.read_buf().ok()?;
                continue;
            }
        };
        let declared: u64 = DecoderV1::from(buf).read_var().ok()?;
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if declared.saturating_mul(min_entry) > len {
            return Some(format!(
                "a {what} declares {declared} entries but holds {len} bytes"
            ));
        }
    }
}

/// What to tell a client whose update was refused: a permission-denied message (the
/// provider logs its reason) and a close with a code that says why.
pub fn refusal(error: &NodeError) -> Vec<Action> {
    let code = match error.kind() {
        _ if error.code() == "retracted" => close::RETRACTED,
        ErrorKind::BadRequest => close::INVALID,
        ErrorKind::Forbidden => close::FORBIDDEN,
        ErrorKind::TooLarge => close::TOO_LARGE,
        _ => close::INTERNAL,
    };
    let reason = error.to_string();
    vec![
        Action::Send(Message::Auth(Some(reason.clone())).encode_v1()),
        closing(code, &reason),
    ]
}

/// A close with `reason` cut to what a close frame holds (123 bytes, on a char boundary).
pub fn closing(code: u16, reason: &str) -> Action {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Action::Close(code, reason[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_actors::space::SpaceRequestError;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn frame(messages: &[Message]) -> Vec<u8> {
        messages.iter().flat_map(|m| m.encode_v1()).collect()
    }

    #[test]
    fn greeting_is_sync_step_1() {
        let doc = Doc::with_client_id(5);
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "x");
        let sv = doc.transact().state_vector();
        let bytes = YjsSession::greeting(&sv.encode_v1());
        assert_eq!(
            Message::decode_v1(&bytes).expect("decodes"),
            Message::Sync(SyncMessage::SyncStep1(sv))
        );
    }

    #[test]
    fn sync_messages_map_to_actions() {
        let mut session = YjsSession::new(0);
        let sv = StateVector::default();
        let actions = session.on_binary(
            &frame(&[
                Message::Sync(SyncMessage::SyncStep1(sv.clone())),
                Message::Sync(SyncMessage::SyncStep2(vec![0, 0])),
                Message::Sync(SyncMessage::Update(vec![0, 0])),
                Message::AwarenessQuery,
            ]),
            1,
        );
        assert_eq!(
            actions,
            vec![
                Action::Diff(sv.encode_v1()),
                Action::Apply(vec![0, 0]),
                Action::Apply(vec![0, 0]),
                Action::QueryAwareness,
            ]
        );
        assert!(session.on_binary(&[], 2).is_empty());
    }

    #[test]
    fn bad_frames_close_with_a_reason() {
        let mut session = YjsSession::new(0);
        let unknown = session.on_binary(&frame(&[Message::Custom(9, vec![1])]), 0);
        assert!(matches!(&unknown[..], [Action::Close(close::UNSUPPORTED, r)] if r.contains('9')));
        let auth = session.on_binary(&frame(&[Message::Auth(None)]), 0);
        assert!(matches!(&auth[..], [Action::Close(close::UNSUPPORTED, _)]));
        for garbage in [&[0u8, 7][..], &[0, 1, 200], &[1, 5, 1], &[0xff; 12]] {
            let actions = session.on_binary(garbage, 0);
            assert!(
                matches!(actions.last(), Some(Action::Close(close::MALFORMED, _))),
                "{garbage:?}: {actions:?}"
            );
        }
    }

    #[test]
    fn a_count_larger_than_its_bytes_is_refused_before_decoding() {
        // Fuzzer input: an awareness update declaring 331,845,406 states in 11 bytes.
        let bomb = [
            0x01, 0x0b, 0x9e, 0x9e, 0x9e, 0x9e, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x9e, 0x9e, 0x9e, 0x9e, 0x9e, 0x9e, 0x9e, 0x9e, 0x9e, 0x01, 0x04, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x31, 0x7d,
        ];
        let sv_bomb = [0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let query_then_bomb = [&[3u8][..], &sv_bomb].concat();
        for frame in [&bomb[..], &sv_bomb, &query_then_bomb] {
            let actions = YjsSession::new(0).on_binary(frame, 0);
            assert!(
                matches!(&actions[..], [Action::Close(close::MALFORMED, r)] if r.contains("declares")),
                "{frame:?}: {actions:?}"
            );
        }
        let sv = Message::Sync(SyncMessage::SyncStep1(StateVector::default()));
        assert_eq!(YjsSession::new(0).on_binary(&frame(&[sv]), 0).len(), 1);
    }

    #[test]
    fn a_flood_is_closed_and_the_budget_refills() {
        let mut session = YjsSession::new(0);
        let one = frame(&[Message::AwarenessQuery]);
        for _ in 0..BURST as usize {
            assert_eq!(session.on_binary(&one, 0), vec![Action::QueryAwareness]);
        }
        assert!(matches!(
            &session.on_binary(&one, 0)[..],
            [Action::Close(close::POLICY, _)]
        ));
        let mut session = YjsSession::new(0);
        for i in 0..5 * BURST as u64 {
            // 400 messages a second stays under the rate.
            assert_eq!(
                session.on_binary(&one, i * 1000 / 400),
                vec![Action::QueryAwareness]
            );
        }
    }

    #[test]
    fn refusals_tell_the_client_why() {
        let actions = refusal(&NodeError::Invalid("bad field `@x`".into()));
        assert!(matches!(&actions[0], Action::Send(bytes)
            if Message::decode_v1(bytes).expect("decodes") == Message::Auth(Some(NodeError::Invalid("bad field `@x`".into()).to_string()))));
        assert!(matches!(&actions[1], Action::Close(close::INVALID, r) if r.contains("@x")));
        let actions = refusal(&NodeError::Space(SpaceRequestError::Forbidden(
            "reader".into(),
        )));
        assert!(matches!(&actions[1], Action::Close(close::FORBIDDEN, _)));
        let long = "é".repeat(200);
        assert!(matches!(closing(1000, &long), Action::Close(_, r) if r.len() <= 123));
    }
}
