//! End-to-end tests over real loopback UDP: handshakes, device keys, frames, refusals.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::*;
use crate::types::MAX_FRAME_BYTES;

pub(super) const LIMIT: Duration = Duration::from_secs(10);

pub(super) fn device(seed: u8) -> KeyPair {
    KeyPair::generate(&mut rand_chacha::ChaCha20Rng::from_seed([seed; 32]))
}

fn local() -> NetEnv {
    NetEnv::Real {
        bind: "127.0.0.1:0".parse().unwrap(),
    }
}

pub(super) fn node(seed: u8) -> (quinn::Endpoint, KeyPair) {
    let kp = device(seed);
    let ep = endpoint(local(), &kp, &TransportConfig::new([seed; 32])).unwrap();
    (ep, kp)
}

struct Pair {
    client: quinn::Connection,
    server: quinn::Connection,
    _endpoints: (quinn::Endpoint, quinn::Endpoint),
}

/// Connects a fresh client endpoint to a fresh server endpoint and checks both keys.
async fn pair() -> Pair {
    let (a, a_key) = node(1);
    let (b, b_key) = node(2);
    let b_addr = b.local_addr().unwrap();
    let accepting = {
        let b = b.clone();
        tokio::spawn(async move { accept(b.accept().await.unwrap()).await })
    };
    let (client, seen_by_client) = timeout(LIMIT, connect(&a, b_addr)).await.unwrap().unwrap();
    let (server, seen_by_server) = timeout(LIMIT, accepting).await.unwrap().unwrap().unwrap();
    assert_eq!(seen_by_client, b_key.public());
    assert_eq!(seen_by_server, a_key.public());
    assert_eq!(peer_device_key(&client).unwrap(), b_key.public());
    assert_eq!(peer_device_key(&server).unwrap(), a_key.public());
    Pair {
        client,
        server,
        _endpoints: (a, b),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Msg {
    id: u64,
    name: String,
    payload: Vec<u8>,
    tag: Option<[u8; 32]>,
}

#[tokio::test]
async fn connect_reports_each_peers_device_key() {
    let p = pair().await;
    assert_eq!(
        p.client.remote_address(),
        p._endpoints.1.local_addr().unwrap()
    );
}

#[tokio::test]
async fn frames_flow_both_ways_up_to_the_limit() {
    let p = pair().await;
    // Overhead: version 1 + id 10 + name 4 + payload length 4 + tag 33 = 52 bytes, so
    // the big frame is exactly MAX_FRAME_BYTES long.
    let big = Msg {
        id: u64::MAX,
        name: "big".into(),
        payload: vec![0xa5; MAX_FRAME_BYTES - 52],
        tag: Some([7; 32]),
    };
    let small = Msg {
        id: 1,
        name: "small".into(),
        payload: vec![1, 2, 3],
        tag: None,
    };
    let server = p.server.clone();
    let echo = tokio::spawn(async move {
        let (mut send, mut recv) = server.accept_bi().await.unwrap();
        let mut count = 0;
        while let Some(msg) = read_frame::<Msg>(&mut recv).await.unwrap() {
            write_frame(&mut send, &msg).await.unwrap();
            count += 1;
        }
        send.finish().unwrap();
        count
    });
    let (mut send, mut recv) = p.client.open_bi().await.unwrap();
    let sent = vec![small.clone(), big.clone(), small.clone()];
    let writer = async {
        for m in &sent {
            write_frame(&mut send, m).await.unwrap();
        }
        send.finish().unwrap();
    };
    let reader = async {
        let mut got = Vec::new();
        while let Some(m) = read_frame::<Msg>(&mut recv).await.unwrap() {
            got.push(m);
        }
        got
    };
    let ((), got) = timeout(LIMIT, async { tokio::join!(writer, reader) })
        .await
        .unwrap();
    assert_eq!(crate::types::encode(&big).unwrap().len(), MAX_FRAME_BYTES);
    assert_eq!(got, sent);
    assert_eq!(timeout(LIMIT, echo).await.unwrap().unwrap(), 3);

    // One byte more than the limit is refused by the writer before anything is sent.
    let (mut send, _recv) = p.client.open_bi().await.unwrap();
    let too_big = vec![0u8; MAX_FRAME_BYTES];
    assert!(matches!(
        write_frame(&mut send, &too_big).await,
        Err(FrameError::TooLarge(_))
    ));
}

/// Writes `raw` on a new stream from the client, finishes it, and reads one frame on
/// the server side.
async fn read_raw(p: &Pair, raw: &[u8]) -> Result<Option<Msg>, FrameError> {
    let (mut send, _recv) = p.client.open_bi().await.unwrap();
    send.write_all(raw).await.unwrap();
    send.finish().unwrap();
    let (_send, mut recv) = timeout(LIMIT, p.server.accept_bi()).await.unwrap().unwrap();
    timeout(LIMIT, read_frame::<Msg>(&mut recv)).await.unwrap()
}

#[tokio::test]
async fn bad_input_gives_the_matching_error() {
    let p = pair().await;
    let over = u32::try_from(MAX_FRAME_BYTES + 1).unwrap().to_be_bytes();
    assert!(matches!(
        read_raw(&p, &over).await,
        Err(FrameError::TooLarge(n)) if n == MAX_FRAME_BYTES + 1
    ));
    assert!(matches!(
        read_raw(&p, &[0xff; 4]).await,
        Err(FrameError::TooLarge(n)) if n == u32::MAX as usize
    ));
    // Header promises 100 bytes, 10 arrive.
    let mut short = 100u32.to_be_bytes().to_vec();
    short.extend_from_slice(&[1; 10]);
    assert!(matches!(
        read_raw(&p, &short).await,
        Err(FrameError::Truncated)
    ));
    // Stream ends inside the header.
    assert!(matches!(
        read_raw(&p, &[0, 0]).await,
        Err(FrameError::Truncated)
    ));
    // Garbage body, a zero-length body, a wrong version byte.
    let mut garbage = 5u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        read_raw(&p, &garbage).await,
        Err(FrameError::Malformed(_))
    ));
    assert!(matches!(
        read_raw(&p, &[0; 4]).await,
        Err(FrameError::Malformed(_))
    ));
    assert!(matches!(
        read_raw(&p, &[0, 0, 0, 1, 9]).await,
        Err(FrameError::Malformed(_))
    ));
    // Clean end of stream before any frame.
    assert!(matches!(read_raw(&p, &[]).await, Ok(None)));
    // A valid frame still reads after all that (a raw one built by hand).
    let msg = Msg {
        id: 9,
        name: "raw".into(),
        payload: vec![],
        tag: None,
    };
    let body = crate::types::encode(&msg).unwrap();
    let mut raw = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    raw.extend_from_slice(&body);
    assert_eq!(read_raw(&p, &raw).await.unwrap(), Some(msg));
}

