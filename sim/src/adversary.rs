//! A bad peer: a turmoil host running a hand-written client over the real transport (same
//! quinn endpoint, same device-bound TLS, same frames) that is no member of the space.
//!
//! What it attempts, over and over, against every target:
//! - a QUIC handshake with its own valid device certificate (the transport allows that);
//! - a `Hello` for the space carrying a valid `AuthorizedDevice` of its own non-member
//!   identity, or one that authorises some other device;
//! - answering the honest peer's own `Hello` the same way (on channels the peer opens);
//! - `Heads` claiming long feeds, then `Blocks`: validly signed blocks on its own
//!   unadmitted feeds (a mutation, a self-admission, a self-granted membership), and blocks
//!   that claim to continue the honest feeds it heard of, signed with the wrong key;
//! - answering every `Want` with forged blocks.
//!
//! Honest peers must never store any of them (the authorization checker verifies it).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use echo_actors::credentials::{authorize_device, Assertion, Designation, Role, Signer, Subject};
use echo_actors::feed::{Block, Payload};
use echo_actors::replication::{Heads, ReplMessage, WireEncoder, WireMessage};
use echo_actors::transport::{self, read_frame, write_frame, NetEnv, TransportConfig};
use echo_actors::types::{Hash, KeyPair, PublicKey, Timeframe};
use rand_core::RngCore;

use crate::harness::host::{SimClock, PEER_PORT};
use crate::harness::udp::TurmoilUdp;
use echo_actors::types::Clock;

/// The bad peer's keys, targets and what it saw.
pub struct BadPeer {
    pub identity: KeyPair,
    pub device: KeyPair,
    /// Its own (never admitted) control and data feeds.
    pub control: KeyPair,
    pub data: KeyPair,
    pub space: PublicKey,
    pub targets: Vec<SocketAddr>,
    seed: [u8; 32],
    /// Lines for the run's trace (drained by the scenario).
    pub log: RefCell<Vec<String>>,
}

impl BadPeer {
    pub fn new(seed: u64, space: PublicKey, targets: Vec<SocketAddr>) -> Self {
        let mut rng = crate::rng::stream(seed, crate::rng::ADVERSARY);
        let mut transport_seed = [0u8; 32];
        rng.fill_bytes(&mut transport_seed);
        BadPeer {
            identity: KeyPair::generate(&mut rng),
            device: KeyPair::generate(&mut rng),
            control: KeyPair::generate(&mut rng),
            data: KeyPair::generate(&mut rng),
            space,
            targets,
            seed: transport_seed,
            log: RefCell::new(Vec::new()),
        }
    }

    fn note(&self, text: String) {
        let at = turmoil::sim_elapsed().map_or(0, |d| d.as_millis());
        self.log.borrow_mut().push(format!("mallory@{at}: {text}"));
    }

    /// A `Hello`: with our own valid device credential, or one for another device.
    fn hello(&self, honest_device_credential: bool) -> WireMessage {
        let now = SimClock.now_ms();
        let device = if honest_device_credential {
            self.device.public()
        } else {
            self.data.public()
        };
        WireMessage::Hello {
            topic: echo_actors::signal::space_topic(&self.space),
            device_auth: Box::new(authorize_device(&self.identity, device, now)),
        }
    }

    /// Every forged block: our own unadmitted feeds, and `heads`' feeds continued with the
    /// wrong key.
    fn forged(&self, heads: &Heads) -> Vec<Block> {
        let now = SimClock.now_ms();
        let me = Signer::direct(self.identity.clone());
        let mut blocks = Vec::new();
        let admit = me.issue(
            Subject {
                id: self.control.public(),
                assertion: Assertion::AdmittedFeed {
                    space_key: self.space,
                    identity_key: self.identity.public(),
                    device_key: self.device.public(),
                    designation: Designation::Control,
                },
            },
            now,
            vec![],
        );
        let promote = me.issue(
            Subject {
                id: self.identity.public(),
                assertion: Assertion::SpaceMember {
                    space_key: self.space,
                    role: Role::Admin,
                },
            },
            now,
            vec![],
        );
        let tf = Timeframe::new();
        let sign = |key: &KeyPair, seq, prev, payload| {
            Block::sign(key, seq, prev, tf.clone(), payload).ok()
        };
        if let Some(b0) = sign(
            &self.control,
            0,
            Hash::default(),
            Payload::Credential(Box::new(admit)),
        ) {
            let prev = b0.hash();
            blocks.push(b0);
            blocks.extend(sign(
                &self.control,
                1,
                prev,
                Payload::Credential(Box::new(promote.clone())),
            ));
        }
        blocks.extend(sign(
            &self.data,
            0,
            Hash::default(),
            Payload::Mutation(vec![1, 0, 0]),
        ));
        for (feed, len) in heads {
            let payload = Payload::Credential(Box::new(promote.clone()));
            if let Some(mut b) = sign(&self.data, *len, Hash::default(), payload) {
                b.feed_key = *feed;
                blocks.push(b);
            }
            if let Some(mut b) = sign(
                &self.data,
                *len,
                Hash::default(),
                Payload::Mutation(vec![9; 8]),
            ) {
                b.feed_key = *feed;
                blocks.push(b);
            }
        }
        blocks
    }

