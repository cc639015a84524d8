#![no_main]
//! Fuzz target: one binary frame of the Yjs bridge. It goes through the node's sans-IO
//! session core (`node/src/api/yjs_session.rs`, compiled in here as it stands: the node is a
//! binary crate) and through `echo_actors::fuzzing::yjs`, which decodes it the same way and
//! applies what it carries to a document. Session invariants: a close reason fits a close
//! frame (123 bytes) and a close is the last action. Frames the session refuses before
//! decoding are not passed on.
//! The node catches yrs panics while decoding; the default panic hook replaces libFuzzer's
//! aborting one so that those caught panics are not reported as crashes (an uncaught panic
//! still aborts the run).

#[allow(dead_code)]
#[path = "../../node/src/api/yjs_session.rs"]
mod yjs_session;

use yjs_session::{Action, YjsSession};

libfuzzer_sys::fuzz_target!(init: drop(std::panic::take_hook()), |data: &[u8]| {
    let actions = YjsSession::new(0).on_binary(data, 0);
    for (i, action) in actions.iter().enumerate() {
        if let Action::Close(_, reason) = action {
            assert!(reason.len() <= 123, "close reason of {} bytes", reason.len());
            assert_eq!(i + 1, actions.len(), "actions after a close");
        }
    }
    // A frame refused up front (a count larger than its bytes) is never decoded by the node.
    if !matches!(&actions[..], [Action::Close(_, reason)] if reason.contains("declares")) {
        echo_actors::fuzzing::yjs(data);
    }
});