#[tokio::test]
async fn reset_stream_is_an_io_error() {
    let p = pair().await;
    let (mut send, _recv) = p.client.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 50, 1]).await.unwrap();
    let (_send, mut recv) = timeout(LIMIT, p.server.accept_bi()).await.unwrap().unwrap();
    send.reset(quinn::VarInt::from_u32(7)).unwrap();
    let got = timeout(LIMIT, read_frame::<Msg>(&mut recv)).await.unwrap();
    assert!(matches!(got, Err(FrameError::Io(_))), "{got:?}");
}

#[tokio::test]
async fn application_close_code_reaches_the_peer() {
    let p = pair().await;
    p.server.close(
        quinn::VarInt::from_u32(close::NOT_A_MEMBER),
        b"device is not a member",
    );
    match timeout(LIMIT, p.client.closed()).await.unwrap() {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, quinn::VarInt::from_u32(close::NOT_A_MEMBER));
            assert_eq!(&c.reason[..], b"device is not a member");
        }
        other => panic!("expected ApplicationClosed, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_nobody_times_out_with_a_clear_error() {
    let mut config = TransportConfig::new([4; 32]);
    config.keep_alive = Duration::from_millis(100);
    config.idle_timeout = Duration::from_millis(300);
    let quick = endpoint(local(), &device(5), &config).unwrap();
    // A bound socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let err = timeout(LIMIT, connect(&quick, addr))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Handshake(ref m) if m.contains("no answer")),
        "{err}"
    );
}

#[tokio::test]
async fn bad_config_and_bad_bind_are_reported() {
    let mut config = TransportConfig::new([0; 32]);
    config.keep_alive = config.idle_timeout;
    assert!(matches!(
        endpoint(local(), &device(6), &config),
        Err(TransportError::Config(_))
    ));
    let (taken, _) = node(7);
    let err = endpoint(
        NetEnv::Real {
            bind: taken.local_addr().unwrap(),
        },
        &device(8),
        &TransportConfig::new([8; 32]),
    )
    .unwrap_err();
    assert!(
        matches!(err, TransportError::Bind(ref m) if m.contains("127.0.0.1")),
        "{err}"
    );
}

