//! Small shared types: keys and signatures, hashes, the timeframe vector clock, the wire
//! codec, the name rule, the injected clock and the one exponential backoff.

mod backoff;
mod clock;
mod codec;
mod error_kind;
mod keys;
mod names;
mod timeframe;

pub use backoff::Backoff;
pub use clock::{Clock, FixedClock};
pub use codec::{decode, encode, encoded_len, CodecError, MAX_FRAME_BYTES};
pub use error_kind::ErrorKind;
pub use keys::{Hash, KeyError, KeyPair, PublicKey, Signature};
pub use names::{check_name, NameError, MAX_NAME_CHARS};
pub use timeframe::Timeframe;
