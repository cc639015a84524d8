//! The invitation code: what a host hands a guest (by chat, mail, a QR code) so the guest can
//! find it and start the handshake. It names the invitation, how the guest will have to
//! authenticate, where to meet the host and which space it is for; it never carries the auth
//! code, which travels over another channel and then only in `Authenticate`.
//!
//! Text form: `echo1` (the echo-rs invitation format, version 1) followed by base58 (the
//! Bitcoin alphabet: no `0`, `O`, `I` or `l` to misread) of `postcard(code) || checksum`,
//! where the checksum is the first 4 bytes of `blake3::derive_key(CHECKSUM_CONTEXT, body)`.
//! The body is the fields of [`InvitationCode`] in declaration order: that order is the v1
//! format. A typical code (one or two addresses, no signaling server) is about 190 to 220
//! characters: 192 with one IPv4 address, 218 with an IPv4 and an IPv6 address (measured in
//! `code_tests.rs`, `typical_code_length`). The first is 137 bytes, 112 of them the id, the
//! topic and two keys; the largest valid code (16 + 16 IPv6 addresses) is 1 067. Every
//! space invitation's code starts `echo11`: its kind, a zero byte, is base58's `1`.
//!
//! [`InvitationCode::decode`] is total: ASCII whitespace anywhere is ignored (a code may be
//! wrapped over lines), the input is bounded at [`MAX_CODE_CHARS`] before any work, and
//! every failure is a [`CodeError`] saying which way the text is broken. A code that
//! decodes is canonical: encoding it again gives the same text, whitespace removed.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::messages::AuthMethod;
use crate::signal::Topic;
use crate::types::PublicKey;

/// What every invitation code starts with: [`FAMILY`] and [`VERSION`].
pub const PREFIX: &str = "echo1";

/// What every echo-rs invitation code, of any format version, starts with.
pub const FAMILY: &str = "echo";

/// The format version this module reads and writes: the digit after [`FAMILY`].
pub const VERSION: char = '1';

/// Longest text [`InvitationCode::decode`] looks at, in bytes, whitespace included. The
/// largest valid code (16 + 16 IPv6 addresses) is 1 067 characters.
pub const MAX_CODE_CHARS: usize = 2048;

/// Most host addresses, and most signaling servers, one code may carry.
pub const MAX_CODE_ADDRS: usize = 16;

/// blake3 key-derivation context of the checksum.
pub const CHECKSUM_CONTEXT: &str = "echo-rs invitation code v1 checksum";

const CHECKSUM_LEN: usize = 4;

/// The bytes of the smallest v1 code: every fixed-size field, one-byte varints, empty
/// address lists, and the checksum.
pub const MIN_CODE_BYTES: usize = 1 + 16 + 1 + 32 + 32 + 1 + 1 + 32 + 1 + 1 + CHECKSUM_LEN;

/// The base58 alphabet (Bitcoin's, `bs58`'s default).
const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// What the invitation admits the guest to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InvitationKind {
    /// Membership of a space.
    Space,
    /// A new device of the host's identity (`device invite`): `space_key` is then the
    /// identity space's key.
    Device,
}

/// An invitation code's contents. Build one, [`encode`](Self::encode) it for the guest;
/// the guest [`decode`](Self::decode)s what it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCode {
    pub kind: InvitationKind,
    /// The host's id of the invitation (`Introduce { invitation_id }`).
    pub invitation_id: [u8; 16],
    /// How the guest will authenticate: the method only, never the auth code.
    pub auth: AuthMethod,
    /// The swarm topic on which the host waits for guests.
    pub topic: Topic,
    pub space_key: PublicKey,
    /// When the invitation was created, wall clock in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// How long after `created_ms` it expires; never 0.
    pub lifetime_ms: u64,
    /// The host's device key: the guest checks the TLS peer it reaches is this device.
    pub host_device: PublicKey,
    /// Addresses the host listens on, best first; at most [`MAX_CODE_ADDRS`].
    pub addrs: Vec<SocketAddr>,
    /// Signaling servers through which to find the host; at most [`MAX_CODE_ADDRS`].
    pub signal: Vec<SocketAddr>,
}

