//! Handshakes against hand-built rustls clients that break the rules: each must be
//! refused by our endpoint's verifier or TLS settings.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio::time::timeout;

use super::rogue::{Presents, TrustAnyServer};
use super::tests::{device, node, LIMIT};
use super::{accept, TransportError, ALPN};
use crate::types::KeyPair;

fn ed25519_pkcs8(kp: &KeyPair) -> Vec<u8> {
    let signing = ed25519_dalek::SigningKey::from_bytes(&kp.secret_bytes());
    signing.to_pkcs8_der().unwrap().as_bytes().to_vec()
}

/// A self-signed ed25519 certificate for `kp`, made outside our module.
fn ed25519_cert(kp: &KeyPair) -> CertificateDer<'static> {
    let der = ed25519_pkcs8(kp);
    let key =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), &rcgen::PKCS_ED25519).unwrap();
    let params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

/// (certificate, PKCS#8 of its own key) for ECDSA P-256.
fn ecdsa() -> (CertificateDer<'static>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["intruder".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap().der().clone();
    (cert, key.serialize_der())
}

/// A quinn client endpoint presenting `cert` signed with `signer` (PKCS#8), or nothing.
fn foreign_client(
    present: Option<(CertificateDer<'static>, Vec<u8>)>,
    alpn: &[u8],
) -> quinn::Endpoint {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAnyServer(
            provider.signature_verification_algorithms,
        )));
    let mut tls = match present {
        Some((cert, signer)) => {
            let key = provider
                .key_provider
                .load_private_key(PrivateKeyDer::Pkcs8(signer.into()))
                .unwrap();
            let certified = Arc::new(CertifiedKey::new(vec![cert], key));
            builder.with_client_cert_resolver(Arc::new(Presents(certified)))
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    ep
}

/// Runs `client` against one of our endpoints; returns both sides' errors.
async fn refused(client: quinn::Endpoint) -> (quinn::ConnectionError, String) {
    let (server, _) = node(20);
    let addr = server.local_addr().unwrap();
    let accepting = tokio::spawn(async move { accept(server.accept().await.unwrap()).await });
    let client_result = timeout(LIMIT, client.connect(addr, "echo-rs").unwrap())
        .await
        .unwrap();
    let server_result = timeout(LIMIT, accepting).await.unwrap().unwrap();
    // In TLS 1.3 the client finishes before the server has judged its certificate, so
    // the refusal may arrive as a close right after a seemingly complete handshake.
    let client_err = match client_result {
        Err(e) => e,
        Ok(conn) => timeout(LIMIT, conn.closed()).await.unwrap(),
    };
    let server_err = server_result.unwrap_err();
    assert!(
        matches!(server_err, TransportError::Handshake(_)),
        "{server_err}"
    );
    assert!(
        matches!(client_err, quinn::ConnectionError::ConnectionClosed(_)),
        "{client_err:?}"
    );
    (client_err, server_err.to_string())
}

#[tokio::test]
async fn ecdsa_client_certificate_is_refused() {
    // An honest ECDSA client cannot sign with ED25519, the only scheme we ask for, so
    // rustls sends no certificate and mandatory client auth refuses it.
    let (_, server) = refused(foreign_client(Some(ecdsa()), ALPN)).await;
    assert!(server.contains("no certificates"), "{server}");
    // A client that does present the ECDSA certificate (signing with some ed25519 key)
    // is refused by the verifier, which names the algorithm.
    let (cert, _) = ecdsa();
    let signer = ed25519_pkcs8(&device(21));
    let (_, server) = refused(foreign_client(Some((cert, signer)), ALPN)).await;
    assert!(
        server.contains("ECDSA") && server.contains("ed25519"),
        "{server}"
    );
}

#[tokio::test]
async fn certificate_without_key_possession_is_refused() {
    // The certificate names device 22's key, but the handshake is signed by device 23.
    let cert = ed25519_cert(&device(22));
    let signer = ed25519_pkcs8(&device(23));
    let (_, server) = refused(foreign_client(Some((cert, signer)), ALPN)).await;
    assert!(server.contains("BadSignature"), "{server}");
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let (_, server) = refused(foreign_client(None, ALPN)).await;
    assert!(server.contains("no certificates"), "{server}");
}

#[tokio::test]
async fn wrong_alpn_is_refused_and_a_correct_foreign_client_is_accepted() {
    let kp = device(24);
    let present = || Some((ed25519_cert(&kp), ed25519_pkcs8(&kp)));
    refused(foreign_client(present(), b"other/1")).await;

    // Control: the same hand-built client with the right ALPN gets in, so the refusals
    // above are due to what each case changes.
    let (server, _) = node(25);
    let addr = server.local_addr().unwrap();
    let accepting = tokio::spawn(async move { accept(server.accept().await.unwrap()).await });
    let client = foreign_client(present(), ALPN);
    let _conn = timeout(LIMIT, client.connect(addr, "x").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, seen) = timeout(LIMIT, accepting).await.unwrap().unwrap().unwrap();
    assert_eq!(seen, kp.public());
}
