//! The I/O of one invitation side stream, the same for host and guest: a writer task that
//! writes the frames sent on the returned channel in order and finishes the stream when the
//! channel is dropped, and a reader task that hands every frame read to the actor and says
//! when the stream ended. The stream's guard (which holds the connection open) is let go
//! once both are done, and not before the peer has had a moment to read the last frame.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::mpsc;

use crate::mesh::SideStreamGuard;
use crate::transport::{read_frame, write_frame, FrameError};

/// How long a finished stream waits for the peer to read its last frame.
const LINGER: Duration = Duration::from_secs(2);

/// Starts the two tasks; `on_frame` answers false to stop reading; `on_end` runs once the
/// reader stops (the peer finished or reset the stream, or sent a frame that does not
/// decode, which is logged with `who`).
pub fn spawn_stream_io<Out, In, F, Fut, E>(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    guard: SideStreamGuard,
    who: &'static str,
    mut on_frame: F,
    on_end: E,
) -> mpsc::UnboundedSender<Out>
where
    Out: Serialize + Send + 'static,
    In: DeserializeOwned + Send + 'static,
    F: FnMut(In) -> Fut + 'static,
    Fut: Future<Output = bool> + 'static,
    E: FnOnce() + 'static,
{
    let guard = Arc::new(guard);
    let (frames, mut queue) = mpsc::unbounded_channel::<Out>();
    let writer_guard = Arc::clone(&guard);
    actix::spawn(async move {
        while let Some(frame) = queue.recv().await {
            if write_frame(&mut send, &frame).await.is_err() {
                break;
            }
        }
        let _ = send.finish();
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        drop(writer_guard);
    });
    actix::spawn(async move {
        loop {
            match read_frame::<In>(&mut recv).await {
                Ok(Some(frame)) => {
                    if !on_frame(frame).await {
                        break;
                    }
                }
                Ok(None) | Err(FrameError::Io(_)) => break,
                Err(e) => {
                    tracing::info!(error = %e, "bad invitation frame from the {who}");
                    break;
                }
            }
        }
        drop(guard);
        on_end();
    });
    frames
}
