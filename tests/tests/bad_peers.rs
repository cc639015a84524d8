//! Misbehaving peers against a real `echo-node` daemon on loopback. Each test sets up two
//! good nodes (A, and B with `--peer A`) sharing a space, attacks A, then checks that A
//! still serves its CLI, that B still replicates both ways, and that A stored nothing from
//! the attacker (no foreign feeds, no foreign objects).
//!
//! The QUIC attackers are written here with echo-actors' own transport (a valid ed25519
//! device key and TLS) or with a hand-built rustls client (an ECDSA certificate).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use echo_actors::credentials::{authorize_device, Assertion, Credential};
use echo_actors::replication::WireMessage;
use echo_actors::signal::space_topic;
use echo_actors::transport::rogue::{Presents, TrustAnyServer};
use echo_actors::transport::{self, close, connect, read_frame, write_frame, NetEnv};
use echo_actors::types::{KeyPair, PublicKey};
use echo_tests::{converge, share, Node};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio::time::timeout;

/// How long the node has to answer or refuse the attacker.
const ANSWER: Duration = Duration::from_secs(12);

/// Two good nodes sharing a space, replicating; what the checks need to remember.
struct Good {
    a: Node,
    b: Node,
    space: String,
    a_addr: SocketAddr,
    ids: BTreeSet<String>,
    /// Device keys whose feeds may exist in the space.
    devices: BTreeSet<String>,
    members: serde_json::Value,
}