/// Why a text is not a usable invitation code.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CodeError {
    #[error(
        "the invitation code is empty: paste the whole code the host gave you (it starts \
         with `{PREFIX}`)"
    )]
    Empty,
    #[error(
        "the text is {length} bytes, longer than any invitation code ({max} at most): paste \
         only the code"
    )]
    TooLong { length: usize, max: usize },
    #[error("not an echo-rs invitation code: those start with `{PREFIX}`")]
    Foreign,
    #[error(
        "an echo-rs invitation code of format `echo{version}`, which this echo-node does not \
         read (it reads `{PREFIX}`): update echo-node"
    )]
    UnsupportedVersion { version: char },
    #[error(
        "character {position} of the invitation code, {character:?}, is not used in codes \
         (they are base58: letters and digits without 0, O, I and l): mistyped?"
    )]
    NotBase58 {
        /// 1-based, counting the characters of the text as given (whitespace included).
        position: usize,
        character: char,
    },
    #[error("the invitation code is incomplete: it ends early; copy it again, whole")]
    Truncated,
    #[error(
        "the invitation code is mistyped or damaged (its checksum does not match): copy it \
         again, whole, rather than typing it"
    )]
    Corrupted,
    #[error("the invitation code is well formed but unusable: {0}")]
    Invalid(String),
}

impl InvitationCode {
    /// The text form: [`PREFIX`] + base58(postcard body + checksum). A code that fails
    /// [`check`](Self::check) encodes, but does not decode.
    pub fn encode(&self) -> String {
        // Serializing plain fixed-size fields and vectors into a Vec cannot fail.
        let mut bytes = postcard::to_allocvec(self).unwrap_or_default();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let mut text = String::with_capacity(PREFIX.len() + bytes.len() * 14 / 10 + 1);
        text.push_str(PREFIX);
        text.push_str(&bs58::encode(bytes).into_string());
        text
    }

    /// Reads a code from text a user pasted or typed. See the module doc for the rules.
    pub fn decode(text: &str) -> Result<Self, CodeError> {
        if text.len() > MAX_CODE_CHARS {
            return Err(CodeError::TooLong {
                length: text.len(),
                max: MAX_CODE_CHARS,
            });
        }
        // (1-based position in `text`, character), whitespace dropped.
        let chars: Vec<(usize, char)> = text
            .chars()
            .enumerate()
            .filter(|(_, c)| !c.is_ascii_whitespace())
            .map(|(i, c)| (i + 1, c))
            .collect();
        let compact: String = chars.iter().map(|&(_, c)| c).collect();
        if compact.is_empty() {
            return Err(CodeError::Empty);
        }
        let Some(after) = compact.strip_prefix(FAMILY) else {
            return Err(if FAMILY.starts_with(&compact) {
                CodeError::Truncated
            } else {
                CodeError::Foreign
            });
        };
        match after.chars().next() {
            None => return Err(CodeError::Truncated),
            Some(VERSION) => {}
            Some(version) if version.is_ascii_digit() => {
                return Err(CodeError::UnsupportedVersion { version })
            }
            Some(_) => return Err(CodeError::Foreign),
        }
        let body_chars = &chars[PREFIX.len()..];
        if let Some(&(position, character)) = body_chars.iter().find(|(_, c)| !BASE58.contains(*c))
        {
            return Err(CodeError::NotBase58 {
                position,
                character,
            });
        }
        let bytes = bs58::decode(&compact[PREFIX.len()..])
            .into_vec()
            .map_err(|e| not_base58(e, body_chars))?;
        Self::from_bytes(&bytes)
    }