#[test]
fn endpoint_outside_a_runtime_is_an_error_not_a_panic() {
    let err = endpoint(local(), &device(9), &TransportConfig::new([9; 32])).unwrap_err();
    assert!(matches!(err, TransportError::Bind(_)), "{err}");
}

#[test]
fn read_frame_never_panics_on_arbitrary_bytes() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(pair());
    let small = proptest::collection::vec(any::<u8>(), 0..64);
    // Valid-looking headers followed by random bodies, plus fully random bytes.
    let framed =
        (0u32..80, proptest::collection::vec(any::<u8>(), 0..96)).prop_map(|(len, body)| {
            let mut raw = len.to_be_bytes().to_vec();
            raw.extend(body);
            raw
        });
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop_oneof![small, framed], |raw| {
            let got = rt.block_on(read_raw(&p, &raw));
            // Anything but a panic or a hang is fine; an Io error would be a bug here.
            prop_assert!(!matches!(got, Err(FrameError::Io(_))), "{got:?}");
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn injected_socket_serves_like_a_real_one() {
    use quinn::Runtime;
    let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let socket = quinn::TokioRuntime.wrap_udp_socket(std_socket).unwrap();
    let kp = device(30);
    let injected = endpoint(
        NetEnv::Injected { socket },
        &kp,
        &TransportConfig::new([30; 32]),
    )
    .unwrap();
    let addr = injected.local_addr().unwrap();
    let (client, client_kp) = node(31);
    let accepting = tokio::spawn(async move { accept(injected.accept().await.unwrap()).await });
    let (conn, seen) = timeout(LIMIT, connect(&client, addr))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, kp.public());
    let (server_conn, seen) = timeout(LIMIT, accepting).await.unwrap().unwrap().unwrap();
    assert_eq!(seen, client_kp.public());
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, &("ping".to_string(), 1u8))
        .await
        .unwrap();
    send.finish().unwrap();
    let (_send, mut recv) = timeout(LIMIT, server_conn.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let got = timeout(LIMIT, read_frame::<(String, u8)>(&mut recv))
        .await
        .unwrap();
    assert_eq!(got.unwrap(), Some(("ping".to_string(), 1)));
}

/// A node that comes back on the same address with the same device key (a new process: a
/// new endpoint, another seed) resets its peers' connections to its previous run at once,
/// because its stateless-reset key comes from the device key; the peer sees a reset, not
/// the 10 s idle timeout.
#[tokio::test]
async fn a_restarted_endpoint_with_the_same_device_resets_old_connections_at_once() {
    let (client_ep, _) = node(31);
    let server_key = device(32);
    // The first run lives in a runtime of its own, so that it can die like a killed
    // process: its tasks vanish with the runtime and no close frame is ever sent.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (die_tx, die_rx) = std::sync::mpsc::channel::<()>();
    let first_run = {
        let server_key = server_key.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server =
                    endpoint(local(), &server_key, &TransportConfig::new([32; 32])).unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                let conn = accept(server.accept().await.unwrap()).await.unwrap();
                // Held by a task that is still pending when the runtime goes: it is dropped
                // with the endpoint's driver, which can then send nothing.
                tokio::spawn(async move {
                    let _held = (conn, server);
                    std::future::pending::<()>().await;
                });
                let _ = tokio::task::spawn_blocking(move || die_rx.recv()).await;
            });
            drop(rt);
        })
    };
    let addr = addr_rx.await.unwrap();
    let (conn, _) = timeout(LIMIT, connect(&client_ep, addr))
        .await
        .unwrap()
        .unwrap();
    die_tx.send(()).unwrap();
    first_run.join().unwrap();
    let again = async {
        loop {
            if let Ok(ep) = endpoint(
                NetEnv::Real { bind: addr },
                &server_key,
                &TransportConfig::new([33; 32]),
            ) {
                return ep;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _restarted = timeout(LIMIT, again).await.expect("the port is free again");
    let started = tokio::time::Instant::now();
    // The client's next packet (a keep-alive at the latest) meets the new endpoint.
    if let Ok(mut s) = conn.open_uni().await {
        let _ = s.write_all(b"x").await;
    }
    let ended = timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the old connection ends well before the idle timeout");
    assert!(
        matches!(ended, quinn::ConnectionError::Reset),
        "ended with {ended:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
