//! TLS bound to device keys: the self-signed certificate of a device, the rustls configs
//! of both sides, the verifiers, and the strict reader of an ed25519 key from a
//! certificate.
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

use super::{TransportError, ALPN};
use crate::types::{KeyPair, PublicKey};

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
        return Err(KeyReadError::Der("ed25519 algorithm must have no parameters"));
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
