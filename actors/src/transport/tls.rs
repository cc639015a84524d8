//! TLS bound to device keys: the self-signed certificate of a device, the rustls configs
//! of both sides, and the verifiers (the key reader is in `spki.rs`).
//!
//! Contract:
//! - Our certificate is self-signed by the device key (ring via rcgen); its names carry
//!   no meaning.
//! - Both sides run TLS 1.3 only with the ring provider, advertise only
//!   `SignatureScheme::ED25519`, and require a peer certificate (client auth mandatory).
//! - A peer certificate is accepted iff it parses as X.509, comes alone (no chain), and
//!   its SubjectPublicKeyInfo is exactly an ed25519 key (OID 1.3.101.112, no parameters,
//!   32-byte key that decodes to a non-weak point). Possession of the key is proved by
//!   the TLS 1.3 handshake signature, which is always checked; TLS 1.2 is refused.
//! - rustls gets a fixed clock (Unix time 0): certificate validity dates are not checked
//!   (the identity is the key), and no session tickets are issued or used, so nothing
//!   here reads the system time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use super::spki::device_key_from_cert;
use super::{TransportError, ALPN};
use crate::types::{KeyPair, PublicKey};

/// This device's certificate and key, ready for both rustls sides.
pub(crate) struct DeviceCertificate {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl DeviceCertificate {
    pub(crate) fn new(device: &KeyPair) -> Result<Self, TransportError> {
        let tls = |what: &str, e: &dyn fmt::Display| TransportError::Tls(format!("{what}: {e}"));
        let signing = ed25519_dalek::SigningKey::from_bytes(&device.secret_bytes());
        let pkcs8 = signing
            .to_pkcs8_der()
            .map_err(|e| tls("encoding the device key as PKCS#8", &e))?;
        let key = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
            .map_err(|e| tls("loading the device key", &e))?;
        let mut params = rcgen::CertificateParams::new(vec![super::SERVER_NAME.to_string()])
            .map_err(|e| tls("certificate parameters", &e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("echo-rs device {}", device.public().to_hex()),
        );
        let cert = params
            .self_signed(&signer)
            .map_err(|e| tls("self-signing the device certificate", &e))?;
        Ok(DeviceCertificate {
            cert: cert.der().clone(),
            key,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, TransportError> {
        let verifier = Arc::new(DeviceKeyVerifier::new(&self.provider));
        let mut config =
            rustls::ServerConfig::builder_with_details(self.provider.clone(), Arc::new(FixedClock))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(tls_error)?
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![self.cert.clone()], self.key())
                .map_err(tls_error)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(config)
    }

    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, TransportError> {
        let verifier = Arc::new(DeviceKeyVerifier::new(&self.provider));
        let mut config =
            rustls::ClientConfig::builder_with_details(self.provider.clone(), Arc::new(FixedClock))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(tls_error)?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_client_auth_cert(vec![self.cert.clone()], self.key())
                .map_err(tls_error)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        config.enable_sni = false;
        Ok(config)
    }
}

fn tls_error(e: rustls::Error) -> TransportError {
    TransportError::Tls(e.to_string())
}

/// rustls' clock: always Unix time 0 (see the module contract).
#[derive(Debug)]
struct FixedClock;

impl rustls::time_provider::TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::ZERO))
    }
}

/// Accepts any lone ed25519 certificate and checks TLS 1.3 handshake signatures; used
/// as the server verifier by clients and the client verifier by servers.
#[derive(Debug)]
pub(crate) struct DeviceKeyVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl DeviceKeyVerifier {
    pub(crate) fn new(provider: &CryptoProvider) -> Self {
        DeviceKeyVerifier {
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<PublicKey, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "echo-rs device certificates are self-signed; a chain was presented".into(),
            ));
        }
        device_key_from_cert(end_entity).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ServerCertVerifier for DeviceKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_certificate(end_entity, intermediates)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for DeviceKeyVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_certificate(end_entity, intermediates)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
