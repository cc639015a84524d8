//! The stream preamble: the first byte of every bi-directional stream a peer opens names
//! what the stream carries, so that one connection can carry an invitation handshake before
//! the two nodes share any space (and presence, later).
//!
//! Contract: [`open_stream`] opens a stream and writes the kind's byte; the accepting side
//! reads it with [`read_stream_kind`] before anything else. A byte that names no kind is a
//! protocol violation ([`StreamKindError::Unknown`]); nothing else on the stream is read.

use thiserror::Error;

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StreamKind {
    /// A replication channel: `Hello` both ways, then replication frames.
    Replication,
    /// An invitation handshake: `GuestFrame`s from the opener, `HostFrame`s back.
    Invitation,
}

impl StreamKind {
    pub fn byte(self) -> u8 {
        match self {
            StreamKind::Replication => b'R',
            StreamKind::Invitation => b'I',
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'R' => Some(StreamKind::Replication),
            b'I' => Some(StreamKind::Invitation),
            _ => None,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StreamKindError {
    #[error("the stream starts with byte {0:#04x}, which names no stream kind")]
    Unknown(u8),
    /// The stream ended or failed before its first byte.
    #[error("stream ended before its preamble: {0}")]
    Gone(String),
}

/// Opens a bi-directional stream on `conn` for `kind` and writes its preamble.
pub async fn open_stream(
    conn: &quinn::Connection,
    kind: StreamKind,
) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
    let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(&[kind.byte()])
        .await
        .map_err(|e| e.to_string())?;
    Ok((send, recv))
}

/// Reads the preamble of a stream the peer opened.
pub async fn read_stream_kind(recv: &mut quinn::RecvStream) -> Result<StreamKind, StreamKindError> {
    let mut byte = [0u8; 1];
    match recv.read_exact(&mut byte).await {
        Ok(()) => StreamKind::from_byte(byte[0]).ok_or(StreamKindError::Unknown(byte[0])),
        Err(e) => Err(StreamKindError::Gone(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_other_bytes_name_none() {
        for kind in [StreamKind::Replication, StreamKind::Invitation] {
            assert_eq!(StreamKind::from_byte(kind.byte()), Some(kind));
        }
        let known: Vec<u8> = vec![b'R', b'I'];
        for b in 0..=255u8 {
            if !known.contains(&b) {
                assert_eq!(StreamKind::from_byte(b), None, "byte {b}");
            }
        }
    }
}
