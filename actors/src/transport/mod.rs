//! QUIC transport for peers: one quinn [`Endpoint`](quinn::Endpoint) per node that both
//! accepts and connects, authenticated by the node's ed25519 **device key**, plus
//! length-prefixed framing for streams.
//!
//! Contract:
//! - [`endpoint`] builds the endpoint from a [`NetEnv`]: a real UDP socket, or an
//!   abstract socket injected by the simulator. Both go through `quinn::TokioRuntime`, so
//!   timers follow tokio's clock (turmoil's simulated clock under the sim). It must be
//!   called inside a tokio runtime; it starts no OS threads and reads no system time.
//! - Every connection runs mutual TLS 1.3 (ALPN [`ALPN`]) with self-signed certificates
//!   whose key *is* the device key. Any ed25519 certificate is accepted; the handshake
//!   signature proves the peer holds the key. Whether that device may talk to us
//!   (member, not revoked) is the caller's decision: read the key with [`connect`],
//!   [`accept`] or [`peer_device_key`], then close with a [`close`] code if not.
//! - Randomness: quinn's endpoint RNG, the handshake-token key and connection ids all
//!   derive from [`TransportConfig::rng_seed`]; the stateless-reset key from the device key
//!   (the same across restarts, so a restarted node resets its peers' stale connections); rustls handshake
//!   randomness stays (it changes bytes, never sizes or timing). No session tickets, no
//!   resumption, no 0-RTT, no address-validation tokens: every handshake is a full one.
//!   (quinn's server clock, which reads system time, is consulted only for retry and
//!   NEW_TOKEN tokens, which this endpoint never issues.)
//! - Streams start with a one-byte preamble naming their kind ([`StreamKind`]).
//! - Frames: `u32` big-endian length, then `crate::types::encode(value)`; see
//!   [`write_frame`] / [`read_frame`]. Bad input gives a [`FrameError`], never a panic.

mod frame;
mod seeded;
mod spki;
mod stream_kind;
mod tls;

#[cfg(test)]
mod foreign_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::types::{KeyPair, PublicKey};

pub mod rogue;

pub use frame::{
    decode_frames, encode_frame, read_frame, read_frame_sized, write_frame, FrameError,
};
pub use stream_kind::{open_stream, read_stream_kind, StreamKind, StreamKindError};

/// ALPN protocol id spoken by echo-rs peers; a peer offering anything else is refused.
pub const ALPN: &[u8] = b"echo-rs/3";

/// Name passed to quinn when connecting. It is neither sent (no SNI) nor checked: the
/// peer's identity is its certificate key.
const SERVER_NAME: &str = "echo-rs";

/// Application close codes (quinn `VarInt`) used across the project.
pub mod close {
    /// Orderly close: nothing went wrong.
    pub const NORMAL: u32 = 0;
    /// The peer's device belongs to no member of any space we share.
    pub const NOT_A_MEMBER: u32 = 1;
    /// The peer's device (or its identity) has been revoked.
    pub const REVOKED: u32 = 2;
    /// The peer broke the protocol (unexpected message, bad state).
    pub const PROTOCOL: u32 = 3;
    /// The peer sent a frame that could not be read (too large, truncated, malformed).
    pub const BAD_FRAME: u32 = 4;
    /// This node is shutting down.
    pub const SHUTDOWN: u32 = 5;
    /// Another connection to the same device already exists; this one is dropped.
    pub const DUPLICATE: u32 = 6;

    /// Short human name of a close code, for logs and error messages.
    pub fn name(code: u64) -> &'static str {
        match code {
            0 => "normal",
            1 => "not a member",
            2 => "revoked",
            3 => "protocol violation",
            4 => "bad frame",
            5 => "shutdown",
            6 => "duplicate connection",
            _ => "unknown code",
        }
    }
}

/// Tunables of the endpoint. Build with [`TransportConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct TransportConfig {
    /// Interval of QUIC keep-alive pings (default 2 s).
    pub keep_alive: Duration,
    /// A connection with no traffic for this long is dead (default 10 s).
    pub idle_timeout: Duration,
    /// Seed of every random choice quinn makes for this endpoint (take it from the
    /// node's seeded RNG).
    pub rng_seed: [u8; 32],
    /// Bidirectional streams the peer may have open at once (default 256).
    pub max_concurrent_bidi_streams: u32,
}

impl TransportConfig {
    pub fn new(rng_seed: [u8; 32]) -> Self {
        TransportConfig {
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            rng_seed,
            max_concurrent_bidi_streams: 256,
        }
    }
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("keep_alive", &self.keep_alive)
            .field("idle_timeout", &self.idle_timeout)
            .field("rng_seed", &"<secret>")
            .field(
                "max_concurrent_bidi_streams",
                &self.max_concurrent_bidi_streams,
            )
            .finish()
    }
}

