//! Tests of the SPKI / certificate key reader (no network).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::types::KeyPair;
use rand_chacha::rand_core::SeedableRng;

fn device(seed: u8) -> KeyPair {
    KeyPair::generate(&mut rand_chacha::ChaCha20Rng::from_seed([seed; 32]))
}

fn ed25519_spki(key: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(key);
    der
}

fn ecdsa_cert() -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["not-ed25519".to_string()]).unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

#[test]
fn spki_reader_accepts_exactly_ed25519() {
    let key = device(3).public();
    let spki = ed25519_spki(key.as_bytes());
    assert_eq!(device_key_from_spki(&spki).unwrap(), key);

    // ECDSA P-256 key from rcgen: a clear "not ed25519" error naming the algorithm.
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let err = device_key_from_spki(&ec.public_key_der()).unwrap_err();
    assert_eq!(err, KeyReadError::NotEd25519("1.2.840.10045.2.1".into()));
    assert!(err.to_string().contains("ECDSA"), "{err}");

    let bad = |mutate: &dyn Fn(&mut Vec<u8>)| {
        let mut der = spki.clone();
        mutate(&mut der);
        device_key_from_spki(&der)
    };
    assert!(matches!(bad(&|d| d.clear()), Err(KeyReadError::Der(_))));
    assert!(matches!(
        bad(&|d| d.truncate(40)),
        Err(KeyReadError::Der(_))
    ));
    assert!(matches!(bad(&|d| d.push(0)), Err(KeyReadError::Der(_))));
    // Unused bits in the bit string.
    assert!(matches!(bad(&|d| d[11] = 1), Err(KeyReadError::Der(_))));
    // Wrong outer tag.
    assert!(matches!(bad(&|d| d[0] = 0x31), Err(KeyReadError::Der(_))));
    // Ed448 OID 1.3.101.113.
    assert_eq!(
        bad(&|d| d[8] = 0x71),
        Err(KeyReadError::NotEd25519("1.3.101.113".into()))
    );
    // 31-byte key (lengths adjusted so the DER itself is well formed).
    assert!(matches!(
        bad(&|d| {
            d.pop();
            d[1] = 0x29;
            d[10] = 0x20;
        }),
        Err(KeyReadError::Der(_))
    ));
    // Parameters present (NULL), which RFC 8410 forbids.
    let mut with_params = vec![
        0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00,
    ];
    with_params.extend_from_slice(&[0x03, 0x21, 0x00]);
    with_params.extend_from_slice(key.as_bytes());
    assert!(matches!(
        device_key_from_spki(&with_params),
        Err(KeyReadError::Der(_))
    ));
    // Non-minimal long-form length of the outer SEQUENCE.
    let mut long_form = vec![0x30, 0x81, 0x2a];
    long_form.extend_from_slice(&spki[2..]);
    assert!(matches!(
        device_key_from_spki(&long_form),
        Err(KeyReadError::Der(_))
    ));
    // A small-order point (the identity) is refused.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        device_key_from_spki(&ed25519_spki(&identity)),
        Err(KeyReadError::BadPoint)
    );
}

#[test]
fn oid_text() {
    assert_eq!(dotted_oid(&ED25519_OID).unwrap(), "1.3.101.112");
    let rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    assert_eq!(dotted_oid(&rsa).unwrap(), "1.2.840.113549.1.1.1");
    assert!(dotted_oid(&[]).is_err());
    assert!(dotted_oid(&[0x2a, 0x86]).is_err());
    assert!(dotted_oid(&[0x80, 0x01]).is_err());
    assert!(dotted_oid(&[0xff; 12]).is_err());
}

#[test]
fn certificate_reader_rejects_garbage_and_other_algorithms() {
    assert!(matches!(
        device_key_from_cert(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])),
        Err(KeyReadError::Certificate(_))
    ));
    assert!(matches!(
        device_key_from_cert(&ecdsa_cert()),
        Err(KeyReadError::NotEd25519(_))
    ));
}
