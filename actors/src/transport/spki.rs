//! Strict reader of the ed25519 device key in an X.509 certificate.
//!
//! Contract: [`device_key_from_cert`] parses the certificate with rustls-webpki and
//! accepts its SubjectPublicKeyInfo only if it is exactly
//! `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits, 32 bytes) }` in
//! strict DER (RFC 8410: no algorithm parameters) and the 32 bytes decode to a non-weak
//! ed25519 point. Anything else is a [`KeyReadError`] whose message says what was found
//! (e.g. "certificate key is ECDSA ..."). Never panics.

use std::fmt;

use rustls::pki_types::CertificateDer;

use crate::types::PublicKey;

/// DER content of the ed25519 algorithm OID 1.3.101.112 (RFC 8410).
const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];

/// Why a certificate does not carry a usable ed25519 device key. `Debug` prints the
/// message too, because rustls shows wrapped errors with `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeyReadError {
    /// Not parseable as an X.509 certificate.
    Certificate(String),
    /// The SubjectPublicKeyInfo is not valid DER of the expected shape.
    Der(&'static str),
    /// A well-formed key of another algorithm (dotted OID).
    NotEd25519(String),
    /// 32 bytes that are not a usable ed25519 public key.
    BadPoint,
}

impl fmt::Display for KeyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyReadError::Certificate(e) => write!(f, "certificate does not parse: {e}"),
            KeyReadError::Der(what) => write!(f, "malformed public key info: {what}"),
            KeyReadError::NotEd25519(oid) => write!(
                f,
                "certificate key is {} (OID {oid}), but echo-rs devices use ed25519 \
                 (OID 1.3.101.112)",
                algorithm_name(oid)
            ),
            KeyReadError::BadPoint => f.write_str("certificate key is not a valid ed25519 key"),
        }
    }
}

impl fmt::Debug for KeyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for KeyReadError {}

fn algorithm_name(oid: &str) -> &'static str {
    match oid {
        "1.2.840.10045.2.1" => "ECDSA",
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" | "1.3.101.111" => "an X25519/X448 key-agreement key",
        _ => "another algorithm",
    }
}

/// The device key in an X.509 certificate.
pub(crate) fn device_key_from_cert(cert: &CertificateDer<'_>) -> Result<PublicKey, KeyReadError> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| KeyReadError::Certificate(format!("{e:?}")))?;
    device_key_from_spki(&parsed.subject_public_key_info())
}

/// Reads an ed25519 key from a DER SubjectPublicKeyInfo (with its outer SEQUENCE):
/// `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits, 32 bytes) }`.
pub(crate) fn device_key_from_spki(spki: &[u8]) -> Result<PublicKey, KeyReadError> {
    let (info, rest) = der_take(spki, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(KeyReadError::Der("bytes after the SubjectPublicKeyInfo"));
    }
    let (algorithm, info) = der_take(info, TAG_SEQUENCE)?;
    let (bits, info) = der_take(info, TAG_BIT_STRING)?;
    if !info.is_empty() {
        return Err(KeyReadError::Der("bytes after the key"));
    }
    let (oid, params) = der_take(algorithm, TAG_OID)?;
    if oid != ED25519_OID {
        return Err(KeyReadError::NotEd25519(dotted_oid(oid)?));
    }
    if !params.is_empty() {
        return Err(KeyReadError::Der(
            "ed25519 algorithm must have no parameters",
        ));
    }
    let key: [u8; 32] = match bits {
        [0, key @ ..] => key
            .try_into()
            .map_err(|_| KeyReadError::Der("ed25519 key must be 32 bytes"))?,
        _ => return Err(KeyReadError::Der("key bit string must have 0 unused bits")),
    };
    match ed25519_dalek::VerifyingKey::from_bytes(&key) {
        Ok(point) if !point.is_weak() => Ok(PublicKey::from_bytes(key)),
        _ => Err(KeyReadError::BadPoint),
    }
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;

/// Splits one DER element with tag `tag` off `input`: (content, rest). Strict DER:
/// definite lengths only, in the shortest form, at most 4 length bytes.
fn der_take(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), KeyReadError> {
    let (&found, input) = input.split_first().ok_or(KeyReadError::Der("truncated"))?;
    if found != tag {
        return Err(KeyReadError::Der("unexpected tag"));
    }
    let (&first, mut input) = input.split_first().ok_or(KeyReadError::Der("truncated"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return Err(KeyReadError::Der("bad length"));
        }
        let (bytes, rest) = input.split_at(count);
        input = rest;
        if bytes[0] == 0 {
            return Err(KeyReadError::Der("non-minimal length"));
        }
        let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        if len < 0x80 {
            return Err(KeyReadError::Der("non-minimal length"));
        }
        len
    };
    if input.len() < len {
        return Err(KeyReadError::Der("truncated"));
    }
    Ok(input.split_at(len))
}

/// Dotted text of an OID's DER content, e.g. `1.2.840.10045.2.1`.
fn dotted_oid(content: &[u8]) -> Result<String, KeyReadError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut started = false;
    for &b in content {
        if !started && b == 0x80 {
            return Err(KeyReadError::Der("non-minimal OID arc"));
        }
        started = true;
        if value > (u64::MAX >> 7) {
            return Err(KeyReadError::Der("OID arc too large"));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
            started = false;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return Err(KeyReadError::Der("empty OID"));
    };
    if started {
        return Err(KeyReadError::Der("truncated OID"));
    }
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{a}.{b}");
    for arc in rest {
        text.push_str(&format!(".{arc}"));
    }
    Ok(text)
}

#[cfg(test)]
#[path = "spki_tests.rs"]
mod tests;
