//! Object ids.
//!
//! Contract: an [`ObjectId`] is a ULID. It is `Copy`, ordered like its canonical string (so
//! `BTreeMap<ObjectId, _>` iterates in the same order as the ids' text), displays as the
//! 26-character uppercase Crockford base32 form and (de)serializes as that string. Parsing
//! accepts exactly the canonical form in either letter case and reports anything else (bad
//! characters, wrong length, a value above 128 bits) as [`DbError::Invalid`]. Ids are minted by the caller from its seeded RNG and clock via
//! [`ObjectId::from_parts`]; this module never draws randomness.

use std::fmt;
use std::str::FromStr;

use super::DbError;

/// The id of one object in a space: a ULID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ObjectId(ulid::Ulid);

impl ObjectId {
    /// Builds an id from a millisecond timestamp (low 48 bits used) and randomness (low 80 bits
    /// used), both supplied by the caller's injected clock and seeded RNG.
    pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
        ObjectId(ulid::Ulid::from_parts(timestamp_ms, random))
    }

    /// The underlying ULID.
    pub fn as_ulid(&self) -> ulid::Ulid {
        self.0
    }

    /// Parses `text` only if it is exactly the canonical form of an id (as produced by
    /// `Display`). Used for keys read back from the document, so that two spellings of one id
    /// can never name two different objects.
    pub(crate) fn parse_canonical(text: &str) -> Option<Self> {
        let id = ulid::Ulid::from_string(text).ok()?;
        let id = ObjectId(id);
        (id.to_string() == text).then_some(id)
    }
}

impl From<ulid::Ulid> for ObjectId {
    fn from(value: ulid::Ulid) -> Self {
        ObjectId(value)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for ObjectId {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| {
            DbError::Invalid(format!(
                "`{}` is not a valid object id ({why}); ids are 26-character ULIDs",
                shorten(s)
            ))
        };
        let id = ulid::Ulid::from_string(s).map_err(|e| bad(e.to_string()))?;
        // The decoder silently drops bits of a first character above `7`.
        if !id.to_string().eq_ignore_ascii_case(s) {
            return Err(bad("value out of range".into()));
        }
        Ok(ObjectId(id))
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Cuts user input quoted in error messages to a readable length.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