/// Where the endpoint's UDP socket comes from: a real socket bound here, or one the
/// simulator injects.
#[derive(Clone)]
pub enum NetEnv {
    Real {
        bind: SocketAddr,
    },
    Injected {
        socket: Arc<dyn quinn::AsyncUdpSocket>,
    },
}

impl std::fmt::Debug for NetEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetEnv::Real { bind } => write!(f, "Real({bind})"),
            NetEnv::Injected { socket } => match socket.local_addr() {
                Ok(addr) => write!(f, "Injected({addr})"),
                Err(_) => f.write_str("Injected(?)"),
            },
        }
    }
}

#[derive(Error, Debug)]
pub enum TransportError {
    #[error("cannot open the QUIC endpoint: {0}")]
    Bind(String),
    #[error("invalid transport configuration: {0}")]
    Config(String),
    #[error("cannot set up TLS for this device key: {0}")]
    Tls(String),
    #[error("cannot start a connection: {0}")]
    Connect(String),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("peer has no usable ed25519 device key: {0}")]
    PeerKey(String),
}

/// A quinn Endpoint that both accepts and connects, authenticated by `device`'s ed25519
/// key (mutual TLS 1.3). Must be called inside a tokio runtime.
pub fn endpoint(
    net: NetEnv,
    device: &KeyPair,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TransportError::Bind(
            "transport::endpoint was called outside a tokio runtime; call it from async code"
                .into(),
        ));
    }
    let transport = Arc::new(quinn_transport(config)?);
    let identity = tls::DeviceCertificate::new(device)?;

    let server_tls = quinn::crypto::rustls::QuicServerConfig::try_from(identity.server_config()?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut server =
        quinn::ServerConfig::new(Arc::new(server_tls), seeded::token_key(&config.rng_seed));
    server.transport_config(transport.clone());
    let mut tokens = quinn::ValidationTokenConfig::default();
    tokens.sent(0);
    server.validation_token_config(tokens);

    let client_tls = quinn::crypto::rustls::QuicClientConfig::try_from(identity.client_config()?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_tls));
    client.transport_config(transport);
    client.token_store(Arc::new(quinn::NoneTokenStore));

    // The stateless-reset key comes from the device key, not the run's seed: a node that
    // restarts then answers its peers' packets for connections of its previous run with a
    // reset they accept, so they notice at once instead of after the idle timeout.
    let reset_seed = blake3::derive_key(
        "echo-rs transport stateless reset seed v1",
        &device.secret_bytes(),
    );
    let mut endpoint_config = quinn::EndpointConfig::new(seeded::reset_key(&reset_seed));
    endpoint_config.rng_seed(Some(seeded::endpoint_rng_seed(&config.rng_seed)));
    let cid_seed = seeded::cid_seed(&config.rng_seed);
    endpoint_config.cid_generator(move || Box::new(seeded::SeededCidGenerator::new(cid_seed)));

    let runtime = Arc::new(quinn::TokioRuntime);
    let mut endpoint = match net {
        NetEnv::Real { bind } => {
            let socket = std::net::UdpSocket::bind(bind).map_err(|e| {
                TransportError::Bind(format!(
                    "UDP {bind}: {e} (is another process using this port? pick a free one, \
                     or port 0 for any)"
                ))
            })?;
            quinn::Endpoint::new(endpoint_config, Some(server), socket, runtime)
                .map_err(|e| TransportError::Bind(format!("UDP {bind}: {e}")))?
        }
        NetEnv::Injected { socket } => quinn::Endpoint::new_with_abstract_socket(
            endpoint_config,
            Some(server),
            socket,
            runtime,
        )
        .map_err(|e| TransportError::Bind(format!("injected socket: {e}")))?,
    };
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

fn quinn_transport(config: &TransportConfig) -> Result<quinn::TransportConfig, TransportError> {
    if config.keep_alive.is_zero() || config.keep_alive >= config.idle_timeout {
        return Err(TransportError::Config(format!(
            "keep_alive ({:?}) must be above zero and below idle_timeout ({:?})",
            config.keep_alive, config.idle_timeout
        )));
    }
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout).map_err(|_| {
        TransportError::Config(format!(
            "idle_timeout {:?} is too large",
            config.idle_timeout
        ))
    })?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(config.keep_alive))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(config.max_concurrent_bidi_streams));
    // Ask the peer to acknowledge every ninth ack-eliciting packet (or after its max ack
    // delay, 25 ms) rather than every other one (QUIC ACK frequency extension, which both
    // ends speak). A replication stream of small writes is about one packet per block, and
    // the ACKs of every other packet were 16 of the 175 bytes per op on the wire
    // (`echo-bench replicate --batch 1`, docs/benchmarks.md).
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(quinn::VarInt::from_u32(ACK_ELICITING_THRESHOLD));
    transport.ack_frequency_config(Some(acks));
    Ok(transport)
}