impl Good {
    fn new() -> Good {
        let a = Node::networked("a", &[]);
        let a_addr = a.listen_addr();
        let b = Node::networked("b", &["--peer", &a_addr.to_string()]);
        let space = share(&a, &[&b]);
        let mut ids = BTreeSet::new();
        ids.insert(a.add(&space, r#"{"from":"a"}"#));
        ids.insert(b.add(&space, r#"{"from":"b"}"#));
        converge(&[("a", &a), ("b", &b)], &space, &ids);
        let devices = [a.device_key(), b.device_key()].into();
        let members = a.ok(&["space", "members", &space]);
        Good {
            a,
            b,
            space,
            a_addr,
            ids,
            devices,
            members,
        }
    }

    fn space_key(&self) -> PublicKey {
        self.space.parse().unwrap()
    }

    /// A still answers, B still replicates both ways, and A holds nothing foreign.
    fn still_serving(&mut self, attack: &str) {
        let Good {
            a, b, space, ids, ..
        } = self;
        let status = a.status();
        assert_eq!(status["spaces"][0]["space_key"], space.as_str(), "{status}");
        ids.insert(a.add(space, &format!(r#"{{"after":"{attack}","from":"a"}}"#)));
        converge(&[("a", a), ("b", b)], space, ids);
        ids.insert(b.add(space, &format!(r#"{{"after":"{attack}","from":"b"}}"#)));
        converge(&[("a", a), ("b", b)], space, ids);
        for feed in a.feeds(space) {
            let device = feed["device_key"].as_str().unwrap();
            assert!(
                self.devices.contains(device),
                "after {attack}, A holds a feed of a device that is not A or B: {feed}"
            );
        }
        let logs = a.logs();
        assert!(!logs.contains("panicked"), "A panicked after {attack}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

/// A client endpoint with the echo-rs transport for `device` (valid ed25519 TLS).
fn endpoint(device: &KeyPair, seed: u8) -> quinn::Endpoint {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    transport::endpoint(
        NetEnv::Real { bind },
        device,
        &transport::TransportConfig::new([seed; 32]),
    )
    .unwrap()
}

fn hello(space_key: PublicKey, device_auth: Credential) -> WireMessage {
    WireMessage::Hello {
        topic: space_topic(&space_key),
        device_auth: Box::new(device_auth),
    }
}

/// Opens a stream, sends `hello` and returns how the node answered on that stream:
/// `Ok(code)` for a reset with that code, `Err(description)` otherwise.
async fn hello_refusal(conn: &quinn::Connection, hello: &WireMessage) -> Result<u64, String> {
    let (mut send, mut recv) =
        transport::open_stream(conn, transport::StreamKind::Replication).await?;
    write_frame(&mut send, hello)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 256];
    match timeout(ANSWER, recv.read(&mut buf)).await {
        Ok(Err(quinn::ReadError::Reset(code))) => Ok(code.into_inner()),
        Ok(Err(quinn::ReadError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(c)))) => {
            Ok(c.error_code.into_inner())
        }
        other => Err(format!("the node did not refuse the Hello: {other:?}")),
    }
}

#[test]
fn garbage_datagrams_are_ignored() {
    let mut good = Good::new();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // xorshift: cheap reproducible noise.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000usize {
        let len = match i % 4 {
            0 => 1 + (next() % 64) as usize,
            1 => 1200 + (next() % 300) as usize,
            _ => 1 + (next() % 1500) as usize,
        };
        let mut datagram: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 3 {
            // Looks like a QUIC v1 Initial (long header), then garbage.
            0 if len > 5 => {
                datagram[0] = 0xc0 | (datagram[0] & 0x0f);
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
            // Looks like a short-header packet.
            1 => datagram[0] = 0x40 | (datagram[0] & 0x3f),
            _ => {}
        }
        socket.send_to(&datagram, good.a_addr).unwrap();
    }
    good.still_serving("garbage datagrams");
}

#[test]
fn a_non_member_device_is_refused() {
    let mut good = Good::new();
    let a_device = good.a.device_key();
    let b_identity: PublicKey = good.b.identity_key().parse().unwrap();
    let feeds_before = good.a.feeds(&good.space);
    let space_key = good.space_key();
    let a_addr = good.a_addr;
    runtime().block_on(async move {
        let device = KeyPair::from_secret([11; 32]);
        let ep = endpoint(&device, 11);
        // A refused Hello on a connection with no other channel closes the connection; A
        // then refuses that address for a while (1 s, doubling) unless the Hello came with
        // a valid credential of an identity that is simply no member yet (a newcomer, who
        // knows the space key). Each attempt connects anew from a new port.
        let attempt = |hello: WireMessage, penalized: bool| {
            let device = KeyPair::from_secret([11; 32]);
            let a_device = a_device.clone();
            async move {
                let ep = endpoint(&device, 11);
                let (conn, key) = timeout(ANSWER, connect(&ep, a_addr))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(key.to_hex(), a_device, "we reached A");
                let code = hello_refusal(&conn, &hello).await.unwrap();
                // Back at once from the same address: a stranger is refused before the TLS
                // handshake; a newcomer gets in.
                let again = timeout(ANSWER, connect(&ep, a_addr)).await.unwrap();
                if penalized {
                    assert!(again.is_err(), "a penalized address was let in again");
                } else {
                    assert!(again.is_ok(), "a newcomer was refused: {:?}", again.err());
                }
                ep.wait_idle().await;
                code
            }
        };

        // A valid credential, from an identity that is no member.
        let stranger = KeyPair::from_secret([12; 32]);
        let auth = authorize_device(&stranger, device.public(), now_ms());
        let code = attempt(hello(space_key, auth), false).await;
        assert_eq!(u64::from(close::NOT_A_MEMBER), code, "non-member Hello");

        // A forged credential claiming member B's identity (signed by someone else).
        let mut forged = authorize_device(&stranger, device.public(), now_ms());
        forged.issuer = b_identity;
        forged.subject.assertion = Assertion::AuthorizedDevice {
            identity_key: b_identity,
            device_key: device.public(),
        };
        let code = attempt(hello(space_key, forged), true).await;
        assert_eq!(u64::from(close::NOT_A_MEMBER), code, "forged credential");

        // A Hello for a space A does not have.
        let other_space = KeyPair::from_secret([13; 32]).public();
        let auth = authorize_device(&stranger, device.public(), now_ms());
        let code = attempt(hello(other_space, auth), true).await;
        assert_eq!(u64::from(close::NOT_A_MEMBER), code, "unknown space");
        ep.wait_idle().await;
    });
    assert_eq!(
        good.a.feeds(&good.space),
        feeds_before,
        "the refused device changed A's feeds"
    );
    assert_eq!(
        good.a.ok(&["space", "members", &good.space]),
        good.members,
        "the refused device changed the members"
    );
    good.still_serving("a non-member Hello");
}

/// A client whose identity A made a member: A, which does not know this device yet, opens
/// no channel to it (and so reveals nothing); the client opens one, completes the Hello
/// exchange, then sends `bad` on that channel. Returns how A closed the connection.
async fn member_sends(
    identity: &KeyPair,
    seed: u8,
    a_addr: SocketAddr,
    space_key: PublicKey,
    bad: &[u8],
) -> quinn::ConnectionError {
    let device = KeyPair::from_secret([seed; 32]);
    let ep = endpoint(&device, seed);
    let (conn, _) = timeout(ANSWER, connect(&ep, a_addr))
        .await
        .unwrap()
        .unwrap();
    assert!(
        timeout(Duration::from_millis(300), conn.accept_bi())
            .await
            .is_err(),
        "A opened a channel (revealing its space) to a device it does not know as a member"
    );
    let (mut send, mut recv) = transport::open_stream(&conn, transport::StreamKind::Replication)
        .await
        .unwrap();
    let auth = authorize_device(identity, device.public(), now_ms());
    write_frame(&mut send, &hello(space_key, auth))
        .await
        .unwrap();
    let answer = timeout(ANSWER, read_frame::<WireMessage>(&mut recv))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&answer, Some(WireMessage::Hello { topic, .. }) if *topic == space_topic(&space_key)),
        "A accepted us as a member and answered with its Hello: {answer:?}"
    );
    send.write_all(bad).await.unwrap();
    let closed = timeout(ANSWER, conn.closed()).await.unwrap();
    ep.wait_idle().await;
    closed
}

fn assert_bad_frame(closed: &quinn::ConnectionError, what: &str) {
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => assert_eq!(
            c.error_code.into_inner(),
            u64::from(close::BAD_FRAME),
            "{what}: closed with {c}"
        ),
        other => panic!("{what}: A closed the connection with {other:?}, not BAD_FRAME"),
    }
}

#[test]
fn bad_frames_from_a_member_close_the_connection() {
    let mut good = Good::new();
    // The attacker's identity is a real member (editor) of the space.
    let identity = KeyPair::from_secret([21; 32]);
    good.a.ok(&[
        "space",
        "add-member",
        &good.space,
        &identity.public().to_hex(),
    ]);
    let (space_key, a_addr) = (good.space_key(), good.a_addr);
    let rt = runtime();

    // A frame header announcing more than the 4 MiB limit.
    let mut oversized = (5u32 * 1024 * 1024).to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0xff; 64]);
    let closed = rt.block_on(member_sends(&identity, 22, a_addr, space_key, &oversized));
    assert_bad_frame(&closed, "oversized frame");

    // A frame of the right size whose bytes decode to nothing.
    let mut malformed = 32u32.to_be_bytes().to_vec();
    malformed.extend_from_slice(&[0xff; 32]);
    let closed = rt.block_on(member_sends(&identity, 23, a_addr, space_key, &malformed));
    assert_bad_frame(&closed, "malformed frame");

    good.still_serving("bad frames");
}

#[test]
fn a_credential_for_another_device_is_refused() {
    let mut good = Good::new();
    let identity = KeyPair::from_secret([31; 32]);
    good.a.ok(&[
        "space",
        "add-member",
        &good.space,
        &identity.public().to_hex(),
    ]);
    let (space_key, a_addr) = (good.space_key(), good.a_addr);
    runtime().block_on(async move {
        let device = KeyPair::from_secret([32; 32]);
        let ep = endpoint(&device, 32);
        let (conn, _) = timeout(ANSWER, connect(&ep, a_addr))
            .await
            .unwrap()
            .unwrap();
        // Signed by a member identity, but for a device other than our TLS key.
        let elsewhere = KeyPair::from_secret([33; 32]).public();
        let auth = authorize_device(&identity, elsewhere, now_ms());
        let code = hello_refusal(&conn, &hello(space_key, auth)).await.unwrap();
        assert_eq!(u64::from(close::NOT_A_MEMBER), code);
        conn.close(0u32.into(), b"done");
        ep.wait_idle().await;
    });
    good.still_serving("a credential for another device");
}

/// A quinn client presenting `cert`, signing the handshake with `signer` (PKCS#8 DER).
fn foreign_client(cert: CertificateDer<'static>, signer: Vec<u8>) -> quinn::Endpoint {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(signer.into()))
        .unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAnyServer(
            provider.signature_verification_algorithms,
        )))
        .with_client_cert_resolver(Arc::new(Presents(Arc::new(CertifiedKey::new(
            vec![cert],
            key,
        )))));
    tls.alpn_protocols = vec![transport::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    ep
}

/// Connects with `ep`; returns the error that ended the attempt (the handshake, or a close
/// right after it: in TLS 1.3 the client may finish before the server judged its
/// certificate).
async fn refused(ep: &quinn::Endpoint, addr: SocketAddr) -> quinn::ConnectionError {
    let connecting = ep.connect(addr, "echo-rs").unwrap();
    let err = match timeout(ANSWER, connecting).await.unwrap() {
        Err(e) => e,
        Ok(conn) => {
            // If the node let us in, it would open its replication channel to us.
            if let Ok(Ok(_)) = timeout(Duration::from_secs(2), conn.accept_bi()).await {
                panic!("the node accepted an ECDSA client and opened a channel");
            }
            timeout(ANSWER, conn.closed()).await.unwrap()
        }
    };
    ep.wait_idle().await;
    err
}

fn is_tls_refusal(err: &quinn::ConnectionError) -> bool {
    match err {
        quinn::ConnectionError::ConnectionClosed(c) => {
            (0x100..0x200).contains(&u64::from(c.error_code))
        }
        quinn::ConnectionError::TransportError(t) => (0x100..0x200).contains(&u64::from(t.code)),
        _ => false,
    }
}

#[test]
fn an_ecdsa_client_certificate_fails_the_handshake() {
    let mut good = Good::new();
    let a_addr = good.a_addr;
    runtime().block_on(async move {
        // An honest ECDSA P-256 client: its key cannot make the ed25519 signature A asks for.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["intruder".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        let err = refused(&foreign_client(cert.clone(), key.serialize_der()), a_addr).await;
        assert!(is_tls_refusal(&err), "ECDSA client: {err:?}");

        // The ECDSA certificate presented while signing with some ed25519 key.
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = refused(&foreign_client(cert, ed.serialize_der()), a_addr).await;
        assert!(is_tls_refusal(&err), "ECDSA cert, ed25519 signer: {err:?}");
    });
    good.still_serving("an ECDSA certificate");
}
