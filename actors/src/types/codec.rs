//! The one binary encoding used on disk and on the wire: a version byte followed by
//! postcard. Decoding is bounded and total: bad bytes give a [`CodecError`], never a panic.

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Encoding version written in front of every value.
const VERSION: u8 = 1;

/// Largest encoded value accepted anywhere (a block with a 1 MiB payload fits).
pub const MAX_FRAME_BYTES: usize = 4 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("encoded value is {0} bytes, more than the {MAX_FRAME_BYTES} allowed")]
    TooLarge(usize),
    #[error("empty input")]
    Empty,
    #[error("unknown encoding version {0}")]
    Version(u8),
    #[error("malformed value: {0}")]
    Malformed(String),
}

/// Encodes `value` as `VERSION || postcard(value)`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![VERSION];
    let body = postcard::to_stdvec(value).map_err(|e| CodecError::Malformed(e.to_string()))?;
    out.extend_from_slice(&body);
    if out.len() > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(out.len()));
    }
    Ok(out)
}

/// The length of `encode(value)`, computed without building it (no allocation; a large
/// byte string costs nothing to measure).
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    let body = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok(1 + body)
}

/// Decodes what [`encode`] wrote. Trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_errors() {
        let v = (7u64, "x".to_string(), vec![1u8, 2, 3]);
        let bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), v);
        assert_eq!(decode::<u64>(&[]), Err(CodecError::Empty));
        assert_eq!(decode::<u64>(&[9, 1]), Err(CodecError::Version(9)));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<(u64, String, Vec<u8>)>(&long),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        let v = (7u64, "x".repeat(300), vec![1u8; 70_000]);
        assert_eq!(encoded_len(&v).unwrap(), encode(&v).unwrap().len());
        assert_eq!(encoded_len(&()).unwrap(), 1);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<(u64, String, Vec<u8>, Option<[u8; 32]>)>(&bytes);
        }
    }
}
