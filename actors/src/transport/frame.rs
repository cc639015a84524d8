//! Length-prefixed frames on QUIC streams.
//!
//! Contract:
//! - A frame is a `u32` big-endian length `n` followed by `n` bytes of
//!   `crate::types::encode(value)`; `n` never exceeds [`MAX_FRAME_BYTES`].
//! - [`read_frame`] gives `Ok(None)` when the stream ends cleanly before a frame starts,
//!   [`FrameError::TooLarge`] for a length above the limit (checked before anything is
//!   allocated; memory then grows only as bytes actually arrive),
//!   [`FrameError::Truncated`] when the stream ends inside a frame,
//!   [`FrameError::Malformed`] when the bytes do not decode, and [`FrameError::Io`] when
//!   the stream or connection fails. It never panics on any input.
//! - [`decode_frames`] is the same decoder over bytes already in memory (a whole stream's
//!   worth): it uses the same length check and body decoding, and is what the fuzzers drive.
//! - After any error the stream is out of sync: stop using it (close the channel, e.g.
//!   with `close::BAD_FRAME`).
//! - Neither function is cancel-safe: dropping one mid-frame loses stream position. In a
//!   `select!`, keep the read in its own task or loop that is never cancelled mid-frame.

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

use crate::types::{decode, encode, CodecError, MAX_FRAME_BYTES};

/// Bytes reserved up front for a frame body; larger bodies grow as data arrives.
const INITIAL_CAPACITY: usize = 64 * 1024;

#[derive(Error, Debug)]
pub enum FrameError {
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("stream ended in the middle of a frame")]
    Truncated,
    #[error("frame does not decode: {0}")]
    Malformed(String),
    #[error("stream failed: {0}")]
    Io(String),
}

impl From<CodecError> for FrameError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::TooLarge(n) => FrameError::TooLarge(n),
            other => FrameError::Malformed(other.to_string()),
        }
    }
}

/// Appends `value` as one frame (header and body) to `out`; answers its size. Several
/// frames put in one buffer go out in one stream write.
pub fn encode_frame<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    let body = encode(value)?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(4 + body.len())
}

/// Writes `value` as one frame.
pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    value: &T,
) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    encode_frame(value, &mut buf)?;
    send.write_all(&buf)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<Option<T>, FrameError> {
    Ok(read_frame_sized(recv).await?.map(|(value, _)| value))
}

/// [`read_frame`], also answering the frame's size on the wire (header included).
pub async fn read_frame_sized<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<Option<(T, usize)>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match recv.read(&mut header[filled..]).await {
            Ok(Some(n)) => filled += n,
            Ok(None) if filled == 0 => return Ok(None),
            Ok(None) => return Err(FrameError::Truncated),
            Err(e) => return Err(FrameError::Io(e.to_string())),
        }
    }
    let len = body_len(header)?;
    let mut body = Vec::with_capacity(len.min(INITIAL_CAPACITY));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(FrameError::Truncated),
            Err(e) => return Err(FrameError::Io(e.to_string())),
        }
    }
    decode(&body)
        .map(|value| Some((value, 4 + len)))
        .map_err(FrameError::from)
}

/// The body length a frame header announces, refused above [`MAX_FRAME_BYTES`].
fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Decodes every frame of a stream held in memory, as repeated [`read_frame`] calls would:
/// an empty input is no frames, a cut-short header or body is [`FrameError::Truncated`].
pub fn decode_frames<T: DeserializeOwned>(mut stream: &[u8]) -> Result<Vec<T>, FrameError> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let (header, rest) = stream
            .split_first_chunk::<4>()
            .ok_or(FrameError::Truncated)?;
        let len = body_len(*header)?;
        if rest.len() < len {
            return Err(FrameError::Truncated);
        }
        let (body, rest) = rest.split_at(len);
        out.push(decode(body)?);
        stream = rest;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Frames put in one buffer (one stream write) read back one by one, with their sizes.
    #[test]
    fn frames_encoded_into_one_buffer_decode_in_order() {
        let mut buf = Vec::new();
        let sizes: Vec<usize> = ["a", "bb", "ccc"]
            .iter()
            .map(|v| encode_frame(&v.to_string(), &mut buf).unwrap())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), buf.len());
        let back: Vec<String> = decode_frames(&buf).unwrap();
        assert_eq!(back, vec!["a", "bb", "ccc"]);
        // Each size is the header plus the body.
        assert_eq!(
            sizes[0],
            4 + crate::types::encode(&"a".to_string()).unwrap().len()
        );
    }
}