/// Ack-eliciting packets the peer may receive before it must acknowledge.
const ACK_ELICITING_THRESHOLD: u32 = 8;

/// Connects to the peer at `addr` and returns the connection with the peer's device key.
///
/// In TLS 1.3 the client finishes its handshake before the server has checked the
/// client's certificate, so a peer that refuses *us* may show up as the returned
/// connection closing at once with a TLS alert (`ConnectionError::ConnectionClosed`).
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
) -> Result<(quinn::Connection, PublicKey), TransportError> {
    let connecting = endpoint
        .connect(addr, SERVER_NAME)
        .map_err(|e| TransportError::Connect(format!("to {addr}: {e}")))?;
    let conn = connecting
        .await
        .map_err(|e| TransportError::Handshake(describe(addr, &e)))?;
    let key = checked_key(&conn)?;
    Ok((conn, key))
}

/// Completes an incoming connection and returns it with the peer's device key.
pub async fn accept(
    incoming: quinn::Incoming,
) -> Result<(quinn::Connection, PublicKey), TransportError> {
    let addr = incoming.remote_address();
    let conn = incoming
        .accept()
        .map_err(|e| TransportError::Handshake(describe(addr, &e)))?
        .await
        .map_err(|e| TransportError::Handshake(describe(addr, &e)))?;
    let key = checked_key(&conn)?;
    Ok((conn, key))
}

/// The device key in the peer's certificate (already checked during the handshake).
pub fn peer_device_key(conn: &quinn::Connection) -> Result<PublicKey, TransportError> {
    let addr = conn.remote_address();
    let identity = conn
        .peer_identity()
        .ok_or_else(|| TransportError::PeerKey(format!("{addr} presented no certificate")))?;
    let chain = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .map_err(|_| TransportError::PeerKey(format!("{addr}: peer identity is not X.509")))?;
    let cert = chain.first().ok_or_else(|| {
        TransportError::PeerKey(format!("{addr} presented an empty certificate chain"))
    })?;
    spki::device_key_from_cert(cert).map_err(|e| TransportError::PeerKey(format!("{addr}: {e}")))
}

/// Reads the peer key after a handshake; a connection without one is closed.
fn checked_key(conn: &quinn::Connection) -> Result<PublicKey, TransportError> {
    peer_device_key(conn).inspect_err(|_| {
        conn.close(
            quinn::VarInt::from_u32(close::PROTOCOL),
            b"no ed25519 device key",
        );
    })
}

/// Explains a failed handshake with `addr` and what to check.
fn describe(addr: SocketAddr, e: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    match e {
        E::TimedOut => format!(
            "no answer from {addr}: is an echo-rs peer running there, and is UDP reachable?"
        ),
        E::ConnectionClosed(c) if is_tls_alert(c.error_code) => format!(
            "{addr} refused the TLS handshake ({c}); it requires an ed25519 device \
             certificate and ALPN {}: is it a compatible echo-rs peer?",
            String::from_utf8_lossy(ALPN)
        ),
        E::ConnectionClosed(c) => format!("{addr} closed the connection: {c}"),
        E::ApplicationClosed(c) => format!(
            "{addr} closed the connection: {} ({})",
            c.error_code,
            close::name(c.error_code.into_inner())
        ),
        E::TransportError(t) if is_tls_alert(t.code) => format!(
            "refused {addr}: {t}; echo-rs peers need TLS 1.3, ALPN {} and an ed25519 device \
             certificate whose key signs the handshake",
            String::from_utf8_lossy(ALPN)
        ),
        E::TransportError(t) => format!("with {addr}: {t}"),
        E::VersionMismatch => format!("{addr} speaks no QUIC version we support"),
        E::Reset => format!("{addr} reset the connection (it may have restarted)"),
        E::LocallyClosed => format!("connection to {addr} was closed locally"),
        E::CidsExhausted => format!("connection to {addr}: out of connection ids, retry"),
    }
}

/// QUIC carries TLS alerts as transport error codes 0x100..=0x1ff (RFC 9001 §4.8).
fn is_tls_alert(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}