    /// One forged conversation on an open stream pair.
    async fn talk(&self, send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, heard: Heads) {
        let mut heads = heard;
        let mut claims: Heads = heads.iter().map(|(f, l)| (*f, l + 5)).collect();
        claims.insert(self.control.public(), 2);
        claims.insert(self.data.public(), 1);
        // Blocks cross in compact form, in stream order, like an honest node's.
        let mut enc = WireEncoder::new();
        let mut blocks = |blocks| enc.encode(ReplMessage::Blocks(blocks));
        let _ = write_frame(send, &WireMessage::Heads(claims)).await;
        let _ = write_frame(send, &blocks(self.forged(&heads))).await;
        for _ in 0..6 {
            let frame =
                tokio::time::timeout(Duration::from_secs(2), read_frame::<WireMessage>(recv)).await;
            match frame {
                Ok(Ok(Some(WireMessage::Heads(h)))) => {
                    self.note(format!("heard heads of {} feeds", h.len()));
                    heads = h;
                    let _ = write_frame(send, &blocks(self.forged(&heads))).await;
                }
                Ok(Ok(Some(WireMessage::Want { feed, from, .. }))) => {
                    self.note(format!("asked for {}:{from}", feed.short()));
                    let mut h = heads.clone();
                    h.insert(feed, from);
                    let _ = write_frame(send, &blocks(self.forged(&h))).await;
                }
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
    }

    /// Dial one target and try everything once.
    async fn attempt(&self, endpoint: &quinn::Endpoint, addr: SocketAddr, round: u64) {
        let conn = match transport::connect(endpoint, addr).await {
            Ok((conn, _)) => conn,
            Err(e) => {
                self.note(format!(
                    "connect {addr}: failed ({})",
                    e.to_string().chars().take(40).collect::<String>()
                ));
                return;
            }
        };
        self.note(format!("connected to {addr}"));
        let Ok((mut send, mut recv)) =
            transport::open_stream(&conn, transport::StreamKind::Replication).await
        else {
            return;
        };
        let _ = write_frame(&mut send, &self.hello(round.is_multiple_of(2))).await;
        let answer =
            tokio::time::timeout(Duration::from_secs(5), read_frame::<WireMessage>(&mut recv))
                .await;
        let accepted = matches!(answer, Ok(Ok(Some(WireMessage::Hello { .. }))));
        self.note(format!(
            "hello to {addr}: {}",
            if accepted { "answered" } else { "refused" }
        ));
        self.talk(&mut send, &mut recv, Heads::new()).await;
        // Also answer channels the honest peer opens towards us.
        while let Ok(Ok((mut send, mut recv))) =
            tokio::time::timeout(Duration::from_secs(2), conn.accept_bi()).await
        {
            let hello = tokio::time::timeout(Duration::from_secs(2), async {
                match transport::read_stream_kind(&mut recv).await {
                    Ok(transport::StreamKind::Replication) => {
                        read_frame::<WireMessage>(&mut recv).await
                    }
                    _ => Ok(None),
                }
            })
            .await;
            if matches!(hello, Ok(Ok(Some(WireMessage::Hello { .. })))) {
                self.note(format!("{addr} opened a channel to us"));
                let _ = write_frame(&mut send, &self.hello(true)).await;
                self.talk(&mut send, &mut recv, Heads::new()).await;
            }
        }
        conn.close(0u32.into(), b"bye");
    }
}

/// The bad peer's host software: attack every target in turn, forever.
pub async fn software(peer: Rc<BadPeer>) -> turmoil::Result {
    let socket = TurmoilUdp::bind(PEER_PORT).await?;
    let endpoint = transport::endpoint(
        NetEnv::Injected { socket },
        &peer.device,
        &TransportConfig::new(peer.seed),
    )?;
    let mut round = 0u64;
    loop {
        for addr in peer.targets.clone() {
            peer.attempt(&endpoint, addr, round).await;
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