    /// Decodes `body || checksum`, base58 already removed.
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodeError> {
        if bytes.len() <= CHECKSUM_LEN {
            return Err(CodeError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            // A typo changes the decoded length by at most a byte; a code this much shorter
            // than the smallest one lost its end.
            return Err(if bytes.len() + 2 < MIN_CODE_BYTES {
                CodeError::Truncated
            } else {
                CodeError::Corrupted
            });
        }
        // The checksum matched, so what follows was written by an encoder, not a typo.
        if body[0] > 1 {
            return Err(CodeError::Invalid(format!(
                "it is an invitation of kind {}, and this echo-node knows space and device \
                 invitations only: update echo-node",
                body[0]
            )));
        }
        let (code, rest) = postcard::take_from_bytes::<Self>(body).map_err(|e| match e {
            postcard::Error::DeserializeUnexpectedEnd => CodeError::Truncated,
            e => CodeError::Invalid(format!("its fields do not decode ({e})")),
        })?;
        if !rest.is_empty() {
            return Err(CodeError::Invalid(format!(
                "{} bytes follow its fields",
                rest.len()
            )));
        }
        if postcard::to_allocvec(&code).ok().as_deref() != Some(body) {
            return Err(CodeError::Invalid(
                "its fields are not canonically encoded".into(),
            ));
        }
        code.check()?;
        Ok(code)
    }

    /// The field rules a decoded code must meet: a lifetime that is not zero and whose end
    /// fits in a `u64`, valid keys, at most [`MAX_CODE_ADDRS`] dialable addresses per list.
    pub fn check(&self) -> Result<(), CodeError> {
        let invalid = |m: String| Err(CodeError::Invalid(m));
        if self.lifetime_ms == 0 {
            return invalid("its lifetime is zero".into());
        }
        if self.kind == InvitationKind::Device && self.auth == AuthMethod::Key {
            // `key` auth proves a device of a named identity; a new device has none yet.
            return invalid("a device invitation with `key` auth".into());
        }
        if self.created_ms.checked_add(self.lifetime_ms).is_none() {
            return invalid(format!(
                "it expires past the end of time (created {} ms, lifetime {} ms)",
                self.created_ms, self.lifetime_ms
            ));
        }
        for (what, key) in [
            ("space key", &self.space_key),
            ("host device key", &self.host_device),
        ] {
            if let Err(e) = key.check_point() {
                return invalid(format!("its {what} {}: {e}", key.short()));
            }
        }
        for (what, list) in [
            ("host addresses", &self.addrs),
            ("signaling servers", &self.signal),
        ] {
            if list.len() > MAX_CODE_ADDRS {
                return invalid(format!(
                    "it names {} {what}, more than {MAX_CODE_ADDRS}",
                    list.len()
                ));
            }
            if let Some(a) = list
                .iter()
                .find(|a| a.port() == 0 || a.ip().is_unspecified())
            {
                return invalid(format!("one of its {what}, {a}, cannot be dialed"));
            }
        }
        Ok(())
    }

    /// When the invitation expires (wall clock, ms); saturates.
    pub fn expires_ms(&self) -> u64 {
        self.created_ms.saturating_add(self.lifetime_ms)
    }
}

impl fmt::Display for InvitationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for InvitationCode {
    type Err = CodeError;
    fn from_str(text: &str) -> Result<Self, CodeError> {
        Self::decode(text)
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::derive_key(CHECKSUM_CONTEXT, body);
    let mut sum = [0; CHECKSUM_LEN];
    sum.copy_from_slice(&hash[..CHECKSUM_LEN]);
    sum
}

/// A `bs58` error on characters already checked against [`BASE58`] (so not expected), as
/// the position in the text as given.
fn not_base58(e: bs58::decode::Error, body_chars: &[(usize, char)]) -> CodeError {
    let at = match e {
        bs58::decode::Error::InvalidCharacter { index, .. }
        | bs58::decode::Error::NonAsciiCharacter { index } => index,
        _ => 0,
    };
    // Every checked character is ASCII, so a byte index is a character index.
    let (position, character) = body_chars.get(at).copied().unwrap_or((0, '?'));
    CodeError::NotBase58 {
        position,
        character,
    }
}

#[cfg(test)]
#[path = "code_tests.rs"]
mod tests;
