//! Tests of the device certificate and the verifiers (no network).
#![allow(clippy::unwrap_used)]

use super::*;
use rand_chacha::rand_core::SeedableRng;

fn device(seed: u8) -> KeyPair {
    KeyPair::generate(&mut rand_chacha::ChaCha20Rng::from_seed([seed; 32]))
}

fn ecdsa_cert() -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["not-ed25519".to_string()]).unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

#[test]
fn own_certificate_carries_the_device_key() {
    let kp = device(1);
    let cert = DeviceCertificate::new(&kp).unwrap();
    assert_eq!(device_key_from_cert(&cert.cert).unwrap(), kp.public());
    assert_ne!(
        device_key_from_cert(&cert.cert).unwrap(),
        device(2).public()
    );
    // The configs build (TLS 1.3 only, ALPN set).
    assert_eq!(
        cert.server_config().unwrap().alpn_protocols,
        vec![ALPN.to_vec()]
    );
    assert_eq!(
        cert.client_config().unwrap().alpn_protocols,
        vec![ALPN.to_vec()]
    );
}

#[test]
fn verifiers_accept_ed25519_only() {
    let provider = rustls::crypto::ring::default_provider();
    let verifier = DeviceKeyVerifier::new(&provider);
    let ours = DeviceCertificate::new(&device(4)).unwrap().cert;
    let ecdsa = ecdsa_cert();
    let name = ServerName::try_from("echo-rs").unwrap();
    let now = UnixTime::since_unix_epoch(Duration::ZERO);

    assert!(verifier.verify_client_cert(&ours, &[], now).is_ok());
    assert!(verifier
        .verify_server_cert(&ours, &[], &name, &[], now)
        .is_ok());
    let err = verifier.verify_client_cert(&ecdsa, &[], now).unwrap_err();
    assert!(err.to_string().contains("ed25519"), "{err}");
    assert!(verifier
        .verify_server_cert(&ecdsa, &[], &name, &[], now)
        .is_err());
    // Chains are refused even if the leaf is fine.
    assert!(verifier
        .verify_client_cert(&ours, std::slice::from_ref(&ours), now)
        .is_err());

    assert_eq!(
        ServerCertVerifier::supported_verify_schemes(&verifier),
        vec![SignatureScheme::ED25519]
    );
    assert_eq!(
        ClientCertVerifier::supported_verify_schemes(&verifier),
        vec![SignatureScheme::ED25519]
    );
    assert!(verifier.client_auth_mandatory());
}
